#include "nmech/reduce/group_ops.hpp"

#include <torch/torch.h>

#include <stdexcept>

namespace nmech::reduce {

namespace {
// The tensors' values as doubles in one host buffer (doubles hold every float32 exactly).
at::Tensor flat_host(const std::vector<at::Tensor>& tensors) {
  std::vector<at::Tensor> flat;
  for (const auto& t : tensors) flat.push_back(t.detach().reshape({-1}).to(at::kCPU, at::kDouble));
  return torch::cat(flat).contiguous();
}

std::uint64_t content_digest(const at::Tensor& host) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  const auto* w = static_cast<const std::uint64_t*>(host.data_ptr());
  for (std::int64_t i = 0; i < host.numel(); ++i) h = (h ^ w[i]) * 0x100000001b3ULL;
  return h;
}
}  // namespace

std::int64_t broadcast_tensors(comm::Comm& group, const std::vector<at::Tensor>& tensors) {
  if (tensors.empty()) return 0;
  at::NoGradGuard no_grad;
  at::Tensor mine = flat_host(tensors);
  at::Tensor buffer = mine.clone();
  if (buffer.numel() > std::numeric_limits<int>::max()) throw std::logic_error("broadcast: over 2^31 elements");
  group.bcast(buffer.data_ptr(), static_cast<int>(buffer.numel()), MPI_DOUBLE, 0, "broadcast_parameters");
  const std::int64_t differ = buffer.ne(mine).sum().item<std::int64_t>();
  std::int64_t offset = 0;
  for (const auto& t : tensors) {
    const std::int64_t n = t.numel();
    t.detach().copy_(buffer.narrow(0, offset, n).view(t.sizes()));
    offset += n;
  }
  // Read back from the tensors themselves: every rank must now hold the leader's bits.
  check_same(group, content_digest(flat_host(tensors)), "parameters and buffers after the broadcast");
  return differ;
}

void check_same(comm::Comm& group, std::uint64_t value, const std::string& what) {
  std::uint64_t lo = value, hi = value;
  group.allreduce(&lo, 1, MPI_UINT64_T, MPI_MIN, "check " + what);
  group.allreduce(&hi, 1, MPI_UINT64_T, MPI_MAX, "check " + what);
  if (lo != hi)
    throw std::runtime_error(what + " differ across the ranks of group (world ranks " +
                             std::to_string(group.world_ranks().front()) + "..." +
                             std::to_string(group.world_ranks().back()) + ")");
}

std::uint64_t shape_digest(const std::vector<at::Tensor>& tensors) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  auto mix = [&](std::uint64_t v) { h = (h ^ v) * 0x100000001b3ULL; };
  for (const auto& t : tensors) {
    mix(static_cast<std::uint64_t>(t.scalar_type()));
    mix(static_cast<std::uint64_t>(t.dim()));
    for (auto d : t.sizes()) mix(static_cast<std::uint64_t>(d));
  }
  return h;
}

}  // namespace nmech::reduce
