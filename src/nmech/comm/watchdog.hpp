#pragma once
// The stall inspector (Horovod's idea, docs/DESIGN.md "Collectives never hang silently"): every rank
// posts, in a small one-sided window on world rank 0, which collective it last entered, a
// heartbeat counter it bumps every step and, while it waits, a sign of life every second. A rank waiting on a collective polls that table; when
// the ranks it waits for have shown no sign of life for `timeout_s`, it names them and aborts
// the job (MPI_Abort, exit code 1) instead of hanging. Torch-free.
#include <mpi.h>

#include <cstdint>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

namespace nmech::comm {

class Watchdog {
 public:
  // Collective over world: allocates the window and learns every rank's host.
  Watchdog(MPI_Comm world, double timeout_s);
  ~Watchdog();
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;
  void close();  // collective: frees the window

  // This rank is alive (once per training step).
  void heartbeat();
  // Waits for `req`, this rank's part of collective number `seq` named `what` over a
  // communicator identified by `comm_id` whose members are `world_ranks`. Once none of the ranks
  // that did not arrive has made progress for timeout_s seconds, prints one line naming them
  // and aborts: a stalled collective cannot be unwound (even closing the store is collective).
  void wait(MPI_Request& req, std::int64_t comm_id, std::int64_t seq, const std::string& what,
            const std::vector<int>& world_ranks);
  // The same for any transport: polls `done` (which must also progress it) until it is true.
  // `before_abort` runs once a stall is reported, before the job is aborted (NCCL aborts its
  // communicator there: destroying it could block forever).
  void wait_for(const std::function<bool()>& done, std::int64_t comm_id, std::int64_t seq, const std::string& what,
                const std::vector<int>& world_ranks, const std::function<void()>& before_abort = {});
  // Called about every 50 ms while waiting (the sweep forwards stop signals from here).
  void on_poll(std::function<void()> f) { poll_ = std::move(f); }

  // Names a collective so that a stall report can say where another rank waits instead.
  void remember(const std::string& what);

  double timeout_s() const { return timeout_s_; }
  int world_rank() const { return rank_; }
  const std::string& host(int world_rank) const { return hosts_.at(static_cast<size_t>(world_rank)); }

 private:
  struct Record {
    std::int64_t comm_id, seq, beats, what;  // what: a hash of the collective's name
    // Bumped about once a second while this rank waits: a rank that arrived and then went
    // silent (stopped, swapped out, its node lost) is told from one that waits with the rest.
    std::int64_t alive;
  };
  void post();
  std::vector<Record> table();
  MPI_Win win_ = MPI_WIN_NULL;
  int rank_ = 0, size_ = 1;
  double timeout_s_;
  Record mine_{-1, -1, 0, 0, 0};
  std::vector<std::string> hosts_;
  std::unordered_map<std::int64_t, std::string> names_;  // hash -> collective name
  std::function<void()> poll_;
};

// Test hook: NMECH_TEST_STALL="<world rank>:<collective name>" makes that rank stop, without a
// heartbeat, instead of joining that collective, so the tests can show the stall is named.
// A name ending in '*' matches every collective that starts with what precedes it.
bool test_stall(int world_rank, const std::string& what);
// Test hook: NMECH_TEST_SKIP="<world rank>:<collective name>" makes that rank leave out that
// collective and carry on (a rank that skips a gradient bucket).
bool test_skip(int world_rank, const std::string& what);

}  // namespace nmech::comm
