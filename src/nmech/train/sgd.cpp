#include "nmech/train/sgd.hpp"

#include <ATen/ATen.h>

namespace nmech::train {

Sgd::Sgd(std::vector<at::Tensor> params, theory::OptimParams opt)
    : params_(std::move(params)), buffers_(params_.size()), updates_(params_.size()), opt_(opt) {}

void Sgd::zero_grad() {
  for (auto& p : params_)
    if (p.grad().defined()) p.mutable_grad().zero_();
}

void Sgd::step() {
  at::NoGradGuard no_grad;
  const double lr = opt_.lr, wd = opt_.weight_decay, beta = opt_.momentum;
  for (std::size_t i = 0; i < params_.size(); ++i) {
    at::Tensor& p = params_[i];
    const at::Tensor& g = p.grad();
    // d_k = g_k + λθ_k (coupled); decoupled decay leaves the gradient alone.
    at::Tensor d = (wd != 0.0 && !opt_.decoupled) ? g.add(p, wd) : g;
    at::Tensor u = d;
    if (beta != 0.0) {
      if (steps_ == 0) {
        buffers_[i] = d.clone();  // LibTorch: the first buffer is d_0, undampened
      } else {
        buffers_[i].mul_(beta).add_(d, opt_.nu(steps_));
      }
      u = opt_.nesterov ? d.add(buffers_[i], beta) : buffers_[i];
      if (opt_.nesterov) updates_[i] = u;
    }
    if (opt_.decoupled && wd != 0.0) p.mul_(1.0 - lr * wd);
    p.add_(u, -lr);
  }
  ++steps_;
}

}  // namespace nmech::train
