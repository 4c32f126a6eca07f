// Every device-memory bucket transport the build has (reduce::backends_for(true)), on a GPU
// machine: each rank's buckets hold known values on its GPU; after the reduction every element
// must equal the exact sum over the group, for float32 and float64, bucket by bucket, three
// buckets in flight at once. A new device transport is checked here without a line of its own.
// Exit status 1 on any wrong element, or if the build has no device transport.
#include <cuda_runtime.h>
#include <mpi.h>

#include <cstdio>
#include <string>
#include <vector>

#include "nmech/comm/comm.hpp"
#include "nmech/comm/watchdog.hpp"
#include "nmech/reduce/transports.hpp"

using namespace nmech;
using comm::ElementType;

namespace {

template <typename T>
int check_buckets(comm::BucketBackend& t, int rank, int size, ElementType type) {
  const std::vector<std::size_t> counts{1000, 1u << 20, 3};
  std::vector<T*> dev(counts.size());
  for (std::size_t b = 0; b < counts.size(); ++b) {
    std::vector<T> host(counts[b]);
    for (std::size_t i = 0; i < host.size(); ++i) host[i] = static_cast<T>((i % 97) * 0.25 + rank);  // exact in float
    cudaMalloc(reinterpret_cast<void**>(&dev[b]), counts[b] * sizeof(T));
    cudaMemcpy(dev[b], host.data(), counts[b] * sizeof(T), cudaMemcpyHostToDevice);
  }
  t.reserve(static_cast<int>(counts.size()));
  for (std::size_t b = 0; b < counts.size(); ++b)
    t.start(static_cast<int>(b), {{dev[b], counts[b]}}, type, 1.0, "check bucket " + std::to_string(b));
  int bad = 0;
  for (std::size_t b = 0; b < counts.size(); ++b) {
    t.wait(static_cast<int>(b));
    std::vector<T> host(counts[b]);
    cudaMemcpy(host.data(), dev[b], counts[b] * sizeof(T), cudaMemcpyDeviceToHost);
    for (std::size_t i = 0; i < host.size(); ++i) {
      const T want = static_cast<T>(size * ((i % 97) * 0.25) + size * (size - 1) / 2.0);
      if (host[i] != want && bad++ < 5)
        std::fprintf(stderr, "%s bucket %zu element %zu: %g, want %g\n", t.name(), b, i, double(host[i]), double(want));
    }
    cudaFree(dev[b]);
  }
  return bad;
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  const auto names = reduce::backends_for(/*device_memory=*/true);
  int code = names.empty() ? 1 : 0;
  if (names.empty() && rank == 0) std::fprintf(stderr, "no device transport built (built: %s)\n", reduce::built_backends().c_str());
  comm::Watchdog wd(MPI_COMM_WORLD, 60.0);
  {
    comm::Comm world(MPI_COMM_WORLD, 0, wd);
    for (const std::string& name : names) {
      auto t = reduce::make_backend(name, world, /*gpu=*/-1);
      const int bad = check_buckets<float>(*t, rank, size, ElementType::f32) +
                      check_buckets<double>(*t, rank, size, ElementType::f64);
      std::printf("rank %d, %s: %d wrong elements of the float32 and float64 buckets\n", rank, name.c_str(), bad);
      if (bad != 0) code = 1;
    }
  }
  wd.close();
  MPI_Finalize();
  return code;
}
