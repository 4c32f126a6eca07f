#pragma once
// How a rank group sums its gradients (docs/REDUCER.md): the one struct of the reducer's settings
// and their defaults, read by the sweep config (keys `reducer` and kReducerSizes'), the reducer
// factory (reduce/reducer_factory.hpp), the engine and the benchmarks. Torch-free.
#include <array>
#include <string>

namespace nmech::config {

// The values of the sweep key `reducer`: buckets started from gradient hooks during backward,
// the same buckets after backward, or one packed all-reduce after backward (the reference).
inline constexpr std::array<const char*, 3> kReducerKinds = {"overlap", "buckets", "single"};

struct ReducerSettings {
  std::string kind = "overlap";  // one of kReducerKinds
  double first_bucket_mb = 1.0;  // DDP's defaults: a small first bucket, so communication starts
  double bucket_mb = 25.0;       // early, then 25 MiB caps
  double in_place_mb = 1.0;      // a gradient this large is summed where it lies, not copied into its bucket
  std::string backend = "mpi";   // the bucket transport, chosen by where gradients live (reduce::backend_for)
  int gpu = -1;                  // a device transport: this rank's GPU, the one it trains on
};

// The sweep keys of the sizes above, each a positive number of MiB.
struct ReducerSize {
  const char* key;
  double ReducerSettings::*member;
};
inline constexpr std::array<ReducerSize, 3> kReducerSizes = {{{"bucket_mb", &ReducerSettings::bucket_mb},
                                                              {"first_bucket_mb", &ReducerSettings::first_bucket_mb},
                                                              {"in_place_mb", &ReducerSettings::in_place_mb}}};

}  // namespace nmech::config
