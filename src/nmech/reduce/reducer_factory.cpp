#include "nmech/reduce/reducer_factory.hpp"

#include <stdexcept>

#include "nmech/reduce/bucket_reducer.hpp"
#include "nmech/reduce/mpi_reducer.hpp"

namespace nmech::reduce {

std::unique_ptr<Reducer> make_reducer(comm::Comm& group, const ReducerSettings& s) {
  if (s.kind == "single") return std::make_unique<MpiReducer>(group);
  if (s.kind != "overlap" && s.kind != "buckets") throw std::invalid_argument("unknown reducer '" + s.kind + "'");
  BucketOptions o;
  o.first_bytes = static_cast<std::size_t>(s.first_bucket_mb * (1 << 20));
  o.bucket_bytes = static_cast<std::size_t>(s.bucket_mb * (1 << 20));
  o.in_place_bytes = std::max<std::size_t>(1, static_cast<std::size_t>(s.in_place_mb * (1 << 20)));
  o.overlap = s.kind == "overlap";
  return std::make_unique<BucketReducer>(group, make_backend(s.backend, group, s.gpu), o);
}

}  // namespace nmech::reduce
