#pragma once
// A sweep's settings: the keys of one run plus grid axes, TOML → validated SweepConfig → one
// RunConfig per grid point. Torch-free. Errors are ConfigErrors in the run config's one-line
// format, "<file>:<line>: key '<k>': ...".
//
// In the TOML, each grid axis (a row of sweep_config.cpp's axes(): model, lr, batch_size,
// weight_decay, momentum, dampening, seeds) takes a scalar (as in a run) or a list
// (`lr = [0.05, 0.1]`); a numeric run key also a range table (`lr = { log = [1e-3, 1e-1], num = 5 }`,
// `momentum = { linear = [0, 0.9], num = 4 }`); `seeds = [0, 1]` (default: [seed]);
// `ranks_per_run` (default 1); `checkpoint_every` (default 100); `reducer`, `bucket_mb`,
// `first_bucket_mb`, `in_place_mb` (how a group sums gradients); `name` is a prefix of the run names. Every other key is a scalar
// run key, read exactly as a run config file reads it.
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "nmech/config/reducer_settings.hpp"
#include "nmech/config/run_config.hpp"

namespace nmech::config {

// The points of one grid axis: numbers or names.
using AxisPoints =
    std::variant<std::vector<double>, std::vector<std::int64_t>, std::vector<std::uint64_t>, std::vector<std::string>>;
// Every axis with the one value a run takes by default, by sweep key.
std::map<std::string, AxisPoints> default_axes();

struct SweepConfig {
  // Every run key. base.name is the prefix of the run names ("": none); base.lr, batch_size,
  // weight_decay, momentum and seed hold the first value of their axis.
  RunConfig base;
  // The axes by sweep key; the grid is their product. Each is a row of sweep_config.cpp's axes(),
  // which says how it is read, checked, named, expanded and written back, and of which type its
  // points are: points<double>("lr"), points<std::uint64_t>("seeds").
  std::map<std::string, AxisPoints> axes = default_axes();
  template <typename T>
  std::vector<T>& points(const std::string& key) {
    return std::get<std::vector<T>>(axes.at(key));
  }
  template <typename T>
  const std::vector<T>& points(const std::string& key) const {
    return std::get<std::vector<T>>(axes.at(key));
  }
  std::int64_t ranks_per_run = 1;  // ranks that train one run together (data parallel)
  // Steps between a run's checkpoints (and one whenever the sweep is stopped). How often is not
  // part of the sweep's identity (to_toml, sweep_hash): it never changes a row, so a rerun may
  // change it.
  std::int64_t checkpoint_every = 100;
  // How a group of ranks sums gradients (reduce/reducer.hpp): "overlap" (buckets started from
  // gradient hooks during backward), "buckets" (the same buckets after backward) or "single"
  // (one packed all-reduce after backward); bucket caps in MiB (DDP's defaults). Not part of
  // the identity either: with two ranks every choice gives the same bits; with more, the order
  // of the sums may move the last bit.
  ReducerSettings reducer;
  // Where the settings came from, so expand() can point at the line to fix.
  std::string origin = "<sweep>";
  KeyOrigins where;
};

// One run of a sweep: its resolved config (cfg.name == name) and its name in the store.
struct RunSpec {
  RunConfig cfg;
  std::string name;
};

// A run's grid point, axis by axis in grid order: the run key and its value, a number or a name.
// `nmech plan` lists runs by it, so a new axis shows there without a change.
using AxisValue = std::variant<double, std::int64_t, std::uint64_t, std::string>;
std::vector<std::pair<std::string, AxisValue>> grid_point(const RunConfig& c);

// The sweep's own keys (the rest are run keys).
const std::vector<std::string>& sweep_keys();

SweepConfig load_sweep_config(const std::string& path);
// Same from TOML text; `origin` names the source in errors. Every grid point is validated here
// (expand), so a config that loads also expands.
SweepConfig parse_sweep_config(const std::string& toml_text, const std::string& origin);

// The grid product × seeds, each run validated like a run config (e.g. nesterov with a momentum
// of 0 somewhere on the grid is an error naming nesterov), ordered longest expected first
// (steps × batch_size, descending; ties keep grid order: model, lr, batch_size, weight_decay,
// momentum, dampening, seeds, the rows of sweep_config.cpp's axis table, the last varying
// fastest). Names join the values that vary across the grid,
// "<prefix>-lr0.1-b128-wd5e-4-m0.9-s0" (a fixed value is left out); two runs whose names would
// collide (values equal to 6 significant digits) get a hash suffix.
std::vector<RunSpec> expand(const SweepConfig& s);

// Canonical TOML of the resolved sweep: every run key (sorted, one per line) with the axes as
// lists, seeds and ranks_per_run. It parses back to the same sweep.
std::string to_toml(const SweepConfig& s);
// sha256_hex(to_toml(s)): stored in a sweep's store to refuse a different config on rerun.
std::string sweep_hash(const SweepConfig& s);
// The keys whose values differ between two canonical TOML texts, as "key: old -> new" lines
// ("(absent)" for a missing key), sorted by key: what a refusal message shows.
std::vector<std::string> differing_keys(const std::string& old_toml, const std::string& new_toml);

}  // namespace nmech::config
