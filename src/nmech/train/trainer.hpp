#pragma once
// One run: model + data + SGD + tracer, writing rows into a store. The same code serves
// `nmech run` and each run of a sweep.
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "nmech/config/run_config.hpp"
#include "nmech/data/dataset.hpp"
#include "nmech/store/store.hpp"
#include "nmech/symmetry/sets.hpp"
#include "nmech/trace/tracer.hpp"

namespace nmech::train {

struct FamilyErrors {
  trace::ErrorStats exact, paper;
};

struct RunOutcome {
  store::Status status = store::Status::pending;
  std::int64_t steps_done = 0;
  std::int64_t diverged_at = -1;
  double last_loss = 0;
  std::map<symmetry::Family, FamilyErrors> errors;  // at the last recorded row
};

models::ModelSpec model_spec(const config::RunConfig& cfg, const data::Dataset& d);
// Identifies a model's shape (its sets are shared by every run with that key).
std::string model_key(const config::RunConfig& cfg);
// Loads the configured dataset; DataError or ConfigError (batch larger than the data) on bad input.
data::Dataset load_dataset(const config::RunConfig& cfg, const std::string& origin);

class Trainer {
 public:
  Trainer(const config::RunConfig& cfg, const data::Dataset& data);
  ~Trainer();

  // The store layout of this run (datasets, attributes) and its model's set tables.
  store::RunLayout layout(const std::string& run_name) const;
  std::vector<store::SetTable> set_tables() const;
  const symmetry::SymmetrySets& sets() const;

  // Trains every step, writing rows to `store` under run `run_name` and committing progress.
  // Stops early, marking the run diverged, on a non-finite loss or parameter.
  RunOutcome run(store::Store& store, const std::string& run_name);

  // One training step k: batch, forward, backward, tracer reads, update. Returns the loss.
  // Without trace the tracer is skipped (benchmarks). A non-finite loss or parameter leaves
  // the parameters un-updated and tracer().non_finite() true.
  double step(std::int64_t k, bool trace = true);

  // Pieces exposed for tests (e.g. perturbing the initial parameters).
  struct State;
  State& state();

 private:
  std::unique_ptr<State> s_;
};

}  // namespace nmech::train
