// Store creation at scale: Store::create and Store::open of a sweep store with N runs of the MLP
// with BatchNorm (synthetic data, 2 steps, a row every step: the layout `nmech sweep` makes for such
// a grid), on the ranks of the launch. One JSON line per size: runs, ranks, seconds to create and
// to open (slowest rank), file size. Torch-free.
//   mpirun -n 2 build/bench/nmech_store_bench [--runs 100,1000,10000] [--dir /var/tmp] [--steps 2]
#include <mpi.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "nmech/config/run_config.hpp"
#include "nmech/config/run_mapping.hpp"
#include "nmech/comm/one_sided.hpp"
#include "nmech/models/wiring.hpp"
#include "nmech/store/store.hpp"
#include "nmech/symmetry/sets.hpp"
#include "nmech/layout/layout.hpp"

using namespace nmech;

namespace {

std::vector<long> parse_sizes(const std::string& s) {
  std::vector<long> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');) out.push_back(std::stol(item));
  return out;
}

double seconds_since(std::chrono::steady_clock::time_point t0, MPI_Comm comm) {
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), slowest = 0;
  MPI_Allreduce(&s, &slowest, 1, MPI_DOUBLE, MPI_MAX, comm);
  return slowest;
}

}  // namespace

int main(int argc, char** argv) {
  comm::prefer_one_sided_that_works_over_tcp();
  MPI_Init(&argc, &argv);
  std::string sizes = "100,1000", dir = "/var/tmp";
  int steps = 2;
  for (int i = 1; i + 1 < argc; ++i) {
    if (!std::strcmp(argv[i], "--runs")) sizes = argv[++i];
    else if (!std::strcmp(argv[i], "--dir")) dir = argv[++i];
    else if (!std::strcmp(argv[i], "--steps")) steps = std::atoi(argv[++i]);
  }
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  const auto cfg = config::parse_run_config(
      "", "<bench>", {"model=\"mlp_bn\"", "dataset=\"synthetic\"", "steps=" + std::to_string(steps), "record_every=1"});
  const std::int64_t channels = 1, classes = 10;  // synthetic data is shaped like Fashion-MNIST
  const auto sets = symmetry::derive_sets(models::make_wiring(config::model_spec(cfg, channels, classes)));
  const std::map<std::string, std::vector<store::SetTable>> tables{{layout::model_key(cfg), layout::set_tables(sets)}};
  for (const long n : parse_sizes(sizes)) {
    std::vector<store::RunLayout> runs;
    runs.reserve(static_cast<size_t>(n));
    for (long r = 0; r < n; ++r) runs.push_back(layout::run_layout(cfg, sets, "run" + std::to_string(r), classes));
    const std::string path = dir + "/nmech-store-bench-" + std::to_string(n) + "-" + std::to_string(size) + ".h5";
    if (rank == 0) std::filesystem::remove(path);
    MPI_Barrier(MPI_COMM_WORLD);
    auto t0 = std::chrono::steady_clock::now();
    store::Store s = store::Store::create(path, MPI_COMM_WORLD, {}, tables, runs);
    s.close();
    const double create_s = seconds_since(t0, MPI_COMM_WORLD);
    t0 = std::chrono::steady_clock::now();
    store::Store again = store::Store::open(path, MPI_COMM_WORLD);
    again.close();
    const double open_s = seconds_since(t0, MPI_COMM_WORLD);
    if (rank == 0) {
      const double mb = static_cast<double>(std::filesystem::file_size(path)) / 1e6;
      std::printf("{\"bench\": \"store\", \"runs\": %ld, \"ranks\": %d, \"steps\": %d, \"create_s\": %.2f, "
                  "\"per_run_ms\": %.2f, \"open_s\": %.2f, \"mbytes\": %.1f}\n",
                  n, size, steps, create_s, 1e3 * create_s / static_cast<double>(n), open_s, mb);
      std::fflush(stdout);
      if (std::getenv("NMECH_BENCH_KEEP") == nullptr) std::filesystem::remove(path);
    }
    MPI_Barrier(MPI_COMM_WORLD);
  }
  MPI_Finalize();
  return 0;
}
