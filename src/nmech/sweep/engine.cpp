#include "nmech/sweep/engine.hpp"

#include <cctype>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <array>
#include <filesystem>
#include <map>
#include <memory>
#include <set>

#include "nmech/config/run_mapping.hpp"
#include "nmech/config/sweep_config.hpp"
#include "nmech/comm/broadcast.hpp"
#include "nmech/comm/comm.hpp"
#include "nmech/reduce/reducer_factory.hpp"
#include "nmech/reduce/transports.hpp"
#include "nmech/comm/watchdog.hpp"
#include "nmech/sweep/work_queue.hpp"
#include "nmech/store/store.hpp"
#include "nmech/store/store_lock.hpp"
#include "nmech/plan/plan.hpp"
#include "nmech/plan/plan_memory.hpp"
#include "nmech/sweep/progress_log.hpp"
#include "nmech/sweep/provenance.hpp"
#include "nmech/sweep/signals.hpp"
#include "nmech/data/load.hpp"
#include "nmech/layout/layout.hpp"
#include "nmech/train/device.hpp"
#include "nmech/train/trainer.hpp"
#include "nmech/util/utc.hpp"
#include "nmech/util/build_info.hpp"
#include "nmech/util/exit_codes.hpp"
#include "nmech/util/io_error.hpp"

namespace nmech::sweep {

namespace {

using plan::Plan;
using plan::PlannedRun;
using store::Status;

void check_world(int world_size, const std::string& origin) {
  const char* ntasks = std::getenv("SLURM_NTASKS");
  if (ntasks != nullptr && std::to_string(world_size) != ntasks)
    throw config::ConfigError(origin + ": the MPI world has " + std::to_string(world_size) +
                              " ranks but SLURM_NTASKS is " + ntasks +
                              "; launch with srun (or mpirun inside the allocation) on every task");
}

// Why an existing store cannot take this sweep ("" when it can): not a store, a damaged progress
// record, other training data, or another config (then the keys that differ).
std::string reuse_problem(const std::string& path, const config::SweepConfig& sc, const data::Dataset& data) {
  try {
    auto st = store::Store::open_read(path);
    for (const auto& run : st.runs()) st.progress(run);  // throws on a damaged record
    if (st.file_attr("data_sha256") != data.sha256)
      return path + ": was made from other training data (data_sha256 " + st.file_attr("data_sha256").substr(0, 12) +
             ", now " + data.sha256.substr(0, 12) + "): the data file changed; restore it, or use another -o";
    const std::string old_toml = st.file_attr("config");
    if (st.file_attr("config_sha256") == config::sweep_hash(sc)) return "";
    std::string msg = path + ": holds a sweep of another config; differing keys: ";
    const auto diff = config::differing_keys(old_toml, config::to_toml(sc));
    for (size_t i = 0; i < diff.size(); ++i) msg += (i ? "; " : "") + diff[i];
    return msg + " (use another -o, or remove the store to start over)";
  } catch (const std::exception& e) {
    return e.what();
  }
}

// Rank 0 takes the store's lock (store_lock.hpp) for the whole sweep; every rank learns whether
// it could, and a refusal is bad input everywhere.
store::StoreLock lock_store(const std::string& path, MPI_Comm world, int rank) {
  store::StoreLock lock;
  std::string problem;
  if (rank == 0) {
    std::error_code ec;
    const auto ckpt = std::filesystem::symlink_status(path + ".ckpt", ec);
    if (std::filesystem::exists(ckpt) && !std::filesystem::is_directory(ckpt))
      problem = path + ".ckpt: exists and is not a directory (a sweep keeps its checkpoints there); move it away";
    else
      try {
        lock = store::StoreLock::acquire(path);
      } catch (const store::StoreError& e) {
        problem = e.what();
      }
  }
  problem = comm::broadcast_text(world, problem);
  if (!problem.empty()) throw store::StoreError(problem);
  return lock;
}

store::Store open_or_create(const Plan& plan, const config::SweepConfig& sc, const data::Dataset& data,
                            MPI_Comm world, int rank, double timeout_s) {
  const std::string& path = plan.store_path;
  const int exists = rank == 0 ? static_cast<int>(std::filesystem::exists(path)) : 0;
  int ex = exists;
  MPI_Bcast(&ex, 1, MPI_INT, 0, world);
  if (ex) {
    const std::string problem = comm::broadcast_text(world, rank == 0 ? reuse_problem(path, sc, data) : "");
    if (!problem.empty()) throw store::StoreError(problem);
    return store::Store::open(path, world);
  }
  // One set table per model shape (a sweep may grid over models), shared by its runs.
  std::map<std::string, symmetry::SymmetrySets> sets;
  std::map<std::string, std::vector<store::SetTable>> tables;
  std::vector<store::RunLayout> layouts;
  for (const auto& r : plan.runs) {
    const std::string key = layout::model_key(r.cfg);
    if (sets.count(key) == 0) {
      sets.emplace(key, symmetry::derive_sets(models::make_wiring(config::model_spec(r.cfg, data.channels, data.classes))));
      tables.emplace(key, layout::set_tables(sets.at(key)));
    }
    layouts.push_back(layout::run_layout(r.cfg, sets.at(key), r.name, data.classes));
  }
  store::Attrs attrs = {{"nmech_version", std::string(util::version())},
                        {"git_commit", std::string(util::git_commit())},
                        {"created_utc", util::utc_now_text()},
                        {"kind", std::string("sweep")},
                        {"config", config::to_toml(sc)},
                        {"config_sha256", config::sweep_hash(sc)},
                        {"data_sha256", data.sha256},
                        {"ranks_per_run", sc.ranks_per_run},
                        {"libraries", library_versions()}};
  for (auto& a : layout::file_attrs()) attrs.push_back(a);
  // Test hook (comm/watchdog.hpp): a rank that never joins the creation, as a stopped one would.
  if (comm::test_stall(rank, "store_create"))
    for (;;) pause();
  return store::Store::create(path, world, attrs, tables, layouts, timeout_s);
}

// Indices (into plan.runs) of the runs still to train: not done, not diverged. Failed runs are
// tried again. Read by rank 0 and broadcast.
std::vector<int> runs_to_train(const store::Store& st, const Plan& plan, MPI_Comm world, int rank) {
  std::vector<int> todo;
  if (rank == 0)
    for (size_t i = 0; i < plan.runs.size(); ++i) {
      const Status s = st.progress(plan.runs[i].name).status;
      if (s != Status::done && s != Status::diverged) todo.push_back(static_cast<int>(i));
    }
  int n = static_cast<int>(todo.size());
  MPI_Bcast(&n, 1, MPI_INT, 0, world);
  todo.resize(static_cast<size_t>(n));
  if (n > 0) MPI_Bcast(todo.data(), n, MPI_INT, 0, world);
  return todo;
}

std::string plural(int n, const std::string& word) {
  return std::to_string(n) + " " + word + (n == 1 ? "" : "s");
}

ProgressMode progress_mode(const std::string& m, int world_size) {
  if (m == "lines") return ProgressMode::lines;
  if (m == "bar") return ProgressMode::bar;
  if (m == "none") return ProgressMode::none;
  // Open MPI gives every rank a pseudo-terminal even when its output goes to a file, so a live
  // bar is the default only for a single rank on a terminal outside Slurm.
  const bool tty = isatty(STDOUT_FILENO) && std::getenv("SLURM_JOB_ID") == nullptr;
  return tty && world_size == 1 ? ProgressMode::bar : ProgressMode::lines;
}

std::string upper(std::string s) {
  for (auto& ch : s) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  return s;
}

// How a group sums gradients, for the start line ("" for groups of one rank).
std::string reducer_words(const config::ReducerSettings& r, int ranks) {
  if (ranks < 2) return "";
  if (r.kind == "single") return " (gradients: one all-reduce after backward)";
  char buf[160];
  std::snprintf(buf, sizeof buf, " (gradients: %s buckets of %g MiB, first %g MiB, from %g MiB in place, %s)",
                upper(r.backend).c_str(), r.bucket_mb, r.first_bucket_mb, r.in_place_mb,
                r.kind == "overlap" ? "overlapping backward" : "after backward");
  return buf;
}

// Everything one group needs while it trains runs.
struct Group {
  comm::Comm& comm;
  sweep::WorkQueue& queue;
  comm::Watchdog& watchdog;
  std::unique_ptr<reduce::Reducer> reducer;
  int index = 0, world_size = 1;
  config::ReducerSettings reducer_settings;  // what `reducer` was made with, for provenance
  const data::Dataset* eval_data = nullptr;  // the validation split, when runs evaluate
  std::string device = "cpu";                // where this rank trains (train::training_device)
  bool leader() const { return comm.rank() == 0; }
  std::vector<int> local_of_world;           // every world rank's comm::local_rank
  std::vector<std::string> hosts() const {
    std::vector<std::string> h;
    for (int r : comm.world_ranks()) h.push_back(watchdog.host(r));
    return h;
  }
  std::vector<int> local_ranks() const {
    std::vector<int> l;
    for (int r : comm.world_ranks()) l.push_back(local_of_world.at(static_cast<size_t>(r)));
    return l;
  }
};

// Forwards a caught signal to the shared stop flag (once) and reports whether the sweep stops.
bool stop_requested(sweep::WorkQueue& q) {
  static bool forwarded = false;
  if (stop_signal() != 0 && !forwarded) {
    q.request_stop();
    forwarded = true;
  }
  return q.stop_requested();
}

// What a group's leader adds up over its runs, for the summary line.
struct GroupTally {
  double store_seconds = 0;  // rows and progress records
  double run_seconds = 0;    // in train_one, from the trainer's set-up to the run's last record
  double step_seconds = 0;   // in training steps
  double runs = 0;
  bool stopped = false;
};

// Trains one run with this group; returns false when the sweep is stopping.
bool train_one(Group& g, const PlannedRun& run, const data::Dataset& data, store::Store& st,
               const std::string& checkpoint, std::int64_t checkpoint_every, ProgressLog& log,
               const std::string& label, GroupTally& tally) {
  const auto run_start = std::chrono::steady_clock::now();
  train::Trainer trainer(run.cfg, data, g.device);
  trainer.set_eval_data(g.eval_data);
  if (g.reducer) trainer.set_reducer(g.reducer.get());
  train::RunHooks hooks;
  hooks.leader = g.leader();
  hooks.checkpoint = checkpoint;
  hooks.checkpoint_every = checkpoint_every;
  hooks.stop = [&] {
    const bool s = stop_requested(g.queue);
    return g.reducer ? g.reducer->any(s) : s;
  };
  bool first = true;
  hooks.on_step = [&](std::int64_t k, double loss) {
    g.watchdog.heartbeat();
    if (!g.leader()) return;
    if (first) {
      first = false;
      const reduce::ReducerSettings& rs = g.reducer_settings;
      Attempt a{static_cast<std::int64_t>(st.provenance(run.name).size()), k, g.world_size, g.index,
                g.comm.world_ranks(), g.hosts(), g.device, rs.kind, rs.backend, rs.bucket_mb, rs.first_bucket_mb, rs.in_place_mb,
                run.cfg.batch_size, g.local_ranks()};
      st.write_provenance(run.name, std::min<std::size_t>(a.attempt, store::kProvenanceSlots - 1),
                          provenance_json(a));
      log.start(run.name, label, k, run.cfg.steps);
    }
    log.step(k, loss);
  };
  train::RunOutcome out;
  try {
    out = trainer.run(st, run.name, hooks);
  } catch (const util::IoError&) {  // the disk, not the run: every later write would fail too
    throw;
  } catch (const std::exception& e) {  // this run only: record it and move on
    // In a group of several ranks the error may be one rank's alone, and its partners are
    // already in the run's next collective: only aborting the job (run_sweep) cannot hang.
    if (g.comm.size() > 1) throw;
    if (g.leader()) {
      store::Progress p = st.progress(run.name);
      p.status = Status::failed;
      st.commit(run.name, p);
      log.note(run.name + " (" + label + "): failed: " + e.what());
    }
    return true;
  }
  tally.store_seconds += out.store_seconds;
  tally.step_seconds += out.step_seconds;
  tally.run_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - run_start).count();
  tally.runs += 1;
  if (g.leader()) {
    if (first) log.start(run.name, label, out.resumed_from, run.cfg.steps);
    if (out.stopped)
      log.finish("stopped at step " + std::to_string(out.steps_done) + " (checkpointed)");
    else if (out.status == Status::diverged)
      log.finish("diverged at step " + std::to_string(out.diverged_at));
    else
      log.finish("done");
  }
  return !out.stopped;
}

// Buckets of GPU gradients need a transport that reads device memory (NCCL; without it only
// "single", through host memory, works), and NCCL one GPU per rank of a group: a node with more
// ranks than GPUs could put two of a group's ranks on one GPU, which NCCL refuses at its first
// collective.
void check_gpu_reducer(const config::SweepConfig& sc, const std::string& device, int node_ranks,
                       const std::string& origin) {
  if (device == "cpu" || sc.ranks_per_run < 2 || sc.reducer.kind == "single") return;
  if (reduce::backend_for(/*device_memory=*/true).empty())
    throw config::ConfigError(origin + ": key 'reducer': \"" + sc.reducer.kind +
                              "\" on GPUs needs the NCCL transport, which this nmech was built without "
                              "(built: " + reduce::built_backends() + "); use reducer = \"single\"");
  const int gpus = train::visible_gpus();
  if (node_ranks > gpus)
    throw config::ConfigError(origin + ": key 'reducer': \"" + sc.reducer.kind + "\" over NCCL needs a GPU per rank, and " +
                              std::to_string(node_ranks) + " ranks share a node that has " + std::to_string(gpus) +
                              " GPUs: launch at most one rank per GPU, or use reducer = \"single\"");
}

struct Summary {
  std::array<int, store::kStatusCount> counts{};  // by Status
  std::vector<std::string> diverged;
};

Summary summarise(const store::Store& st, const Plan& plan) {
  Summary s;
  for (const auto& r : plan.runs) {
    const auto p = st.progress(r.name);
    s.counts[static_cast<size_t>(p.status)]++;
    if (p.status == Status::diverged) s.diverged.push_back(r.name + " at step " + std::to_string(p.diverged_at));
  }
  return s;
}

// Everything after the store is open: any error here may be one rank's alone, so it aborts the
// job rather than unwinding into collective closes that the other ranks never join.
int train_all(const SweepOptions& o, const config::SweepConfig& sc, const Plan& plan, const data::Dataset& data,
              const data::Dataset* eval_data, const std::string& device, store::Store& st,
              std::chrono::steady_clock::time_point t0) {
  MPI_Comm world = MPI_COMM_WORLD;
  int rank = 0, size = 1;
  MPI_Comm_rank(world, &rank);
  MPI_Comm_size(world, &size);
  const std::vector<int> todo = runs_to_train(st, plan, world, rank);
  const std::string ckpt_dir = plan.store_path + ".ckpt";
  if (rank == 0) std::filesystem::create_directories(ckpt_dir);

  comm::Watchdog watchdog(world, o.collective_timeout_s);
  sweep::WorkQueue queue(world);
  watchdog.on_poll([&] { stop_requested(queue); });
  const int r = static_cast<int>(sc.ranks_per_run);
  MPI_Comm group_comm;
  MPI_Comm_split(world, rank / r, rank, &group_comm);
  comm::Comm world_c(world, 0, watchdog), group_c(group_comm, 1 + rank / r, watchdog);
  Group g{group_c, queue, watchdog, nullptr, rank / r, size};
  g.eval_data = eval_data;
  g.device = device;
  const int mine = comm::local_rank(world);
  g.local_of_world.resize(static_cast<size_t>(size));
  MPI_Allgather(&mine, 1, MPI_INT, g.local_of_world.data(), 1, MPI_INT, world);  // unwatched: set-up
  if (r > 1) {
    // GPU gradients are summed by NCCL on the GPU the rank trains on ("single" stages through host).
    const bool gpu = device != "cpu";
    const int gpu_index = gpu ? std::stoi(device.substr(device.find(':') + 1)) : -1;
    g.reducer_settings = sc.reducer;
    // The transport for where the gradients live; "single" needs none, so the default stays
    // where none is built (it sums through host memory).
    if (const std::string b = reduce::backend_for(/*device_memory=*/gpu); !b.empty()) g.reducer_settings.backend = b;
    g.reducer_settings.gpu = gpu_index;
    g.reducer = reduce::make_reducer(group_c, g.reducer_settings);
  }
  ProgressLog log(progress_mode(o.progress, size), o.progress_every_s);
  if (rank == 0)
    log.note("sweep " + o.config + ": " + std::to_string(plan.runs.size()) + " runs (" +
             std::to_string(plan.runs.size() - todo.size()) + " already finished), " +
             plural(size / r, "group") + " of " + plural(r, "rank") + reducer_words(g.reducer_settings, r) + ", store " +
             plan.store_path);
  world_c.barrier("sweep_start");  // the checkpoint directory exists for everyone

  GroupTally tally;
  for (;;) {
    std::int64_t next = -1;
    if (g.leader()) next = stop_requested(queue) ? -1 : queue.next();
    group_c.bcast(&next, 1, MPI_INT64_T, 0, "hand_out");
    if (next < 0 || next >= static_cast<std::int64_t>(todo.size())) break;
    const PlannedRun& run = plan.runs[static_cast<size_t>(todo[static_cast<size_t>(next)])];
    const std::string label = "run " + std::to_string(todo[static_cast<size_t>(next)] + 1) + "/" +
                              std::to_string(plan.runs.size()) + ", group " + std::to_string(g.index);
    if (!train_one(g, run, data, st, ckpt_dir + "/" + run.name + ".pt", sc.checkpoint_every, log, label,
                   tally)) {
      tally.stopped = true;
      break;
    }
  }

  // Every group waits here for the others (the watchdog tells waiting from stalling).
  world_c.barrier("sweep_end");
  // Leaders' sums: store writes, time in runs, in steps, runs (a run that failed adds nothing).
  double sums[4] = {0, 0, 0, 0};
  if (g.leader()) sums[0] = tally.store_seconds, sums[1] = tally.run_seconds, sums[2] = tally.step_seconds, sums[3] = tally.runs;
  world_c.allreduce(sums, 4, MPI_DOUBLE, MPI_SUM, "store_time");
  const double store_s = sums[0];
  const bool stopped = world_c.any(tally.stopped || stop_signal() != 0, "stop_tally");
  int code = util::kComplete;
  if (rank == 0) {
    const Summary s = summarise(st, plan);
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    auto count = [&](Status st) { return s.counts[static_cast<size_t>(st)]; };
    const int unfinished = count(Status::pending) + count(Status::running);
    char buf[512];
    std::snprintf(buf, sizeof buf,
                  "sweep summary: %zu runs: done %d, diverged %d, failed %d, unfinished %d | wall %s | "
                  "store writes %.3f s of %.1f group-seconds (%.2f%%) | a run: %.2f ms besides its steps, "
                  "%.2f ms of it store writes",
                  plan.runs.size(), count(Status::done), count(Status::diverged), count(Status::failed), unfinished,
                  format_duration(wall).c_str(), store_s, wall * (size / r),
                  100.0 * store_s / std::max(1e-9, wall * (size / r)), 1e3 * (sums[1] - sums[2]) / std::max(1.0, sums[3]),
                  1e3 * store_s / std::max(1.0, sums[3]));
    log.note(buf);
    for (const auto& d : s.diverged) log.note("diverged: " + d);
    if (stopped && unfinished > 0) {
      log.note("stopped by a signal: " + std::to_string(unfinished) +
               " runs unfinished, checkpoints in " + ckpt_dir + "; rerun the same command to resume");
      code = util::kStopped;
    }
  }
  MPI_Bcast(&code, 1, MPI_INT, 0, world);
  queue.close();
  watchdog.close();
  st.close();
  MPI_Comm_free(&group_comm);
  if (code == util::kComplete && rank == 0) {
    std::error_code ec;
    std::filesystem::remove(ckpt_dir, ec);  // empty once every run has finished
  }
  return code;
}

}  // namespace

int run_sweep(const SweepOptions& o) {
  const auto t0 = std::chrono::steady_clock::now();
  MPI_Comm world = MPI_COMM_WORLD;
  int rank = 0, size = 1;
  MPI_Comm_rank(world, &rank);
  MPI_Comm_size(world, &size);
  install_stop_signals();

  // Set-up: every rank reads the same inputs and so throws the same error.
  const auto sc = config::load_sweep_config(o.config);
  check_world(size, o.config);
  const Plan plan = plan::make_plan(sc, size, o.config, o.store);
  const data::Dataset data = data::load_dataset(plan.runs.front().cfg, o.config);
  for (const auto& r : plan.runs) data::check_dataset(r.cfg, data, o.config);
  std::set<std::string> judged;  // each model shape, batch and dtype of the grid once
  for (const auto& r : plan.runs)
    if (judged.insert(layout::model_key(r.cfg) + "/" + std::to_string(r.cfg.batch_size) + r.cfg.dtype).second)
      plan::check_memory(r.cfg, (r.cfg.batch_size + sc.ranks_per_run - 1) / sc.ranks_per_run, comm::local_size(world), o.config);
  const std::string device = train::training_device(plan.runs.front().cfg, comm::local_rank(world), o.config);
  check_gpu_reducer(sc, device, comm::local_size(world), o.config);
  nmech::data::Dataset eval_data;  // eval_every is one value for the whole sweep
  if (plan.runs.front().cfg.eval_every > 0) eval_data = data::load_eval_dataset(plan.runs.front().cfg);
  const store::StoreLock lock = lock_store(plan.store_path, world, rank);
  store::Store st = open_or_create(plan, sc, data, world, rank, o.collective_timeout_s);
  try {
    return train_all(o, sc, plan, data, eval_data.count > 0 ? &eval_data : nullptr, device, st, t0);
  } catch (const util::IoError& e) {
    std::fprintf(stderr, "nmech: I/O error on world rank %d: %s; committed rows are kept, rerun to resume\n", rank,
                 e.what());
    std::fflush(stderr);
    MPI_Abort(world, util::kFailed);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "nmech: internal error on world rank %d: %s\n", rank, e.what());
    std::fflush(stderr);
    MPI_Abort(world, util::kFailed);
  }
  return util::kFailed;
}

}  // namespace nmech::sweep
