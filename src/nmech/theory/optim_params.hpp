#pragma once
// The optimizer settings the theory needs (docs/THEORY.md §0), one group for every set.
namespace nmech::theory {

struct OptimParams {
  double lr = 0.1;            // η
  double weight_decay = 0.0;  // λ
  double momentum = 0.0;      // β
  double dampening = 0.0;     // τ (LibTorch: not applied to the first buffer)
  bool nesterov = false;
  bool decoupled = false;     // decoupled weight decay: θ ← (1 − ηλ)θ − ηv

  bool heavy_ball() const { return momentum != 0.0; }
  // ν_k of docs/THEORY.md §0 and §4.1: 1 on the first step (LibTorch copies d_0), 1 − τ afterwards.
  double nu(long step) const { return (momentum == 0.0 || step == 0) ? 1.0 : 1.0 - dampening; }
  // docs/THEORY.md §5.2b: heavy ball with dampening τ is heavy ball in u = v/(1 − τ) at the learning
  // rate η' = η(1 − τ); the continuous model runs on η' (t, γ, ω) and on |u|² = V/(1 − τ)².
  double effective_lr() const { return lr * nu(1); }
  double velocity_scale() const { return 1.0 / (nu(1) * nu(1)); }
};

}  // namespace nmech::theory
