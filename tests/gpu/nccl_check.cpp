// The NCCL transport outside LibTorch, on any machine (CI, no GPU needed): the library this
// binary linked reports the NCCL version of the header it was compiled against. The reduction
// itself is checked on a GPU machine by tests/gpu/transport_check.cpp, as every device transport.
#include <mpi.h>
#include <nccl.h>

#include <cstdio>

#include "nmech/nccl/nccl_buckets.hpp"

using namespace nmech::nccl;

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  int code = 0;
  if (nccl_version() != NCCL_VERSION_CODE) {
    std::fprintf(stderr, "linked NCCL %d, header %d\n", nccl_version(), NCCL_VERSION_CODE);
    code = 1;
  } else if (rank == 0) {
    std::printf("NCCL %d linked and matching its header\n", nccl_version());
  }
  MPI_Finalize();
  return code;
}
