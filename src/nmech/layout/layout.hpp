#pragma once
// The datasets a traced run writes (names from docs/THEORY.md §8), one list for store creation and
// for the tracer's rows. Torch-free.
#include <cstdint>
#include <string>
#include <vector>

#include "nmech/config/run_config.hpp"
#include "nmech/store/store.hpp"
#include "nmech/symmetry/sets.hpp"
#include "nmech/theory/optim_params.hpp"

namespace nmech::layout {

// Rows hold steps 0, r, 2r, … and always the last step N (θ_N, after the last update).
std::uint64_t row_count(std::int64_t steps, std::int64_t record_every);
// Row of step k, or -1 if step k is not recorded.
std::int64_t row_of_step(std::int64_t k, std::int64_t steps, std::int64_t record_every);

// Dataset names of one family, in order (without the "<family>/" prefix).
std::vector<std::string> family_datasets(symmetry::Family f, const theory::OptimParams& opt);

// Every dataset of a run: step, time, loss, accuracy, (eval) val_loss, val_top1, val_top5, then
// each family with sets.
std::vector<store::DatasetSpec> run_datasets(const symmetry::SymmetrySets& sets,
                                             const theory::OptimParams& opt, bool eval = false);

// Identifies a model's shape: runs with the same key share /models/<key>/sets.
std::string model_key(const config::RunConfig& cfg);
// A run's whole layout in the store: datasets, rows and attributes (every hyperparameter, the
// resolved config, the oscillator constants). sets are the run's model's.
// classes: the model's output classes (the data's), written as the attribute "classes".
store::RunLayout run_layout(const config::RunConfig& cfg, const symmetry::SymmetrySets& sets,
                            const std::string& run_name, std::int64_t classes);

// The file attributes that tell readers what the runs hold (docs/STORE.md "Root attributes"):
// "families" (their names, space-separated, in enum order), per family "<f>_measured" (the
// dataset its predictions follow) and "<f>_error_scale" (the datasets, joined by " + ", whose sum
// normalises an error), from theory/family.hpp's table; "hyperparameters", the run attributes
// that come from the config's key table, in its order.
store::Attrs file_attrs();

// The store's set tables of a model.
std::vector<store::SetTable> set_tables(const symmetry::SymmetrySets& sets);

}  // namespace nmech::layout
