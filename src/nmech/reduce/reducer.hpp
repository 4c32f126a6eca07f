#pragma once
// Gradient reduction inside a rank group (data parallelism). One interface, backends side by
// side (docs/DESIGN.md "comm, reduce and nccl"): MpiReducer packs every gradient into one
// all-reduce after backward (the simple reference); BucketReducer starts bucketed all-reduces
// from gradient hooks while backward runs, over MPI or NCCL (comm/bucket_backend.hpp).
//
// Averaging is sum then scale: each rank back-propagates the sum of its shard's losses, the
// group sums the gradients, and the sum is divided by the global batch in the parameter dtype
// (one IEEE division per element), so the result is the global mean's gradient however the
// batch is split.
#include <ATen/Tensor.h>

#include <cstdint>
#include <vector>

namespace nmech::reduce {

class Reducer {
 public:
  virtual ~Reducer() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // At the start of a run, on every rank of the group (collective): the parameters whose
  // gradients are reduced. Checks that every rank has the same shapes.
  virtual void attach(const std::vector<at::Tensor>& params) = 0;
  // Before each backward: clears the gradients (to none) and arms the hooks, if any. The
  // step's sums will be divided by `divisor` (the global batch), known before backward so a
  // bucket can be divided as soon as it is summed.
  virtual void prepare(double divisor) = 0;
  // After backward: every gradient holds the group's sum divided by the divisor, and `scalars`
  // the group's sums. Every rank ends with the same bits, so replicas stay identical.
  // A parameter without a gradient on this rank (an empty shard) contributes zeros.
  virtual void finish(std::vector<double>& scalars) = 0;
  // Copies group rank 0's tensors to every rank (parameters and buffers at the start); returns
  // how many elements differed here before the copy, so a caller can check replicas agreed.
  virtual std::int64_t broadcast(const std::vector<at::Tensor>& tensors) = 0;
  // True on every rank when any rank's flag is true (stop at the same step boundary).
  virtual bool any(bool flag) = 0;
  // Seconds this rank spent waiting for gradient reductions in finish() since the last call
  // (the exposed, un-hidden part of communication).
  virtual double take_wait_seconds() { return 0.0; }
};

}  // namespace nmech::reduce
