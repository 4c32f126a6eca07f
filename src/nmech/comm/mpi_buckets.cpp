#include "nmech/comm/mpi_buckets.hpp"

#include <chrono>
#include <limits>
#include <stdexcept>
#include <utility>

#include "nmech/comm/average.hpp"

namespace nmech::comm {

namespace {
MPI_Datatype mpi_type(ElementType type) { return type == ElementType::f64 ? MPI_DOUBLE : MPI_FLOAT; }
}  // namespace

MpiBuckets::MpiBuckets(Comm& group) : BucketBackend(kName, kDeviceMemory), group_(group) {
  int level = MPI_THREAD_SINGLE;
  MPI_Query_thread(&level);
  threaded_ = level == MPI_THREAD_MULTIPLE;
  if (threaded_) thread_ = std::thread([this] { serve(); });
}

MpiBuckets::~MpiBuckets() {
  if (thread_.joinable()) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_one();
    thread_.join();
  }
  for (auto& c : channels_) {
    c->comm.reset();
    if (c->mpi != MPI_COMM_NULL) MPI_Comm_free(&c->mpi);
  }
}

void MpiBuckets::reserve(int buckets) {
  // Channel ids for the watchdog: the group's id in the high bits, the bucket in the low ones.
  while (static_cast<int>(channels_.size()) < buckets) {
    auto c = std::make_unique<Channel>();
    MPI_Comm_dup(group_.get(), &c->mpi);
    const std::int64_t id = (group_.id() << 20) + 1 + static_cast<std::int64_t>(channels_.size());
    c->comm = std::make_unique<Comm>(c->mpi, id, group_.watchdog());
    channels_.push_back(std::move(c));
  }
}

void MpiBuckets::start(int b, const std::vector<Span>& spans, ElementType type, double divisor, const std::string& what) {
  Channel& c = *channels_.at(static_cast<size_t>(b));
  for (const Span& s : spans)
    if (s.count > static_cast<std::size_t>(std::numeric_limits<int>::max()))
      throw std::logic_error("MPI buckets: more than 2^31 elements in one span");
  c.what = what;
  c.spans = spans;
  c.type = type;
  c.divisor = divisor;
  if (!threaded_) {
    c.reqs.clear();
    if (!c.comm->enter(what)) return;  // skipped: wait() finds nothing to wait for
    for (const Span& s : spans) {      // one collective for the watchdog, a request per span
      c.reqs.push_back(MPI_REQUEST_NULL);
      MPI_Iallreduce(MPI_IN_PLACE, s.data, static_cast<int>(s.count), mpi_type(type), MPI_SUM, c.mpi, &c.reqs.back());
    }
    return;
  }
  if (!c.comm->enter(what)) return;  // skipped: wait() finds it done
  c.done = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(b);
  }
  cv_.notify_one();
}

void MpiBuckets::serve() {
  for (;;) {
    int b = 0;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
      if (stop_) return;
      b = queue_.front();
      queue_.pop_front();
    }
    Channel& c = *channels_[static_cast<size_t>(b)];
    const auto t0 = std::chrono::steady_clock::now();
    for (const Span& s : c.spans) {
      MPI_Allreduce(MPI_IN_PLACE, s.data, static_cast<int>(s.count), mpi_type(c.type), MPI_SUM, c.mpi);
      divide_in_place(s.data, s.count, c.type, c.divisor);
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    {
      std::lock_guard<std::mutex> lock(mu_);
      busy_s_ += s;
      c.done.store(true, std::memory_order_release);
    }
    cv_done_.notify_all();
  }
}

double MpiBuckets::take_busy_seconds() {
  std::lock_guard<std::mutex> lock(mu_);
  return std::exchange(busy_s_, 0.0);
}

void MpiBuckets::progress() {
  if (threaded_) return;
  for (auto& c : channels_)
    for (MPI_Request& r : c->reqs) {
      if (r == MPI_REQUEST_NULL) continue;
      int done = 0;
      MPI_Test(&r, &done, MPI_STATUS_IGNORE);  // a finished request becomes MPI_REQUEST_NULL
    }
}

void MpiBuckets::wait(int b) {
  Channel& c = *channels_.at(static_cast<size_t>(b));
  if (!threaded_) {
    for (MPI_Request& r : c.reqs) {
      c.comm->wait(r, c.what);  // returns at once for a request progress() already finished
      r = MPI_REQUEST_NULL;
    }
    return;
  }
  // Sleep until the thread says the bucket is done (no spinning: the thread needs the core),
  // waking every few milliseconds so the watchdog can look for a stall.
  auto done = [this, &c] {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_done_.wait_for(lock, std::chrono::milliseconds(5), [&c] { return c.done.load(std::memory_order_acquire); });
  };
  c.comm->wait_for(done, c.what);
}

}  // namespace nmech::comm
