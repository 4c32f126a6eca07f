#include "nmech/config/run_mapping.hpp"

namespace nmech::config {

// Aggregates in member order: a member added to either struct must be placed here too.
theory::OptimParams optim_params(const RunConfig& cfg) {
  return {cfg.lr,        cfg.weight_decay, cfg.momentum,
          cfg.dampening, cfg.nesterov,     cfg.decoupled_weight_decay};
}

models::ModelSpec model_spec(const RunConfig& cfg, std::int64_t channels, std::int64_t classes) {
  return {cfg.model,   cfg.width, cfg.classifier_width, cfg.mlp_depth,
          cfg.dropout, channels,  cfg.input_size,       classes};
}

}  // namespace nmech::config
