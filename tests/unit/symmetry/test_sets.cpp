// Symmetry index sets derived from wiring, against docs/THEORY.md §1 counts and shapes.
#include <gtest/gtest.h>

#include <map>
#include <algorithm>
#include <vector>

#include "nmech/symmetry/sets.hpp"

using namespace nmech;
using symmetry::derive_sets;
using symmetry::Family;

namespace {

models::ModelSpec spec(const std::string& name, double width, std::int64_t size = 32) {
  models::ModelSpec s;
  s.name = name;
  s.width = width;
  s.input_size = size;
  s.input_channels = 3;
  s.classes = 200;
  return s;
}

// Every (parameter, element) is covered at most once per side of a family.
void expect_disjoint(const std::vector<symmetry::Slice>& side) {
  std::map<std::string, std::vector<char>> seen;
  std::int64_t twice = 0;
  for (const auto& sl : side) {
    auto& s = seen[sl.param];
    s.resize(std::max<std::size_t>(s.size(), sl.outer * sl.n * sl.inner), 0);
    for (std::int64_t e = 0; e < sl.outer * sl.n * sl.inner; ++e) twice += s[e]++ > 0;
  }
  EXPECT_EQ(twice, 0);
}

}  // namespace

TEST(Sets, Vgg16BnFullWidthMatchesTheoryCounts) {
  auto w = models::make_wiring(spec("vgg16_bn", 1.0, 64));
  auto s = derive_sets(w);
  const std::int64_t f = 512;  // classifier width 512·width
  EXPECT_EQ(s.get(Family::scale).count(), 4224 + 12);  // + the BN-affine groups of bn1..bn12 (docs/THEORY.md §1d)
  EXPECT_EQ(s.get(Family::rescale).count(), 4224 + f + f);
  EXPECT_EQ(s.get(Family::translation).count(), f + 1);
  // scale set of conv l channel c has 9·C_in + 1 elements
  auto sizes = s.get(Family::scale).sizes();
  EXPECT_EQ(sizes.front(), 9 * 3 + 1);
  EXPECT_EQ(sizes.back(), 9 * 512 + 1);
  // block 13 → fc1: A2 = the H·W = 4 columns of each channel (64×64 input, 2×2 last map)
  bool found = false;
  for (const auto& sl : s.get(Family::rescale).out)
    if (sl.param == "fc1.weight") {
      EXPECT_EQ(sl.outer, f);
      EXPECT_EQ(sl.n, 512);
      EXPECT_EQ(sl.inner, 4);
      found = true;
    }
  EXPECT_TRUE(found);
  // rescale A1 of a BN model is {bn.weight[c], bn.bias[c]}: 2 + |A2|
  auto rs = s.get(Family::rescale).sizes();
  EXPECT_EQ(rs[0], 2 + 64 * 9);  // bn1 channel vs conv2[:, c]
  expect_disjoint(s.get(Family::scale).in);
  expect_disjoint(s.get(Family::rescale).in);
  expect_disjoint(s.get(Family::rescale).out);
  expect_disjoint(s.get(Family::translation).in);
  EXPECT_EQ(s.get(Family::translation).sizes().back(), 200);  // the bias set
  EXPECT_EQ(s.get(Family::translation).sizes().front(), 200); // a column
}

TEST(Sets, Vgg16WithoutBnHasNoScaleSets) {
  auto s = derive_sets(models::make_wiring(spec("vgg16", 1.0, 32)));
  EXPECT_EQ(s.get(Family::scale).count(), 0);
  EXPECT_EQ(s.get(Family::rescale).count(), 3712 + 512 + 512 + 512);
  // conv1 channel c: A1 = W[c] ∪ b[c] (28), A2 = conv2[:, c] (64·9)
  EXPECT_EQ(s.get(Family::rescale).sizes()[0], 28 + 64 * 9);
}

TEST(Sets, EveryVggDepthAndMlp) {
  for (int d : {11, 13, 16, 19}) {
    const std::int64_t convs = d == 11 ? 8 : d == 13 ? 10 : d == 16 ? 13 : 16;
    auto w = models::make_wiring(spec("vgg" + std::to_string(d) + "_bn", 0.125));
    auto s = derive_sets(w);
    std::int64_t channels = 0;
    for (const auto& l : w.layers)
      if (l.kind == models::LayerKind::conv) channels += l.out;
    EXPECT_EQ(s.get(Family::scale).count(), channels + convs - 1) << d;  // + a BN-affine group per BN but the last
    EXPECT_EQ(s.get(Family::rescale).count(), channels + 2 * 64) << d;
    std::int64_t nconv = 0;
    for (const auto& l : w.layers) nconv += l.kind == models::LayerKind::conv;
    EXPECT_EQ(nconv, convs);
  }
  models::ModelSpec m;
  m.name = "mlp_bn";
  m.classifier_width = 100;
  m.mlp_depth = 3;
  auto s = derive_sets(models::make_wiring(m));
  EXPECT_EQ(s.get(Family::scale).count(), 300 + 2);
  EXPECT_EQ(s.get(Family::rescale).count(), 300);
  EXPECT_EQ(s.get(Family::translation).count(), 101);
  m.name = "mlp";
  s = derive_sets(models::make_wiring(m));
  EXPECT_EQ(s.get(Family::scale).count(), 0);
  EXPECT_EQ(s.get(Family::rescale).count(), 300);
  EXPECT_EQ(s.get(Family::rescale).sizes()[0], 32 * 32 + 1 + 100);
}

TEST(Sets, NonHomogeneousActivationBreaksRescaleOnly) {
  auto w = models::make_wiring(spec("vgg11_bn", 0.125));
  auto before = derive_sets(w);
  for (auto& l : w.layers)
    if (l.name == "relu3") l.kind = models::LayerKind::tanh;
  auto after = derive_sets(w);
  EXPECT_EQ(after.get(Family::rescale).count(), before.get(Family::rescale).count() - 32);  // conv3 has 256/8 channels
  // bn3's affine group reaches conv4 through tanh: no longer a scale set (the rows stay)
  EXPECT_EQ(after.get(Family::scale).count(), before.get(Family::scale).count() - 1);
  w.loss = models::Loss::mse;
  EXPECT_EQ(derive_sets(w).get(Family::translation).count(), 0);
}

// docs/THEORY.md §1d: all of a BatchNorm's affine parameters form one scale set when they feed, through
// ReLU and pooling, an affine map followed by BatchNorm; never for the last BatchNorm before the
// classifier (its next map has no BatchNorm) nor in a model without BatchNorm.
TEST(Sets, BnAffineGroupIsAScaleSetExceptBeforeTheClassifier) {
  auto w = models::make_wiring(spec("vgg16_bn", 0.125));
  auto s = derive_sets(w);
  std::vector<std::string> groups;
  for (std::size_t j = 0; j < s.get(Family::scale).names.size(); ++j)
    if (s.get(Family::scale).names[j].find(".affine") != std::string::npos) {
      groups.push_back(s.get(Family::scale).names[j]);
      EXPECT_EQ(w.layers[s.get(Family::scale).layer[j]].kind, models::LayerKind::batchnorm);
      EXPECT_EQ(s.get(Family::scale).sizes()[j], 2 * w.layers[s.get(Family::scale).layer[j]].out);  // every γ and β
    }
  ASSERT_EQ(groups.size(), 12u);
  EXPECT_EQ(groups.front(), "bn1.affine");
  EXPECT_EQ(groups.back(), "bn12.affine");  // bn13 feeds fc1, which has no BatchNorm
  expect_disjoint(s.get(Family::scale).in);
  models::ModelSpec m;
  m.name = "mlp_bn";
  m.mlp_depth = 2;
  auto mlp = derive_sets(models::make_wiring(m));
  EXPECT_EQ(mlp.get(Family::scale).names.back(), "fc2.ch" + std::to_string(mlp.get(Family::scale).index.back()));
  EXPECT_EQ(std::count(mlp.get(Family::scale).names.begin(), mlp.get(Family::scale).names.end(), "bn1.affine"), 1);
  EXPECT_EQ(std::count(mlp.get(Family::scale).names.begin(), mlp.get(Family::scale).names.end(), "bn2.affine"), 0);
  EXPECT_EQ(derive_sets(models::make_wiring(spec("vgg16", 0.125))).get(Family::scale).count(), 0);
}

TEST(Sets, UnknownModelThrows) {
  EXPECT_THROW(models::make_wiring(spec("vgg17", 1.0)), std::invalid_argument);
  EXPECT_THROW(models::make_wiring(spec("resnet", 1.0)), std::invalid_argument);
}
