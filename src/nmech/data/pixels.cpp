#include "nmech/data/pixels.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "nmech/data/dataset.hpp"

namespace nmech::data {

Pixels::Map::~Map() {
  if (base != nullptr) munmap(base, length);
}

Pixels Pixels::map_file(const std::string& path, std::uint64_t offset, std::size_t bytes) {
  Pixels p;
  auto m = std::make_shared<Map>();
  if (bytes > 0) {
    const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw DataError(path + ": cannot open for mapping: " + std::strerror(errno));
    const auto page = static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));
    const std::uint64_t start = offset / page * page;
    m->length = static_cast<std::size_t>(offset - start) + bytes;
    void* base = mmap(nullptr, m->length, PROT_READ, MAP_SHARED, fd, static_cast<off_t>(start));
    const int err = errno;
    close(fd);  // the map keeps the file
    if (base == MAP_FAILED) throw DataError(path + ": cannot map " + std::to_string(bytes) + " bytes: " + std::strerror(err));
    m->base = base;
    m->at = static_cast<const std::uint8_t*>(base) + (offset - start);
    m->bytes = bytes;
  }
  p.map_ = std::move(m);
  return p;
}

std::vector<std::uint8_t>& Pixels::owned() {
  if (map_) throw std::logic_error("Pixels: a mapped file is read-only");
  return owned_;
}

}  // namespace nmech::data
