#include <gtest/gtest.h>

#include <numeric>

#include "nmech/comm/bucket_plan.hpp"

namespace nmech::comm {
namespace {

// Parameters of 100, 50, 300, 20 elements, 4 bytes each (400, 200, 1200, 80 bytes).
const std::vector<std::size_t> kNumels{100, 50, 300, 20};

std::vector<std::vector<int>> params_by_bucket(const BucketPlan& p) {
  std::vector<std::vector<int>> out;
  for (const auto& b : p.buckets) {
    out.emplace_back();
    for (const auto& s : b.slots) out.back().push_back(s.param);
  }
  return out;
}

TEST(BucketPlan, ReverseOrderFirstBucketSmallThenCapped) {
  // First cap 300 bytes: param 3 (80 B) then param 2 would pass it -> bucket of its own.
  const BucketPlan p = plan_buckets(kNumels, 4, 300, 800);
  EXPECT_EQ(params_by_bucket(p), (std::vector<std::vector<int>>{{3}, {2}, {1, 0}}));
  EXPECT_EQ(p.buckets[2].count, 150u);
  EXPECT_EQ(p.buckets[2].slots[0].offset, 0u);
  EXPECT_EQ(p.buckets[2].slots[1].offset, 50u);
  EXPECT_EQ(p.bucket_of, (std::vector<int>{2, 2, 1, 0}));
  EXPECT_EQ(p.slot_of, (std::vector<int>{1, 0, 0, 0}));
}

TEST(BucketPlan, TinyCapsGiveOneBucketPerParameterAndHugeCapsOne) {
  EXPECT_EQ(plan_buckets(kNumels, 4, 1, 1).buckets.size(), 4u);
  const BucketPlan one = plan_buckets(kNumels, 8, 1u << 30, 1u << 30);
  ASSERT_EQ(one.buckets.size(), 1u);
  EXPECT_EQ(one.buckets[0].count, 470u);
}

TEST(BucketPlan, EveryElementHasExactlyOnePlace) {
  for (std::size_t cap : {4u, 100u, 401u, 1600u, 4000u}) {
    const BucketPlan p = plan_buckets(kNumels, 4, cap, cap * 3);
    std::size_t total = 0;
    for (const auto& b : p.buckets) {
      std::size_t end = 0;
      for (const auto& s : b.slots) {
        EXPECT_EQ(s.offset, end);  // contiguous, no gaps or overlaps
        EXPECT_EQ(s.count, kNumels[static_cast<size_t>(s.param)]);
        end += s.count;
      }
      EXPECT_EQ(end, b.count);
      total += b.count;
    }
    EXPECT_EQ(total, std::accumulate(kNumels.begin(), kNumels.end(), std::size_t{0}));
  }
}

std::vector<bool> in_place_of(const BucketPlan& p) {
  std::vector<bool> out(p.bucket_of.size());
  for (const auto& b : p.buckets)
    for (const auto& s : b.slots) out[static_cast<size_t>(s.param)] = s.in_place;
  return out;
}

TEST(BucketPlan, LargeParametersAreSummedInPlaceInsideTheSameBuckets) {
  // From 400 bytes in place: params 0 (400 B) and 2 (1200 B). The buckets are the ones the caps
  // make without it; only the copied slots take room in a bucket's buffer.
  const BucketPlan p = plan_buckets(kNumels, 4, 300, 800, 400);
  EXPECT_EQ(params_by_bucket(p), (std::vector<std::vector<int>>{{3}, {2}, {1, 0}}));
  EXPECT_EQ(in_place_of(p), (std::vector<bool>{true, false, true, false}));
  EXPECT_EQ(p.buckets[1].count, 0u);
  EXPECT_EQ(p.buckets[1].total, 300u);
  EXPECT_EQ(p.buckets[2].count, 50u);
  EXPECT_EQ(p.buckets[2].total, 150u);
  const BucketPlan one = plan_buckets(kNumels, 4, 1u << 20, 1u << 20, 400);
  ASSERT_EQ(one.buckets.size(), 1u);
  EXPECT_EQ(one.buckets[0].count, 70u);  // params 3 and 1, at offsets 0 and 20
  EXPECT_EQ(one.buckets[0].slots[2].offset, 20u);
  // The threshold is inclusive and in bytes; without one nothing is in place.
  EXPECT_EQ(in_place_of(plan_buckets(kNumels, 4, 300, 800, 401)), (std::vector<bool>{false, false, true, false}));
  EXPECT_EQ(in_place_of(plan_buckets(kNumels, 4, 300, 800)), (std::vector<bool>(4, false)));
  EXPECT_NE(plan_buckets(kNumels, 4, 300, 800, 1200).digest(), plan_buckets(kNumels, 4, 300, 800).digest());
}

TEST(BucketPlan, DigestTellsLayoutsApart) {
  EXPECT_EQ(plan_buckets(kNumels, 4, 300, 800).digest(), plan_buckets(kNumels, 4, 300, 800).digest());
  EXPECT_NE(plan_buckets(kNumels, 4, 300, 800).digest(), plan_buckets(kNumels, 4, 1, 1).digest());
  EXPECT_NE(plan_buckets(kNumels, 4, 300, 800).digest(), plan_buckets({100, 50, 301, 20}, 4, 300, 800).digest());
}

}  // namespace
}  // namespace nmech::comm
