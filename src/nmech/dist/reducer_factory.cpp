#include "nmech/dist/reducer_factory.hpp"

#include <stdexcept>

#include "nmech/dist/bucket_reducer.hpp"
#include "nmech/dist/mpi_buckets.hpp"
#include "nmech/dist/mpi_reducer.hpp"
#ifdef NMECH_HAVE_NCCL
#include "nmech/dist/nccl_buckets.hpp"
#endif

namespace nmech::dist {

std::string built_backends() {
#ifdef NMECH_HAVE_NCCL
  return "mpi, nccl";
#else
  return "mpi";
#endif
}

std::unique_ptr<Reducer> make_reducer(Comm& group, const ReducerSettings& s) {
  if (s.kind == "single") return std::make_unique<MpiReducer>(group);
  if (s.kind != "overlap" && s.kind != "buckets") throw std::invalid_argument("unknown reducer '" + s.kind + "'");
  BucketOptions o;
  o.first_bytes = static_cast<std::size_t>(s.first_bucket_mb * (1 << 20));
  o.bucket_bytes = static_cast<std::size_t>(s.bucket_mb * (1 << 20));
  o.overlap = s.kind == "overlap";
  std::unique_ptr<BucketBackend> backend;
  if (s.backend == "mpi") backend = std::make_unique<MpiBuckets>(group);
#ifdef NMECH_HAVE_NCCL
  if (s.backend == "nccl") backend = std::make_unique<NcclBuckets>(group, s.gpu);
#endif
  if (!backend)
    throw std::invalid_argument("reducer backend '" + s.backend + "' is not built here (built: " + built_backends() + ")");
  return std::make_unique<BucketReducer>(group, std::move(backend), o);
}

}  // namespace nmech::dist
