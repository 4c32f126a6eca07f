#include "nmech/sweep/work_queue.hpp"

namespace nmech::sweep {

namespace {
constexpr int kNext = 0, kStop = 1;
}

WorkQueue::WorkQueue(MPI_Comm world) {
  int rank = 0;
  MPI_Comm_rank(world, &rank);
  void* base = nullptr;
  MPI_Win_allocate(rank == 0 ? 2 * sizeof(std::int64_t) : 0, sizeof(std::int64_t), MPI_INFO_NULL, world,
                   &base, &win_);
  if (rank == 0) {
    MPI_Win_lock(MPI_LOCK_EXCLUSIVE, 0, 0, win_);
    static_cast<std::int64_t*>(base)[kNext] = 0;
    static_cast<std::int64_t*>(base)[kStop] = 0;
    MPI_Win_unlock(0, win_);
  }
  MPI_Barrier(world);
  MPI_Win_lock_all(0, win_);
}

WorkQueue::~WorkQueue() {
  if (win_ != MPI_WIN_NULL) MPI_Win_unlock_all(win_);
}

void WorkQueue::close() {
  if (win_ == MPI_WIN_NULL) return;
  MPI_Win_unlock_all(win_);
  MPI_Win_free(&win_);
}

std::int64_t WorkQueue::fetch_add(int slot, std::int64_t v, MPI_Op op) {
  std::int64_t old = 0;
  MPI_Fetch_and_op(&v, &old, MPI_INT64_T, 0, slot, op, win_);
  MPI_Win_flush(0, win_);
  return old;
}

std::int64_t WorkQueue::next() { return fetch_add(kNext, 1, MPI_SUM); }
void WorkQueue::request_stop() { fetch_add(kStop, 1, MPI_REPLACE); }
bool WorkQueue::stop_requested() { return fetch_add(kStop, 0, MPI_NO_OP) != 0; }

}  // namespace nmech::sweep
