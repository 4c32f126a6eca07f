#pragma once
// Where and with what a run was trained: one JSON object per attempt, stored in the run's
// `provenance` dataset (docs/STORE.md).
#include <cstdint>
#include <string>
#include <vector>

namespace nmech::sweep {

struct Attempt {
  std::int64_t attempt = 0;       // 0 for the first start, then one per resume
  std::int64_t first_step = 0;    // the step this attempt started training at
  std::int64_t world_size = 1, group = 0;
  std::vector<int> world_ranks;   // the group's ranks
  std::vector<std::string> hosts; // their hosts
  std::string device = "cpu";     // where each rank trains: "cpu" or "cuda:<index>" (the leader's)
  // Data parallelism (recorded when the group has more than one rank).
  std::string reducer;            // "overlap", "buckets" or "single"
  std::string backend;            // the bucket transport: "mpi" or "nccl"
  double bucket_mb = 0, first_bucket_mb = 0, in_place_mb = 0;
  std::int64_t batch = 0;         // global batch per step
  std::vector<int> local_ranks;   // each rank's index among the ranks of its node: the GPU it takes
};

// nmech version and git commit, LibTorch, MPI, HDF5 and BLAS versions, the attempt, the start
// time, and SLURM_JOB_ID / SLURM_RESTART_COUNT when set.
std::string provenance_json(const Attempt& a);
// A record shortened to at most `bytes` while staying valid JSON: hosts listed once each with
// "ranks_per_host", "world_ranks" as [first, last] ("world_ranks_range": true) and no
// "local_ranks", then the
// data-parallel explanations dropped, then the hosts ("truncated": true).
std::string fit_record(const std::string& json, std::size_t bytes);
// "LibTorch 2.x, Open MPI v4.1.4, HDF5 1.10.8, OpenBLAS ..." for logs.
std::string library_versions();

}  // namespace nmech::sweep
