#pragma once
// Gradient reduction inside a rank group (data parallelism). One interface, backends side by
// side (DESIGN.md "dist"): mpi_reducer.cpp today; the bucketed, overlapped MPI and the NCCL
// backends (issue 5) join it here.
#include <ATen/Tensor.h>

#include <cstdint>
#include <vector>

namespace nmech::dist {

class Reducer {
 public:
  virtual ~Reducer() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // Sums every gradient (in place) and the scalars over the group. Every rank ends with the same
  // bits, so replicas stay identical without re-broadcasting parameters.
  virtual void allreduce(const std::vector<at::Tensor>& grads, std::vector<double>& scalars) = 0;
  // Copies group rank 0's tensors to every rank (the first parameters); returns how many
  // elements differed here before the copy, so a caller can check replicas started equal.
  virtual std::int64_t broadcast(const std::vector<at::Tensor>& tensors) = 0;
  // True on every rank when any rank's flag is true (stop at the same step boundary).
  virtual bool any(bool flag) = 0;
};

}  // namespace nmech::dist
