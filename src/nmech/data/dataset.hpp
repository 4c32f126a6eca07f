#pragma once
// Image classification data held as uint8 (in memory or mapped from the packed file), turned
// into normalised batches on demand.
#include <ATen/Tensor.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "nmech/data/pixels.hpp"

namespace nmech::data {

// Missing, unreadable or truncated data: the CLI exits with code 2.
class DataError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Dataset {
  std::string name;
  std::int64_t count = 0, channels = 1, height = 0, width = 0, classes = 10;
  Pixels pixels;                     // [count, channels, height, width]
  std::vector<std::int64_t> labels;  // [count]
  std::vector<double> mean, std;     // per channel, for normalisation
  std::string sha256;                // fingerprint() once loaded: the identity of what runs read
};

// SHA-256 over the shape, pixels and labels: two datasets with one fingerprint train alike. A
// store and its checkpoints record it, so a data file that changed between attempts is found.
std::string fingerprint(const Dataset& d);

// Fashion-MNIST training split from the Debian package's IDX .gz files (or uncompressed IDX).
Dataset load_fashion_mnist(const std::string& dir, bool train = true);
// Gaussian-blob images with seeded labels: for fast tests that need no files.
Dataset make_synthetic(std::int64_t count, std::int64_t channels, std::int64_t size,
                       std::int64_t classes, std::uint64_t seed);

// Images [n, C, size, size] (zero-padded centrally to `size`, normalised) and labels [n].
struct Batch {
  at::Tensor images, labels;
};
// The paper's augmentation (torchvision's RandomCrop(padding=4) then RandomHorizontalFlip, on
// the raw image, before normalisation): image i of the batch draws its shift and flip from
// (seed, step, first_position + i), its position in the global batch, so every rank of a group
// and every resumed run makes the same choices.
struct Augment {
  std::uint64_t seed = 0;
  std::int64_t step = 0, first_position = 0;
  std::int64_t pad = 4;
};
Batch make_batch(const Dataset& d, const std::vector<std::int64_t>& indices, std::int64_t size,
                 at::ScalarType dtype, const Augment* augment = nullptr);
// One image's shift (dx, dy in [-pad, pad]) and flip, as make_batch draws them.
struct AugmentDraw {
  std::int64_t dx = 0, dy = 0;
  bool flip = false;
};
AugmentDraw augment_draw(const Augment& a, std::int64_t i);

}  // namespace nmech::data
