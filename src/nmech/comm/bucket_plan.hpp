#pragma once
// Which gradients share a bucket (DDP's layout, docs/PLATFORM.md §4): parameters in reverse
// registration order, since backward produces the last layer's gradients first; the first
// bucket closes at `first_bytes` so communication starts early, the others at `bucket_bytes`.
// A bucket closes before a parameter would take it past its cap; a parameter larger than the
// cap gets a bucket of its own. Inside a bucket, a parameter of at least `in_place_bytes` is
// summed in place, where autograd left its gradient (no copy); the others are copied into the
// bucket's buffer, so a bucket is that buffer plus its in-place gradients, started together.
// (The bytes are in few large gradients: their copy is what in place saves. Keeping the
// buckets as they were keeps the number of start points, each a rendezvous of the group.)
// Every rank of a group computes the same plan from the same
// shapes, which fixes the order buckets are launched in. Torch-free.
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

namespace nmech::comm {

struct BucketPlan {
  struct Slot {
    int param = 0;           // index in the parameter list given to plan_buckets
    std::size_t offset = 0;  // first element inside the bucket's buffer (copied slots)
    std::size_t count = 0;   // elements
    bool in_place = false;   // summed in the gradient's own memory, not copied
  };
  struct Bucket {
    std::vector<Slot> slots;
    std::size_t count = 0;  // elements of the buffer: the copied slots
    std::size_t total = 0;  // elements, in place ones included (what the caps bound)
  };
  std::vector<Bucket> buckets;
  std::vector<int> bucket_of;  // per parameter
  std::vector<int> slot_of;    // per parameter: its index in its bucket's slots

  // A digest of the layout (counts and order), compared across a group before the first step.
  std::uint64_t digest() const;
};

BucketPlan plan_buckets(const std::vector<std::size_t>& numels, std::size_t element_bytes,
                        std::size_t first_bytes, std::size_t bucket_bytes,
                        std::size_t in_place_bytes = std::numeric_limits<std::size_t>::max());

}  // namespace nmech::comm
