#include "nmech/comm/watchdog.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <sstream>
#include <thread>
#include <utility>

namespace nmech::comm {

namespace {
constexpr int kFields = 5;  // Record as int64s
// A waiting rank bumps its `alive` once a second; three seconds without a bump is silence.
constexpr double kSilentS = 3.0;

std::int64_t name_hash(const std::string& what) {
  return static_cast<std::int64_t>(std::hash<std::string>{}(what) >> 1);
}

std::vector<std::string> gather_hosts(MPI_Comm world, int size) {
  char name[MPI_MAX_PROCESSOR_NAME] = {};
  int len = 0;
  MPI_Get_processor_name(name, &len);
  std::vector<char> all(static_cast<size_t>(size) * MPI_MAX_PROCESSOR_NAME);
  MPI_Allgather(name, MPI_MAX_PROCESSOR_NAME, MPI_CHAR, all.data(), MPI_MAX_PROCESSOR_NAME, MPI_CHAR,
                world);
  std::vector<std::string> hosts;
  for (int r = 0; r < size; ++r) hosts.emplace_back(all.data() + static_cast<size_t>(r) * MPI_MAX_PROCESSOR_NAME);
  return hosts;
}
}  // namespace

Watchdog::Watchdog(MPI_Comm world, double timeout_s) : timeout_s_(timeout_s) {
  MPI_Comm_rank(world, &rank_);
  MPI_Comm_size(world, &size_);
  hosts_ = gather_hosts(world, size_);
  void* base = nullptr;
  const MPI_Aint bytes = rank_ == 0 ? static_cast<MPI_Aint>(size_) * sizeof(Record) : 0;
  MPI_Win_allocate(bytes, sizeof(std::int64_t), MPI_INFO_NULL, world, &base, &win_);
  if (rank_ == 0) {
    MPI_Win_lock(MPI_LOCK_EXCLUSIVE, 0, 0, win_);
    auto* rec = static_cast<Record*>(base);
    for (int r = 0; r < size_; ++r) rec[r] = Record{-1, -1, 0, 0, 0};
    MPI_Win_unlock(0, win_);
  }
  MPI_Barrier(world);
  MPI_Win_lock_all(0, win_);
}

Watchdog::~Watchdog() {
  if (win_ != MPI_WIN_NULL) MPI_Win_unlock_all(win_);  // the window itself dies with MPI
}

void Watchdog::close() {
  if (win_ == MPI_WIN_NULL) return;
  MPI_Win_unlock_all(win_);
  MPI_Win_free(&win_);
}

// Element-wise atomic (accumulate with REPLACE), so a reader never sees a torn record field.
void Watchdog::post() {
  MPI_Accumulate(&mine_, kFields, MPI_INT64_T, 0, static_cast<MPI_Aint>(rank_) * kFields, kFields,
                 MPI_INT64_T, MPI_REPLACE, win_);
  MPI_Win_flush(0, win_);
}

std::vector<Watchdog::Record> Watchdog::table() {
  std::vector<Record> t(static_cast<size_t>(size_));
  MPI_Get_accumulate(nullptr, 0, MPI_INT64_T, t.data(), size_ * kFields, MPI_INT64_T, 0, 0,
                     size_ * kFields, MPI_INT64_T, MPI_NO_OP, win_);
  MPI_Win_flush(0, win_);
  return t;
}

void Watchdog::heartbeat() {
  ++mine_.beats;
  post();
}

void Watchdog::wait(MPI_Request& req, std::int64_t comm_id, std::int64_t seq, const std::string& what,
                    const std::vector<int>& world_ranks) {
  wait_for(
      [&req] {
        int done = 0;
        MPI_Test(&req, &done, MPI_STATUS_IGNORE);  // also what progresses the collective
        return done != 0;
      },
      comm_id, seq, what, world_ranks);
}

void Watchdog::wait_for(const std::function<bool()>& done, std::int64_t comm_id, std::int64_t seq,
                        const std::string& what, const std::vector<int>& world_ranks,
                        const std::function<void()>& before_abort) {
  using clock = std::chrono::steady_clock;
  const auto seconds = [](clock::duration d) { return std::chrono::duration<double>(d).count(); };
  mine_.comm_id = comm_id;
  mine_.seq = seq;
  remember(what);
  mine_.what = name_hash(what);
  // The record is posted only once a wait outlasts the spin: a stalled rank always gets there,
  // and the many short waits of a step (a bucket each) cost no one-sided traffic.
  bool posted = false;
  const auto start = clock::now();
  auto last_progress = start, last_read = start, last_alive = start;
  // Each member's last sign of life (heartbeat, wait counter) as read, and when it changed. A new
  // heartbeat anywhere is progress: the wait is not a stall. A member silent for kSilentS while the
  // wait lasts is named, whenever it fell silent (a node lost a second into a long wait included).
  std::vector<std::pair<std::int64_t, std::int64_t>> signs(world_ranks.size(), {-1, -1});
  std::vector<clock::time_point> sign_at(world_ranks.size(), start);
  for (;;) {
    if (done()) return;
    const auto now = clock::now();
    if (seconds(now - start) < 0.005) continue;  // a step's collectives: spin, do not sleep
    if (!posted) {
      post();
      posted = true;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(100));
    if (seconds(now - last_read) < 0.1) continue;  // the table: ten reads a second at most
    last_read = now;
    if (seconds(now - last_alive) >= 1.0) {
      ++mine_.alive;
      post();
      last_alive = now;
    }
    if (poll_) poll_();
    const auto t = table();
    std::vector<int> missing, elsewhere;
    for (size_t i = 0; i < world_ranks.size(); ++i) {
      const int r = world_ranks[i];
      const Record& rec = t[static_cast<size_t>(r)];
      if (signs[i].first != rec.beats) last_progress = now;  // someone is still working
      if (signs[i] != std::make_pair(rec.beats, rec.alive)) {
        signs[i] = {rec.beats, rec.alive};
        sign_at[i] = now;
      }
      if (rec.comm_id != comm_id || rec.seq < seq) missing.push_back(r);
      else if (rec.seq == seq && rec.what != mine_.what) elsewhere.push_back(r);
    }
    if (seconds(now - last_progress) < timeout_s_) continue;
    std::vector<int> silent;  // arrived, then no sign of life while the others kept waiting
    for (size_t i = 0; i < world_ranks.size(); ++i)
      if (world_ranks[i] != rank_ && seconds(now - sign_at[i]) >= std::min(timeout_s_, kSilentS))
        silent.push_back(world_ranks[i]);
    std::ostringstream msg;
    msg << "collective '" << what << "' timed out: no progress for " << timeout_s_ << " s; ";
    // Each rank with its host and, when this rank knows the name, the collective it waits in.
    auto list = [&](const std::vector<int>& ranks) {
      msg << (ranks.size() == 1 ? "rank " : "ranks ");
      for (size_t i = 0; i < ranks.size(); ++i) {
        const Record& rec = t[static_cast<size_t>(ranks[i])];
        msg << (i ? ", " : "") << ranks[i] << " (" << host(ranks[i]);
        const auto name = names_.find(rec.what);
        if (rec.comm_id >= 0 && name != names_.end()) msg << ", waiting in '" << name->second << "'";
        msg << ")";
      }
    };
    if (!missing.empty()) {
      list(missing);
      msg << " did not arrive";
    } else if (!silent.empty()) {
      list(silent);
      msg << " stopped answering (no sign of life while the others waited)";
    } else if (!elsewhere.empty()) {
      list(elsewhere);
      msg << " entered a different collective at that point";
    } else {
      msg << "every rank arrived but it did not complete (network or MPI stall)";
    }
    msg << " (world rank " << rank_ << " waited)";
    std::fprintf(stderr, "nmech: %s\n", msg.str().c_str());
    std::fflush(stderr);
    if (before_abort) before_abort();
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
}

void Watchdog::remember(const std::string& what) { names_.emplace(name_hash(what), what); }

namespace {
bool test_hook(const char* variable, int world_rank, const std::string& what) {
  const char* v = std::getenv(variable);
  if (v == nullptr) return false;
  const std::string spec(v);
  const auto colon = spec.find(':');
  if (colon == std::string::npos) return false;
  if (std::atoi(spec.substr(0, colon).c_str()) != world_rank) return false;
  std::string name = spec.substr(colon + 1);
  if (!name.empty() && name.back() == '*') return what.compare(0, name.size() - 1, name, 0, name.size() - 1) == 0;
  return what == name;
}
}  // namespace

bool test_stall(int world_rank, const std::string& what) { return test_hook("NMECH_TEST_STALL", world_rank, what); }
bool test_skip(int world_rank, const std::string& what) { return test_hook("NMECH_TEST_SKIP", world_rank, what); }

}  // namespace nmech::comm
