#include <ATen/ATen.h>

#include <algorithm>
#include <random>

#include "nmech/data/dataset.hpp"

namespace nmech::data {

Dataset make_synthetic(std::int64_t count, std::int64_t channels, std::int64_t size,
                       std::int64_t classes, std::uint64_t seed) {
  Dataset d;
  d.name = "synthetic";
  d.count = count;
  d.channels = channels;
  d.height = d.width = size;
  d.classes = classes;
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> noise(0.0, 40.0);
  auto& pixels = d.pixels.owned();
  pixels.resize(count * channels * size * size);
  d.labels.resize(count);
  for (std::int64_t i = 0; i < count; ++i) {
    d.labels[i] = static_cast<std::int64_t>(rng() % classes);
    // class-dependent brightness so that the task is learnable
    const double base = 40.0 + 170.0 * d.labels[i] / std::max<std::int64_t>(1, classes - 1);
    for (std::int64_t p = 0; p < channels * size * size; ++p) {
      const double v = base + noise(rng);
      pixels[i * channels * size * size + p] = static_cast<std::uint8_t>(std::clamp(v, 0.0, 255.0));
    }
  }
  d.mean.assign(channels, 0.5);
  d.std.assign(channels, 0.25);
  return d;
}

namespace {

// SplitMix64: a fixed, portable stream (std distributions differ between standard libraries).
std::uint64_t mix(std::uint64_t z) {
  z += 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// The image shifted by (dx, dy) with black filling what comes in from outside (a crop of the
// 4-pixel zero-padded image), mirrored left-right when flip.
void shift_flip(const std::uint8_t* src, std::uint8_t* dst, std::int64_t channels, std::int64_t h, std::int64_t w,
                const AugmentDraw& a) {
  for (std::int64_t c = 0; c < channels; ++c)
    for (std::int64_t y = 0; y < h; ++y)
      for (std::int64_t x = 0; x < w; ++x) {
        const std::int64_t sx = (a.flip ? w - 1 - x : x) + a.dx, sy = y + a.dy;
        dst[(c * h + y) * w + x] = (sx < 0 || sx >= w || sy < 0 || sy >= h) ? 0 : src[(c * h + sy) * w + sx];
      }
}

}  // namespace

AugmentDraw augment_draw(const Augment& a, std::int64_t i) {
  const std::uint64_t r = mix(mix(mix(a.seed) ^ static_cast<std::uint64_t>(a.step)) ^
                              static_cast<std::uint64_t>(a.first_position + i));
  const auto span = static_cast<std::uint64_t>(2 * a.pad + 1);
  return {static_cast<std::int64_t>(r % span) - a.pad, static_cast<std::int64_t>((r / span) % span) - a.pad,
          ((r >> 40) & 1) != 0};
}

Batch make_batch(const Dataset& d, const std::vector<std::int64_t>& indices, std::int64_t size,
                 at::ScalarType dtype, const Augment* augment) {
  const std::int64_t n = static_cast<std::int64_t>(indices.size());
  const std::int64_t plane = d.height * d.width, img = d.channels * plane;
  auto raw = at::empty({n, d.channels, d.height, d.width}, at::kByte);
  auto* dst = raw.data_ptr<std::uint8_t>();
  auto labels = at::empty({n}, at::kLong);
  auto* lab = labels.data_ptr<std::int64_t>();
  for (std::int64_t i = 0; i < n; ++i) {
    const std::uint8_t* src = d.pixels.data() + indices[i] * img;
    if (augment) shift_flip(src, dst + i * img, d.channels, d.height, d.width, augment_draw(*augment, i));
    else std::copy_n(src, img, dst + i * img);
    lab[i] = d.labels[indices[i]];
  }
  auto x = raw.to(dtype).div_(255.0);
  auto mean = at::tensor(d.mean, at::kDouble).to(dtype).view({1, d.channels, 1, 1});
  auto stdv = at::tensor(d.std, at::kDouble).to(dtype).view({1, d.channels, 1, 1});
  x = (x - mean) / stdv;
  // Zero padding after normalising, as torchvision's Pad follows Normalize in the usual pipeline
  // for 28→32: padded pixels are 0 in normalised space.
  const std::int64_t ph = size - d.height, pw = size - d.width;
  if (ph > 0 || pw > 0) x = at::constant_pad_nd(x, {pw / 2, pw - pw / 2, ph / 2, ph - ph / 2}, 0.0);
  return {x.contiguous(), labels};
}

}  // namespace nmech::data
