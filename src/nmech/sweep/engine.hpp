#pragma once
// `nmech sweep`: one MPI launch trains a whole grid (docs/DESIGN.md "Distributed execution"). The
// world is split into groups of ranks_per_run; group leaders take runs from a shared queue,
// longest first; each group trains its run data-parallel and its leader writes the rows into
// the one shared store, made up front (or reopened to resume).
#include <string>

namespace nmech::sweep {

struct SweepOptions {
  std::string config;                // sweep config (TOML)
  std::string store;                 // "" : default_store_path(config)
  double collective_timeout_s = 300; // no progress for this long in a collective: name and abort
  std::string progress = "auto";     // auto | lines | bar | none
  double progress_every_s = 10;      // seconds between a run's progress lines
};

// Collective over MPI_COMM_WORLD. Returns the exit code: 0 every run finished (done, diverged or
// failed), 3 stopped by a signal with checkpoints written (rerun the same command to resume).
// Bad input (config, data, a store of another config) throws ConfigError / DataError /
// StoreError on every rank before anything is written. Afterwards an error on one rank cannot
// be unwound collectively: it is printed and the job aborted (exit 1), as a stalled collective
// is (comm/watchdog.hpp); checkpoints make the rerun cheap.
int run_sweep(const SweepOptions& o);

}  // namespace nmech::sweep
