// A GPU run's tracer reduces with ATen on the device (trace/reduce_device.hpp). The same tracer
// made to reduce that way on CPU tensors must record what the host's SIMD passes record, step
// for step, up to the order of the additions; and its exact predictions must still hold.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "nmech/data/load.hpp"
#include "nmech/train/trainer.hpp"
#include "nmech/train/trainer_state.hpp"

using namespace nmech;

namespace {

struct Traced {
  trace::RowBlock rows;
  trace::ErrorStats scale, rescale;
};

Traced trace_run(const std::vector<std::string>& sets, bool device_reductions) {
  const auto cfg = config::parse_run_config("", "<test>", sets);
  const auto data = data::load_dataset(cfg, "<test>");
  train::Trainer trainer(cfg, data);
  auto& s = trainer.state();
  if (device_reductions) s.tracer->use_device_reductions();
  for (std::int64_t k = 0; k < cfg.steps; ++k) trainer.step(k);
  s.tracer->finish();
  Traced t;
  t.scale = s.tracer->error(symmetry::Family::scale, "pred_exact");
  t.rescale = s.tracer->error(symmetry::Family::rescale, "pred_exact");
  t.rows = s.tracer->take_rows();
  return t;
}

// Worst difference over every dataset, relative to the dataset's largest magnitude (rescale
// differences relative to the squared norms they are differences of); and whether any differ.
std::pair<double, bool> compare(const trace::RowBlock& a, const trace::RowBlock& b) {
  double worst = 0;
  bool differ = false;
  std::string where;
  EXPECT_EQ(a.nrows, b.nrows);
  for (const auto& [name, va] : a.data) {
    const auto& vb = b.data.at(name);
    const bool diff_of_norms = name.rfind("rescale/", 0) == 0 &&
                               (name.find("pred") != std::string::npos || name.find("diff") != std::string::npos);
    const auto& ref = diff_of_norms ? b.data.at("rescale/sq_norm_in") : vb;
    double scale = 0;
    for (double v : ref)
      if (std::isfinite(v)) scale = std::max(scale, std::abs(v));
    for (std::size_t i = 0; i < va.size(); ++i) {
      if (std::isnan(va[i]) && std::isnan(vb[i])) continue;
      differ = differ || va[i] != vb[i];
      // What the symmetries make zero is rounding noise on both sides: Σg over a translation set
      // (of order 1e-17, so its difference counts as it is) and ⟨θ, g⟩ over a scale set
      // (relative to |θ||g|).
      double norm = scale > 0 ? scale : 1.0;
      if (name == "translation/grad_sum") norm = 1.0;
      if (name == "scale/theta_dot_grad") norm = std::sqrt(b.data.at("scale/scale_sq_norm")[i] * b.data.at("scale/grad_sq")[i]);
      // The angle per step is an arccos of a value near 1, which amplifies its inputs' rounding
      // by 1/sin(angle) (~1e4 here): held to 1e-8 instead.
      if (name == "scale/angle_step") norm *= 1e4;
      const double d = std::abs(va[i] - vb[i]) / norm;
      if (d > worst) worst = d, where = name + "[" + std::to_string(i) + "]";
      EXPECT_FALSE(std::isnan(va[i]) != std::isnan(vb[i])) << name;
    }
  }
  std::printf("device vs host reductions: worst relative difference %.3e at %s\n", worst, where.c_str());
  return {worst, differ};
}

void check(const std::vector<std::string>& sets, double tol) {
  const Traced host = trace_run(sets, false), device = trace_run(sets, true);
  const auto [worst, differ] = compare(device.rows, host.rows);
  EXPECT_LE(worst, tol);
  EXPECT_TRUE(differ) << "bitwise equal: the device reductions were not used";
  // The science on the device path: exact predictions against the measured traces.
  EXPECT_LE(device.scale.worst, 1e-10);
  EXPECT_LE(device.rescale.worst, 1e-10);
  EXPECT_GT(device.scale.sets + device.rescale.sets, 0);
}

const std::vector<std::string> kBase = {"width=0.0625", "classifier_width=16", "dataset=\"synthetic\"",
                                        "batch_size=16", "steps=6", "dtype=\"float64\"", "bn_eps=1e-12"};

std::vector<std::string> with(std::vector<std::string> v, const std::vector<std::string>& more) {
  v.insert(v.end(), more.begin(), more.end());
  return v;
}

}  // namespace

// BatchNorm: scale sets fused with the rescale sets' outgoing side; heavy-ball momentum.
TEST(DeviceTracer, VggBnMomentumMatchesHost) { check(with(kBase, {"model=\"vgg11_bn\"", "momentum=0.9"}), 1e-12); }

// No BatchNorm: rescale rows and columns; Nesterov reads the update directions.
TEST(DeviceTracer, VggNesterovMatchesHost) {
  check(with(kBase, {"model=\"vgg11\"", "momentum=0.9", "nesterov=true", "weight_decay=1e-3"}), 1e-12);
}
