#include "nmech/reduce/transports.hpp"

#include <stdexcept>

#include "nmech/comm/mpi_buckets.hpp"
#ifdef NMECH_HAVE_NCCL
#include "nmech/nccl/nccl_buckets.hpp"
#endif

namespace nmech::reduce {
namespace {

// One row per bucket transport built in: its name, the memory it reads (the class says), and how
// to make one over a group.
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

std::unique_ptr<comm::BucketBackend> make_backend(const std::string& name, comm::Comm& group, int gpu) {
  for (const auto& t : transports())
    if (name == t.name) return t.make(group, gpu);
  throw std::invalid_argument("reducer backend '" + name + "' is not built here (built: " + built_backends() + ")");
}

}  // namespace nmech::reduce
