#include "nmech/reduce/mpi_reducer.hpp"

#include <torch/torch.h>

#include <chrono>
#include <stdexcept>
#include <utility>

#include "nmech/reduce/group_ops.hpp"

namespace nmech::reduce {

namespace {

MPI_Datatype mpi_type(const at::Tensor& t) {
  if (t.scalar_type() == at::kDouble) return MPI_DOUBLE;
  if (t.scalar_type() == at::kFloat) return MPI_FLOAT;
  throw std::logic_error("MPI reducer: only float32 and float64 tensors");
}

}  // namespace

void MpiReducer::attach(const std::vector<at::Tensor>& params) {
  params_ = params;
  check_same(group_, shape_digest(params_), "parameter shapes");
}

void MpiReducer::prepare(double divisor) {
  divisor_ = divisor;
  for (auto& p : params_) p.mutable_grad() = at::Tensor();
}

void MpiReducer::finish(std::vector<double>& scalars) {
  if (!params_.empty()) {
    std::vector<at::Tensor> flat;
    for (auto& p : params_) flat.push_back(p.grad().defined() ? p.grad().reshape({-1}) : torch::zeros({p.numel()}, p.options()));
    at::Tensor buffer = torch::cat(flat).contiguous();
    if (buffer.numel() > std::numeric_limits<int>::max())
      throw std::logic_error("MPI reducer: more than 2^31 elements in one call");
    // GPU gradients go through host memory: MPI is not assumed to read device pointers.
    at::Tensor host = buffer.is_cpu() ? buffer : buffer.cpu();
    const auto t0 = std::chrono::steady_clock::now();
    group_.allreduce(host.data_ptr(), static_cast<int>(host.numel()), mpi_type(host), MPI_SUM, "grad_allreduce");
    wait_s_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    host.div_(divisor_);
    if (!buffer.is_cpu()) buffer.copy_(host);
    std::int64_t offset = 0;
    for (auto& p : params_) {
      p.mutable_grad() = buffer.narrow(0, offset, p.numel()).view(p.sizes());
      offset += p.numel();
    }
  }
  if (!scalars.empty())
    group_.allreduce(scalars.data(), static_cast<int>(scalars.size()), MPI_DOUBLE, MPI_SUM, "scalars");
}


double MpiReducer::take_wait_seconds() { return std::exchange(wait_s_, 0.0); }

}  // namespace nmech::reduce
