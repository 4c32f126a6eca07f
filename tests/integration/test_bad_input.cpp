// Bad input: a one-line error naming the file, line or key; exit code 2; no store left.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "run_fixture.hpp"

namespace fs = std::filesystem;
using nmech::test::run_command;
using nmech::test::work_dir;

namespace {

std::string write(const std::string& name, const std::string& text) {
  const std::string p = work_dir() + "/" + name;
  std::ofstream(p) << text;
  return p;
}

struct Outcome {
  nmech::test::Command cmd;
  bool store_left;
};

Outcome nmech_run(const std::string& args, const std::string& store) {
  fs::remove(store);
  fs::remove(store + ".partial");
  Outcome o{run_command(std::string(NMECH_BIN) + " run " + args + " -o " + store), false};
  o.store_left = fs::exists(store) || fs::exists(store + ".partial");
  return o;
}

void expect_bad_input(const Outcome& o, const std::vector<std::string>& mentions) {
  EXPECT_EQ(o.cmd.exit_code, 2) << o.cmd.err;
  EXPECT_FALSE(o.store_left);
  // exactly one line on stderr
  ASSERT_FALSE(o.cmd.err.empty());
  EXPECT_EQ(o.cmd.err.find('\n'), o.cmd.err.size() - 1) << o.cmd.err;
  for (const auto& m : mentions) EXPECT_NE(o.cmd.err.find(m), std::string::npos) << "missing '" << m << "' in: " << o.cmd.err;
}

const std::string kStore = "/tmp/nmech_bad_input_test.h5";

}  // namespace

TEST(BadInput, MalformedToml) {
  auto cfg = write("malformed.toml", "lr = 0.1\nsteps = [1, \n");
  expect_bad_input(nmech_run(cfg, kStore), {"malformed.toml:", "TOML"});
}

TEST(BadInput, UnknownKey) {
  auto cfg = write("unknown.toml", "lr = 0.1\nlearning_rate = 0.2\n");
  expect_bad_input(nmech_run(cfg, kStore), {"unknown.toml:2", "learning_rate"});
}

TEST(BadInput, WrongType) {
  auto cfg = write("type.toml", "\nbatch_size = \"large\"\n");
  expect_bad_input(nmech_run(cfg, kStore), {"type.toml:2", "batch_size"});
}

TEST(BadInput, NonPositiveLearningRate) {
  auto cfg = write("lr.toml", "steps = 2\nlr = -0.1\n");
  expect_bad_input(nmech_run(cfg, kStore), {"lr.toml:2", "'lr'"});
  auto ok = write("lr_ok.toml", "steps = 2\nlr = 0.1\n");
  expect_bad_input(nmech_run(ok + " --set lr=0", kStore), {"--set lr=0", "'lr'"});
}

TEST(BadInput, BatchLargerThanDataset) {
  auto cfg = write("batch.toml", "steps = 2\nbatch_size = 60001\n");
  expect_bad_input(nmech_run(cfg, kStore), {"batch.toml", "batch_size", "60000"});
}

TEST(BadInput, MissingDatasetFile) {
  const std::string dir = work_dir() + "/empty_data";
  fs::create_directories(dir);
  auto cfg = write("missing.toml", "steps = 2\ndata_dir = \"" + dir + "\"\n");
  expect_bad_input(nmech_run(cfg, kStore), {dir, "train-images-idx3-ubyte"});
}

TEST(BadInput, TruncatedDatasetFile) {
  const std::string dir = work_dir() + "/truncated_data";
  fs::create_directories(dir);
  const std::string src = "/usr/share/datasets/fashion-mnist/";
  fs::copy_file(src + "train-labels-idx1-ubyte.gz", dir + "/train-labels-idx1-ubyte.gz", fs::copy_options::overwrite_existing);
  // the first 100 kB of the compressed image file: a valid gzip prefix, too few images
  std::ifstream in(src + "train-images-idx3-ubyte.gz", std::ios::binary);
  std::string head(100000, '\0');
  in.read(head.data(), static_cast<std::streamsize>(head.size()));
  std::ofstream(dir + "/train-images-idx3-ubyte.gz", std::ios::binary) << head;
  auto cfg = write("truncated.toml", "steps = 2\ndata_dir = \"" + dir + "\"\n");
  expect_bad_input(nmech_run(cfg, kStore), {"train-images-idx3-ubyte.gz"});
}

TEST(BadInput, OutputNotWritable) {
  auto cfg = write("ok.toml", "steps = 2\nbatch_size = 8\nwidth = 0.0625\n");
  const std::string store = "/proc/nmech_cannot_write_here.h5";
  auto o = run_command(std::string(NMECH_BIN) + " run " + cfg + " -o " + store);
  EXPECT_EQ(o.exit_code, 2) << o.err;
  EXPECT_NE(o.err.find(store), std::string::npos) << o.err;
  EXPECT_EQ(o.err.find('\n'), o.err.size() - 1) << o.err;
  EXPECT_FALSE(fs::exists(store));
}

TEST(BadInput, ExistingStoreIsNotOverwritten) {
  auto cfg = write("ok2.toml", "steps = 1\nbatch_size = 8\nwidth = 0.0625\n");
  const std::string store = work_dir() + "/existing.h5";
  std::ofstream(store) << "precious";
  auto o = run_command(std::string(NMECH_BIN) + " run " + cfg + " -o " + store);
  EXPECT_EQ(o.exit_code, 2);
  std::ifstream in(store);
  std::string text;
  in >> text;
  EXPECT_EQ(text, "precious");
}

TEST(BadInput, UnknownDevice) {
  auto cfg = write("device.toml", "lr = 0.1\ndevice = \"tpu\"\n");
  expect_bad_input(nmech_run(cfg, kStore), {"device.toml:2", "device", "tpu"});
}

#ifndef NMECH_TORCH_CUDA
// This LibTorch has no CUDA (as here and in CI): asking for a GPU is bad input, not a crash.
TEST(BadInput, CudaWithoutAGpu) {
  auto cfg = write("cuda.toml", "lr = 0.1\nsteps = 2\ndevice = \"cuda\"\n");
  expect_bad_input(nmech_run(cfg, kStore), {"cuda.toml", "'device'", "CUDA"});
}
#endif
