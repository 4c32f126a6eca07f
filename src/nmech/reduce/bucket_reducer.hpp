#pragma once
// The overlapped reducer (what DDP and Horovod do, in C++): gradients are copied into buckets
// (bucket_plan.hpp) from per-parameter autograd hooks as backward produces them; a bucket's
// all-reduce starts as soon as its last gradient arrives and every bucket before it has
// started, so buckets start in the same order on every rank while backward continues; the
// transport divides each sum by the global batch as soon as it is summed (or, over NCCL, the
// reducer after the wait). finish() starts whatever is left, waits only for what is still in
// flight and points each parameter's gradient at its slot in the bucket (no copy back).
//
// Without overlap the same buckets start only in finish() (the benchmark's comparison).
#include <memory>
#include <string>
#include <vector>

#include "nmech/comm/bucket_backend.hpp"
#include "nmech/comm/bucket_plan.hpp"
#include "nmech/comm/comm.hpp"
#include "nmech/reduce/group_reducer.hpp"

namespace nmech::reduce {

// In bytes, from config::ReducerSettings (whose defaults are the defaults).
struct BucketOptions {
  std::size_t first_bytes = 0, bucket_bytes = 0;
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
  // The gradient hook's work, callable directly (benchmarks hand over gradients this way).
  void ready(int param, const at::Tensor& grad);

 private:
  void detach_hooks();
  void start_in_order();
  at::Tensor slot(int param);  // the parameter's place in its bucket (a 1-d view)

  std::unique_ptr<comm::BucketBackend> backend_;
  BucketOptions opt_;
  std::vector<at::Tensor> params_;
  std::vector<unsigned> hook_ids_;
  comm::BucketPlan plan_;
  std::vector<at::Tensor> flat_;      // one contiguous buffer per bucket
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
