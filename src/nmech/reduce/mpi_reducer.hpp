#pragma once
// The simple MPI reducer: after backward, every gradient is packed into one buffer and summed
// with a single watched all-reduce. Nothing overlaps; it is the reference BucketReducer is
// tested against, and what a C++ user writes by hand.
#include "nmech/comm/comm.hpp"
#include "nmech/reduce/group_reducer.hpp"

namespace nmech::reduce {

class MpiReducer : public GroupReducer {
 public:
  explicit MpiReducer(comm::Comm& group) : GroupReducer(group) {}
  void attach(const std::vector<at::Tensor>& params) override;
  void prepare(double divisor) override;
  void finish(std::vector<double>& scalars) override;
  double take_wait_seconds() override;

 private:
  std::vector<at::Tensor> params_;
  double wait_s_ = 0;
  double divisor_ = 1.0;
};

}  // namespace nmech::reduce
