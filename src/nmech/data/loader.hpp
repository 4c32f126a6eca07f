#pragma once
// Seeded, deterministic, resumable order over a dataset: epoch e is a Fisher–Yates permutation
// drawn from a generator seeded by (seed, e); the position is (epoch, offset). The last partial
// batch of an epoch is kept (as the paper's loader does).
#include <cstdint>
#include <vector>

namespace nmech::data {

struct LoaderPosition {
  std::int64_t epoch = 0, offset = 0;
};

class Loader {
 public:
  Loader(std::int64_t count, std::uint64_t seed, LoaderPosition pos = {});
  // Indices of the next global batch.
  std::vector<std::int64_t> next(std::int64_t batch_size);
  LoaderPosition position() const { return pos_; }

 private:
  void shuffle();
  std::int64_t count_;
  std::uint64_t seed_;
  LoaderPosition pos_;
  std::vector<std::int64_t> order_;
};

}  // namespace nmech::data
