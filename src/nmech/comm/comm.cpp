#include "nmech/comm/comm.hpp"

#include <unistd.h>

#include <utility>

namespace nmech::comm {

namespace {
// This rank's index among the ranks of its node and their number: {0, 1} without MPI.
std::pair<int, int> node_place(MPI_Comm world) {
  int initialised = 0, finalised = 0;
  MPI_Initialized(&initialised);
  MPI_Finalized(&finalised);
  if (!initialised || finalised) return {0, 1};
  MPI_Comm node;
  int rank = 0, size = 1;
  MPI_Comm_split_type(world, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
  MPI_Comm_rank(node, &rank);
  MPI_Comm_size(node, &size);
  MPI_Comm_free(&node);
  return {rank, size};
}
}  // namespace

int local_rank(MPI_Comm world) { return node_place(world).first; }
int local_size(MPI_Comm world) { return node_place(world).second; }

Comm::Comm(MPI_Comm comm, std::int64_t id, Watchdog& watchdog) : comm_(comm), id_(id), wd_(watchdog) {
  MPI_Comm_rank(comm_, &rank_);
  MPI_Comm_size(comm_, &size_);
  world_ranks_.resize(static_cast<size_t>(size_));
  const int me = wd_.world_rank();
  MPI_Allgather(&me, 1, MPI_INT, world_ranks_.data(), 1, MPI_INT, comm_);
}

Comm::Comm(const Comm& parent, std::int64_t id)
    : comm_(parent.comm_), id_(id), rank_(parent.rank_), size_(parent.size_), world_ranks_(parent.world_ranks_),
      wd_(parent.wd_) {}

void Comm::wait(MPI_Request& req, const std::string& what) {
  wd_.wait(req, id_, seq_, what, world_ranks_);
}

// The test hook: this rank never joins `what` and never beats again, as a hung rank would.
static void maybe_stall(int world_rank, const std::string& what) {
  if (!test_stall(world_rank, what)) return;
  for (;;) pause();
}

void Comm::barrier(const std::string& what) {
  ++seq_;
  maybe_stall(wd_.world_rank(), what);
  MPI_Request req;
  MPI_Ibarrier(comm_, &req);
  wait(req, what);
}

void Comm::bcast(void* data, int count, MPI_Datatype type, int root, const std::string& what) {
  ++seq_;
  maybe_stall(wd_.world_rank(), what);
  MPI_Request req;
  MPI_Ibcast(data, count, type, root, comm_, &req);
  wait(req, what);
}

void Comm::allreduce(void* inout, int count, MPI_Datatype type, MPI_Op op, const std::string& what) {
  ++seq_;
  maybe_stall(wd_.world_rank(), what);
  MPI_Request req;
  MPI_Iallreduce(MPI_IN_PLACE, inout, count, type, op, comm_, &req);
  wait(req, what);
}

bool Comm::enter(const std::string& what) {
  ++seq_;
  wd_.remember(what);
  maybe_stall(wd_.world_rank(), what);
  return !test_skip(wd_.world_rank(), what);
}

void Comm::wait_for(const std::function<bool()>& done, const std::string& what,
                    const std::function<void()>& before_abort) {
  wd_.wait_for(done, id_, seq_, what, world_ranks_, before_abort);
}

MPI_Request Comm::start_allreduce(void* inout, int count, MPI_Datatype type, MPI_Op op,
                                  const std::string& what) {
  MPI_Request req = MPI_REQUEST_NULL;
  if (!enter(what)) return req;  // skipped: carry on without it
  MPI_Iallreduce(MPI_IN_PLACE, inout, count, type, op, comm_, &req);
  return req;
}

bool Comm::any(bool flag, const std::string& what) {
  int v = flag ? 1 : 0;
  allreduce(&v, 1, MPI_INT, MPI_MAX, what);
  return v != 0;
}

}  // namespace nmech::comm
