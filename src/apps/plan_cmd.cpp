// `nmech plan`: the sweep planner (nmech::sweep::plan) behind the command line. Torch-free.
#include "plan_cmd.hpp"

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>

#include "nmech/config/sweep_config.hpp"
#include "nmech/sweep/plan.hpp"

namespace nmech::apps {

CLI::App* add_plan_command(CLI::App& app, PlanArgs& a) {
  auto* p = app.add_subcommand("plan", "dry run of a sweep: runs, groups, store size, launch lines");
  p->add_option("config", a.config, "sweep config (TOML)")->required();
  p->add_option("-P,--world-size", a.world_size,
                "MPI ranks of the launch (default: $SLURM_NTASKS, else one group per run)")
      ->check(CLI::Range(1, 1 << 24));
  p->add_option("-o,--output", a.output, "store path for the launch lines (default: <config stem>.h5)");
  p->add_flag("--json", a.json, "print the plan as JSON");
  return p;
}

int cmd_plan(const PlanArgs& a) {
  const config::SweepConfig s = config::load_sweep_config(a.config);
  // Inside an allocation the sweep's world is SLURM_NTASKS: the plan defaults to it and says
  // when an explicit --world-size differs.
  const char* env = std::getenv("SLURM_NTASKS");
  const std::string ntasks = env ? env : "";
  const std::int64_t world = a.world_size > 0 ? a.world_size : sweep::default_world_size(s, ntasks);
  const sweep::Plan p = sweep::plan(s, world, a.config, a.output, ntasks);
  std::fputs((a.json ? sweep::plan_json(p) : sweep::format_plan(p)).c_str(), stdout);
  return 0;
}

}  // namespace nmech::apps
