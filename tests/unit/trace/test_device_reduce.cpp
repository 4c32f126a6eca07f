// The reductions a GPU run's tracer makes (trace/reduce_device.hpp, ATen on the tensors' device)
// give what the host's SIMD passes give, up to the order of the additions, for every mask the
// tracer uses; run here on CPU tensors, where both can be computed. Results are queued until
// flush() and added to what the sums hold.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "nmech/trace/reduce.hpp"
#include "worst_relative.hpp"
#include "nmech/trace/reduce_device.hpp"

namespace nmech::trace {
namespace {

const auto worst = test::worst_relative;

constexpr double kLambda = 5e-4;

void check(at::ScalarType dtype, std::int64_t outer, std::int64_t n, std::int64_t inner) {
  torch::manual_seed(7);
  const auto opts = torch::TensorOptions().dtype(dtype);
  const auto x = torch::randn({outer * n * inner}, opts), y = torch::randn({outer * n * inner}, opts);
  const symmetry::Slice sl{"w", outer, n, inner, 2};  // sets 2 … n+1 of a family of n + 4
  for (unsigned want : {kTranslation, kQuadratic, kAfterStep, kUpdate, kThetaOnly, kSq, kYSq, kAll}) {
    Sums host, dev;
    host.reset(n + 4), dev.reset(n + 4);
    host.sq[0] = dev.sq[0] = 1.5;  // sums are added to what is there
    DeviceSums queue;
    accumulate(sl, x, y, kLambda, host, want);
    queue.accumulate(sl, x, y, kLambda, dev, want);
    queue.accumulate(sl, x, y, kLambda, dev, want);  // twice, flushed in one copy: twice the sums
    for (auto& v : {&dev.sum, &dev.abs_sum, &dev.sq, &dev.y_sq, &dev.d_sq, &dev.xy, &dev.y_sum})
      for (double e : *v) ASSERT_TRUE(e == 0.0 || e == 1.5) << "added before flush()";
    queue.flush();
    for (auto m : {&Sums::sum, &Sums::abs_sum, &Sums::sq, &Sums::y_sq, &Sums::d_sq, &Sums::xy, &Sums::y_sum}) {
      std::vector<double> twice = host.*m;
      for (std::size_t i = 0; i < twice.size(); ++i) twice[i] = i == 0 && m == &Sums::sq ? 1.5 + 2 * (twice[i] - 1.5) : 2 * twice[i];
      EXPECT_LE(worst(dev.*m, twice), 1e-13) << "mask " << want;
    }
  }
  // Teeth: the squared step is formed with λ (a pass that dropped it would be Σg² instead).
  Sums a, b;
  a.reset(n + 4), b.reset(n + 4);
  DeviceSums queue;
  queue.accumulate(sl, x * 100, y, 1.0, a, kQuadratic);
  queue.flush();
  accumulate(sl, x * 100, y, 1.0, b, kQuadratic);
  EXPECT_LE(worst(a.d_sq, b.d_sq), 1e-13);
  EXPECT_GT(worst(a.d_sq, a.y_sq), 0.5);
}

TEST(DeviceReduce, Float64MatchesHostPasses) {
  check(at::kDouble, 1, 12, 63);  // a conv weight's rows
  check(at::kDouble, 12, 7, 9);   // its columns
  check(at::kDouble, 1, 5, 1);    // a bias
}
TEST(DeviceReduce, Float32MatchesHostPasses) { check(at::kFloat, 16, 8, 9); }

TEST(DeviceReduce, RefusesMismatchedTensors) {
  DeviceSums queue;
  Sums s;
  s.reset(3);
  const symmetry::Slice sl{"w", 1, 3, 4, 0};
  EXPECT_THROW(queue.accumulate(sl, torch::zeros({13}), at::Tensor(), 0.0, s, kSq), std::logic_error);
  EXPECT_THROW(queue.accumulate(sl, torch::zeros({12}), at::Tensor(), 0.0, s, kQuadratic), std::logic_error);
  EXPECT_THROW(queue.accumulate(sl, torch::zeros({12}), torch::zeros({12}, torch::kDouble), 0.0, s, kQuadratic),
               std::logic_error);
  queue.flush();  // nothing queued
  EXPECT_EQ(s.sq, std::vector<double>(3, 0.0));
}

}  // namespace
}  // namespace nmech::trace
