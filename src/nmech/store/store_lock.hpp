#pragma once
// One writer per store. A sweep (its rank 0) or `nmech run` holds an advisory lock (flock) on
// "<store>.lock" for as long as it may write; a second writer is refused in one line that names
// the holder (host, pid, Slurm job, since when), written into the file by the holder. The kernel
// drops the lock when the holder dies, even by kill -9, so a stale file never blocks a resume.
// flock works across the nodes of a cluster where the shared file system supports it (NFSv4,
// Lustre with -o flock, GPFS). Torch-free.
#include <string>

namespace nmech::store {

class StoreLock {
 public:
  StoreLock() = default;
  // Takes the lock on "<store_path>.lock", or throws StoreError naming the holder.
  static StoreLock acquire(const std::string& store_path);
  StoreLock(StoreLock&&) noexcept;
  StoreLock& operator=(StoreLock&&) noexcept;
  StoreLock(const StoreLock&) = delete;
  ~StoreLock();  // releases it and removes the file
  bool held() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
  std::string path_;
};

}  // namespace nmech::store
