// nmech: the one command line. Exit codes: util/exit_codes.hpp.
#include <mpi.h>

#include <CLI/CLI.hpp>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "nmech/data/load.hpp"
#include "nmech/config/run_config.hpp"
#include "nmech/data/dataset.hpp"
#include "nmech/comm/comm.hpp"
#include "nmech/comm/one_sided.hpp"
#include "nmech/store/store.hpp"
#include "nmech/store/store_lock.hpp"
#include "nmech/sweep/engine.hpp"
#include "nmech/plan/plan_memory.hpp"
#include "nmech/sweep/signals.hpp"
#include "nmech/theory/family.hpp"
#include "nmech/layout/layout.hpp"
#include "nmech/train/device.hpp"
#include "nmech/train/trainer.hpp"
#include "nmech/util/allocator.hpp"
#include "nmech/util/build_info.hpp"
#include "nmech/util/exit_codes.hpp"
#include "nmech/util/io_error.hpp"
#include "nmech/util/utc.hpp"
#include "plan_cmd.hpp"
#include "prepare_cmd.hpp"
#include "sweep_cmd.hpp"
#include "verify_cmd.hpp"

namespace {

using namespace nmech;

using util::kBadInput;
using util::kComplete;

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
  std::string scales;
  for (auto f : theory::kFamilies)
    scales += (scales.empty() ? "" : ", ") + std::string(theory::to_string(f)) + ": / " + theory::traits(f).error_scale_words;
  std::printf("relative error at the last step (%s)\n", scales.c_str());
  std::printf("%-12s %6s  %12s %12s  %12s %12s\n", "family", "sets", "exact med", "exact worst",
              "paper med", "paper worst");
  for (const auto& [fam, e] : out.errors)
    std::printf("%-12s %6lld  %12.3e %12.3e  %12.3e %12.3e\n", symmetry::to_string(fam),
                static_cast<long long>(e.exact.sets), e.exact.median, e.exact.worst, e.paper.median,
                e.paper.worst);
}

// Where `nmech run` starts: a fresh store (none at the path, or --overwrite), or the unfinished
// store an earlier attempt of this same config and data left (stopped, killed, disk full);
// anything else there is refused. `ckpt` is the run's checkpoint file.
bool resumes(const std::string& path, const std::string& ckpt, bool overwrite, const std::string& config_sha,
             const std::string& data_sha) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::is_directory(fs::symlink_status(path, ec)))
    throw store::StoreError(path + ": is a directory; give -o the store's file name");
  const auto ckpt_dir = fs::symlink_status(fs::path(ckpt).parent_path(), ec);
  if (fs::exists(ckpt_dir) && !fs::is_directory(ckpt_dir))
    throw store::StoreError(fs::path(ckpt).parent_path().string() +
                            ": exists and is not a directory (nmech run keeps its checkpoint there); move it away");
  if (!fs::exists(fs::symlink_status(path, ec))) return false;
  const std::string again = "; pass --overwrite to replace it, or choose another -o";
  if (overwrite) {
    fs::remove(path);
    fs::remove(ckpt, ec);
    return false;
  }
  auto st = store::Store::open_read(path);
  if (st.file_attr("config_sha256") != config_sha) throw store::StoreError(path + ": exists with another run config" + again);
  if (st.file_attr("data_sha256") != data_sha)
    throw store::StoreError(path + ": exists, made from other training data (the data file changed)" + again);
  const auto runs = st.runs();
  const store::Status s = runs.size() == 1 ? st.progress(runs.front()).status : store::Status::pending;
  if (runs.size() != 1) throw store::StoreError(path + ": exists and is not a single run's store" + again);
  if (s == store::Status::done || s == store::Status::diverged)
    throw store::StoreError(path + ": exists and is finished (" + store::to_string(s) + ")" + again);
  return true;
}

int cmd_run(const RunArgs& a) {
  auto cfg = config::load_run_config(a.config, a.sets);
  const std::string device = train::training_device(cfg, comm::local_rank(MPI_COMM_WORLD), a.config);
  const std::string name = config::short_name(cfg);
  const std::string path = a.output.empty() ? name + ".h5" : a.output;
  auto data = data::load_dataset(cfg, a.config);
  plan::check_memory(cfg, cfg.batch_size, 1, a.config);
  const std::string config_sha = config::sha256_hex(config::to_toml(cfg));
  const std::string ckpt = path + ".ckpt/" + name + ".pt";
  const store::StoreLock lock = store::StoreLock::acquire(path);
  const bool resume = resumes(path, ckpt, a.overwrite, config_sha, data.sha256);
  sweep::install_stop_signals();
  const nmech::data::Dataset eval_data = cfg.eval_every > 0 ? data::load_eval_dataset(cfg) : nmech::data::Dataset{};
  train::Trainer trainer(cfg, data, device);
  trainer.set_eval_data(cfg.eval_every > 0 ? &eval_data : nullptr);  // as a sweep does
  store::Attrs file_attrs = {{"nmech_version", std::string(util::version())},
                             {"git_commit", std::string(util::git_commit())},
                             {"created_utc", util::utc_now_text()},
                             {"config", config::to_toml(cfg)},
                             {"config_sha256", config_sha},
                             {"data_sha256", data.sha256}};
  for (auto& a : layout::file_attrs()) file_attrs.push_back(a);
  auto st = resume ? store::Store::open(path, MPI_COMM_WORLD)
                   : store::Store::create(path, MPI_COMM_WORLD, file_attrs, {{layout::model_key(cfg), trainer.set_tables()}},
                                          {trainer.layout(name)});
  std::filesystem::create_directories(path + ".ckpt");
  train::RunHooks hooks;
  hooks.checkpoint = ckpt;
  hooks.stop = [] { return sweep::stop_signal() != 0; };
  if (resume) std::printf("resuming %s\n", path.c_str());
  auto out = trainer.run(st, name, hooks);
  st.close();
  if (out.stopped) {
    std::printf("stopped by SIG%s after step %lld: checkpoint %s; rerun the same command to resume\n",
                sweep::signal_name(sweep::stop_signal()), static_cast<long long>(out.steps_done), ckpt.c_str());
    return util::kStopped;
  }
  std::error_code ec;
  std::filesystem::remove(path + ".ckpt", ec);  // empty once the run has finished
  print_errors(path, out);
  return kComplete;
}

// Works while a sweep writes: it reads only progress records, which say which rows to trust.
int cmd_status(const std::string& path) {
  auto st = store::Store::open_read(path);
  std::printf("%-40s %-9s %10s %10s %12s\n", "run", "status", "step", "rows", "last loss");
  std::array<int, store::kStatusCount> counts{};
  auto count = [&](store::Status s) { return counts[static_cast<size_t>(s)]; };
  for (const auto& r : st.runs()) {
    auto p = st.progress(r);
    counts[static_cast<size_t>(p.status)]++;
    // last_step is the last step trained (running) or N, the final row (done)
    std::string step = std::to_string(p.status == store::Status::done ? p.last_step : p.last_step + 1);
    if (p.status == store::Status::diverged) step = "@" + std::to_string(p.diverged_at);
    if (p.status == store::Status::pending) step = "-";
    std::printf("%-40s %-9s %10s %10lld %12.6g\n", r.c_str(), store::to_string(p.status).c_str(),
                step.c_str(), static_cast<long long>(p.rows_committed), p.last_loss);
  }
  using store::Status;
  std::printf("%zu runs: done %d, running %d, diverged %d, failed %d, pending %d\n", st.runs().size(),
              count(Status::done), count(Status::running), count(Status::diverged), count(Status::failed),
              count(Status::pending));
  return kComplete;
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
  nmech::comm::prefer_one_sided_that_works_over_tcp();
  int provided = 0;  // the MPI bucket transport reduces on a thread of its own
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  int code = kComplete;
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
      code = app.exit(e) == 0 ? kComplete : kBadInput;
    } catch (const config::ConfigError& e) {
      code = bad_input(e);
    } catch (const data::DataError& e) {
      code = bad_input(e);
    } catch (const store::StoreError& e) {
      code = bad_input(e);
    } catch (const util::IoError& e) {
      std::fprintf(stderr, "nmech: %s; what was committed is kept: rerun the same command to resume\n", e.what());
      code = util::kFailed;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "nmech: internal error: %s\n", e.what());
      code = util::kFailed;
    }
  }
  if (store::hdf5_cannot_finalize()) {
    std::fflush(nullptr);
    std::_Exit(code);
  }
  MPI_Finalize();
  return code;
}
