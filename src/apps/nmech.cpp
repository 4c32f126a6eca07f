// nmech: the one command line. Exit codes (DESIGN.md): 0 complete, 1 internal error,
// 2 bad input (config, data, store), 3 stopped by signal with a checkpoint, 4 verify: a set fails.
#include <mpi.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "nmech/config/run_config.hpp"
#include "nmech/data/dataset.hpp"
#include "nmech/dist/comm.hpp"
#include "nmech/store/store.hpp"
#include "nmech/sweep/engine.hpp"
#include "nmech/trace/layout.hpp"
#include "nmech/train/trainer.hpp"
#include "nmech/util/allocator.hpp"
#include "nmech/util/build_info.hpp"
#include "nmech/util/utc.hpp"
#include "plan_cmd.hpp"
#include "prepare_cmd.hpp"
#include "sweep_cmd.hpp"
#include "verify_cmd.hpp"

namespace {

using namespace nmech;

constexpr int kOk = 0, kInternal = 1, kBadInput = 2;

struct RunArgs {
  std::string config;
  std::vector<std::string> sets;
  std::string output;
  bool overwrite = false;
};

void print_errors(const std::string& path, const train::RunOutcome& out) {
  std::printf("store: %s\n", path.c_str());
  std::printf("status: %s after %lld steps, last loss %.6g\n", store::to_string(out.status).c_str(),
              static_cast<long long>(out.steps_done), out.last_loss);
  if (out.status == store::Status::diverged)
    std::printf("diverged at step %lld\n", static_cast<long long>(out.diverged_at));
  std::printf("relative error at the last step (translation: / sum|theta|, scale: / Q, rescale: / (Q_in + Q_out))\n");
  std::printf("%-12s %6s  %12s %12s  %12s %12s\n", "family", "sets", "exact med", "exact worst",
              "paper med", "paper worst");
  for (const auto& [fam, e] : out.errors)
    std::printf("%-12s %6lld  %12.3e %12.3e  %12.3e %12.3e\n", symmetry::to_string(fam),
                static_cast<long long>(e.exact.sets), e.exact.median, e.exact.worst, e.paper.median,
                e.paper.worst);
}

int cmd_run(const RunArgs& a) {
  auto cfg = config::load_run_config(a.config, a.sets);
  const std::string device = train::training_device(cfg, dist::local_rank(MPI_COMM_WORLD), a.config);
  const std::string name = config::short_name(cfg);
  const std::string path = a.output.empty() ? name + ".h5" : a.output;
  if (std::filesystem::exists(path)) {
    if (!a.overwrite)
      throw store::StoreError(path + ": exists; pass --overwrite to replace it, or choose another -o");
    std::filesystem::remove(path);
  }
  auto data = train::load_dataset(cfg, a.config);
  const nmech::data::Dataset eval_data = cfg.eval_every > 0 ? train::load_eval_dataset(cfg) : nmech::data::Dataset{};
  train::Trainer trainer(cfg, data, device);
  trainer.set_eval_data(cfg.eval_every > 0 ? &eval_data : nullptr);  // as a sweep does
  const store::Attrs file_attrs = {{"nmech_version", std::string(util::version())},
                                   {"git_commit", std::string(util::git_commit())},
                                   {"created_utc", util::utc_now_text()},
                                   {"config", config::to_toml(cfg)},
                                   {"config_sha256", config::sha256_hex(config::to_toml(cfg))}};
  auto st = store::Store::create(path, MPI_COMM_WORLD, file_attrs,
                                 {{trace::model_key(cfg), trainer.set_tables()}}, {trainer.layout(name)});
  auto out = trainer.run(st, name);
  st.close();
  print_errors(path, out);
  return kOk;
}

// Works while a sweep writes: it reads only progress records, which say which rows to trust.
int cmd_status(const std::string& path) {
  auto st = store::Store::open_read(path);
  std::printf("%-40s %-9s %10s %10s %12s\n", "run", "status", "step", "rows", "last loss");
  int counts[5] = {0, 0, 0, 0, 0};
  for (const auto& r : st.runs()) {
    auto p = st.progress(r);
    counts[static_cast<int>(p.status)]++;
    // last_step is the last step trained (running) or N, the final row (done)
    std::string step = std::to_string(p.status == store::Status::done ? p.last_step : p.last_step + 1);
    if (p.status == store::Status::diverged) step = "@" + std::to_string(p.diverged_at);
    if (p.status == store::Status::pending) step = "-";
    std::printf("%-40s %-9s %10s %10lld %12.6g\n", r.c_str(), store::to_string(p.status).c_str(),
                step.c_str(), static_cast<long long>(p.rows_committed), p.last_loss);
  }
  std::printf("%zu runs: done %d, running %d, diverged %d, failed %d, pending %d\n", st.runs().size(),
              counts[2], counts[1], counts[3], counts[4], counts[0]);
  return kOk;
}

// Bad input is found the same way on every rank of a launch, so rank 0 alone says it.
int bad_input(const std::exception& e) {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  if (rank == 0) std::fprintf(stderr, "nmech: %s\n", e.what());
  return kBadInput;
}

}  // namespace

int main(int argc, char** argv) {
  nmech::util::keep_freed_memory();
  int provided = 0;  // the MPI bucket transport reduces on a thread of its own
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  int code = kOk;
  {
    CLI::App app{"nmech: neural mechanics — symmetry traces and their exact theory"};
    app.set_version_flag("--version", std::string("nmech ") + nmech::util::version() + " (" + nmech::util::git_commit() + ")");
    app.require_subcommand(1);
    RunArgs ra;
    auto* run = app.add_subcommand("run", "train one run and trace every symmetry set");
    run->add_option("config", ra.config, "run config (TOML)")->required();
    run->add_option("--set", ra.sets, "override a key: --set lr=0.05 (repeatable)");
    run->add_option("-o,--output", ra.output, "store path (default: <run name>.h5)");
    run->add_flag("--overwrite", ra.overwrite, "replace an existing store");
    std::string status_path;
    auto* status = app.add_subcommand("status", "per-run status of a store");
    status->add_option("store", status_path, "store path")->required();
    nmech::apps::PlanArgs pa;
    auto* plan = nmech::apps::add_plan_command(app, pa);
    nmech::apps::VerifyArgs va;
    auto* verify = nmech::apps::add_verify_command(app, va);
    nmech::apps::PrepareArgs prep;
    auto* prepare = nmech::apps::add_prepare_command(app, prep);
    nmech::sweep::SweepOptions so;
    auto* sweep = nmech::apps::add_sweep_command(app, so);
    try {
      app.parse(argc, argv);
      if (*run) code = cmd_run(ra);
      if (*status) code = cmd_status(status_path);
      if (*plan) code = nmech::apps::cmd_plan(pa);
      if (*verify) code = nmech::apps::cmd_verify(va);
      if (*sweep) code = nmech::apps::cmd_sweep(so);
      if (*prepare) code = nmech::apps::cmd_prepare(prep);
    } catch (const CLI::ParseError& e) {
      code = app.exit(e) == 0 ? kOk : kBadInput;
    } catch (const config::ConfigError& e) {
      code = bad_input(e);
    } catch (const data::DataError& e) {
      code = bad_input(e);
    } catch (const store::StoreError& e) {
      code = bad_input(e);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "nmech: internal error: %s\n", e.what());
      code = kInternal;
    }
  }
  MPI_Finalize();
  return code;
}
