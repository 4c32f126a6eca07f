#pragma once
// The benchmarks' small shared harness (nccl-tests' spirit): repeated timings, the slowest rank
// of each repetition (a collective is as slow as its last rank), medians, one JSON line.
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

namespace nmech::bench {

inline double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// The slowest rank's value.
inline double slowest(double v) {
  MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  return v;
}

inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

inline double quantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[static_cast<size_t>(q * static_cast<double>(v.size() - 1))];
}

// Times several candidates, interleaved: each of warmup + reps repetitions runs every f once, in
// turn, between barriers, so a slow spell of a shared machine falls on all of them alike.
// Returns the slowest rank's seconds per repetition, per candidate.
template <typename F>
std::vector<std::vector<double>> time_interleaved(int warmup, int reps, const std::vector<F>& fs) {
  std::vector<std::vector<double>> out(fs.size());
  for (int i = 0; i < warmup + reps; ++i)
    for (size_t k = 0; k < fs.size(); ++k) {
      MPI_Barrier(MPI_COMM_WORLD);
      const double t0 = now_s();
      fs[k]();
      const double t = slowest(now_s() - t0);
      if (i >= warmup) out[k].push_back(t);
    }
  return out;
}

}  // namespace nmech::bench
