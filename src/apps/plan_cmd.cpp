// `nmech plan`: the sweep planner (nmech::plan::make_plan) behind the command line. Torch-free.
#include "plan_cmd.hpp"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "nmech/config/sweep_config.hpp"
#include "nmech/plan/plan.hpp"

namespace nmech::apps {

CLI::App* add_plan_command(CLI::App& app, PlanArgs& a) {
  a.slurm_options.script = NMECH_JOBS_DIR "/sweep.sbatch";  // this checkout's job script
  auto* p = app.add_subcommand("plan", "dry run of a sweep: runs, groups, store size, launch lines");
  p->add_option("config", a.config, "sweep config (TOML)")->required();
  p->add_option("-P,--world-size", a.world_size,
                "MPI ranks of the launch (default: $SLURM_NTASKS, else one group per run)")
      ->check(CLI::Range(1, 1 << 24));
  p->add_option("-o,--output", a.output, "store path for the launch lines (default: <config stem>.h5)");
  p->add_flag("--json", a.json, "print the plan as JSON");
  p->add_flag("--slurm", a.slurm, "also print the sbatch command (jobs/sweep.sbatch) for this plan");
  p->add_flag("--submit", a.submit, "run that sbatch command (implies --slurm); a plan never submits without it");
  p->add_option("--nodes", a.slurm_options.nodes, "sbatch --nodes (ranks spread evenly)")->check(CLI::PositiveNumber);
  p->add_option("--gpus-per-node", a.slurm_options.gpus_per_node, "sbatch --gpus-per-node (one per rank)")
      ->check(CLI::NonNegativeNumber);
  p->add_option("--time", a.slurm_options.time, "sbatch --time, e.g. 02:00:00");
  p->add_option("--partition", a.slurm_options.partition, "sbatch --partition");
  p->add_option("--script", a.slurm_options.script, "the job script")->check(CLI::ExistingFile);
  p->add_option("--step-ms", a.step_ms, "a group's step time in ms (measured): estimate the wall time and core- or GPU-hours")
      ->check(CLI::PositiveNumber);
  return p;
}

namespace {

// Runs sbatch from its argument list (no shell, so no value is ever re-parsed) and returns its
// exit status; sbatch prints the job id.
int submit(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const auto& x : args) argv.push_back(const_cast<char*>(x.c_str()));
  argv.push_back(nullptr);
  pid_t pid = 0;
  if (posix_spawnp(&pid, argv[0], nullptr, nullptr, argv.data(), environ) != 0) {
    std::fprintf(stderr, "nmech: cannot run %s (is Slurm installed?)\n", argv[0]);
    return 1;
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

}  // namespace

int cmd_plan(const PlanArgs& a) {
  const config::SweepConfig s = config::load_sweep_config(a.config);
  // Inside an allocation the sweep's world is SLURM_NTASKS: the plan defaults to it and says
  // when an explicit --world-size differs.
  const char* env = std::getenv("SLURM_NTASKS");
  const std::string ntasks = env ? env : "";
  const std::int64_t world = a.world_size > 0 ? a.world_size : plan::default_world_size(s, ntasks);
  plan::Plan p = plan::make_plan(s, world, a.config, a.output, ntasks);
  if (a.step_ms > 0) plan::estimate_wall(p, a.step_ms);
  if (!a.slurm && !a.submit) {
    std::fputs((a.json ? plan::plan_json(p) : plan::format_plan(p)).c_str(), stdout);
    return 0;
  }
  const std::vector<std::string> sbatch = plan::sbatch_args(p, a.slurm_options);
  if (!a.json) std::fputs(plan::format_plan(p).c_str(), stdout);
  std::printf("%s%s\n", a.json ? "" : "  ", plan::command_line(sbatch).c_str());
  std::fflush(stdout);
  return a.submit ? submit(sbatch) : 0;
}

}  // namespace nmech::apps
