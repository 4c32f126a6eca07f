#pragma once
// `nmech plan CONFIG`: the dry run of a sweep. Prints every run (name, parameters, steps, rows,
// size), the rank groups, the store size and the mpirun/srun launch lines; creates nothing.
#include <cstdint>
#include <string>

namespace CLI {
class App;
}

namespace nmech::apps {

struct PlanArgs {
  std::string config;
  std::int64_t world_size = 0;  // 0: not given ($SLURM_NTASKS, else one group per run)
  std::string output;           // store path for the launch lines; "": <config stem>.h5
  bool json = false;
};

// Registers the subcommand and its options on `app`.
CLI::App* add_plan_command(CLI::App& app, PlanArgs& a);

// Runs it and returns 0. Bad input (config, world size) throws config::ConfigError (exit 2).
int cmd_plan(const PlanArgs& a);

}  // namespace nmech::apps
