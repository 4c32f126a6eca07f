#pragma once
// Trainer internals, for the trainer itself and for tests that reach inside a run.
#include <torch/torch.h>

#include "nmech/data/loader.hpp"
#include "nmech/reduce/reducer.hpp"
#include "nmech/net/net.hpp"
#include "nmech/train/sgd.hpp"
#include "nmech/train/trainer.hpp"

#include <optional>

namespace nmech::train {

// One step's batch on the host: the global batch's size, this rank's shard [lo, hi) of it and
// its images (undefined when the shard is empty).
struct HostBatch {
  std::int64_t step = -1, global = 0, lo = 0, hi = 0;
  data::Batch batch;
  data::LoaderPosition before;  // the loader's position before this batch was drawn
};

struct Trainer::State {
  config::RunConfig cfg;
  const data::Dataset* data = nullptr;
  const data::Dataset* eval_data = nullptr;  // the validation split (eval_every > 0)
  torch::ScalarType dtype = torch::kFloat;
  torch::Device device{torch::kCPU};  // parameters, gradients, batches and optimizer state
  theory::OptimParams opt;
  models::Wiring wiring;
  symmetry::SymmetrySets sets;
  net::Net net{nullptr};
  std::vector<std::pair<std::string, at::Tensor>> named;
  std::unique_ptr<Sgd> sgd;
  std::unique_ptr<trace::Tracer> tracer;
  std::unique_ptr<data::Loader> loader;
  reduce::Reducer* reducer = nullptr;
  // GPU runs assemble the next step's batch on the host while the GPU computes this step's
  // backward (tests turn it on for CPU runs: the batches and so the traces are the same).
  bool prefetch = false;
  std::optional<HostBatch> next;
  // Where a checkpoint resumes drawing batches: before a batch that is drawn but not trained on.
  data::LoaderPosition loader_position() const { return next ? next->before : loader->position(); }
};

}  // namespace nmech::train
