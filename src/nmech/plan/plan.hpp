#pragma once
// The dry run of a sweep (`nmech plan`): every run with its parameters, rows and bytes in the
// store, the rank groups for a world size, and the launch lines. Torch-free and side-effect free:
// the set counts come from the model's wiring, the datasets from layout::run_datasets, the same
// code the sweep uses to create the store.
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "nmech/config/sweep_config.hpp"
#include "nmech/theory/family.hpp"

namespace nmech::plan {

// Store size model. Raw data is exact (float64, contiguous, allocated at creation); the HDF5
// metadata is fitted to stores made by Store::create (HDF5 1.10, dimension scales attached; 4
// and 80 runs of an MLP and of VGG-11/16: totals within 1%): per dataset its object header with
// units, description and dimension-scale attributes; per run its group, hyperparameter
// attributes (the config text among them) and progress record; per file the superblock, root
// attributes and groups.
constexpr std::uint64_t kDatasetOverheadBytes = 960;
constexpr std::uint64_t kRunOverheadBytes = 6144;
constexpr std::uint64_t kFileOverheadBytes = 4096;

// Time model, measured on the 2-core development VM (docs/BENCHMARKS.md "Store creation at scale"
// and "A sweep of 10,000 short runs"): rank 0 makes the store at about 0.06 ms per dataset (about
// 2 ms a run of the MLP at 10^4 runs, 2.5 ms at 10^5, format 7) plus the fill of its raw bytes;
// each run then costs its group, besides its steps, its overhead (model set-up, provenance,
// progress, checkpoint set-up, its rows): 4 ms (3.4 ms measured for two-step runs in a 10^4-run
// sweep, docs/BENCHMARKS.md "Store creation at scale").
constexpr double kCreateSecondsPerDataset = 6.0e-5;
constexpr double kCreateBytesPerSecond = 1.0e9;
constexpr double kRunOverheadSeconds = 4.0e-3;

struct PlannedRun {
  config::RunConfig cfg;  // cfg.name == name
  std::string name;
  std::uint64_t rows = 0;            // layout::row_count(steps, record_every)
  std::uint64_t datasets = 0;        // layout::run_datasets(...).size()
  std::uint64_t values_per_row = 0;  // float64 values of one row across every dataset
  std::uint64_t bytes = 0;           // rows·values_per_row·8 + datasets·kDataset… + kRun…
};

// The symmetry sets of the sweep's base model (its first `model` value; with a model axis, the
// others are each run's own and the store has a set table per model).
struct ModelSummary {
  std::string model;
  std::int64_t parameters = 0;
  std::array<std::int64_t, theory::kFamilyCount> sets{};  // set counts, by theory::index(family)
  std::int64_t input_channels = 1, input_size = 32, classes = 10;
};

struct Plan {
  std::string config_path, store_path;
  std::string config_sha256;          // config::sweep_hash
  ModelSummary model;
  std::vector<PlannedRun> runs;       // in hand-out order: longest first
  std::int64_t world_size = 1, ranks_per_run = 1, groups = 1;
  std::uint64_t shared_bytes = 0;     // file metadata and the model's set tables
  std::uint64_t total_bytes = 0;      // shared_bytes + every run's bytes
  std::vector<std::string> mpirun_args, srun_args;  // argv of the two launches
  std::vector<std::string> notes;     // things worth a look (idle groups, SLURM_NTASKS mismatch)
  double create_seconds = 0;          // the store's creation, by the time model above
  // With a measured step time (estimate_wall): the sweep's wall time, runs handed out longest
  // first to the groups, and the resource it holds (core-hours: ranks x threads; GPU-hours: ranks).
  double step_ms = 0, wall_seconds = 0, resource_hours = 0;
  std::string resource;  // "core-hours" or "GPU-hours"
};

// The plan for `world_size` ranks. store_path "" means default_store_path(config_path).
// Throws ConfigError when world_size is smaller than ranks_per_run or not a multiple of it, or
// when the model cannot take the input (e.g. VGG with input_size < 32).
Plan make_plan(const config::SweepConfig& s, std::int64_t world_size,
          const std::string& config_path = "CONFIG", const std::string& store_path = "",
          const std::string& slurm_ntasks = "");

// Fills step_ms, wall_seconds and resource_hours for a group step of `step_ms` milliseconds
// (the same for every run: measure it with a short run of the sweep's model).
void estimate_wall(Plan& p, double step_ms);

// $SLURM_NTASKS when set (inside an allocation, the world nmech sweep will get), else one group
// per run: runs × ranks_per_run.
std::int64_t default_world_size(const config::SweepConfig& s, const std::string& slurm_ntasks);
// "<config file stem>.h5" in the working directory: configs/sweep-demo.toml → sweep-demo.h5.
std::string default_store_path(const std::string& config_path);

// One argument for a POSIX shell: unchanged when every character is in [A-Za-z0-9_./:=@%+,-]
// (and it is not empty), else single-quoted with each ' written as '\''.
std::string quote_arg(const std::string& arg);
// The arguments quoted and joined by spaces: a line that can be pasted into a shell.
std::string command_line(const std::vector<std::string>& args);

// How to ask Slurm for the plan's world (`nmech plan --slurm`).
struct SlurmOptions {
  std::int64_t nodes = 1;          // --nodes; the world is spread evenly: --ntasks-per-node
  std::int64_t gpus_per_node = 0;  // --gpus-per-node (one rank per GPU: must equal tasks per node)
  std::string time;                // --time, [D-]HH:MM:SS or minutes ("": the partition's default)
  std::string partition;           // --partition ("": the default one)
  std::string script = "jobs/sweep.sbatch";
};

// The sbatch argument list for the plan: sbatch --job-name --nodes --ntasks-per-node [--gpus-per-node]
// [--time] [--partition] SCRIPT CONFIG STORE. An argument list, never a shell string: print it
// with command_line (quoted) and run it with exec. Throws ConfigError when the world does not
// divide into the nodes, the GPUs do not match the tasks per node, or the time is not Slurm's.
std::vector<std::string> sbatch_args(const Plan& p, const SlurmOptions& o);

// The plan as `nmech plan` prints it: a table of runs, groups, sizes, launch lines.
std::string format_plan(const Plan& p);
// The plan as one JSON object (`nmech plan --json`).
std::string plan_json(const Plan& p);

}  // namespace nmech::plan
