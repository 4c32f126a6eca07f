#include "nmech/store/store_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <utility>

#include "nmech/store/store.hpp"

namespace nmech::store {
namespace {

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm {};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string holder_text() {
  char host[256] = "?";
  gethostname(host, sizeof host - 1);
  const char* job = std::getenv("SLURM_JOB_ID");
  return "host " + std::string(host) + ", pid " + std::to_string(getpid()) +
         (job ? ", Slurm job " + std::string(job) : "") + ", since " + utc_now();
}

std::string read_all(int fd) {
  std::string text(512, '\0');
  const ssize_t n = pread(fd, text.data(), text.size(), 0);
  text.resize(n > 0 ? static_cast<size_t>(n) : 0);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\0')) text.pop_back();
  return text.empty() ? "a writer that has not said who it is yet" : text;
}

// True when fd is still the file at path: a holder that released the lock unlinks the file, and
// a lock taken on an unlinked file would lock nothing.
bool still_linked(int fd, const std::string& path) {
  struct stat a {}, b {};
  return fstat(fd, &a) == 0 && stat(path.c_str(), &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev;
}

}  // namespace

StoreLock StoreLock::acquire(const std::string& store_path) {
  const std::string path = store_path + ".lock";
  for (int attempt = 0; attempt < 10; ++attempt) {
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) throw StoreError(path + ": cannot open the store's lock file: " + std::strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
      const int err = errno;
      const std::string who = read_all(fd);
      ::close(fd);
      if (err == EWOULDBLOCK)
        throw StoreError(store_path + ": in use by another nmech (" + who +
                         "); wait for it to end, or stop it, before writing this store");
      throw StoreError(path + ": cannot lock the store: " + std::strerror(err));
    }
    if (!still_linked(fd, path)) {  // the previous holder removed it between our open and lock
      ::close(fd);
      continue;
    }
    const std::string text = holder_text() + "\n";
    if (ftruncate(fd, 0) != 0 || pwrite(fd, text.data(), text.size(), 0) != static_cast<ssize_t>(text.size())) {
      // The lock holds without the text; a refused writer then reads "has not said who it is".
    }
    StoreLock lock;
    lock.fd_ = fd;
    lock.path_ = path;
    return lock;
  }
  throw StoreError(path + ": cannot lock the store (its lock file keeps changing)");
}

StoreLock::StoreLock(StoreLock&& o) noexcept : fd_(std::exchange(o.fd_, -1)), path_(std::move(o.path_)) {}

StoreLock& StoreLock::operator=(StoreLock&& o) noexcept {
  if (this != &o) {
    this->~StoreLock();
    fd_ = std::exchange(o.fd_, -1);
    path_ = std::move(o.path_);
  }
  return *this;
}

StoreLock::~StoreLock() {
  if (fd_ < 0) return;
  ::unlink(path_.c_str());  // while still holding it: a waiter then sees a changed file and retries
  ::close(fd_);
  fd_ = -1;
}

}  // namespace nmech::store
