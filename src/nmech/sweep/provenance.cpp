#include "nmech/sweep/provenance.hpp"

#include <dlfcn.h>
#include <hdf5.h>
#include <mpi.h>
#include <torch/version.h>
#include <unistd.h>

#include <cstdlib>
#include <nlohmann/json.hpp>

#include "nmech/store/store.hpp"
#include "nmech/util/build_info.hpp"
#include "nmech/util/utc.hpp"

namespace nmech::sweep {

namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

std::string mpi_version() {
  char buf[MPI_MAX_LIBRARY_VERSION_STRING] = {};
  int len = 0;
  MPI_Get_library_version(buf, &len);
  std::string s(buf, static_cast<size_t>(len));
  const auto comma = s.find(',');  // "Open MPI v4.1.4, package: ..." → "Open MPI v4.1.4"
  return s.substr(0, comma);
}

std::string hdf5_version() {
  unsigned maj = 0, min = 0, rel = 0;
  H5get_libversion(&maj, &min, &rel);
  return std::to_string(maj) + "." + std::to_string(min) + "." + std::to_string(rel);
}

// The BLAS behind libblas.so.3 is picked at run time (Debian alternatives), so ask it.
std::string blas_version() {
  using config_fn = char* (*)();
  if (auto f = reinterpret_cast<config_fn>(dlsym(RTLD_DEFAULT, "openblas_get_config"))) return f();
  return "unknown (not OpenBLAS)";
}

}  // namespace

std::string library_versions() {
  return "LibTorch " + std::string(TORCH_VERSION) + ", " + mpi_version() + ", HDF5 " + hdf5_version() +
         ", BLAS " + blas_version();
}

std::string provenance_json(const Attempt& a) {
  nlohmann::json j;
  j["attempt"] = a.attempt;
  j["first_step"] = a.first_step;
  j["started_utc"] = util::utc_now_text();
  j["nmech_version"] = util::version();
  j["git_commit"] = util::git_commit();
  j["libtorch"] = TORCH_VERSION;
  j["mpi"] = mpi_version();
  j["hdf5"] = hdf5_version();
  j["blas"] = blas_version();
  j["world_size"] = a.world_size;
  j["group"] = a.group;
  j["world_ranks"] = a.world_ranks;
  j["hosts"] = a.hosts;
  j["local_ranks"] = a.local_ranks;
  j["device"] = a.device;
  j["pid"] = static_cast<std::int64_t>(getpid());
  if (a.world_ranks.size() > 1) {  // what docs/PLATFORM.md §4 asks a data-parallel run to record
    const auto n = static_cast<std::int64_t>(a.world_ranks.size());
    j["data_parallel"] = {{"group_size", n},
                          {"reducer", a.reducer},
                          {"backend", a.backend},
                          {"bucket_mb", a.bucket_mb},
                          {"first_bucket_mb", a.first_bucket_mb},
                          {"in_place_mb", a.in_place_mb},
                          {"batch", a.batch},
                          {"per_rank_batch", {a.batch / n, (a.batch + n - 1) / n}},
                          {"averaging", "sum over the group, then divided by the global batch"},
                          {"lr_scaling", "none: lr is the configured one for the global batch"},
                          {"batchnorm", "per-shard statistics; the leader's running statistics"},
                          {"traces", "after reduction"}};
  }
  for (const char* k : {"SLURM_JOB_ID", "SLURM_RESTART_COUNT", "SLURM_ARRAY_JOB_ID", "SLURM_CLUSTER_NAME"})
    if (!env(k).empty()) j[k] = env(k);
  return fit_record(j.dump(), store::kProvenanceBytes);
}

// A record must fit its fixed-length slot, or its JSON would be cut mid-way. Large groups list
// each host once with its rank count and their (consecutive) world ranks as [first, last]; the
// explanatory texts go next; as a last resort the hosts, marked "truncated".
std::string fit_record(const std::string& json, std::size_t bytes) {
  if (json.size() <= bytes) return json;
  nlohmann::json j = nlohmann::json::parse(json);
  std::vector<std::string> hosts;
  std::vector<std::int64_t> counts;
  for (const auto& h : j["hosts"]) {
    if (hosts.empty() || hosts.back() != h.get<std::string>()) {
      hosts.push_back(h.get<std::string>());
      counts.push_back(0);
    }
    ++counts.back();
  }
  j["hosts"] = hosts;
  j["ranks_per_host"] = counts;
  const auto& ranks = j["world_ranks"];
  if (!ranks.empty()) j["world_ranks"] = {ranks.front(), ranks.back()};
  j["world_ranks_range"] = true;
  j.erase("local_ranks");
  if (j.dump().size() <= bytes) return j.dump();
  if (j.contains("data_parallel"))
    for (const char* k : {"averaging", "lr_scaling", "batchnorm", "traces"}) j["data_parallel"].erase(k);
  if (j.dump().size() <= bytes) return j.dump();
  j.erase("hosts");
  j.erase("ranks_per_host");
  j["truncated"] = true;
  return j.dump();
}

}  // namespace nmech::sweep
