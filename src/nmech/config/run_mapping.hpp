#pragma once
// What a run config means to the other parts: the optimizer settings the theory uses and the
// model shape. Plain structs only, so the torch-free planner and the trainer share one mapping.
#include <cstdint>

#include "nmech/config/run_config.hpp"
#include "nmech/models/wiring.hpp"
#include "nmech/theory/optim_params.hpp"

namespace nmech::config {

theory::OptimParams optim_params(const RunConfig& cfg);
// The network for data with `channels` input channels and `classes` classes.
models::ModelSpec model_spec(const RunConfig& cfg, std::int64_t channels, std::int64_t classes);

}  // namespace nmech::config
