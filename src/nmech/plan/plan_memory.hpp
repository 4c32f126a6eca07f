#pragma once
// Will a run fit? Estimated from its wiring before anything is allocated, so a size key far too
// large (width, batch, input_size) is refused as bad input in one line instead of ending in the
// kernel's OOM killer. Torch-free.
#include <cstdint>
#include <string>

#include "nmech/config/run_config.hpp"
#include "nmech/models/wiring.hpp"

namespace nmech::plan {

// Bytes one training process needs, roughly: per parameter its value, gradient, momentum, the
// tracer's previous values and update (5 in the run's dtype) plus a checkpoint's serialised copy;
// per output value of every layer and image of the shard, the activation kept for backward and
// its gradient (2), and the batch itself.
double training_bytes(const models::Wiring& w, std::int64_t shard, std::int64_t dtype_bytes);
// What this machine can still give: MemAvailable in /proc/meminfo (0: unknown, nothing refused).
double available_bytes();
// ConfigError naming `origin` when `processes` runs of cfg on one node (a shard of `shard`
// images each) would not fit in available_bytes().
void check_memory(const config::RunConfig& cfg, std::int64_t shard, int processes, const std::string& origin);

}  // namespace nmech::plan
