#pragma once
// What every reducer does the same way with its rank group: its rank and size, the start-of-run
// broadcast and the stop vote. MpiReducer and BucketReducer differ only in how gradients travel.
#include "nmech/comm/comm.hpp"
#include "nmech/reduce/group_ops.hpp"
#include "nmech/reduce/reducer.hpp"

namespace nmech::reduce {

class GroupReducer : public Reducer {
 public:
  explicit GroupReducer(comm::Comm& group) : group_(group) {}
  int rank() const override { return group_.rank(); }
  int size() const override { return group_.size(); }
  std::int64_t broadcast(const std::vector<at::Tensor>& tensors) override { return broadcast_tensors(group_, tensors); }
  bool any(bool flag) override { return group_.any(flag, "stop_vote"); }

 protected:
  comm::Comm& group_;
};

}  // namespace nmech::reduce
