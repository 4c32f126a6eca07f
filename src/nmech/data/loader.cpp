#include "nmech/data/loader.hpp"

#include <algorithm>
#include <numeric>
#include <random>

namespace nmech::data {

Loader::Loader(std::int64_t count, std::uint64_t seed, LoaderPosition pos)
    : count_(count), seed_(seed), pos_(pos) {
  shuffle();
}

// Our own Fisher–Yates with mt19937_64 so the order is the same on every standard library.
void Loader::shuffle() {
  order_.resize(count_);
  std::iota(order_.begin(), order_.end(), 0);
  std::mt19937_64 rng(seed_ * 0x9E3779B97F4A7C15ULL + static_cast<std::uint64_t>(pos_.epoch));
  for (std::int64_t i = count_ - 1; i > 0; --i) {
    const std::int64_t j = static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(i + 1));
    std::swap(order_[i], order_[j]);
  }
}

std::vector<std::int64_t> Loader::next(std::int64_t batch_size) {
  if (pos_.offset >= count_) {
    ++pos_.epoch;
    pos_.offset = 0;
    shuffle();
  }
  const std::int64_t end = std::min(count_, pos_.offset + batch_size);
  std::vector<std::int64_t> idx(order_.begin() + pos_.offset, order_.begin() + end);
  pos_.offset = end;
  return idx;
}

}  // namespace nmech::data
