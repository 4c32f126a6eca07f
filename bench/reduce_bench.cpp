// All-reduce of a VGG-16-sized gradient: full-width VGG-16-BN's parameters (float32,
// about 60 MB) summed over the ranks of the launch, median of --reps repetitions, the slowest
// rank each time. Compared: one raw MPI_Allreduce of the same bytes already in one buffer (and
// followed by the division that averaging needs); the reducer's transport on ready buckets; the
// bucketed reducer from hand-over to reduced gradients (gradients handed to it last-first as
// backward's hooks would, with the default settings: gradients of 1 MiB or more summed in place,
// the rest copied into DDP's 1 + 25 MiB buckets; then finish(): waits and the division);
// the single-buffer reducer (pack, one all-reduce, divide). Gloo: bench/gloo_allreduce.py.
//   mpirun -n 2 build/bench/nmech_reduce_bench [--reps 20]
#include <torch/torch.h>

#include <cstring>
#include <functional>
#include <string>
#include <memory>

#include "harness.hpp"
#include "nmech/data/load.hpp"
#include "nmech/config/run_config.hpp"
#include "nmech/reduce/bucket_reducer.hpp"
#include "nmech/comm/mpi_buckets.hpp"
#include "nmech/comm/one_sided.hpp"
#include "nmech/reduce/reducer_factory.hpp"
#include "nmech/comm/watchdog.hpp"
#include "nmech/train/trainer.hpp"
#include "nmech/train/trainer_state.hpp"
#include "nmech/util/allocator.hpp"

using namespace nmech;

int main(int argc, char** argv) {
  util::keep_freed_memory();
  int provided = 0;  // the MPI bucket transport reduces on a thread of its own
  comm::prefer_one_sided_that_works_over_tcp();  // across nodes too (jobs/README.md)
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  int reps = 20;
  for (int i = 1; i + 1 < argc; ++i)
    if (!std::strcmp(argv[i], "--reps")) reps = std::atoi(argv[i + 1]);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  torch::set_num_threads(1);
  {
    comm::Watchdog wd(MPI_COMM_WORLD, 600.0);
    comm::Comm group(MPI_COMM_WORLD, 1, wd);
    auto cfg = config::parse_run_config("", "<bench>", {"model=\"vgg16_bn\"", "width=1.0", "dataset=\"synthetic\""});
    auto data = data::load_dataset(cfg, "<bench>");
    train::Trainer trainer(cfg, data);
    std::vector<at::Tensor> params, grads;
    std::int64_t n = 0;
    for (auto& [name, p] : trainer.state().named) {
      params.push_back(p);
      grads.push_back(torch::randn_like(p));
      n += p.numel();
    }
    auto report = [&](const char* what, const std::vector<double>& t, const std::string& extra = "") {
      if (rank == 0)
        std::printf("{\"bench\": \"allreduce\", \"impl\": \"%s\", \"ranks\": %d, \"elements\": %lld, \"mbytes\": %.1f, \"median_ms\": %.2f, "
                    "\"p10_ms\": %.2f, \"p90_ms\": %.2f%s}\n",
                    what, size, static_cast<long long>(n), n * 4 / 1e6, 1e3 * bench::median(t), 1e3 * bench::quantile(t, 0.1),
                    1e3 * bench::quantile(t, 0.9), extra.c_str());
    };
    // Every candidate runs once per repetition, in turn (bench::time_interleaved): single runs
    // of one candidate after another moved by up to 30% between candidates on this VM.
    at::Tensor flat = torch::randn({n});
    auto* f = static_cast<float*>(flat.data_ptr());
    const std::int64_t piece = (25 << 20) / 4;
    std::vector<std::string> names;
    std::vector<std::function<void()>> cases;
    auto add = [&](const char* name, std::function<void()> fn) {
      names.emplace_back(name);
      cases.push_back(std::move(fn));
    };
    add("mpi_allreduce", [&] { MPI_Allreduce(MPI_IN_PLACE, f, static_cast<int>(n), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD); });
    // The same bytes in 25 MiB pieces, one blocking call after another (no reducer around it).
    add("mpi_allreduce_25MiB_pieces", [&] {
      for (std::int64_t o = 0; o < n; o += piece)
        MPI_Allreduce(MPI_IN_PLACE, f + o, static_cast<int>(std::min(piece, n - o)), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    });
    // Averaging as a user would add it: the raw call, then one division pass.
    add("mpi_allreduce_then_divide", [&] {
      MPI_Allreduce(MPI_IN_PLACE, f, static_cast<int>(n), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
      flat.div_(static_cast<double>(size));
    });
    // The reducer's transport alone on the same four buckets, already filled: thread hand-off,
    // the all-reduces, the watched waits; no copies into buckets. Without, then with, the
    // division each bucket gets on the thread right after its sum.
    comm::MpiBuckets transport(group);
    transport.reserve(4);
    const std::vector<std::int64_t> edges{0, (1 << 20) / 4, (1 << 20) / 4 + piece, (1 << 20) / 4 + 2 * piece, n};
    auto run_transport = [&](double divisor) {
      for (int b = 0; b < 4; ++b)
        transport.start(b, {{f + edges[b], static_cast<std::size_t>(edges[b + 1] - edges[b])}}, comm::ElementType::f32, divisor,
                        "transport bucket " + std::to_string(b));
      for (int b = 0; b < 4; ++b) transport.wait(b);
    };
    add("nmech_transport", [&] { run_transport(1.0); });
    add("nmech_transport_divided", [&] { run_transport(static_cast<double>(size)); });
    // The reducers end to end: gradients handed over last-first, as backward's hooks would.
    std::vector<std::unique_ptr<reduce::Reducer>> reducers;
    std::vector<double> waits, busy;  // the bucketed reducer's, per repetition
    std::size_t buckets = 0, in_place = 0, in_place_elements = 0;
    // nmech_buckets_copied: every gradient copied into its bucket (in place from 1 TiB: none),
    // as before gradients were summed in place.
    for (const char* kind : {"overlap", "copied", "single"}) {
      const bool copied = !std::strcmp(kind, "copied");
      config::ReducerSettings settings{copied ? "overlap" : kind};
      if (copied) settings.in_place_mb = 1 << 20;
      reducers.push_back(reduce::make_reducer(group, settings));
      reduce::Reducer& reducer = *reducers.back();
      reducer.attach(params);
      auto* bucketed = dynamic_cast<reduce::BucketReducer*>(&reducer);
      if (bucketed && !copied) {
        buckets = bucketed->plan().buckets.size();
        for (const auto& b : bucketed->plan().buckets)
          for (const auto& s : b.slots) in_place += s.in_place ? 1 : 0, in_place_elements += s.in_place ? s.count : 0;
      }
      add(copied ? "nmech_buckets_copied" : bucketed ? "nmech_buckets" : "nmech_single", [&, bucketed, copied] {
        std::vector<double> scalars{1.0};
        reducer.prepare(static_cast<double>(size));
        for (int i = static_cast<int>(params.size()) - 1; i >= 0; --i) {
          // As AccumulateGrad leaves it: the gradient backward made is the parameter's .grad.
          params[static_cast<size_t>(i)].mutable_grad() = grads[static_cast<size_t>(i)];
          if (bucketed) bucketed->ready(i);
        }
        reducer.finish(scalars);
        if (!bucketed || copied) return;
        waits.push_back(reducer.take_wait_seconds());
        busy.push_back(bucketed->backend().take_busy_seconds());
      });
    }
    constexpr int warmup = 3;
    const auto times = bench::time_interleaved(warmup, reps, cases);
    waits.erase(waits.begin(), waits.begin() + warmup);
    busy.erase(busy.begin(), busy.begin() + warmup);
    for (size_t k = 0; k < cases.size(); ++k) {
      // wait_ms: blocked in finish(); allreduce_ms: on the thread, summing and dividing.
      char extra[240] = "";
      if (names[k] == "nmech_buckets")
        std::snprintf(extra, sizeof extra,
                      ", \"buckets\": %zu, \"in_place\": %zu, \"in_place_mbytes\": %.1f, \"wait_ms\": %.2f, \"allreduce_ms\": %.2f",
                      buckets, in_place, in_place_elements * 4 / 1e6, 1e3 * bench::median(waits), 1e3 * bench::median(busy));
      report(names[k].c_str(), times[k], extra);
    }
    wd.close();
  }
  MPI_Finalize();
  return 0;
}
