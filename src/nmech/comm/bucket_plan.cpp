#include "nmech/comm/bucket_plan.hpp"

#include <stdexcept>

namespace nmech::comm {

namespace {
std::uint64_t fnv(std::uint64_t h, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) {
    h ^= (v >> (8 * i)) & 0xffu;
    h *= 0x100000001b3ULL;
  }
  return h;
}
}  // namespace

std::uint64_t BucketPlan::digest() const {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (const auto& b : buckets) {
    h = fnv(h, b.slots.size());
    for (const auto& s : b.slots) h = fnv(fnv(fnv(h, static_cast<std::uint64_t>(s.param)), s.count), s.in_place ? 1 : 0);
  }
  return h;
}

BucketPlan plan_buckets(const std::vector<std::size_t>& numels, std::size_t element_bytes,
                        std::size_t first_bytes, std::size_t bucket_bytes, std::size_t in_place_bytes) {
  if (element_bytes == 0 || first_bytes == 0 || bucket_bytes == 0 || in_place_bytes == 0)
    throw std::invalid_argument("plan_buckets: sizes must be positive");
  BucketPlan plan;
  plan.bucket_of.assign(numels.size(), -1);
  plan.slot_of.assign(numels.size(), -1);
  for (int i = static_cast<int>(numels.size()) - 1; i >= 0; --i) {
    const std::size_t n = numels[static_cast<size_t>(i)];
    const std::size_t cap = (plan.buckets.size() <= 1 ? first_bytes : bucket_bytes) / element_bytes;
    const bool full = !plan.buckets.empty() && !plan.buckets.back().slots.empty() &&
                      plan.buckets.back().total + n > std::max<std::size_t>(cap, 1);
    if (plan.buckets.empty() || full) plan.buckets.emplace_back();
    BucketPlan::Bucket& b = plan.buckets.back();
    const bool in_place = n >= in_place_bytes / element_bytes + (in_place_bytes % element_bytes ? 1 : 0);
    plan.bucket_of[static_cast<size_t>(i)] = static_cast<int>(plan.buckets.size()) - 1;
    plan.slot_of[static_cast<size_t>(i)] = static_cast<int>(b.slots.size());
    b.slots.push_back({i, in_place ? 0 : b.count, n, in_place});
    if (!in_place) b.count += n;
    b.total += n;
  }
  return plan;
}

}  // namespace nmech::comm
