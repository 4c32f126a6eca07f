#pragma once
// A dataset's uint8 pixels: either owned (a loader decoded them) or a read-only memory map of
// a file region (the packed file's contiguous image array). A map costs no memory up front and
// the page cache is shared by every rank on a node; each rank reads only the pages of the
// images its shards touch. Copies share the map.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace nmech::data {

class Pixels {
 public:
  Pixels() = default;
  Pixels(std::vector<std::uint8_t> owned) : owned_(std::move(owned)) {}  // NOLINT: implicit by design
  // Maps `bytes` bytes of `path` from `offset` (any offset; the map starts at the page below).
  // Throws DataError naming the file if it cannot.
  static Pixels map_file(const std::string& path, std::uint64_t offset, std::size_t bytes);

  bool mapped() const { return map_ != nullptr; }
  const std::uint8_t* data() const { return map_ ? map_->at : owned_.data(); }
  std::size_t size() const { return map_ ? map_->bytes : owned_.size(); }
  std::uint8_t operator[](std::size_t i) const { return data()[i]; }
  // Owned pixels only (loaders that decode): a mapped file is read-only.
  std::vector<std::uint8_t>& owned();

 private:
  struct Map {
    void* base = nullptr;
    std::size_t length = 0;
    const std::uint8_t* at = nullptr;
    std::size_t bytes = 0;
    ~Map();
  };
  std::vector<std::uint8_t> owned_;
  std::shared_ptr<const Map> map_;
};

}  // namespace nmech::data
