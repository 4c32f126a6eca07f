#pragma once
// Trainer internals, for the trainer itself and for tests that reach inside a run.
#include <torch/torch.h>

#include "nmech/data/loader.hpp"
#include "nmech/dist/reducer.hpp"
#include "nmech/models/net.hpp"
#include "nmech/train/sgd.hpp"
#include "nmech/train/trainer.hpp"

namespace nmech::train {

struct Trainer::State {
  config::RunConfig cfg;
  const data::Dataset* data = nullptr;
  const data::Dataset* eval_data = nullptr;  // the validation split (eval_every > 0)
  torch::ScalarType dtype = torch::kFloat;
  torch::Device device{torch::kCPU};  // parameters, gradients, batches and optimizer state
  theory::OptimParams opt;
  models::Wiring wiring;
  symmetry::SymmetrySets sets;
  models::Net net{nullptr};
  std::vector<std::pair<std::string, at::Tensor>> named;
  std::unique_ptr<Sgd> sgd;
  std::unique_ptr<trace::Tracer> tracer;
  std::unique_ptr<data::Loader> loader;
  dist::Reducer* reducer = nullptr;
};

}  // namespace nmech::train
