#pragma once
// `nmech prepare-data`: standard dataset layouts → one packed file (packed.hpp).
//   tiny-imagenet SRC: wnids.txt, train/<wnid>/images/*.JPEG, val/images/*.JPEG with
//                      val/val_annotations.txt (JPEG decoded by libjpeg-turbo; grey images are
//                      expanded to RGB; every image must be 64×64)
//   cifar10 SRC:       data_batch_1.bin … data_batch_5.bin, test_batch.bin, batches.meta.txt
//   cifar100 SRC:      train.bin, test.bin, fine_label_names.txt (fine labels)
// Errors (a missing class or file, an unreadable image, a wrong size) are DataErrors naming the
// file: the CLI prints one line and exits 2.
#include <string>

#include "nmech/data/packed.hpp"

namespace nmech::data {

Packed read_tiny_imagenet(const std::string& src);
Packed read_cifar(const std::string& src, int classes);  // 10 or 100
// Reads `kind` from src and writes the packed file; returns it (for the summary line).
Packed prepare_data(const std::string& kind, const std::string& src, const std::string& out);

// RGB pixels [height, width, 3] of a JPEG file; grey JPEGs come back with the grey value
// in all three channels.
struct Image {
  std::int64_t height = 0, width = 0;
  std::vector<std::uint8_t> rgb;
};
Image decode_jpeg(const std::string& path);

}  // namespace nmech::data
