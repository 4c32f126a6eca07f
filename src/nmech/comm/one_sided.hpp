#pragma once
// Which one-sided component Open MPI uses, chosen before MPI_Init by every program that opens a
// window (nmech itself and the benchmarks). Torch-free, header-only.
#include <cstdlib>

namespace nmech::comm {

// Open MPI 4.1 picks its osc/rdma component for one-sided windows (the sweep's work queue and the
// watchdog's table), and that component cannot make a window between nodes that talk TCP: every
// rank aborts with MPI_ERR_WIN at the first one. Unless the user chose, leave it out: ranks on one
// node still share memory (osc/sm), ranks across nodes use osc/ucx. jobs/README.md says so.
inline void prefer_one_sided_that_works_over_tcp() {
  if (std::getenv("OMPI_MCA_osc") == nullptr) setenv("OMPI_MCA_osc", "^rdma", 0);
}

}  // namespace nmech::comm
