#pragma once
// The plain MPI backend: the gradients are packed into one contiguous buffer and summed with a
// single watched all-reduce after backward. Correct, not overlapped (issue 5 overlaps it).
#include "nmech/dist/comm.hpp"
#include "nmech/dist/reducer.hpp"

namespace nmech::dist {

class MpiReducer : public Reducer {
 public:
  explicit MpiReducer(Comm& group) : group_(group) {}
  int rank() const override { return group_.rank(); }
  int size() const override { return group_.size(); }
  void allreduce(const std::vector<at::Tensor>& grads, std::vector<double>& scalars) override;
  std::int64_t broadcast(const std::vector<at::Tensor>& tensors) override;
  bool any(bool flag) override { return group_.any(flag, "stop_vote"); }

 private:
  Comm& group_;
};

}  // namespace nmech::dist
