// VGG-16-BN in float32 on the prepared miniature Tiny ImageNet (CPU, and a GPU where one is lent):
// every family's exact prediction against its measurement at float32 tolerances.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

#include "mini_tiny_imagenet.hpp"
#include "run_fixture.hpp"

using nmech::test::Mini;
using nmech::test::write_mini;

namespace {

// Worst |a − b| / scale over rows 1… and sets (row 0 is where the predictions start).
double worst_rel(const nmech::test::Matrix& a, const nmech::test::Matrix& b, const std::vector<double>& scale) {
  double w = 0;
  for (std::uint64_t r = 1; r < a.rows; ++r)
    for (std::uint64_t c = 0; c < a.cols; ++c) {
      const double e = std::abs(a.at(r, c) - b.at(r, c)) / scale[r * a.cols + c];
      w = std::max(w, std::isnan(e) ? INFINITY : e);
    }
  return w;
}

// VGG-16-BN in float32 on the prepared miniature (augmented, momentum, weight decay) on `device`:
// every family's exact prediction against its measurement, at docs/THEORY.md §7b's float32 tolerances
// (translation 1e-5 of Σ|θ|; scale and rescale free running, 1e-4), and "the quantity stays at its
// first value" as the wrong peer that the same check must reject.
nmech::test::Matrix check_float32_vgg16_bn(const std::string& device) {
  const Mini m = write_mini("tiny_" + device);
  const std::string out = (m.root / "tiny.h5").string();
  const auto r = nmech::test::run_command(std::string(NMECH_BIN) + " prepare-data tiny-imagenet " + m.root.string() + " " + out);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const nmech::test::RunStore run("vgg16_bn_" + device, {"dataset=tiny-imagenet", "data_dir=" + out, "input_size=64",
                                                        "model=vgg16_bn", "width=0.0625", "batch_size=4", "steps=10",
                                                        "augment=true", "dtype=float32", "device=" + device});
  const auto s = run.get("translation/translation_sum");
  EXPECT_LE(worst_rel(run.get("translation/pred_exact"), s, run.get("translation/translation_abs_sum").v), 1e-5);
  const auto q = run.get("scale/scale_sq_norm");
  const auto rd = run.get("rescale/rescale_diff");
  std::vector<double> rn = run.get("rescale/sq_norm_in").v;
  const auto out_norm = run.get("rescale/sq_norm_out").v;
  for (std::size_t i = 0; i < rn.size(); ++i) rn[i] += out_norm[i];
  const double scale = worst_rel(run.get("scale/pred_exact"), q, q.v);
  const double rescale = worst_rel(run.get("rescale/pred_exact"), rd, rn);
  auto first = [](nmech::test::Matrix m) {
    for (std::uint64_t r = 1; r < m.rows; ++r)
      for (std::uint64_t c = 0; c < m.cols; ++c) m.v[r * m.cols + c] = m.v[c];
    return m;
  };
  std::printf("%s float32 VGG-16-BN: exact scale %.3e (Q_0: %.3e), rescale %.3e (R_0: %.3e)\n", device.c_str(), scale,
              worst_rel(first(q), q, q.v), rescale, worst_rel(first(rd), rd, rn));
  EXPECT_LE(scale, 1e-4);
  EXPECT_LE(rescale, 1e-4);
  EXPECT_GT(worst_rel(first(q), q, q.v), 1e-3);
  EXPECT_GT(worst_rel(first(rd), rd, rn), 1e-3);
  // a scale set per channel of VGG-16-BN's 13 convolutions, 1/16 wide, and the affine groups of bn1..bn12
  EXPECT_EQ(q.cols, 4224u / 16 + 12);
  return q;
}

}  // namespace

TEST(PrepareData, Vgg16BnFloat32OnTheMiniature) { check_float32_vgg16_bn("cpu"); }

#ifdef NMECH_GPU_TESTS
// Where a GPU is lent (configure with -DNMECH_GPU_TESTS=ON and a CUDA LibTorch): the same run on
// it. Its traces are not the CPU run's bits (other kernels, other rounding): it did run there.
TEST(GpuRun, Vgg16BnFloat32OnTheMiniature) {
  const auto gpu = check_float32_vgg16_bn("cuda"), cpu = check_float32_vgg16_bn("cpu");
  ASSERT_EQ(gpu.v.size(), cpu.v.size());
  EXPECT_NE(gpu.v, cpu.v);
}
#endif
