#pragma once
// The MPI bucket transport. Buckets are summed with blocking MPI_Allreduce calls made, in the
// order they were started, by a communication thread of this rank (Horovod's background
// thread): Open MPI advances non-blocking collectives only inside MPI calls, which a rank busy
// in backward makes only between gradients. The thread also divides each bucket right after
// its sum (sum then scale, average.hpp), so with overlap only the last bucket's division is
// left for the step after backward. One call per span (a bucket's buffer, each in-place
// gradient), made back to back, not per piece: summing in cache-sized
// pieces made the division free in isolation, but each piece is a rendezvous of the group's
// threads, and where they share cores with backward that cost 10-30% of a step (BENCHMARKS.md).
// Needs MPI_THREAD_MULTIPLE; without it, buckets fall back to MPI_Iallreduce progressed by
// progress() from the gradient hooks, and the reducer divides after wait() (divides() false).
//
// Each bucket has its own duplicate of the group communicator, so a rank that leaves one
// bucket out cannot pair its next bucket with another rank's missing one: the others' wait
// for it times out and the watchdog names the rank (and where it waits instead).
#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "nmech/comm/bucket_backend.hpp"
#include "nmech/comm/comm.hpp"

namespace nmech::comm {

class MpiBuckets : public BucketBackend {
 public:
  explicit MpiBuckets(Comm& group);
  ~MpiBuckets() override;
  static constexpr const char* kName = "mpi";
  static constexpr bool kDeviceMemory = false;  // host memory
  bool threaded() const { return threaded_; }
  void reserve(int buckets) override;
  void start(int b, const std::vector<Span>& spans, ElementType type, double divisor, const std::string& what) override;
  bool divides() const override { return threaded_; }
  void progress() override;
  void wait(int b) override;
  double take_busy_seconds() override;

 private:
  struct Channel {
    MPI_Comm mpi = MPI_COMM_NULL;
    std::unique_ptr<Comm> comm;
    std::vector<MPI_Request> reqs;       // the non-blocking fallback: one per span
    std::atomic<bool> done{true};        // the thread finished this bucket's all-reduces
    std::vector<Span> spans;
    ElementType type = ElementType::f32;
    double divisor = 1.0;
    std::string what;
  };
  void serve();  // the communication thread

  Comm& group_;
  bool threaded_ = false;
  std::vector<std::unique_ptr<Channel>> channels_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;       // work for the thread
  std::condition_variable cv_done_;  // a bucket finished
  double busy_s_ = 0;                // summing and dividing on the thread (guarded by mu_)
  std::deque<int> queue_;  // buckets started, not yet taken by the thread
  bool stop_ = false;
};

}  // namespace nmech::comm
