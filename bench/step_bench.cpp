// Training-step benchmark: VGG-16-BN width 1/8, batch 128, 32×32, one thread,
// Fashion-MNIST; median step time with the tracer on or off, and peak RSS of the process.
// One mode per process so peak memory is that mode's own: run it twice (bench/run.sh).
// On a GPU: --device cuda --image 3,64,200 --set width=1 --set batch_size=256 ...
// trains on synthetic images of that shape and reports images per second (bench/gpu.sh).
#include <sys/resource.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>

#include "nmech/data/load.hpp"
#include "nmech/config/run_config.hpp"
#include "nmech/data/dataset.hpp"
#include "nmech/train/device.hpp"
#include "nmech/train/trainer.hpp"
#include "nmech/train/trainer_state.hpp"
#include "nmech/util/allocator.hpp"

using namespace nmech;

int main(int argc, char** argv) {
  util::keep_freed_memory();
  bool trace = true;
  int steps = 60, warmup = 5;
  std::string dtype = "float32", device = "cpu";
  std::vector<std::string> sets;
  long channels = 0, size = 0, classes = 0;  // --image C,S,K: synthetic images, not Fashion-MNIST
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--no-trace")) trace = false;
    if (!std::strcmp(argv[i], "--steps") && i + 1 < argc) steps = std::atoi(argv[++i]);
    if (!std::strcmp(argv[i], "--dtype") && i + 1 < argc) dtype = argv[++i];
    if (!std::strcmp(argv[i], "--device") && i + 1 < argc) device = argv[++i];
    if (!std::strcmp(argv[i], "--set") && i + 1 < argc) sets.push_back(argv[++i]);
    if (!std::strcmp(argv[i], "--image") && i + 1 < argc) std::sscanf(argv[++i], "%ld,%ld,%ld", &channels, &size, &classes);
  }
  sets.insert(sets.begin(), {"dtype=\"" + dtype + "\"", "steps=" + std::to_string(steps + warmup), "device=" + device});
  auto cfg = config::parse_run_config("", "<bench>", sets);
  auto data = channels > 0 ? data::make_synthetic(std::max<std::int64_t>(4 * cfg.batch_size, 1024), channels, size, classes, 12345)
                           : data::load_dataset(cfg, "<bench>");
  const std::string where = train::training_device(cfg, 0, "<bench>");
  const bool gpu = where != "cpu";
  auto sync = [gpu] {
    if (gpu) torch::cuda::synchronize();
  };
  train::Trainer trainer(cfg, data, where);
  auto& s = trainer.state();
  std::vector<double> ms;
  double total_s = 0;  // the measured steps end to end, the GPU's queue drained at both ends
  for (int k = 0; k < steps + warmup; ++k) {
    if (k == warmup) sync();
    const auto t0 = std::chrono::steady_clock::now();
    trainer.step(k, trace);
    if (trace) s.tracer->take_rows();  // rows would go to the store; drop them here
    if (k + 1 == steps + warmup) sync();
    const auto t1 = std::chrono::steady_clock::now();
    if (k >= warmup) {
      ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
      total_s += std::chrono::duration<double>(t1 - t0).count();
    }
  }
  // The tracer's own cost, timed alone on the final state (reads and predictor updates of one
  // step): step-to-step noise on this machine (±5%) hides a 1% difference in whole-step medians.
  std::vector<double> tr;
  if (trace)
    for (int k = steps + warmup; k < 2 * (steps + warmup); ++k) {
      const auto t0 = std::chrono::steady_clock::now();
      s.tracer->before_step(k, 0.0, 0.0);
      s.tracer->after_step(k, s.sgd->buffers(), s.sgd->updates());
      s.tracer->take_rows();
      tr.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
  std::sort(tr.begin(), tr.end());
  std::sort(ms.begin(), ms.end());
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  std::printf("{\"impl\": \"cpp\", \"trace\": %s, \"dtype\": \"%s\", \"device\": \"%s\", \"batch\": %lld, "
              "\"steps\": %d, \"median_ms\": %.3f, \"p10_ms\": %.3f, \"p90_ms\": %.3f, \"images_per_s\": %.1f, "
              "\"tracer_ms\": %.3f, \"peak_rss_mb\": %.1f, \"threads\": %d}\n",
              trace ? "true" : "false", dtype.c_str(), where.c_str(), static_cast<long long>(cfg.batch_size), steps,
              ms[ms.size() / 2], ms[ms.size() / 10], ms[ms.size() * 9 / 10],
              static_cast<double>(cfg.batch_size) * steps / total_s, tr.empty() ? 0.0 : tr[tr.size() / 2],
              ru.ru_maxrss / 1024.0, torch::get_num_threads());
  return 0;
}
