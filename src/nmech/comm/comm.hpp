#pragma once
// A communicator whose every collective is watched (watchdog.hpp): the world, or one rank group
// of a sweep. Collectives are issued non-blocking and waited on through the watchdog, so a
// stall ends with the missing ranks named instead of a hang. Torch-free.
#include <mpi.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "nmech/comm/watchdog.hpp"

namespace nmech::comm {

// This rank's index among the ranks of its node (collective over `world`); 0 when MPI is not
// initialised. A rank's GPU is this index modulo the GPUs it sees, for training and for NCCL.
int local_rank(MPI_Comm world);
// How many ranks of `world` share this rank's node (collective over `world`); 1 without MPI.
int local_size(MPI_Comm world);

class Comm {
 public:
  // Wraps comm (not owned); id tells the watchdog which communicator a collective belongs to
  // (0 for the world, 1 + group index for a group).
  Comm(MPI_Comm comm, std::int64_t id, Watchdog& watchdog);
  // A channel of `parent` (no MPI call): the same communicator and ranks, its own id and
  // sequence, for collectives that a transport issues itself (one gradient bucket's).
  Comm(const Comm& parent, std::int64_t id);
  MPI_Comm get() const { return comm_; }
  std::int64_t id() const { return id_; }
  Watchdog& watchdog() { return wd_; }
  int rank() const { return rank_; }
  int size() const { return size_; }
  const std::vector<int>& world_ranks() const { return world_ranks_; }

  void barrier(const std::string& what);
  void bcast(void* data, int count, MPI_Datatype type, int root, const std::string& what);
  void allreduce(void* inout, int count, MPI_Datatype type, MPI_Op op, const std::string& what);
  // Any rank's flag set makes it set on every rank.
  bool any(bool flag, const std::string& what);

  // Non-blocking all-reduce in place: started here, finished by wait(). One may be in flight
  // per communicator at a time (the watchdog follows one sequence number per communicator).
  // Returns MPI_REQUEST_NULL when the NMECH_TEST_SKIP hook makes this rank skip it.
  MPI_Request start_allreduce(void* inout, int count, MPI_Datatype type, MPI_Op op, const std::string& what);
  void wait(MPI_Request& req, const std::string& what);

  // For a collective issued elsewhere (a thread's, a GPU stream's): counts it, names it to the
  // watchdog and applies the test hooks (NMECH_TEST_STALL hangs here). False: NMECH_TEST_SKIP
  // makes this rank leave it out, as a rank with a bug would.
  bool enter(const std::string& what);
  // Polls `done` until the collective entered last is complete, under the watchdog
  // (Watchdog::wait_for; `before_abort` runs once a stall is reported).
  void wait_for(const std::function<bool()>& done, const std::string& what,
                const std::function<void()>& before_abort = {});

 private:
  MPI_Comm comm_;
  std::int64_t id_, seq_ = 0;
  int rank_ = 0, size_ = 1;
  std::vector<int> world_ranks_;
  Watchdog& wd_;
};

}  // namespace nmech::comm
