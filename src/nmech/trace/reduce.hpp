#pragma once
// Per-set reductions in one pass over a parameter slice (THEORY.md §4.5): double accumulation,
// every quantity of a pass taken from the same read of x and y.
#include <ATen/Tensor.h>

#include <vector>

#include "nmech/symmetry/sets.hpp"

namespace nmech::trace {

// Per-set sums of one pass over pairs (x, y): Σx, Σ|x|, Σx², and when y is given Σy², Σ(y+λx)²,
// Σxy, Σy. Before a step x = θ_k, y = g_k gives S, L1, Q, G, D, P, Σg.
struct Sums {
  std::vector<double> x, ax, xx, yy, dd, xy, y;
  void reset(std::size_t n);
};

// Which sums a pass needs: a pass computes only those (the tracer's cost is these loops).
enum Want : unsigned {
  kSum = 1, kAbs = 2, kSq = 4, kYSq = 8, kDSq = 16, kXY = 32, kYSum = 64,
  kTranslation = kSum | kAbs | kYSum,      // S, L1, Σg
  kQuadratic = kSq | kYSq | kDSq | kXY,    // Q, G, D, P
  kAfterStep = kSq | kYSq,                 // Q_{k+1}, V_{k+1}
  kUpdate = kSq | kXY,                     // |u|², ⟨u, v⟩
  kThetaOnly = kSum | kAbs | kSq,          // the final row
  kAll = 127,
};

// Adds the slice's elements of x (and y, if the mask reads it) into s at sets
// first_set … first_set + n − 1.
void accumulate(const symmetry::Slice& sl, const at::Tensor& x, const at::Tensor& y, double lambda,
                Sums& s, unsigned want = kAll);

}  // namespace nmech::trace
