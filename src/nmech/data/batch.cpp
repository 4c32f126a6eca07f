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
  d.pixels.resize(count * channels * size * size);
  d.labels.resize(count);
  for (std::int64_t i = 0; i < count; ++i) {
    d.labels[i] = static_cast<std::int64_t>(rng() % classes);
    // class-dependent brightness so that the task is learnable
    const double base = 40.0 + 170.0 * d.labels[i] / std::max<std::int64_t>(1, classes - 1);
    for (std::int64_t p = 0; p < channels * size * size; ++p) {
      const double v = base + noise(rng);
      d.pixels[i * channels * size * size + p] = static_cast<std::uint8_t>(std::clamp(v, 0.0, 255.0));
    }
  }
  d.mean.assign(channels, 0.5);
  d.std.assign(channels, 0.25);
  return d;
}

Batch make_batch(const Dataset& d, const std::vector<std::int64_t>& indices, std::int64_t size,
                 at::ScalarType dtype) {
  const std::int64_t n = static_cast<std::int64_t>(indices.size());
  const std::int64_t plane = d.height * d.width, img = d.channels * plane;
  auto raw = at::empty({n, d.channels, d.height, d.width}, at::kByte);
  auto* dst = raw.data_ptr<std::uint8_t>();
  auto labels = at::empty({n}, at::kLong);
  auto* lab = labels.data_ptr<std::int64_t>();
  for (std::int64_t i = 0; i < n; ++i) {
    std::copy_n(d.pixels.data() + indices[i] * img, img, dst + i * img);
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
