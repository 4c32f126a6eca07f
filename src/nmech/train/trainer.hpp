#pragma once
// One run: model + data + SGD + tracer, writing rows into a store. The same code serves
// `nmech run` and each run of a sweep.
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>

#include "nmech/config/run_config.hpp"
#include "nmech/data/dataset.hpp"
#include "nmech/store/store.hpp"
#include "nmech/symmetry/sets.hpp"
#include "nmech/trace/tracer.hpp"

namespace nmech::reduce {
class Reducer;
}

namespace nmech::train {

struct FamilyErrors {
  trace::ErrorStats exact, paper;
};

struct RunOutcome {
  store::Status status = store::Status::pending;
  std::int64_t steps_done = 0;
  std::int64_t diverged_at = -1;
  double last_loss = 0;
  bool stopped = false;            // asked to stop: checkpointed at steps_done, still running
  std::int64_t resumed_from = 0;   // the step a checkpoint restarted this attempt at
  double store_seconds = 0;        // spent writing rows and progress records
  double step_seconds = 0;         // spent in the training steps (tracing included)
  std::map<symmetry::Family, FamilyErrors> errors;  // at the last recorded row
};

// What a sweep asks of a run besides training it; a single `nmech run` needs none of it.
struct RunHooks {
  bool leader = true;                 // this rank leads its group: it writes rows, progress and
                                      // checkpoints, and evaluates
  std::string checkpoint;             // "": none. Resumes from it when the file exists.
  std::int64_t checkpoint_every = 0;  // steps between checkpoints; 0: only when stopping
  // Asked at every step boundary, on every rank of the group; true: checkpoint and stop.
  std::function<bool()> stop;
  std::function<void(std::int64_t step, double loss)> on_step;  // after every step
};

models::ModelSpec model_spec(const config::RunConfig& cfg, const data::Dataset& d);
// Whose a checkpoint is, besides the run's config and data (which the trainer knows).
struct CheckpointOwner {
  std::string store_id;             // store::Store::id() of the store the rows go to
  std::string run;                  // the run's name in that store
  std::int64_t rows_committed = 0;  // the store's record: a checkpoint may not be ahead of it
};

// A checkpoint file that cannot be trusted: "<path>: <what differs>". The run then starts over.
class CheckpointRefused : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Trainer {
 public:
  // device: from training_device. The data stays on the host; each batch is copied over.
  Trainer(const config::RunConfig& cfg, const data::Dataset& data, const std::string& device = "cpu");
  ~Trainer();

  // The store layout of this run (datasets, attributes) and its model's set tables.
  store::RunLayout layout(const std::string& run_name) const;
  std::vector<store::SetTable> set_tables() const;

  // Data parallelism: every global batch is split across the reducer's group and gradients are
  // summed over it. Not owned; nullptr (the default) trains alone. Collective over the group
  // (the reducer checks shapes and lays out its buckets).
  //
  // BatchNorm policy (as DDP without SyncBatchNorm): each rank normalises with its own shard's
  // statistics, and updates its own running statistics, which training never reads; they start
  // as the leader's (broadcast with the parameters) and the leader's are checkpointed, so every
  // rank resumes from the leader's.
  void set_reducer(reduce::Reducer* reducer);

  // The validation split evaluated every eval_every steps (not owned; needed when eval_every > 0).
  void set_eval_data(const data::Dataset* eval_data);
  // Loss, top-1 and top-5 accuracy over the validation split at the current parameters, in
  // eval mode (BatchNorm running statistics); changes nothing that training reads.
  struct Evaluation {
    double loss = 0, top1 = 0, top5 = 0;
  };
  Evaluation evaluate();

  // Trains every step, writing rows to `store` under run `run_name` and committing progress.
  // Stops early, marking the run diverged, on a non-finite loss or parameter.
  RunOutcome run(store::Store& store, const std::string& run_name, const RunHooks& hooks = {});

  // Checkpoint at a step boundary (rows flushed): model, buffers, optimizer, data position, RNG,
  // tracer and the progress record, with its owner, config and data fingerprints and a checksum
  // (checkpoint.cpp). Written to "<path>.tmp" and renamed, so a crash leaves the old or the new
  // file, never half of one; util::IoError when the system refuses the write.
  void save_checkpoint(const std::string& path, std::int64_t next_step, const store::Progress& p,
                       const CheckpointOwner& owner);
  // Proves the file at `path` is whole and is this run's (owner, config, data), changing nothing;
  // returns its payload for load_checkpoint, or throws CheckpointRefused saying what differs.
  std::string verify_checkpoint(const std::string& path, const CheckpointOwner& owner) const;
  // Restores a verified payload; returns the next step to train.
  std::int64_t load_checkpoint(const std::string& payload, store::Progress& p);

  // One training step k: batch, forward, backward, tracer reads, update. Returns the loss.
  // Without trace the tracer is skipped (benchmarks). A non-finite loss or parameter leaves
  // the parameters un-updated and tracer().non_finite() true.
  double step(std::int64_t k, bool trace = true);

  // The verified payload of hooks.checkpoint, or "" (none, or refused: one line on stderr).
  // Collective over the group.
  std::string trusted_checkpoint(const RunHooks& hooks, const CheckpointOwner& owner) const;

  // Pieces exposed for tests (e.g. perturbing the initial parameters).
  struct State;
  State& state();

 private:
  std::unique_ptr<State> s_;
};

}  // namespace nmech::train
