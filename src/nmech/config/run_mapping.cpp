#include "nmech/config/run_mapping.hpp"

namespace nmech::config {

theory::OptimParams optim_params(const RunConfig& cfg) {
  theory::OptimParams o;
  o.lr = cfg.lr;
  o.weight_decay = cfg.weight_decay;
  o.momentum = cfg.momentum;
  o.dampening = cfg.dampening;
  o.nesterov = cfg.nesterov;
  o.decoupled = cfg.decoupled_weight_decay;
  return o;
}

models::ModelSpec model_spec(const RunConfig& cfg, std::int64_t channels, std::int64_t classes) {
  models::ModelSpec m;
  m.name = cfg.model;
  m.width = cfg.width;
  m.classifier_width = cfg.classifier_width;
  m.mlp_depth = cfg.mlp_depth;
  m.dropout = cfg.dropout;
  m.input_channels = channels;
  m.input_size = cfg.input_size;
  m.classes = classes;
  return m;
}

}  // namespace nmech::config
