#pragma once
// SHA-256 over a stream of bytes: fingerprints of config text, of the training data a run reads
// and of a checkpoint's own bytes (what a resume trusts must be proved to be what was written).
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace nmech::config {

class Sha256 {
 public:
  Sha256();
  Sha256& update(const void* data, std::size_t bytes);
  Sha256& update(const std::string& text) { return update(text.data(), text.size()); }
  // The digest as 64 lower-case hex digits; the object is spent afterwards.
  std::string hex();

 private:
  std::array<std::uint32_t, 8> h_;
  std::array<unsigned char, 64> block_{};
  std::size_t used_ = 0;      // bytes waiting in block_
  std::uint64_t total_ = 0;   // bytes seen
};

}  // namespace nmech::config
