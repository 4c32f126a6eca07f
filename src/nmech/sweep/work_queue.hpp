#pragma once
// The sweep's shared work queue and stop flag: two counters in a one-sided window on world rank
// 0. A group leader takes the next run with an atomic fetch-and-add, so runs go out dynamically
// in the order they are listed (longest first); any rank that catches a stop signal raises the
// flag and every leader sees it at its next step boundary. Torch-free.
#include <mpi.h>

#include <cstdint>

namespace nmech::sweep {

class WorkQueue {
 public:
  explicit WorkQueue(MPI_Comm world);  // collective
  ~WorkQueue();
  WorkQueue(const WorkQueue&) = delete;
  WorkQueue& operator=(const WorkQueue&) = delete;
  void close();  // collective: frees the window

  std::int64_t next();  // 0, 1, 2, ... across all callers
  void request_stop();
  bool stop_requested();

 private:
  std::int64_t fetch_add(int slot, std::int64_t v, MPI_Op op);
  MPI_Win win_ = MPI_WIN_NULL;
};

}  // namespace nmech::sweep
