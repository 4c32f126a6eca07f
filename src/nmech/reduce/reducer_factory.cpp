#include "nmech/reduce/reducer_factory.hpp"

#include <stdexcept>
#include <vector>

#include "nmech/comm/mpi_buckets.hpp"
#include "nmech/reduce/bucket_reducer.hpp"
#include "nmech/reduce/mpi_reducer.hpp"
#ifdef NMECH_HAVE_NCCL
#include "nmech/nccl/nccl_buckets.hpp"
#endif

namespace nmech::reduce {
namespace {

// One row per bucket transport built in (Horovod's backends behind one interface): its name, the
// memory it reads (the class says), and how to make one over a group.
struct Transport {
  const char* name;
  bool device_memory;
  std::unique_ptr<comm::BucketBackend> (*make)(comm::Comm& group, int gpu);
};

// A device transport is made on the rank's GPU; a host one needs none.
template <class T>
std::unique_ptr<comm::BucketBackend> make(comm::Comm& group, [[maybe_unused]] int gpu) {
  if constexpr (T::kDeviceMemory) {
    return std::make_unique<T>(group, gpu);
  } else {
    return std::make_unique<T>(group);
  }
}

const std::vector<Transport>& transports() {
  static const std::vector<Transport> table = {
      {comm::MpiBuckets::kName, comm::MpiBuckets::kDeviceMemory, make<comm::MpiBuckets>},
#ifdef NMECH_HAVE_NCCL
      {nccl::NcclBuckets::kName, nccl::NcclBuckets::kDeviceMemory, make<nccl::NcclBuckets>},
#endif
  };
  return table;
}

}  // namespace

std::string built_backends() {
  std::string s;
  for (const auto& t : transports()) s += (s.empty() ? "" : ", ") + std::string(t.name);
  return s;
}

std::vector<std::string> backends_for(bool device_memory) {
  std::vector<std::string> names;
  for (const auto& t : transports())
    if (t.device_memory == device_memory) names.emplace_back(t.name);
  return names;
}

std::string backend_for(bool device_memory) {
  const auto names = backends_for(device_memory);
  return names.empty() ? "" : names.front();
}

std::unique_ptr<Reducer> make_reducer(comm::Comm& group, const ReducerSettings& s) {
  if (s.kind == "single") return std::make_unique<MpiReducer>(group);
  if (s.kind != "overlap" && s.kind != "buckets") throw std::invalid_argument("unknown reducer '" + s.kind + "'");
  BucketOptions o;
  o.first_bytes = static_cast<std::size_t>(s.first_bucket_mb * (1 << 20));
  o.bucket_bytes = static_cast<std::size_t>(s.bucket_mb * (1 << 20));
  o.overlap = s.kind == "overlap";
  for (const auto& t : transports())
    if (s.backend == t.name) return std::make_unique<BucketReducer>(group, t.make(group, s.gpu), o);
  throw std::invalid_argument("reducer backend '" + s.backend + "' is not built here (built: " + built_backends() + ")");
}

}  // namespace nmech::reduce
