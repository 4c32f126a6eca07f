#include "nmech/dist/mpi_buckets.hpp"

#include <limits>
#include <stdexcept>

namespace nmech::dist {

MpiBuckets::~MpiBuckets() {
  for (auto& c : channels_) {
    c.comm.reset();
    if (c.mpi != MPI_COMM_NULL) MPI_Comm_free(&c.mpi);
  }
}

void MpiBuckets::reserve(int buckets) {
  // Channel ids for the watchdog: the group's id in the high bits, the bucket in the low ones.
  while (static_cast<int>(channels_.size()) < buckets) {
    Channel c;
    MPI_Comm_dup(group_.get(), &c.mpi);
    const std::int64_t id = (group_.id() << 20) + 1 + static_cast<std::int64_t>(channels_.size());
    c.comm = std::make_unique<Comm>(c.mpi, id, group_.watchdog());
    channels_.push_back(std::move(c));
  }
}

void MpiBuckets::start(int b, void* data, std::size_t count, ElementType type, const std::string& what) {
  Channel& c = channels_.at(static_cast<size_t>(b));
  if (c.req != MPI_REQUEST_NULL) throw std::logic_error("MPI buckets: bucket " + what + " already in flight");
  if (count > static_cast<std::size_t>(std::numeric_limits<int>::max()))
    throw std::logic_error("MPI buckets: more than 2^31 elements in one bucket");
  c.what = what;
  c.req = c.comm->start_allreduce(data, static_cast<int>(count), type == ElementType::f64 ? MPI_DOUBLE : MPI_FLOAT,
                                  MPI_SUM, what);
}

void MpiBuckets::progress() {
  for (auto& c : channels_) {
    if (c.req == MPI_REQUEST_NULL) continue;
    int done = 0;
    MPI_Test(&c.req, &done, MPI_STATUS_IGNORE);  // a finished request becomes MPI_REQUEST_NULL
  }
}

void MpiBuckets::wait(int b) {
  Channel& c = channels_.at(static_cast<size_t>(b));
  c.comm->wait(c.req, c.what);  // returns at once for a request progress() already finished
  c.req = MPI_REQUEST_NULL;
}

}  // namespace nmech::dist
