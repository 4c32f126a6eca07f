#include "nmech/nccl/nccl_buckets.hpp"

#include <cuda_runtime.h>
#include <nccl.h>

#include <cstdio>
#include <memory>
#include <stdexcept>
#include <utility>

namespace nmech::nccl {

using comm::Comm;
using comm::ElementType;

namespace {

void check_cuda(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string("CUDA: ") + what + ": " + cudaGetErrorString(e));
}

void check_nccl(ncclResult_t r, const char* what) {
  if (r != ncclSuccess) throw std::runtime_error(std::string("NCCL: ") + what + ": " + ncclGetErrorString(r));
}

}  // namespace

int nccl_version() {
  int v = 0;
  ncclGetVersion(&v);
  return v;
}

struct NcclBuckets::Impl {
  ncclComm_t comm = nullptr;
  cudaStream_t stream = nullptr;
  struct Channel {
    cudaEvent_t ready = nullptr, done = nullptr;
    std::unique_ptr<Comm> comm;  // the bucket's sequence under the watchdog
    bool skipped = false;
    std::string what;
  };
  std::vector<Channel> channels;
};

NcclBuckets::NcclBuckets(Comm& group, int device)
    : BucketBackend(kName, kDeviceMemory), impl_(new Impl), group_(group) {
  int devices = 0;
  check_cuda(cudaGetDeviceCount(&devices), "cudaGetDeviceCount");
  if (devices == 0) throw std::runtime_error("NCCL backend: no GPU visible to this rank");
  device_ = device >= 0 ? device : comm::local_rank(MPI_COMM_WORLD) % devices;
  check_cuda(cudaSetDevice(device_), "cudaSetDevice");  // before the communicator, as NCCL requires
  ncclUniqueId id{};
  if (group_.rank() == 0) check_nccl(ncclGetUniqueId(&id), "ncclGetUniqueId");
  group_.bcast(&id, sizeof id, MPI_BYTE, 0, "nccl_unique_id");
  check_nccl(ncclCommInitRank(&impl_->comm, group_.size(), id, group_.rank()), "ncclCommInitRank");
  group_.barrier("nccl_init");
  check_cuda(cudaStreamCreateWithFlags(&impl_->stream, cudaStreamNonBlocking), "cudaStreamCreate");
}

NcclBuckets::~NcclBuckets() {
  for (auto& c : impl_->channels) {
    cudaEventDestroy(c.ready);
    cudaEventDestroy(c.done);
  }
  if (impl_->stream) cudaStreamDestroy(impl_->stream);
  if (impl_->comm) ncclCommDestroy(impl_->comm);  // every bucket has completed by now
  delete impl_;
}

void NcclBuckets::reserve(int buckets) {
  while (static_cast<int>(impl_->channels.size()) < buckets) {
    Impl::Channel c;
    check_cuda(cudaEventCreateWithFlags(&c.ready, cudaEventDisableTiming), "cudaEventCreate");
    check_cuda(cudaEventCreateWithFlags(&c.done, cudaEventDisableTiming), "cudaEventCreate");
    c.comm = std::make_unique<Comm>(group_, (group_.id() << 20) + 1 + static_cast<std::int64_t>(impl_->channels.size()));
    impl_->channels.push_back(std::move(c));
  }
}

void NcclBuckets::start(int b, const std::vector<comm::Span>& spans, ElementType type, double /*divisor*/, const std::string& what) {
  Impl::Channel& c = impl_->channels.at(static_cast<size_t>(b));
  // Called from autograd's thread for this GPU, or the main thread: either way this GPU's
  // legacy stream is the one meant below.
  check_cuda(cudaSetDevice(device_), "cudaSetDevice");
  c.what = what;
  c.skipped = !c.comm->enter(what);
  if (c.skipped) return;
  // The gradients were written on LibTorch's stream: the reduction's stream waits for them.
  check_cuda(cudaEventRecord(c.ready, cudaStreamLegacy), "cudaEventRecord");
  check_cuda(cudaStreamWaitEvent(impl_->stream, c.ready, 0), "cudaStreamWaitEvent");
  check_nccl(ncclGroupStart(), "ncclGroupStart");  // the bucket's spans as one launch
  for (const comm::Span& s : spans)
    check_nccl(ncclAllReduce(s.data, s.data, s.count, type == ElementType::f64 ? ncclDouble : ncclFloat, ncclSum,
                             impl_->comm, impl_->stream),
               "ncclAllReduce");
  check_nccl(ncclGroupEnd(), "ncclGroupEnd");
  check_cuda(cudaEventRecord(c.done, impl_->stream), "cudaEventRecord");
}

void NcclBuckets::wait(int b) {
  Impl::Channel& c = impl_->channels.at(static_cast<size_t>(b));
  if (c.skipped) return;
  check_cuda(cudaSetDevice(device_), "cudaSetDevice");
  ncclComm_t comm = impl_->comm;
  auto done = [&c, comm, this] {
    const cudaError_t q = cudaEventQuery(c.done);
    if (q == cudaSuccess) return true;
    ncclResult_t async = ncclSuccess;
    ncclCommGetAsyncError(comm, &async);
    if (q != cudaErrorNotReady || (async != ncclSuccess && async != ncclInProgress)) {
      std::fprintf(stderr, "nmech: NCCL reduction of %s failed on world rank %d (GPU %d): %s\n", c.what.c_str(),
                   group_.watchdog().world_rank(), device_,
                   q != cudaErrorNotReady ? cudaGetErrorString(q) : ncclGetErrorString(async));
      ncclCommAbort(comm);
      MPI_Abort(MPI_COMM_WORLD, 1);
    }
    return false;
  };
  c.comm->wait_for(done, c.what, [comm] { ncclCommAbort(comm); });
  // Later work on LibTorch's stream (the optimizer) sees the summed bucket.
  check_cuda(cudaStreamWaitEvent(cudaStreamLegacy, c.done, 0), "cudaStreamWaitEvent");
}

}  // namespace nmech::nccl
