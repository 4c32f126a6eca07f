#pragma once
// Which gradients share a bucket (DDP's layout, docs/PLATFORM.md §4): parameters in reverse
// registration order, since backward produces the last layer's gradients first; the first
// bucket closes at `first_bytes` so communication starts early, the others at `bucket_bytes`.
// A bucket closes before a parameter would take it past its cap; a parameter larger than the
// cap gets a bucket of its own. Every rank of a group computes the same plan from the same
// shapes, which fixes the order buckets are launched in. Torch-free.
#include <cstddef>
#include <cstdint>
#include <vector>

namespace nmech::comm {

struct BucketPlan {
  struct Slot {
    int param = 0;           // index in the parameter list given to plan_buckets
    std::size_t offset = 0;  // first element inside the bucket
    std::size_t count = 0;   // elements
  };
  struct Bucket {
    std::vector<Slot> slots;
    std::size_t count = 0;  // elements
  };
  std::vector<Bucket> buckets;
  std::vector<int> bucket_of;  // per parameter
  std::vector<int> slot_of;    // per parameter: its index in its bucket's slots

  // A digest of the layout (counts and order), compared across a group before the first step.
  std::uint64_t digest() const;
};

BucketPlan plan_buckets(const std::vector<std::size_t>& numels, std::size_t element_bytes,
                        std::size_t first_bytes, std::size_t bucket_bytes);

}  // namespace nmech::comm
