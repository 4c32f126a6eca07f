#pragma once
// SGD with exactly the semantics docs/THEORY.md §0 states (LibTorch's, made explicit): coupled L2
// weight decay d = g + λθ, heavy-ball buffer v_{k+1} = βv_k + (1 − τ)d_k with v_1 = d_0,
// Nesterov u = d + βv_{k+1}, or decoupled decay θ ← (1 − ηλ)θ − ηv. Our own optimizer so the
// tracer can read the buffer and the update direction, and the gradient is never changed in place.
#include <ATen/Tensor.h>

#include <vector>

#include "nmech/theory/optim_params.hpp"

namespace nmech::train {

class Sgd {
 public:
  Sgd(std::vector<at::Tensor> params, theory::OptimParams opt);
  void step();  // reads each parameter's .grad()
  void zero_grad();

  const theory::OptimParams& options() const { return opt_; }
  long steps() const { return steps_; }
  void set_steps(long s) { steps_ = s; }
  // v_{k+1} after step k (undefined when β = 0).
  const std::vector<at::Tensor>& buffers() const { return buffers_; }
  std::vector<at::Tensor>& buffers() { return buffers_; }
  // u_k of the last step, kept only for Nesterov (the tracer needs |u|² and ⟨u, v⟩).
  const std::vector<at::Tensor>& updates() const { return updates_; }
  const std::vector<at::Tensor>& params() const { return params_; }

 private:
  std::vector<at::Tensor> params_, buffers_, updates_;
  theory::OptimParams opt_;
  long steps_ = 0;
};

}  // namespace nmech::train
