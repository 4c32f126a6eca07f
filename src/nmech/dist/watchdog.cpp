#include "nmech/dist/watchdog.hpp"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <thread>

namespace nmech::dist {

namespace {
constexpr int kFields = 3;  // Record as int64s

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
    for (int r = 0; r < size_; ++r) rec[r] = Record{-1, -1, 0};
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
  using clock = std::chrono::steady_clock;
  mine_.comm_id = comm_id;
  mine_.seq = seq;
  post();
  int done = 0;
  auto last_progress = clock::now();
  std::vector<std::int64_t> seen;  // heartbeats of the members, as last read
  int polls = 0;
  for (;;) {
    MPI_Test(&req, &done, MPI_STATUS_IGNORE);
    if (done) return;
    std::this_thread::sleep_for(std::chrono::microseconds(polls < 1000 ? 50 : 2000));
    if (++polls % 25 != 0) continue;  // read the table every ~50 ms once waiting is long
    if (poll_) poll_();
    const auto t = table();
    std::vector<int> missing;
    std::vector<std::int64_t> beats;
    for (int r : world_ranks) {
      const Record& rec = t[static_cast<size_t>(r)];
      beats.push_back(rec.beats);
      if (rec.comm_id != comm_id || rec.seq < seq) missing.push_back(r);
    }
    if (beats != seen) {  // someone is still working: the wait is not a stall
      seen = beats;
      last_progress = clock::now();
    }
    const double idle = std::chrono::duration<double>(clock::now() - last_progress).count();
    if (idle < timeout_s_ || missing.empty()) continue;
    std::ostringstream msg;
    msg << "collective '" << what << "' timed out: no progress for " << timeout_s_ << " s; ";
    msg << (missing.size() == 1 ? "rank " : "ranks ");
    for (size_t i = 0; i < missing.size(); ++i)
      msg << (i ? ", " : "") << missing[i] << " (" << host(missing[i]) << ")";
    msg << " did not arrive (world rank " << rank_ << " waited)";
    std::fprintf(stderr, "nmech: %s\n", msg.str().c_str());
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
}

bool test_stall(int world_rank, const std::string& what) {
  const char* v = std::getenv("NMECH_TEST_STALL");
  if (v == nullptr) return false;
  const std::string spec(v);
  const auto colon = spec.find(':');
  if (colon == std::string::npos) return false;
  return std::atoi(spec.substr(0, colon).c_str()) == world_rank && spec.substr(colon + 1) == what;
}

}  // namespace nmech::dist
