#pragma once
// A miniature Tiny ImageNet of real JPEG files (3 classes, grey images among them), written by the
// tests that prepare it and train on it.
#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace nmech::test {

struct Mini {
  std::filesystem::path root;
  std::vector<std::string> wnids{"n01443537", "n01629819", "n01641577"};
  std::vector<std::pair<std::filesystem::path, std::int64_t>> train, val;  // file, label, in packing order
};

Mini write_mini(const std::string& name);

// A 4:4:4, quality-100 JPEG of `comps` components (1: grey, 3: RGB) from interleaved pixels.
void write_jpeg(const std::filesystem::path& path, int w, int h, int comps, const std::vector<std::uint8_t>& px);
// Smooth, image-specific content (JPEG keeps smooth content nearly exact).
std::vector<std::uint8_t> pattern(int id, int size, int comps);

}  // namespace nmech::test
