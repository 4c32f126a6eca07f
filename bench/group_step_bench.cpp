// The data-parallel training step: VGG-16-BN width 1/8 on Fashion-MNIST, one thread
// per rank, the global batch split across the ranks of the launch. Median step of the slowest
// rank, and the median time a step waited for gradient reductions after backward (what was not
// hidden behind it). Run it with each reducer to see what overlap hides, and with 1 and 2
// ranks at the same per-rank batch for weak scaling (bench/dist_run.sh does both).
//   mpirun -n 2 build/bench/nmech_group_step_bench --reducer overlap --batch 128 [--trace] [--steps 40]
// --in-place-mb X sets the reducer's in_place_mb (a huge X copies every gradient into buckets).
// --single-thread initialises MPI without threads: the MPI transport then starts each bucket
// with MPI_Iallreduce from the hook and progresses it from later hooks (no communication thread).
#include <torch/torch.h>

#include <cstring>
#include <string>

#include "harness.hpp"
#include "nmech/data/load.hpp"
#include "nmech/config/run_config.hpp"
#include "nmech/comm/one_sided.hpp"
#include "nmech/reduce/reducer_factory.hpp"
#include "nmech/comm/watchdog.hpp"
#include "nmech/train/trainer.hpp"
#include "nmech/train/trainer_state.hpp"
#include "nmech/util/allocator.hpp"

using namespace nmech;

int main(int argc, char** argv) {
  util::keep_freed_memory();
  bool single_thread = false;
  for (int i = 1; i < argc; ++i) single_thread = single_thread || !std::strcmp(argv[i], "--single-thread");
  int provided = 0;  // with MPI_THREAD_MULTIPLE the MPI bucket transport reduces on a thread of its own
  comm::prefer_one_sided_that_works_over_tcp();  // across nodes too (jobs/README.md)
  MPI_Init_thread(&argc, &argv, single_thread ? MPI_THREAD_SINGLE : MPI_THREAD_MULTIPLE, &provided);
  std::string kind = "overlap";
  int steps = 40, warmup = 5;
  std::int64_t batch = 128;
  bool trace = false;
  std::string width = "0.125";
  config::ReducerSettings settings;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--reducer") && i + 1 < argc) kind = argv[++i];
    if (!std::strcmp(argv[i], "--in-place-mb") && i + 1 < argc) settings.in_place_mb = std::atof(argv[++i]);
    if (!std::strcmp(argv[i], "--batch") && i + 1 < argc) batch = std::atoll(argv[++i]);
    if (!std::strcmp(argv[i], "--steps") && i + 1 < argc) steps = std::atoi(argv[++i]);
    if (!std::strcmp(argv[i], "--trace")) trace = true;
    if (!std::strcmp(argv[i], "--width") && i + 1 < argc) width = argv[++i];
  }
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  {
    comm::Watchdog wd(MPI_COMM_WORLD, 600.0);
    comm::Comm group(MPI_COMM_WORLD, 1, wd);
    auto cfg = config::parse_run_config(
        "", "<bench>", {"batch_size=" + std::to_string(batch), "steps=" + std::to_string(steps + warmup), "threads=1",
                      "width=" + width});
    auto data = data::load_dataset(cfg, "<bench>");
    train::Trainer trainer(cfg, data);
    std::unique_ptr<reduce::Reducer> reducer;
    if (size > 1) {
      settings.kind = kind;
      reducer = reduce::make_reducer(group, settings);
      trainer.set_reducer(reducer.get());
    }
    auto& s = trainer.state();
    std::vector<double> step_s, wait_s;
    for (int k = 0; k < steps + warmup; ++k) {
      MPI_Barrier(MPI_COMM_WORLD);
      const double t0 = bench::now_s();
      trainer.step(k, trace);
      if (trace) s.tracer->take_rows();
      const double t = bench::slowest(bench::now_s() - t0);
      const double w = bench::slowest(reducer ? reducer->take_wait_seconds() : 0.0);
      if (k >= warmup) {
        step_s.push_back(t);
        wait_s.push_back(w);
      }
    }
    const double med = bench::median(step_s);
    if (rank == 0)
      std::printf("{\"bench\": \"group_step\", \"impl\": \"nmech\", \"reducer\": \"%s%s\", \"ranks\": %d, \"batch\": %lld, "
                  "\"per_rank_batch\": %lld, \"width\": %s, \"trace\": %s, \"steps\": %d, \"median_ms\": %.2f, "
                  "\"p10_ms\": %.2f, \"p90_ms\": %.2f, \"wait_ms\": %.3f, \"images_per_s\": %.1f}\n",
                  size > 1 ? kind.c_str() : "none", provided != MPI_THREAD_MULTIPLE && size > 1 ? " (no thread)" : "", size, static_cast<long long>(batch),
                  static_cast<long long>(batch / size), width.c_str(), trace ? "true" : "false", steps, 1e3 * med,
                  1e3 * bench::quantile(step_s, 0.1), 1e3 * bench::quantile(step_s, 0.9),
                  1e3 * bench::median(wait_s), static_cast<double>(batch) / med);
    wd.close();
  }
  MPI_Finalize();
  return 0;
}
