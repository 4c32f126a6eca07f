#pragma once
// Per-set reductions in one pass over a parameter slice (docs/THEORY.md §4.5): double accumulation,
// every quantity of a pass taken from the same read of x and y.
#include <ATen/Tensor.h>

#include <vector>

#include "nmech/symmetry/sets.hpp"

namespace nmech::trace {

// Per-set sums of one pass over pairs (x, y), each named as its Want bit: sum Σx, abs_sum Σ|x|,
// sq Σx², and when y is given y_sq Σy², d_sq Σ(y+λx)², xy Σxy, y_sum Σy. Before a step x = θ_k,
// y = g_k gives S, Σ|θ|, Q, G, D, P, Σg (docs/THEORY.md's glossary); after it x = θ_{k+1}, y = v_{k+1}
// gives Q_{k+1} and V_{k+1}; the Nesterov pass x = u_k, y = v_{k+1} gives |u_k|² and ⟨u_k, v_{k+1}⟩.
struct Sums {
  std::vector<double> sum, abs_sum, sq, y_sq, d_sq, xy, y_sum;
  void reset(std::size_t n);
};

// Which sums a pass needs: a pass computes only those (the tracer's cost is these loops).
enum Want : unsigned {
  kSum = 1, kAbs = 2, kSq = 4, kYSq = 8, kDSq = 16, kXY = 32, kYSum = 64,
  kTranslation = kSum | kAbs | kYSum | kYSq,  // S, L1, Σg, G
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

// One read of a tensor seen as [rows, cols, block] feeding two groupings at once: each row's
// sums into `rs` (the sets of `row`, a slice [1, rows, cols·block]) and each column's into `cs`
// (the sets of `col`, a slice [rows, cols, block]). This is a conv weight's scale sets (its
// output channels) and its rescale sets' outgoing side (its input channels), which would
// otherwise read the tensor twice. The sums equal two separate passes' up to the order of the
// additions (each block of `block` elements is summed first).
void accumulate_rows_and_columns(const symmetry::Slice& row, Sums& rs, unsigned row_want, const symmetry::Slice& col,
                                 Sums& cs, unsigned col_want, const at::Tensor& x, const at::Tensor& y, double lambda);
// Whether accumulate_rows_and_columns can serve this pair of slices.
bool rows_and_columns(const symmetry::Slice& row, const symmetry::Slice& col);

}  // namespace nmech::trace
