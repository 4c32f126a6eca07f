#include "nmech/dist/mpi_reducer.hpp"

#include <torch/torch.h>

#include <stdexcept>

namespace nmech::dist {

namespace {

MPI_Datatype mpi_type(const at::Tensor& t) {
  if (t.scalar_type() == at::kDouble) return MPI_DOUBLE;
  if (t.scalar_type() == at::kFloat) return MPI_FLOAT;
  throw std::logic_error("MPI reducer: only float32 and float64 tensors");
}

at::Tensor pack(const std::vector<at::Tensor>& tensors) {
  std::vector<at::Tensor> flat;
  flat.reserve(tensors.size());
  for (const auto& t : tensors) flat.push_back(t.reshape({-1}));
  return torch::cat(flat).contiguous();
}

void unpack(const at::Tensor& buffer, const std::vector<at::Tensor>& tensors) {
  at::NoGradGuard no_grad;
  std::int64_t offset = 0;
  for (const auto& t : tensors) {
    const std::int64_t n = t.numel();
    t.copy_(buffer.narrow(0, offset, n).view(t.sizes()));
    offset += n;
  }
}

int count_of(const at::Tensor& buffer) {
  if (buffer.numel() > std::numeric_limits<int>::max())
    throw std::logic_error("MPI reducer: more than 2^31 elements in one call");
  return static_cast<int>(buffer.numel());
}

}  // namespace

void MpiReducer::allreduce(const std::vector<at::Tensor>& grads, std::vector<double>& scalars) {
  if (!scalars.empty())
    group_.allreduce(scalars.data(), static_cast<int>(scalars.size()), MPI_DOUBLE, MPI_SUM, "scalars");
  if (grads.empty()) return;
  at::Tensor buffer = pack(grads);
  group_.allreduce(buffer.data_ptr(), count_of(buffer), mpi_type(buffer), MPI_SUM, "grad_allreduce");
  unpack(buffer, grads);
}

std::int64_t MpiReducer::broadcast(const std::vector<at::Tensor>& tensors) {
  if (tensors.empty()) return 0;
  at::Tensor mine = pack(tensors);
  at::Tensor buffer = mine.clone();
  group_.bcast(buffer.data_ptr(), count_of(buffer), mpi_type(buffer), 0, "broadcast_parameters");
  const std::int64_t differ = buffer.ne(mine).sum().item<std::int64_t>();
  unpack(buffer, tensors);
  return differ;
}

}  // namespace nmech::dist
