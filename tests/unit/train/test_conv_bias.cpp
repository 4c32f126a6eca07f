// The conv bias in front of a BatchNorm (docs/THEORY.md §1a, §6): its gradient is exactly zero (BN
// subtracts the batch mean), so under weight decay it follows the translation recurrence §4.1.
// Started nonzero here (the paper's init is zero, which would make the check trivial).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "nmech/data/load.hpp"
#include "nmech/theory/exact.hpp"
#include "nmech/train/trainer.hpp"
#include "nmech/train/trainer_state.hpp"

using namespace nmech;

namespace {

struct BiasTrace {
  double worst_grad_ratio = 0;    // max_k |g_b| / |g_W| over conv layers
  double worst_exact = 0;         // max_k max_c |b_k − pred_k| / |b_0|
  double worst_sgd_formula = 0;   // the same against (1 − ηλ)^k b_0 (wrong under momentum)
};

BiasTrace trace_biases(const std::string& dtype, double momentum, int steps) {
  auto cfg = config::parse_run_config("", "<test>", {"model=\"vgg11_bn\"", "width=0.0625", "dataset=\"synthetic\"",
                                                     "batch_size=16", "dtype=\"" + dtype + "\"",
                                                     "momentum=" + std::to_string(momentum),
                                                     "steps=" + std::to_string(steps)});
  auto data = data::load_dataset(cfg, "<test>");
  train::Trainer trainer(cfg, data);
  auto& s = trainer.state();
  std::vector<at::Tensor> biases, weights;
  {
    torch::NoGradGuard ng;
    for (auto& [name, p] : s.named)
      if (name.rfind("conv", 0) == 0 && name.find(".bias") != std::string::npos) {
        p.uniform_(-0.5, 0.5);
        biases.push_back(p);
        weights.push_back(s.net->named_parameters()[name.substr(0, name.find('.')) + ".weight"]);
      }
  }
  std::vector<double> b0;
  for (auto& b : biases) {
    auto d = b.to(torch::kDouble).contiguous();
    b0.insert(b0.end(), d.data_ptr<double>(), d.data_ptr<double>() + d.numel());
  }
  theory::ExactTranslation pred(s.opt, b0);  // each bias element is its own translation set
  BiasTrace t;
  for (int k = 0; k < steps; ++k) {
    trainer.step(k);
    for (std::size_t l = 0; l < biases.size(); ++l)
      t.worst_grad_ratio = std::max(t.worst_grad_ratio,
                                    biases[l].grad().norm().item<double>() / weights[l].grad().norm().item<double>());
    pred.advance();
    std::size_t i = 0;
    const double sgd = std::pow(1 - s.opt.lr * s.opt.weight_decay, k + 1);
    for (auto& b : biases) {
      auto d = b.to(torch::kDouble).contiguous();
      for (std::int64_t c = 0; c < d.numel(); ++c, ++i) {
        const double v = d.data_ptr<double>()[c];
        t.worst_exact = std::max(t.worst_exact, std::abs(v - pred.value()[i]) / std::abs(b0[i]));
        t.worst_sgd_formula = std::max(t.worst_sgd_formula, std::abs(v - sgd * b0[i]) / std::abs(b0[i]));
      }
    }
  }
  return t;
}

}  // namespace

TEST(ConvBias, ZeroGradientAndTranslationDecayFloat64) {
  auto t = trace_biases("float64", 0.9, 40);
  std::printf("float64: |g_b|/|g_W| %.3e, exact decay %.3e, SGD formula %.3e\n", t.worst_grad_ratio,
              t.worst_exact, t.worst_sgd_formula);
  EXPECT_LE(t.worst_grad_ratio, 1e-12);
  EXPECT_LE(t.worst_exact, 1e-12);
  // teeth: ignoring momentum (the SGD closed form) is far off
  EXPECT_GT(t.worst_sgd_formula, 1e-4);
}

TEST(ConvBias, ZeroGradientAndTranslationDecayFloat32) {
  auto t = trace_biases("float32", 0.0, 40);
  std::printf("float32 SGD: |g_b|/|g_W| %.3e, exact decay %.3e\n", t.worst_grad_ratio, t.worst_exact);
  EXPECT_LE(t.worst_grad_ratio, 1e-5);
  EXPECT_LE(t.worst_exact, 1e-5);
  EXPECT_LE(t.worst_sgd_formula, 1e-5);  // with β = 0 the closed form is the recurrence
}
