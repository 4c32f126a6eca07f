#include "nmech/net/net.hpp"

#include <torch/torch.h>

namespace nmech::net {

namespace nn = torch::nn;
using models::Layer;
using models::LayerKind;
using models::Loss;

NetImpl::NetImpl(Wiring wiring, double bn_eps) : wiring_(std::move(wiring)) {
  LayerKind prev = LayerKind::flatten;
  for (const auto& l : wiring_.layers) {
    nn::AnyModule m;
    switch (l.kind) {
      case LayerKind::conv:
        m = nn::AnyModule(register_module(
            l.name, nn::Conv2d(nn::Conv2dOptions(l.in, l.out, l.kernel).padding(l.kernel / 2).bias(l.bias))));
        break;
      case LayerKind::linear:
        m = nn::AnyModule(register_module(l.name, nn::Linear(nn::LinearOptions(l.in, l.out).bias(l.bias))));
        break;
      case LayerKind::batchnorm:
        if (prev == LayerKind::conv)
          m = nn::AnyModule(register_module(l.name, nn::BatchNorm2d(nn::BatchNorm2dOptions(l.out).eps(bn_eps))));
        else
          m = nn::AnyModule(register_module(l.name, nn::BatchNorm1d(nn::BatchNorm1dOptions(l.out).eps(bn_eps))));
        break;
      case LayerKind::dropout:
        m = nn::AnyModule(register_module(l.name, nn::Dropout(nn::DropoutOptions(l.p))));
        break;
      default:
        break;  // functional
    }
    layers_.push_back(std::move(m));
    prev = l.kind;
  }
}

torch::Tensor NetImpl::forward(torch::Tensor x) {
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    const Layer& l = wiring_.layers[i];
    switch (l.kind) {
      case LayerKind::relu: x = torch::relu(x); break;
      case LayerKind::tanh: x = torch::tanh(x); break;
      case LayerKind::gelu: x = torch::gelu(x); break;
      case LayerKind::maxpool: x = torch::max_pool2d(x, 2, 2); break;
      case LayerKind::flatten: x = x.flatten(1); break;
      default: x = layers_[i].forward(x); break;
    }
  }
  return x;
}

torch::Tensor NetImpl::loss(const torch::Tensor& logits, const torch::Tensor& labels) const {
  if (wiring_.loss == Loss::mse)
    return torch::nn::functional::mse_loss(logits, torch::one_hot(labels, wiring_.classes).to(logits.dtype()));
  return torch::nn::functional::cross_entropy(logits, labels);
}

void NetImpl::init_paper() {
  torch::NoGradGuard no_grad;
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    const Layer& l = wiring_.layers[i];
    auto params = named_parameters(true);
    auto w = params.find(l.name + ".weight");
    auto b = params.find(l.name + ".bias");
    switch (l.kind) {
      case LayerKind::conv:
        nn::init::kaiming_normal_(*w, 0.0, torch::kFanOut, torch::kReLU);
        if (b) b->zero_();
        break;
      case LayerKind::linear:
        w->normal_(0.0, 0.01);
        if (b) b->zero_();
        break;
      case LayerKind::batchnorm:
        w->fill_(1.0);
        b->zero_();
        break;
      default:
        break;
    }
  }
}

}  // namespace nmech::net
