#pragma once
// The network a Wiring describes, as a LibTorch module. Parameter names are "<layer>.weight" and
// "<layer>.bias", exactly the names the symmetry sets use.
#include <torch/nn/module.h>
#include <torch/nn/modules/container/any.h>

#include "nmech/models/wiring.hpp"

namespace nmech::net {

using models::Wiring;

class NetImpl : public torch::nn::Module {
 public:
  NetImpl(Wiring wiring, double bn_eps);
  torch::Tensor forward(torch::Tensor x);
  // Mean loss of the wiring's kind (softmax cross-entropy, or MSE against one-hot targets).
  torch::Tensor loss(const torch::Tensor& logits, const torch::Tensor& labels) const;
  // The paper's initialisation (docs/THEORY.md §9): conv Kaiming normal (fan_out, ReLU), conv bias 0,
  // BN weight 1 / bias 0, Linear N(0, 0.01²), bias 0. Uses torch's global generator.
  void init_paper();
  const Wiring& wiring() const { return wiring_; }

 private:
  Wiring wiring_;
  std::vector<torch::nn::AnyModule> layers_;  // empty AnyModule for functional layers
};

TORCH_MODULE(Net);

}  // namespace nmech::net
