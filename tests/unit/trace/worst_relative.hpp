#pragma once
// The largest difference between two vectors relative to the largest magnitude of the second.
#include <algorithm>
#include <cmath>
#include <vector>

namespace nmech::test {

inline double worst_relative(const std::vector<double>& a, const std::vector<double>& b) {
  double scale = 0, diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    scale = std::max(scale, std::abs(b[i]));
    diff = std::max(diff, std::abs(a[i] - b[i]));
  }
  return scale > 0 ? diff / scale : diff;
}

}  // namespace nmech::test
