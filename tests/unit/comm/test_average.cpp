#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "nmech/comm/average.hpp"

namespace nmech::comm {
namespace {

// Values over the whole range: random bit patterns (normal, subnormal, huge; no NaN), and
// values just above the smallest normal, whose quotients round into the subnormals.
template <typename T, typename Bits>
std::vector<T> awkward_values(std::size_t n) {
  std::mt19937_64 rng(7);
  std::vector<T> v;
  while (v.size() < n) {
    const Bits b = static_cast<Bits>(rng());
    T x;
    std::memcpy(&x, &b, sizeof x);
    if (std::isfinite(x)) v.push_back(x);
    v.push_back(std::numeric_limits<T>::min() * static_cast<T>(1 + (rng() % 1000) / 997.0));
  }
  v.resize(n);
  return v;
}

template <typename T>
std::size_t unequal_to_division(const std::vector<T>& in, const std::vector<T>& got, double divisor) {
  std::size_t bad = 0;
  for (std::size_t i = 0; i < in.size(); ++i) {
    const volatile T d = static_cast<T>(divisor);  // one plain IEEE division each, no shortcuts
    const T want = in[i] / d;
    bad += std::memcmp(&want, &got[i], sizeof(T)) != 0;
  }
  return bad;
}

template <typename T, typename Bits>
void check_bitwise(ElementType type) {
  const auto in = awkward_values<T, Bits>(100003);  // an odd count: the vector loops' tails
  for (const double divisor : {2.0, 128.0, 256.0, 0.5, 3.0, 24.0, 100.0, 1.0}) {
    auto got = in;
    divide_in_place(got.data(), got.size(), type, divisor);
    EXPECT_EQ(unequal_to_division(in, got, divisor), 0u) << "divisor " << divisor;
  }
}

TEST(Average, BitwiseTheDivisionFloat32) { check_bitwise<float, std::uint32_t>(ElementType::f32); }
TEST(Average, BitwiseTheDivisionFloat64) { check_bitwise<double, std::uint64_t>(ElementType::f64); }

TEST(Average, TheComparisonCatchesAReciprocalShortcut) {
  // Multiplying by a rounded 1/3 is what a fast path must not do: the check sees it.
  const auto in = awkward_values<float, std::uint32_t>(10000);
  auto got = in;
  for (auto& x : got) x = x * (1.0f / 3.0f);
  EXPECT_GT(unequal_to_division(in, got, 3.0), 100u);
}

}  // namespace
}  // namespace nmech::comm
