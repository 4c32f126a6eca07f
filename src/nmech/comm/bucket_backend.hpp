#pragma once
// What a bucketed reducer needs from a transport (Horovod's backends side by side, docs/DESIGN.md "comm, reduce and nccl"):
// start a summing all-reduce of one bucket in place (and divide the sum, where the transport
// can), nudge what is in flight, wait for one bucket under the stall watchdog. MPI
// (mpi_buckets) is always built; NCCL (nccl/nccl_buckets) when CUDA and NCCL are found. Each
// transport is a row of reduce/transports.cpp's table. Torch-free:
// a bucket is one or more spans (a pointer and a count: its buffer and its in-place gradients)
// of one element type.
#include <cstddef>
#include <string>
#include <vector>

namespace nmech::comm {

enum class ElementType { f32, f64 };

struct Span {
  void* data = nullptr;
  std::size_t count = 0;  // elements
};

class BucketBackend {
 public:
  // device_memory: where the buckets must live, device (GPU) memory or host memory.
  BucketBackend(const char* name, bool device_memory) : name_(name), device_memory_(device_memory) {}
  virtual ~BucketBackend() = default;
  const char* name() const { return name_; }
  bool device_memory() const { return device_memory_; }
  // Collective over the group: makes channels for `buckets` buckets (kept between runs).
  virtual void reserve(int buckets) = 0;
  // Starts summing bucket `b` (its spans, in host or device memory as the backend expects, each
  // in place and in the order given) over the group. Buckets are started in the same order on
  // every rank. Where divides() is true, the sums are then divided by `divisor` (average.hpp)
  // before wait() returns; elsewhere the caller divides after wait().
  virtual void start(int b, const std::vector<Span>& spans, ElementType type, double divisor, const std::string& what) = 0;
  virtual bool divides() const = 0;
  // Lets in-flight reductions advance (MPI progresses non-blocking collectives inside calls).
  virtual void progress() = 0;
  // Returns once bucket b is summed; a stall is reported (naming the missing ranks and the
  // bucket) and the job aborted after the watchdog's timeout.
  virtual void wait(int b) = 0;
  // Seconds spent reducing since the last call, where the backend measures it (0 otherwise).
  virtual double take_busy_seconds() { return 0.0; }

 private:
  const char* name_;
  bool device_memory_;
};

}  // namespace nmech::comm
