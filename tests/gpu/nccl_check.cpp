// The NCCL transport outside LibTorch. Always (CI, no GPU needed): the library this binary
// linked reports the NCCL version of the header it was compiled against. With --reduce (a GPU
// machine): each rank's buckets hold known values on its GPU; after the reduction every
// element must equal the exact sum over the group, for float32 and float64, bucket by bucket.
#include <cuda_runtime.h>
#include <mpi.h>
#include <nccl.h>

#include <cstdio>
#include <cstring>
#include <vector>

#include "nmech/comm/comm.hpp"
#include "nmech/nccl/nccl_buckets.hpp"
#include "nmech/comm/watchdog.hpp"

using namespace nmech::comm;
using namespace nmech::nccl;

namespace {

template <typename T>
int check_buckets(NcclBuckets& nccl, int rank, int size, ElementType type) {
  const std::vector<std::size_t> counts{1000, 1u << 20, 3};  // three buckets in flight at once
  std::vector<T*> dev(counts.size());
  for (size_t b = 0; b < counts.size(); ++b) {
    std::vector<T> host(counts[b]);
    for (size_t i = 0; i < host.size(); ++i) host[i] = static_cast<T>((i % 97) * 0.25 + rank);  // exact in float
    cudaMalloc(reinterpret_cast<void**>(&dev[b]), counts[b] * sizeof(T));
    cudaMemcpy(dev[b], host.data(), counts[b] * sizeof(T), cudaMemcpyHostToDevice);
  }
  nccl.reserve(static_cast<int>(counts.size()));
  for (size_t b = 0; b < counts.size(); ++b)
    nccl.start(static_cast<int>(b), dev[b], counts[b], type, 1.0, "check bucket " + std::to_string(b));
  int bad = 0;
  for (size_t b = 0; b < counts.size(); ++b) {
    nccl.wait(static_cast<int>(b));
    std::vector<T> host(counts[b]);
    cudaMemcpy(host.data(), dev[b], counts[b] * sizeof(T), cudaMemcpyDeviceToHost);
    for (size_t i = 0; i < host.size(); ++i) {
      const T want = static_cast<T>(size * ((i % 97) * 0.25) + size * (size - 1) / 2.0);
      if (host[i] != want && bad++ < 5)
        std::fprintf(stderr, "bucket %zu element %zu: %g, want %g\n", b, i, double(host[i]), double(want));
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
  int code = 0;
  if (nccl_version() != NCCL_VERSION_CODE) {
    std::fprintf(stderr, "linked NCCL %d, header %d\n", nccl_version(), NCCL_VERSION_CODE);
    code = 1;
  } else if (rank == 0) {
    std::printf("NCCL %d linked and matching its header\n", nccl_version());
  }
  if (argc > 1 && !std::strcmp(argv[1], "--reduce") && code == 0) {
    Watchdog wd(MPI_COMM_WORLD, 60.0);
    {
      Comm world(MPI_COMM_WORLD, 0, wd);
      NcclBuckets nccl(world);
      const int bad = check_buckets<float>(nccl, rank, size, ElementType::f32) +
                      check_buckets<double>(nccl, rank, size, ElementType::f64);
      std::printf("rank %d GPU %d: %d wrong elements of the float32 and float64 buckets\n", rank, nccl.device(), bad);
      code = bad == 0 ? 0 : 1;
    }
    wd.close();
  }
  MPI_Finalize();
  return code;
}
