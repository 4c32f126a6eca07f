// The paper's augmentation (data/dataset.hpp): a pure function of (seed, step, position in the
// global batch), so a resumed run and any split of the batch across ranks see the same images.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <numeric>
#include <set>

#include "nmech/data/dataset.hpp"

namespace nmech::data {
namespace {

Dataset ramp(std::int64_t count, std::int64_t size) {
  Dataset d;
  d.name = "ramp";
  d.count = count, d.channels = 3, d.height = d.width = size, d.classes = 10;
  auto& pixels = d.pixels.owned();
  pixels.resize(static_cast<size_t>(count * 3 * size * size));
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<std::uint8_t>(1 + (i * 7) % 250);
  d.labels.assign(static_cast<size_t>(count), 3);
  d.mean.assign(3, 0.0);
  d.std.assign(3, 1.0);
  return d;
}

TEST(Augment, SameSeedAndStepSameImagesAnotherStepOthers) {
  const Dataset d = ramp(16, 8);
  std::vector<std::int64_t> idx(16);
  std::iota(idx.begin(), idx.end(), 0);
  const Augment a{7, 100, 0}, b{7, 101, 0}, c{8, 100, 0};
  const auto x = make_batch(d, idx, 8, at::kDouble, &a).images;
  EXPECT_TRUE(at::equal(x, make_batch(d, idx, 8, at::kDouble, &a).images));
  EXPECT_FALSE(at::equal(x, make_batch(d, idx, 8, at::kDouble, &b).images));
  EXPECT_FALSE(at::equal(x, make_batch(d, idx, 8, at::kDouble, &c).images));
  EXPECT_FALSE(at::equal(x, make_batch(d, idx, 8, at::kDouble).images));  // it does change the images
}

TEST(Augment, ASplitBatchSeesWhatTheWholeBatchSees) {
  const Dataset d = ramp(12, 8);
  std::vector<std::int64_t> idx{5, 1, 9, 3, 0, 11, 7, 2, 8};
  const Augment whole{3, 42, 0};
  const auto x = make_batch(d, idx, 8, at::kDouble, &whole).images;
  const std::vector<std::int64_t> lo(idx.begin(), idx.begin() + 4), hi(idx.begin() + 4, idx.end());
  const Augment first{3, 42, 0}, second{3, 42, 4};  // the second rank's shard starts at position 4
  const auto y = at::cat({make_batch(d, lo, 8, at::kDouble, &first).images, make_batch(d, hi, 8, at::kDouble, &second).images});
  EXPECT_TRUE(at::equal(x, y));
}

TEST(Augment, ShiftsWithinFourPixelsFlipsHalfTheTimeAndFillsBlack) {
  const Augment a{11, 5, 0};
  int flips = 0;
  std::set<std::int64_t> shifts;
  for (std::int64_t i = 0; i < 2000; ++i) {
    const AugmentDraw r = augment_draw(a, i);
    ASSERT_LE(std::abs(r.dx), 4);
    ASSERT_LE(std::abs(r.dy), 4);
    shifts.insert(r.dx * 10 + r.dy);
    flips += r.flip;
  }
  EXPECT_EQ(shifts.size(), 81u);  // every shift of the 9 × 9 occurs
  EXPECT_NEAR(flips / 2000.0, 0.5, 0.05);
  // One image against its draw, pixel by pixel (raw values: mean 0, std 1/255 after /255).
  const Dataset d = ramp(1, 8);
  const AugmentDraw r = augment_draw(a, 0);
  const auto x = make_batch(d, {0}, 8, at::kDouble, &a).images.mul(255.0).round();
  for (std::int64_t c = 0; c < 3; ++c)
    for (std::int64_t y = 0; y < 8; ++y)
      for (std::int64_t xx = 0; xx < 8; ++xx) {
        const std::int64_t sx = (r.flip ? 7 - xx : xx) + r.dx, sy = y + r.dy;
        const double want = (sx < 0 || sx > 7 || sy < 0 || sy > 7) ? 0.0 : d.pixels[static_cast<size_t>((c * 8 + sy) * 8 + sx)];
        ASSERT_EQ(x[0][c][y][xx].item<double>(), want) << c << " " << y << " " << xx;
      }
}

}  // namespace
}  // namespace nmech::data
