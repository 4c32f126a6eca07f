// The bucketed reducer against a plain all-reduce, on 2, 3 and 4 real MPI ranks, over every
// host-memory bucket transport the build has (reduce::backends_for): a new one is checked here
// without a line of its own.
// Each rank back-propagates its own shard of a batch through a small VGG-11-BN in float64;
// the reference is one MPI_Allreduce of the flat local gradient divided by the global batch.
// For bucket caps from a few KiB to more than the model, with and without overlap, and the
// single-buffer reducer, every reduced gradient must equal the reference bitwise or within
// 1e-15 relative (to the largest element). One rank with an empty shard (no backward) is
// covered too. The comparison shows its teeth: one element off by one ulp is caught.
// With --single-thread, MPI is initialised without thread support, so the MPI transport takes
// its fallback (MPI_Iallreduce progressed from the hooks, divided in wait()).
// Prints one line per case on rank 0; exit status 1 on any failure.
#include <mpi.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdio>
#include <string>

#include "nmech/data/load.hpp"
#include "nmech/config/run_config.hpp"
#include "nmech/reduce/bucket_reducer.hpp"
#include "nmech/comm/comm.hpp"
#include "nmech/comm/mpi_buckets.hpp"
#include "nmech/reduce/reducer_factory.hpp"
#include "nmech/reduce/transports.hpp"
#include "nmech/comm/watchdog.hpp"
#include "nmech/train/trainer.hpp"
#include "nmech/train/trainer_state.hpp"

using namespace nmech;

namespace {

struct Diff {
  std::int64_t unequal = 0;
  double rel = 0;
};

Diff compare(const at::Tensor& got, const at::Tensor& want) {
  const double scale = want.abs().max().item<double>();
  return {got.ne(want).sum().item<std::int64_t>(), (got - want).abs().max().item<double>() / scale};
}

at::Tensor flat_grads(const std::vector<at::Tensor>& params) {
  std::vector<at::Tensor> g;
  for (const auto& p : params) g.push_back(p.grad().defined() ? p.grad().reshape({-1}) : torch::zeros({p.numel()}, p.options()));
  return torch::cat(g);
}

// Backward of this rank's shard (none when empty): the summed loss, as the trainer does.
void backward(train::Trainer& t, const data::Dataset& d, const std::vector<std::int64_t>& shard) {
  if (shard.empty()) return;
  auto& s = t.state();
  auto batch = data::make_batch(d, shard, s.cfg.input_size, s.dtype);
  auto loss = s.net->loss(s.net->forward(batch.images), batch.labels) * static_cast<double>(shard.size());
  loss.backward();
}

}  // namespace

int main(int argc, char** argv) {
  const bool single_thread = argc > 1 && std::string(argv[1]) == "--single-thread";
  int provided = 0;  // the MPI bucket transport reduces on a thread of its own, if it may
  MPI_Init_thread(&argc, &argv, single_thread ? MPI_THREAD_SINGLE : MPI_THREAD_MULTIPLE, &provided);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  torch::set_num_threads(1);
  int failures = 0;
  {
    comm::Watchdog wd(MPI_COMM_WORLD, 60.0);
    comm::Comm group(MPI_COMM_WORLD, 1, wd);
    auto cfg = config::parse_run_config("", "<check>",
                                        {"model=\"vgg11_bn\"", "width=0.125", "dtype=\"float64\"", "dataset=\"synthetic\""});
    auto data = data::load_dataset(cfg, "<check>");
    train::Trainer trainer(cfg, data);
    std::vector<at::Tensor> params;
    for (auto& [name, p] : trainer.state().named) params.push_back(p);
    const std::int64_t global = 24;
    struct Case {
      std::string kind;
      double first_mb, bucket_mb;
      bool empty_last;         // the last rank's shard is empty
      double in_place_mb = 0;  // 0: the default (no gradient of this model is that large)
    };
    // 1/64 MiB in place: the model's 8 largest gradients are summed where they lie.
    const std::vector<Case> cases{{"overlap", 1.0 / 1024, 4.0 / 1024, false}, {"overlap", 1.0 / 64, 1.0 / 16, false},
                                  {"overlap", 1, 25, false},                  {"overlap", 1024, 1024, false},
                                  {"buckets", 1.0 / 1024, 4.0 / 1024, false}, {"buckets", 1, 25, false},
                                  {"single", 0, 0, false},                    {"overlap", 1.0 / 64, 1.0 / 16, true},
                                  {"overlap", 1, 25, false, 1.0 / 64},        {"buckets", 1, 25, false, 1.0 / 64},
                                  {"overlap", 1.0 / 1024, 4.0 / 1024, true, 1.0 / 64}};
    if (reduce::backends_for(false).empty()) ++failures;  // nothing to check is a failure
    for (const std::string& backend : reduce::backends_for(false)) {
      for (const Case& c : cases) {
        std::vector<std::int64_t> shard;
        const int ranks_with_data = c.empty_last ? size - 1 : size;
        if (rank < ranks_with_data)
          for (std::int64_t i = global * rank / ranks_with_data; i < global * (rank + 1) / ranks_with_data; ++i)
            shard.push_back((i * 37) % data.count);
        // Reference: local gradient, one plain all-reduce, divided by the global batch.
        for (auto& p : params) p.mutable_grad() = at::Tensor();
        backward(trainer, data, shard);
        at::Tensor want = flat_grads(params).contiguous();
        MPI_Allreduce(MPI_IN_PLACE, want.data_ptr(), static_cast<int>(want.numel()), MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
        want.div_(static_cast<double>(global));
        // The reducer on the same shard.
        config::ReducerSettings s{c.kind};
        s.backend = backend;
        if (c.first_mb > 0) s.first_bucket_mb = c.first_mb, s.bucket_mb = c.bucket_mb;  // else the defaults
        if (c.in_place_mb > 0) s.in_place_mb = c.in_place_mb;
        auto reducer = reduce::make_reducer(group, s);
        reducer->attach(params);
        reducer->prepare(static_cast<double>(global));
        backward(trainer, data, shard);
        std::vector<double> scalars{static_cast<double>(shard.size())};
        reducer->finish(scalars);
        const Diff d = compare(flat_grads(params), want);
        bool ok = d.rel <= 1e-15 && scalars[0] == static_cast<double>(global);
        // Overlap means every bucket started from a hook, during backward; without it, none did.
        std::string started;
        if (auto* b = dynamic_cast<reduce::BucketReducer*>(reducer.get())) {
          const int n = static_cast<int>(b->plan().buckets.size()), early = b->started_in_backward();
          int in_place = 0;
          for (const auto& bucket : b->plan().buckets)
            for (const auto& slot : bucket.slots) in_place += slot.in_place ? 1 : 0;
          started = ", " + std::to_string(early) + "/" + std::to_string(n) + " buckets started in backward, " +
                    std::to_string(in_place) + " gradients in place";
          ok = ok && (in_place > 0) == (c.in_place_mb > 0);  // the in-place cases do test it
          if (!shard.empty()) ok = ok && early == (c.kind == "overlap" ? n : 0);
          // The transport under test is the one asked for; MPI's runs on its thread where it may.
          const auto* mpi = dynamic_cast<const comm::MpiBuckets*>(&b->backend());
          ok = ok && backend == b->backend().name() && (!mpi || mpi->threaded() == !single_thread);
        }
        failures += ok ? 0 : 1;
        if (rank == 0)
          std::printf("%d ranks, %-7s %s, first %9.6f MiB, buckets %9.6f MiB%s: %lld elements differ, max rel %.3g%s (%s)\n",
                      size, c.kind.c_str(), backend.c_str(), c.first_mb, c.bucket_mb, c.empty_last ? ", last shard empty" : "",
                      static_cast<long long>(d.unequal), d.rel, started.c_str(), ok ? "ok" : "FAIL");
        // Teeth: the same comparison catches one element one ulp away.
        at::Tensor off = want.clone();
        off[7] = std::nextafter(off[7].item<double>(), 1e300);
        if (compare(off, want).unequal != 1) ++failures;
      }
    }
    int all = 0;
    MPI_Allreduce(&failures, &all, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    failures = all;
    wd.close();
  }
  MPI_Finalize();
  if (rank == 0) std::printf("%s\n", failures == 0 ? "all reductions match" : "FAILED");
  return failures == 0 ? 0 : 1;
}
