#pragma once
// Per-set sums of tensors on a GPU (docs/THEORY.md §4.5 there): the host's SIMD passes (reduce.hpp)
// cannot read device memory, and copying θ, g and v to the host every step would cost more than
// the step. Each quantity is an ATen reduction in double on the tensors' device; a measurement's
// results are queued and come back in one copy (flush), so a step waits for the GPU once per
// measurement, not once per slice. The same code runs on CPU tensors, which is how it is tested
// against the SIMD passes.
#include <ATen/Tensor.h>

#include <vector>

#include "nmech/trace/reduce.hpp"

namespace nmech::trace {

class DeviceSums {
 public:
  // Queues what accumulate(sl, x, y, lambda, s, want) adds: the same quantities, sets and mask.
  // s must outlive the next flush().
  void accumulate(const symmetry::Slice& sl, const at::Tensor& x, const at::Tensor& y, double lambda, Sums& s,
                  unsigned want);
  // Adds every queued result into its Sums (one copy to the host); nothing when none is queued.
  void flush();

 private:
  struct Queued {
    at::Tensor result;  // [quantities, n], double, on the device
    Sums* sums;
    std::int64_t first_set, n;
    unsigned want;
  };
  std::vector<Queued> queued_;
};

}  // namespace nmech::trace
