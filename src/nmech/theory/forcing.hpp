#pragma once
#include <cstddef>
// One update's forcing terms for every set of one family (docs/THEORY.md §4.5), read by the tracer.
// For rescale pairs each entry is the difference in − out. Pointers may be null when the
// optimizer does not need that term (e.g. update_sq without Nesterov).
namespace nmech::theory {

struct Forcing {
  const double* grad_sq = nullptr;              // G_k
  const double* step_sq = nullptr;              // D_k
  const double* velocity_sq = nullptr;          // V_{k+1}  (momentum only)
  const double* update_sq = nullptr;            // |u_k|²  (Nesterov only)
  const double* update_dot_velocity = nullptr;  // ⟨u_k, v_{k+1}⟩ (Nesterov only)
};

}  // namespace nmech::theory
