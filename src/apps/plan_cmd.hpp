#pragma once
// `nmech plan CONFIG`: the dry run of a sweep. Prints every run (name, parameters, steps, rows,
// size), the rank groups, the store size and the mpirun/srun launch lines; creates nothing.
#include <cstdint>
#include <string>

#include "nmech/plan/plan.hpp"

namespace CLI {
class App;
}

namespace nmech::apps {

struct PlanArgs {
  std::string config;
  std::int64_t world_size = 0;  // 0: not given ($SLURM_NTASKS, else one group per run)
  std::string output;           // store path for the launch lines; "": <config stem>.h5
  bool json = false;
  bool slurm = false;   // also print the sbatch command for this plan
  bool submit = false;  // and run it (never without --submit)
  double step_ms = 0;   // a group's step time: the plan estimates the sweep's wall time
  plan::SlurmOptions slurm_options;
};

// Registers the subcommand and its options on `app`.
CLI::App* add_plan_command(CLI::App& app, PlanArgs& a);

// Runs it and returns 0 (with --submit: sbatch's exit status, 1 if it cannot be started). Bad
// input (config, world size, Slurm options) throws config::ConfigError (exit 2).
int cmd_plan(const PlanArgs& a);

}  // namespace nmech::apps
