#pragma once
// The simple MPI reducer: after backward, every gradient is packed into one buffer and summed
// with a single watched all-reduce. Nothing overlaps; it is the reference BucketReducer is
// tested against, and what a C++ user writes by hand.
#include "nmech/comm/comm.hpp"
#include "nmech/reduce/reducer.hpp"

namespace nmech::reduce {

class MpiReducer : public Reducer {
 public:
  explicit MpiReducer(comm::Comm& group) : group_(group) {}
  int rank() const override { return group_.rank(); }
  int size() const override { return group_.size(); }
  void attach(const std::vector<at::Tensor>& params) override;
  void prepare(double divisor) override;
  void finish(std::vector<double>& scalars) override;
  std::int64_t broadcast(const std::vector<at::Tensor>& tensors) override;
  bool any(bool flag) override { return group_.any(flag, "stop_vote"); }
  double take_wait_seconds() override;

 private:
  comm::Comm& group_;
  std::vector<at::Tensor> params_;
  double wait_s_ = 0;
  double divisor_ = 1.0;
};

}  // namespace nmech::reduce
