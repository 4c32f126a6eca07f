#pragma once
// The initial bytes of a new store's datasets (the NaN of rows never written, the empty
// provenance slots), written on a thread of their own while rank 0 goes on making the metadata,
// instead of by HDF5 inside each H5Dcreate. Same bytes, same guarantee (every byte a later write
// lands on is written before the store is renamed into place: no holes, so a full disk shows at
// creation), but written while the metadata is made, and for a large store past the page cache
// (O_DIRECT): at 10^5 runs (39 GB) the page cache's writeback throttled every writer of the file,
// HDF5's metadata included (docs/BENCHMARKS.md "Store creation at scale"). Not a public header.
#include <hdf5.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace nmech::store::detail {

// What a dataset's bytes start as: the NaN that marks a row never written, or zeros (NUL-padded
// empty strings).
enum class Fill : std::uint8_t { nan, zero };

struct Extent {  // bytes [offset, offset + bytes) of the file, all of one Fill
  std::uint64_t offset = 0;
  std::uint64_t bytes = 0;
  Fill fill = Fill::nan;
};

class RawFiller {
 public:
  // `file` exists (HDF5 made it); the filler writes into it alongside HDF5, never where HDF5 does.
  // `direct`: past the page cache (O_DIRECT), for a store larger than the page cache can keep,
  // whose writeback otherwise throttles HDF5's metadata writes too; through it otherwise, so that
  // the pages are there when the runs write their rows (from disk, a row's write first reads
  // its page: 4 ms more a run in a sweep of 10^4 two-step runs).
  RawFiller(const std::string& file, bool direct);
  ~RawFiller();  // waits for the thread (finish() says whether it succeeded)
  RawFiller(const RawFiller&) = delete;
  RawFiller& operator=(const RawFiller&) = delete;

  // The storage of a dataset made contiguous, allocated early and not filled by HDF5
  // (H5D_FILL_TIME_NEVER). Throws util::IoError once a write has failed (a full disk), so that
  // rank 0 stops making objects it cannot keep.
  void add(hid_t dataset, Fill fill, const std::string& what);
  // Waits until every byte is written. "" or one line naming the file and the system's reason.
  std::string finish();

 private:
  void push(const Extent& e);
  void run();
  std::string write(const Extent& e);
  std::string write_range(int fd, const Extent& e, std::uint64_t from, std::uint64_t to);

  std::string file_;
  int fd_ = -1, direct_fd_ = -1;
  Extent pending_;  // merged with the next when they touch, so that writes are long
  bool has_pending_ = false;
  std::vector<char> memory_;          // the patterns' bytes
  std::vector<const char*> patterns_;  // NaN from each of its 8 bytes on, then zeros
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Extent> queue_;
  bool closing_ = false;
  std::string error_;
  std::atomic<bool> failed_{false};  // error_ is set (add() reads it without the lock)
  std::thread thread_;
};

}  // namespace nmech::store::detail
