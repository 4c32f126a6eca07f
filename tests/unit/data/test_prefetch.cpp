// A GPU run assembles step k+1's batch on the host while the GPU computes step k (trainer.cpp,
// State::prefetch). The batches, and so every traced value, must be those of a run that makes
// each batch when its step starts; a checkpoint taken with a batch drawn ahead must resume at
// that batch. Prefetching is switched on here for CPU runs, where both can be compared.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>

#include "nmech/data/load.hpp"
#include "nmech/train/trainer.hpp"
#include "nmech/train/trainer_state.hpp"

using namespace nmech;

namespace {

const std::vector<std::string> kSets = {"model=\"vgg11_bn\"", "width=0.0625", "classifier_width=16",
                                        "dataset=\"synthetic\"", "batch_size=24", "steps=8", "augment=true",
                                        "dropout=0.5", "dtype=\"float64\""};

// Rows of steps [from, to) of a run that prefetches or not, optionally resumed at `from` from a
// checkpoint; `more` adds to the config.
trace::RowBlock rows(bool prefetch, std::int64_t from, std::int64_t to, const std::string& checkpoint = "",
                     const std::string& more = "") {
  auto sets = kSets;
  if (!more.empty()) sets.push_back(more);
  const auto cfg = config::parse_run_config("", "<test>", sets);
  const auto data = data::load_dataset(cfg, "<test>");
  train::Trainer trainer(cfg, data);
  auto& s = trainer.state();
  s.prefetch = prefetch;
  store::Progress p;
  const train::CheckpointOwner owner{"test-store", "test-run", 0};
  std::int64_t k = checkpoint.empty() ? 0 : trainer.load_checkpoint(trainer.verify_checkpoint(checkpoint, owner), p);
  EXPECT_EQ(k, checkpoint.empty() ? 0 : from);
  for (; k < to; ++k) {
    trainer.step(k);
    if (k + 1 == from) s.tracer->take_rows();  // rows before `from` are not compared
  }
  return s.tracer->take_rows();
}

void expect_same(const trace::RowBlock& a, const trace::RowBlock& b) {
  ASSERT_EQ(a.nrows, b.nrows);
  ASSERT_EQ(a.row0, b.row0);
  for (const auto& [name, va] : a.data) {
    const auto& vb = b.data.at(name);
    ASSERT_EQ(va.size(), vb.size()) << name;
    for (std::size_t i = 0; i < va.size(); ++i)
      ASSERT_TRUE(va[i] == vb[i] || (std::isnan(va[i]) && std::isnan(vb[i]))) << name << "[" << i << "]";
  }
}

}  // namespace

TEST(Prefetch, SameBatchesSameTraces) {
  const auto made = rows(false, 0, 8), ahead = rows(true, 0, 8);
  EXPECT_EQ(ahead.nrows, 8u);
  expect_same(ahead, made);
  // Teeth: other batches (another seed's order and augmentation) give other traces.
  EXPECT_NE(rows(true, 0, 8, "", "seed=1").data.at("loss"), made.data.at("loss"));
}

TEST(Prefetch, CheckpointWithABatchDrawnAheadResumesAtIt) {
  const std::string path = (std::filesystem::temp_directory_path() / "nmech_prefetch_test.pt").string();
  {
    const auto cfg = config::parse_run_config("", "<test>", kSets);
    const auto data = data::load_dataset(cfg, "<test>");
    train::Trainer trainer(cfg, data);
    auto& s = trainer.state();
    s.prefetch = true;
    for (std::int64_t k = 0; k < 4; ++k) trainer.step(k);
    ASSERT_TRUE(s.next.has_value());  // step 4's batch is drawn already
    s.tracer->take_rows();
    store::Progress p;
    trainer.save_checkpoint(path, 4, p, {"test-store", "test-run", 0});
  }
  const auto resumed = rows(true, 4, 8, path);
  const auto whole = rows(true, 4, 8);
  EXPECT_EQ(resumed.nrows, 4u);
  expect_same(resumed, whole);
  std::filesystem::remove(path);
}
