// nmech prepare-data on datasets the test writes in their standard layouts: a
// miniature Tiny ImageNet of real JPEG files and CIFAR-10/100 binaries. The packed file must
// hold exactly the labels, shapes and pixels written (JPEG: what libjpeg decodes from the file,
// and within the codec's rounding of what was encoded); damaged inputs give one line, exit 2 and
// no output file.
#include <gtest/gtest.h>
#include <jpeglib.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <tuple>

#include <cmath>

#include "nmech/data/packed.hpp"
#include "nmech/data/prepare.hpp"
#include "mini_tiny_imagenet.hpp"
#include "run_fixture.hpp"

namespace fs = std::filesystem;
using namespace nmech;

namespace {

using nmech::test::Mini;
using nmech::test::pattern;
using nmech::test::write_jpeg;
using nmech::test::write_mini;

void expect_split(const data::Dataset& d, const std::vector<std::pair<fs::path, std::int64_t>>& files) {
  ASSERT_EQ(d.count, static_cast<std::int64_t>(files.size()));
  EXPECT_EQ(d.channels, 3);
  EXPECT_EQ(d.height, 64);
  EXPECT_EQ(d.width, 64);
  EXPECT_EQ(d.classes, 3);
  EXPECT_TRUE(d.pixels.mapped());  // the loader maps the packed file's images, it does not copy them
  for (size_t i = 0; i < files.size(); ++i) {
    EXPECT_EQ(d.labels[i], files[i].second) << files[i].first;
    const data::Image img = data::decode_jpeg(files[i].first.string());
    for (std::int64_t k = 0; k < 64 * 64; ++k)
      for (int c = 0; c < 3; ++c) {
        const int packed = d.pixels[static_cast<size_t>((static_cast<std::int64_t>(i) * 3 + c) * 64 * 64 + k)];
        ASSERT_EQ(packed, img.rgb[static_cast<size_t>(k * 3 + c)]) << files[i].first << " pixel " << k;
      }
  }
}

std::string prepare_cli(const std::string& args) {
  const auto r = nmech::test::run_command(std::string(NMECH_BIN) + " prepare-data " + args);
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  return r.err;
}

}  // namespace

TEST(PrepareData, TinyImageNetPacksWhatTheFilesHold) {
  const Mini m = write_mini("tiny");
  const std::string out = (m.root / "tiny.h5").string();
  const auto r = nmech::test::run_command(std::string(NMECH_BIN) + " prepare-data tiny-imagenet " + m.root.string() + " " + out);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("3 classes, 6 training and 4 validation images of 3×64×64"), std::string::npos) << r.out;
  expect_split(data::load_packed(out, "train"), m.train);
  expect_split(data::load_packed(out, "val"), m.val);
  // The decoder against what was encoded: within JPEG's rounding; grey comes back in every channel.
  const data::Image grey = data::decode_jpeg(m.train[3].first.string());
  const auto want = pattern(3, 64, 1);
  int worst = 0;
  for (size_t k = 0; k < want.size(); ++k)
    for (int c = 0; c < 3; ++c) worst = std::max(worst, std::abs(grey.rgb[k * 3 + c] - int(want[k])));
  EXPECT_LE(worst, 2);
  const data::Image rgb = data::decode_jpeg(m.val[0].first.string());
  const auto want_rgb = pattern(6, 64, 3);
  worst = 0;
  for (size_t k = 0; k < want_rgb.size(); ++k) worst = std::max(worst, std::abs(rgb.rgb[k] - int(want_rgb[k])));
  EXPECT_LE(worst, 4);
  // A run trains on it (augmented), evaluates every 2 steps, and its exact predictions hold.
  const nmech::test::RunStore run("tiny_train", {"dataset=tiny-imagenet", "data_dir=" + out, "input_size=64",
                                                 "model=vgg11_bn", "width=0.0625", "batch_size=4", "steps=6",
                                                 "augment=true", "eval_every=2", "dtype=float64", "bn_eps=1e-12"});
  const auto loss = run.get("val_loss"), top1 = run.get("val_top1"), top5 = run.get("val_top5");
  ASSERT_EQ(loss.rows, 7u);  // steps 0..5 and the final row
  for (std::uint64_t k = 0; k < 7; ++k) {
    const bool evaluated = k % 2 == 0 || k == 6;
    EXPECT_EQ(std::isfinite(loss.at(k, 0)), evaluated) << k;
    if (!evaluated) continue;
    EXPECT_NEAR(loss.at(k, 0), std::log(3.0), 0.2) << k;  // 3 classes, barely trained
    EXPECT_TRUE(top1.at(k, 0) >= 0 && top1.at(k, 0) <= top5.at(k, 0) && top5.at(k, 0) == 1.0) << k;  // top-5 of 3
    EXPECT_EQ(top1.at(k, 0) * 4, std::round(top1.at(k, 0) * 4)) << k;  // a count out of 4 images
  }
  const auto measured = run.get("scale/scale_sq_norm"), predicted = run.get("scale/pred_exact");
  double exact = 0, conserved = 0;  // the exact prediction, and "Q stays Q_0" as its wrong peer
  for (std::uint64_t k = 1; k < measured.rows; ++k)
    for (std::uint64_t j = 0; j < measured.cols; ++j) {
      exact = std::max(exact, std::abs(predicted.at(k, j) - measured.at(k, j)) / measured.at(k, j));
      conserved = std::max(conserved, std::abs(measured.at(0, j) - measured.at(k, j)) / measured.at(k, j));
    }
  EXPECT_LE(exact, 1e-10);
  EXPECT_GT(conserved, 1e-6);
  EXPECT_GT(measured.cols, 100u);
  // Normalisation statistics come from the training split.
  const auto d = data::load_packed(out, "train");
  for (int c = 0; c < 3; ++c) {
    double s = 0;
    for (std::int64_t i = 0; i < d.count; ++i)
      for (std::int64_t k = 0; k < 64 * 64; ++k) s += d.pixels[static_cast<size_t>((i * 3 + c) * 64 * 64 + k)] / 255.0;
    EXPECT_NEAR(d.mean[c], s / (d.count * 64.0 * 64.0), 1e-12);
    EXPECT_GT(d.std[c], 0.05);
  }
}

TEST(PrepareData, DamagedTinyImageNetIsRefusedWithOneLineAndNoFile) {
  const Mini m = write_mini("tiny-bad");
  const std::string out = (m.root / "out.h5").string();
  auto no_output = [&] { return !fs::exists(out) && !fs::exists(out + ".partial"); };
  // A class of wnids.txt without its folder.
  fs::rename(m.root / "train" / m.wnids[2], m.root / "moved");
  EXPECT_NE(prepare_cli("tiny-imagenet " + m.root.string() + " " + out).find("class n01641577"), std::string::npos);
  EXPECT_TRUE(no_output());
  fs::rename(m.root / "moved", m.root / "train" / m.wnids[2]);
  // An unreadable image.
  { std::ofstream(m.train[2].first, std::ios::binary) << "not a jpeg at all"; }
  EXPECT_NE(prepare_cli("tiny-imagenet " + m.root.string() + " " + out).find(m.train[2].first.filename().string() + ": not a readable JPEG"),
            std::string::npos);
  EXPECT_TRUE(no_output());
  // A wrong size.
  write_jpeg(m.train[2].first, 32, 32, 3, pattern(0, 32, 3));
  EXPECT_NE(prepare_cli("tiny-imagenet " + m.root.string() + " " + out).find("32×32 pixels, expected 64×64"), std::string::npos);
  EXPECT_TRUE(no_output());
  write_jpeg(m.train[2].first, 64, 64, 3, pattern(0, 64, 3));
  // The output path is a directory with something in it: refused before anything is read or
  // written, which leaves the directory alone and no partial file.
  fs::create_directories(fs::path(out) / "keep");
  EXPECT_NE(prepare_cli("tiny-imagenet " + m.root.string() + " " + out).find(out + ": is a directory; give OUT a file name"),
            std::string::npos);
  EXPECT_TRUE(fs::is_directory(fs::path(out) / "keep"));
  EXPECT_FALSE(fs::exists(out + ".partial"));
  fs::remove_all(out);
  // A validation image of a class that wnids.txt does not list.
  { std::ofstream(m.root / "val" / "val_annotations.txt", std::ios::app) << "val_0.JPEG\tn99999999\t0\t0\t1\t1\n"; }
  EXPECT_NE(prepare_cli("tiny-imagenet " + m.root.string() + " " + out).find("val_annotations.txt:5: class 'n99999999'"),
            std::string::npos);
  EXPECT_TRUE(no_output());
  EXPECT_NE(prepare_cli("imagenet " + m.root.string() + " " + out).find("unknown dataset 'imagenet'"), std::string::npos);
}

namespace {

// CIFAR records written by the test: label byte(s), then 3072 pixel bytes (R, G, B planes).
void write_cifar(const fs::path& file, int label_bytes, int records, int first_label, int classes) {
  std::ofstream f(file, std::ios::binary);
  for (int i = 0; i < records; ++i) {
    if (label_bytes == 2) f.put(static_cast<char>(i % 20));  // coarse label
    f.put(static_cast<char>((first_label + i) % classes));
    for (int k = 0; k < 3072; ++k) f.put(static_cast<char>((i * 7 + k * 3) % 256));
  }
}

}  // namespace

TEST(PrepareData, CifarBinariesReadBackExactly) {
  for (int classes : {10, 100}) {
    const fs::path dir = fs::path(nmech::test::work_dir()) / ("cifar" + std::to_string(classes));
    fs::remove_all(dir);
    fs::create_directories(dir);
    {
      std::ofstream names(dir / (classes == 10 ? "batches.meta.txt" : "fine_label_names.txt"));
      for (int c = 0; c < classes; ++c) names << "class" << c << "\n";
    }
    if (classes == 10) {
      for (int b = 1; b <= 5; ++b) write_cifar(dir / ("data_batch_" + std::to_string(b) + ".bin"), 1, 3, b, 10);
      write_cifar(dir / "test_batch.bin", 1, 4, 0, 10);
    } else {
      write_cifar(dir / "train.bin", 2, 15, 90, 100);
      write_cifar(dir / "test.bin", 2, 4, 0, 100);
    }
    const std::string out = (dir / "packed.h5").string();
    const data::Packed p = data::prepare_data(classes == 10 ? "cifar10" : "cifar100", dir.string(), out);
    const data::Dataset train = data::load_packed(out, "train"), val = data::load_packed(out, "val");
    ASSERT_EQ(train.count, 15);
    ASSERT_EQ(val.count, 4);
    EXPECT_TRUE(train.pixels.mapped() && val.pixels.mapped());
    EXPECT_EQ(train.classes, classes);
    EXPECT_EQ(train.height, 32);
    for (int i = 0; i < 15; ++i) {
      const int batch_record = classes == 10 ? i % 3 : i;  // records restart in each batch file
      const int want_label = classes == 10 ? (1 + i / 3 + i % 3) % 10 : (90 + i) % 100;
      EXPECT_EQ(train.labels[i], want_label) << classes << " record " << i;
      for (int k = 0; k < 3072; ++k)
        ASSERT_EQ(train.pixels[static_cast<size_t>(i * 3072 + k)], (batch_record * 7 + k * 3) % 256) << classes << " record " << i;
    }
    EXPECT_EQ(p.classes.back(), "class" + std::to_string(classes - 1));
    // A truncated file: one line naming it, exit 2, nothing written.
    fs::resize_file(dir / (classes == 10 ? "test_batch.bin" : "test.bin"), 3073 * 2 + 100);
    fs::remove(out);
    const std::string err = prepare_cli(std::string(classes == 10 ? "cifar10 " : "cifar100 ") + dir.string() + " " + out);
    EXPECT_NE(err.find("not a whole number of"), std::string::npos) << err;
    EXPECT_FALSE(fs::exists(out));
  }
}
