#pragma once
// The NCCL bucket transport (docs/PLATFORM.md §4, "NCCL over MPI"): one GPU per rank, chosen by
// the rank's local index on its node; one communicator per group, bootstrapped by broadcasting
// group rank 0's unique id over MPI. Buckets are reduced on a stream of their own, after an
// event recorded on the legacy default stream (where LibTorch computes by default) says the
// bucket's gradients are there; waits poll the bucket's completion event and NCCL's
// asynchronous error under the stall watchdog, and a failure or stall aborts the communicator
// (ncclCommAbort; destroying it can block forever) before the job. Torch-free: it compiles and
// links wherever the CUDA toolkit and NCCL are, GPU or not.
#include <mpi.h>

#include <string>
#include <vector>

#include "nmech/comm/bucket_backend.hpp"
#include "nmech/comm/comm.hpp"

namespace nmech::nccl {

// NCCL's version as a number (e.g. 22809), for provenance.
int nccl_version();

class NcclBuckets : public comm::BucketBackend {
 public:
  // Collective over the group. Selects `device` (when negative: local rank modulo the visible
  // GPUs, which is collective over the world) before creating the communicator, as NCCL requires.
  NcclBuckets(comm::Comm& group, int device = -1);
  ~NcclBuckets() override;
  NcclBuckets(const NcclBuckets&) = delete;
  NcclBuckets& operator=(const NcclBuckets&) = delete;
  static constexpr const char* kName = "nccl";
  static constexpr bool kDeviceMemory = true;
  int device() const { return device_; }
  void reserve(int buckets) override;
  // data: device memory on device(). The sum is left undivided (NCCL has no sum-then-divide
  // operation, and this file launches no kernels): the reducer divides after wait().
  void start(int b, const std::vector<comm::Span>& spans, comm::ElementType type, double divisor, const std::string& what) override;
  bool divides() const override { return false; }
  void progress() override {}  // NCCL advances on its own stream
  void wait(int b) override;

 private:
  struct Impl;
  Impl* impl_;
  comm::Comm& group_;
  int device_ = 0;
};

}  // namespace nmech::nccl
