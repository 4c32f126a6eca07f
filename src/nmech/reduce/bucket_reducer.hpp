#pragma once
// The overlapped reducer (what DDP and Horovod do, in C++): a hook after each parameter's
// gradient accumulation (DDP's place for it) hands the gradient over as backward produces it.
// A large gradient is summed where it lies (bucket_plan.hpp: no copy; the bucket holds it as a
// span of its own); small ones are copied into the bucket's buffer. A bucket's
// all-reduce starts as soon as its last gradient arrives and every bucket before it has
// started, so buckets start in the same order on every rank while backward continues; the
// transport divides each sum by the global batch as soon as it is summed (or, over NCCL, the
// reducer after the wait). finish() starts whatever is left, waits only for what is still in
// flight and points each copied parameter's gradient at its slot in the bucket (no copy back).
//
// Without overlap the same buckets start only in finish() (the benchmark's comparison).
#include <memory>
#include <string>
#include <vector>

#include "nmech/comm/bucket_backend.hpp"
#include "nmech/comm/bucket_plan.hpp"
#include "nmech/comm/comm.hpp"
#include "nmech/reduce/group_reducer.hpp"

namespace torch::autograd {
struct Node;
}

namespace nmech::reduce {

// In bytes, from config::ReducerSettings (whose defaults are the defaults).
struct BucketOptions {
  std::size_t first_bytes = 0, bucket_bytes = 0, in_place_bytes = 0;
  bool overlap = true;  // start buckets from hooks during backward
};

class BucketReducer : public GroupReducer {
 public:
  // group: host-side collectives (scalars, broadcast, votes); backend: the bucket transport.
  BucketReducer(comm::Comm& group, std::unique_ptr<comm::BucketBackend> backend, BucketOptions options);
  ~BucketReducer() override;
  void attach(const std::vector<at::Tensor>& params) override;
  void prepare(double divisor) override;
  void finish(std::vector<double>& scalars) override;
  double take_wait_seconds() override;

  const comm::BucketPlan& plan() const { return plan_; }
  comm::BucketBackend& backend() { return *backend_; }
  // Buckets of the last step started from hooks, i.e. while backward was still running.
  int started_in_backward() const { return started_in_backward_; }
  // The gradient hook's work, callable directly (benchmarks hand over gradients this way):
  // parameter `param`'s .grad is complete for this backward.
  void ready(int param);

 private:
  void detach_hooks();
  void hand_over(std::size_t param);
  void start_in_order();
  at::Tensor slot(int param);  // the parameter's place in its bucket's buffer (a 1-d view)
  const comm::BucketPlan::Slot& slot_plan(std::size_t param) const;
  std::vector<comm::Span> spans(std::size_t bucket);

  std::unique_ptr<comm::BucketBackend> backend_;
  BucketOptions opt_;
  std::vector<at::Tensor> params_;
  // Each parameter's gradient accumulator, held so that it (and the hook on it) outlives a step.
  std::vector<std::shared_ptr<torch::autograd::Node>> accumulators_;
  std::vector<std::uintptr_t> hook_keys_;
  comm::BucketPlan plan_;
  std::vector<at::Tensor> flat_;      // per bucket: the buffer its copied gradients share
  std::vector<at::Tensor> own_;       // per parameter summed in place: this step's gradient
  std::vector<std::string> names_;    // per bucket, for the watchdog ("grad bucket 3/16")
  std::vector<int> pending_;          // per bucket: gradients still to arrive this step
  std::vector<char> arrived_;         // per parameter, this step
  int next_ = 0;                      // the next bucket to start
  int started_in_backward_ = 0;
  double divisor_ = 1.0;
  at::Tensor divisor_t_;  // the same on the buckets' device, for a division the transport leaves
  bool armed_ = false;
  double wait_s_ = 0;
};

}  // namespace nmech::reduce
