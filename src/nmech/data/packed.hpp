#pragma once
// The packed dataset file that `nmech prepare-data` writes and the loader reads: one HDF5 file
// with the training and validation splits as uint8 images [N, C, H, W] and int64 labels [N],
// the class list, and the training split's per-channel mean and standard deviation (of pixels
// scaled to [0, 1]) for normalisation. Written to "<out>.partial" and renamed when complete,
// so a failed preparation never leaves a file that looks valid.
#include <cstdint>
#include <string>
#include <vector>

#include "nmech/data/dataset.hpp"

namespace nmech::data {

struct PackedSplit {
  std::int64_t count = 0;
  std::vector<std::uint8_t> pixels;  // [count, channels, height, width]
  std::vector<std::int64_t> labels;
};

struct Packed {
  std::string name;  // "tiny-imagenet", "cifar10", "cifar100"
  std::int64_t channels = 3, height = 0, width = 0;
  std::vector<std::string> classes;  // class ids in label order (wnids, CIFAR names)
  PackedSplit train, val;
};

void write_packed(const std::string& path, const Packed& p);
// One split ("train" or "val") as a Dataset, with the training split's mean and std.
Dataset load_packed(const std::string& path, const std::string& split = "train");

}  // namespace nmech::data
