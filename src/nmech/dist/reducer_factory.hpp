#pragma once
// Builds a group's reducer from the sweep's settings: "single" (MpiReducer), "buckets" or
// "overlap" (BucketReducer over MPI; NCCL joins for GPU parameters when it is built).
#include <memory>
#include <string>

#include "nmech/dist/comm.hpp"
#include "nmech/dist/reducer.hpp"

namespace nmech::dist {

struct ReducerSettings {
  std::string kind = "overlap";  // "overlap" | "buckets" | "single"
  std::string backend = "mpi";   // "mpi" | "nccl"
  double first_bucket_mb = 1.0, bucket_mb = 25.0;
  int gpu = -1;  // NCCL: this rank's GPU, the one it trains on (train::training_device)
};

std::unique_ptr<Reducer> make_reducer(Comm& group, const ReducerSettings& s);
// The backends this build has, e.g. "mpi" or "mpi, nccl".
std::string built_backends();

}  // namespace nmech::dist
