#include "sweep_cmd.hpp"

#include <CLI/CLI.hpp>

#include "nmech/sweep/engine.hpp"

namespace nmech::apps {

CLI::App* add_sweep_command(CLI::App& app, sweep::SweepOptions& o) {
  auto* c = app.add_subcommand("sweep", "train a grid of runs across MPI rank groups into one store");
  c->add_option("config", o.config, "sweep config (TOML)")->required();
  c->add_option("-o,--output", o.store, "store path (default: <config stem>.h5); rerun on it to resume");
  c->add_option("--collective-timeout", o.collective_timeout_s,
                "seconds without progress before a collective names the missing ranks and aborts")
      ->check(CLI::PositiveNumber);
  c->add_option("--progress", o.progress, "auto | lines | bar | none")
      ->check(CLI::IsMember({"auto", "lines", "bar", "none"}));
  c->add_option("--progress-every", o.progress_every_s, "seconds between a run's progress lines")
      ->check(CLI::NonNegativeNumber);
  return c;
}

int cmd_sweep(const sweep::SweepOptions& o) { return sweep::run_sweep(o); }

}  // namespace nmech::apps
