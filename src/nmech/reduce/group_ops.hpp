#pragma once
// Tensor collectives both reducers share: broadcast from the group leader, a layout check.
// Tensors may live on any device; they travel through host memory (used once per run).
#include <ATen/Tensor.h>

#include <cstdint>
#include <vector>

#include "nmech/comm/comm.hpp"

namespace nmech::reduce {

// Copies group rank 0's tensors to every rank; returns how many elements differed here.
std::int64_t broadcast_tensors(comm::Comm& group, const std::vector<at::Tensor>& tensors);
// Throws, naming `what`, unless every rank of the group passes the same value.
void check_same(comm::Comm& group, std::uint64_t value, const std::string& what);
// Shapes and dtypes of the tensors, as one number to compare.
std::uint64_t shape_digest(const std::vector<at::Tensor>& tensors);

}  // namespace nmech::reduce
