#include "nmech/store/raw_fill.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>

#include "nmech/store/store.hpp"
#include "nmech/util/io_error.hpp"

namespace nmech::store::detail {
namespace {

constexpr std::uint64_t kPiece = 1 << 20;      // bytes one write call takes at most
constexpr std::uint64_t kAlign = 4096;         // what O_DIRECT asks of offsets, lengths and memory
constexpr std::uint64_t kPhase = sizeof(double);  // the NaN pattern repeats every 8 bytes

std::uint64_t round_up(std::uint64_t x) { return (x + kAlign - 1) / kAlign * kAlign; }
std::uint64_t round_down(std::uint64_t x) { return x / kAlign * kAlign; }

}  // namespace

RawFiller::RawFiller(const std::string& file, bool direct) : file_(file) {
  fd_ = ::open(file.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd_ < 0) throw util::IoError(file + ": cannot open it to fill it: " + std::strerror(errno));
  // Where the file system refuses O_DIRECT (tmpfs), every write goes through the page cache.
  if (direct) direct_fd_ = ::open(file.c_str(), O_WRONLY | O_CLOEXEC | O_DIRECT);
  // kPiece bytes of NaN from each byte of a double on (a write may start mid-double), then of
  // zeros, each from an aligned address.
  const double nan = std::numeric_limits<double>::quiet_NaN();
  char bytes[kPhase];
  std::memcpy(bytes, &nan, kPhase);
  memory_.resize((kPhase + 1) * kPiece + kAlign);
  const auto at = reinterpret_cast<std::uintptr_t>(memory_.data());
  char* start = memory_.data() + (round_up(at) - at);
  for (std::uint64_t phase = 0; phase <= kPhase; ++phase, start += kPiece) {
    for (std::uint64_t i = 0; i < kPiece; ++i) start[i] = phase < kPhase ? bytes[(i + phase) % kPhase] : '\0';
    patterns_.push_back(start);
  }
  thread_ = std::thread([this] { run(); });
}

RawFiller::~RawFiller() {
  finish();
  ::close(fd_);
  if (direct_fd_ >= 0) ::close(direct_fd_);
}

void RawFiller::add(hid_t dataset, Fill fill, const std::string& what) {
  if (failed_) {
    const std::lock_guard<std::mutex> lock(mutex_);
    throw util::IoError(error_);
  }
  const haddr_t offset = H5Dget_offset(dataset);
  if (offset == HADDR_UNDEF) throw StoreError(what + ": its storage was not allocated at creation");
  const std::uint64_t bytes = H5Dget_storage_size(dataset);
  if (bytes == 0) return;
  if (has_pending_ && pending_.fill == fill && pending_.offset + pending_.bytes == offset) {
    pending_.bytes += bytes;
    return;
  }
  if (has_pending_) push(pending_);
  pending_ = {offset, bytes, fill};
  has_pending_ = true;
}

void RawFiller::push(const Extent& e) {
  {
    const std::lock_guard<std::mutex> lock(mutex_);
    queue_.push_back(e);
  }
  wake_.notify_one();
}

std::string RawFiller::finish() {
  if (!thread_.joinable()) return error_;
  if (has_pending_) push(pending_);
  has_pending_ = false;
  {
    const std::lock_guard<std::mutex> lock(mutex_);
    closing_ = true;
  }
  wake_.notify_one();
  thread_.join();
  return error_;
}

void RawFiller::run() {
  for (;;) {
    Extent e;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [this] { return closing_ || !queue_.empty(); });
      if (queue_.empty()) return;
      e = queue_.front();
      queue_.pop_front();
      if (failed_) continue;  // after a failure the rest is dropped: the file will be removed
    }
    std::string error = write(e);
    if (!error.empty()) {
      const std::lock_guard<std::mutex> lock(mutex_);
      error_ = std::move(error);
      failed_ = true;
    }
  }
}

// The extent's aligned middle straight to the disk, its ends (and all of it without O_DIRECT)
// through the page cache, which takes any offset and length.
std::string RawFiller::write(const Extent& e) {
  const std::uint64_t a = e.offset, b = e.offset + e.bytes, mid_a = round_up(a), mid_b = round_down(b);
  if (direct_fd_ < 0 || mid_a >= mid_b) return write_range(fd_, e, a, b);
  std::string error = write_range(fd_, e, a, mid_a);
  if (error.empty()) error = write_range(direct_fd_, e, mid_a, mid_b);
  if (error.empty()) error = write_range(fd_, e, mid_b, b);
  return error;
}

std::string RawFiller::write_range(int fd, const Extent& e, std::uint64_t from, std::uint64_t to) {
  for (std::uint64_t at = from; at < to;) {
    const char* buf = patterns_[e.fill == Fill::nan ? (at - e.offset) % kPhase : kPhase];
    const auto n = static_cast<std::size_t>(std::min(kPiece, to - at));
    const ssize_t w = ::pwrite(fd, buf, n, static_cast<off_t>(at));
    if (w < 0 && errno == EINTR) continue;
    // A direct write refused (EINVAL) or cut short: the rest through the page cache.
    if (fd == direct_fd_ && ((w < 0 && errno == EINVAL) || (w >= 0 && static_cast<std::size_t>(w) < n)))
      return write_range(fd_, e, at + static_cast<std::uint64_t>(std::max<ssize_t>(w, 0)), to);
    if (w <= 0)
      return file_ + ": file write failed at byte " + std::to_string(at) + ": " +
             (w < 0 ? std::strerror(errno) : "nothing written");
    at += static_cast<std::uint64_t>(w);
  }
  return "";
}

}  // namespace nmech::store::detail
