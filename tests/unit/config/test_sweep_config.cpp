// sweep config: TOML → grid → runs. Every error case asserts the whole one-line message.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "nmech/config/sweep_config.hpp"
#include "nmech/models/wiring.hpp"

namespace nmech::config {
namespace {

// The model names a refusal lists: the VGG table's, then the MLPs (a new depth is one table row,
// and these tests follow it).
std::string valid_models() {
  std::string s;
  for (const auto& n : nmech::models::model_names()) s += (s.empty() ? "" : ", ") + n;
  return s;
}

SweepConfig parse(const std::string& text) { return parse_sweep_config(text, "cfg.toml"); }

// The message of the ConfigError thrown by parsing `text` as "cfg.toml", or "no error".
std::string error_of(const std::string& text) {
  try {
    parse(text);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "no error";
}

std::string expand_error(const SweepConfig& s) {
  try {
    expand(s);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "no error";
}

std::vector<std::string> names(const std::vector<RunSpec>& runs) {
  std::vector<std::string> n;
  for (const auto& r : runs) n.push_back(r.name);
  return n;
}

const std::string kSource = NMECH_SOURCE_DIR;

// ------------------------------------------------------------------ the shipped configs

TEST(SweepConfig, TestSweepFile) {
  SweepConfig s = load_sweep_config(kSource + "/configs/test-sweep.toml");
  EXPECT_EQ(s.base.model, "mlp_bn");
  EXPECT_EQ(s.base.dataset, "synthetic");
  EXPECT_EQ(s.base.classifier_width, 32);
  EXPECT_EQ(s.base.steps, 20);
  EXPECT_EQ(s.points<double>("lr"), (std::vector<double>{0.05, 0.1}));
  EXPECT_EQ(s.points<double>("momentum"), (std::vector<double>{0.0, 0.9}));
  EXPECT_EQ(s.points<std::int64_t>("batch_size"), (std::vector<std::int64_t>{16}));
  EXPECT_EQ(s.points<std::uint64_t>("seeds"), (std::vector<std::uint64_t>{0}));
  EXPECT_EQ(s.ranks_per_run, 1);
  auto runs = expand(s);
  EXPECT_EQ(names(runs), (std::vector<std::string>{"lr0.05-m0", "lr0.05-m0.9", "lr0.1-m0", "lr0.1-m0.9"}));
  for (const auto& r : runs) {
    EXPECT_EQ(r.cfg.name, r.name);
    EXPECT_EQ(r.cfg.model, "mlp_bn");
    EXPECT_EQ(r.cfg.batch_size, 16);
    EXPECT_EQ(r.cfg.weight_decay, 5e-4);
  }
  EXPECT_EQ(runs[1].cfg.lr, 0.05);
  EXPECT_EQ(runs[1].cfg.momentum, 0.9);
}

TEST(SweepConfig, DemoSweepFile) {
  SweepConfig s = load_sweep_config(kSource + "/configs/sweep-demo.toml");
  EXPECT_EQ(s.base.model, "vgg16_bn");
  EXPECT_EQ(s.base.width, 0.125);
  EXPECT_EQ(s.base.dataset, "fashion-mnist");
  EXPECT_EQ(s.base.steps, 800);
  EXPECT_EQ(s.base.init, "torch");
  EXPECT_EQ(s.points<double>("weight_decay"), (std::vector<double>{1e-2}));
  auto runs = expand(s);
  EXPECT_EQ(names(runs), (std::vector<std::string>{"lr0.05-b128", "lr0.1-b128", "lr0.05-b64", "lr0.1-b64"}));
}

// Runs that differ in lr end at the same t = ηk when the sweep sets time.
TEST(SweepConfig, TimeGivesEachLearningRateItsSteps) {
  auto runs = expand(parse("lr = [0.025, 0.05, 0.1]\ntime = 10\nsteps = 3\n"));
  ASSERT_EQ(runs.size(), 3u);
  for (const auto& r : runs) EXPECT_EQ(r.cfg.steps * r.cfg.lr, 10.0) << r.name;
}

TEST(SweepConfig, MissingFile) {
  try {
    load_sweep_config("/nonexistent/sweep.toml");
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(), "/nonexistent/sweep.toml: cannot read: No such file or directory");
  }
}

// ------------------------------------------------------------------ axes

TEST(SweepConfig, ScalarsAreOnePointAxes) {
  SweepConfig s = parse("lr = 0.05\nbatch_size = 64\nweight_decay = 0\nmomentum = 0.5\nseed = 7\n");
  EXPECT_EQ(s.points<double>("lr"), (std::vector<double>{0.05}));
  EXPECT_EQ(s.points<std::int64_t>("batch_size"), (std::vector<std::int64_t>{64}));
  EXPECT_EQ(s.points<double>("weight_decay"), (std::vector<double>{0.0}));
  EXPECT_EQ(s.points<double>("momentum"), (std::vector<double>{0.5}));
  EXPECT_EQ(s.points<std::uint64_t>("seeds"), (std::vector<std::uint64_t>{7}));  // seeds defaults to [seed]
  auto runs = expand(s);
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].cfg.lr, 0.05);
  EXPECT_EQ(runs[0].cfg.seed, 7u);
}

TEST(SweepConfig, DefaultsAreTheRunDefaults) {
  SweepConfig s = parse("");
  RunConfig d;
  EXPECT_EQ(s.points<double>("lr"), (std::vector<double>{d.lr}));
  EXPECT_EQ(s.points<std::int64_t>("batch_size"), (std::vector<std::int64_t>{d.batch_size}));
  EXPECT_EQ(s.points<double>("weight_decay"), (std::vector<double>{d.weight_decay}));
  EXPECT_EQ(s.points<double>("momentum"), (std::vector<double>{d.momentum}));
  EXPECT_EQ(s.points<std::uint64_t>("seeds"), (std::vector<std::uint64_t>{d.seed}));
  EXPECT_EQ(s.ranks_per_run, 1);
  auto runs = expand(s);
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].name, short_name(d));  // nothing varies, no prefix: the run's own short name
}

TEST(SweepConfig, ListsKeepTheirOrderAndIntegersReadAsNumbers) {
  SweepConfig s = parse("lr = [0.1, 1, 0.05]\nbatch_size = [64.0, 32]\nseeds = [3, 1]\n");
  EXPECT_EQ(s.points<double>("lr"), (std::vector<double>{0.1, 1.0, 0.05}));
  EXPECT_EQ(s.points<std::int64_t>("batch_size"), (std::vector<std::int64_t>{64, 32}));
  EXPECT_EQ(s.points<std::uint64_t>("seeds"), (std::vector<std::uint64_t>{3, 1}));
  // seeds are exact 64-bit integers, not rounded through a double
  EXPECT_EQ(parse("seeds = [9223372036854775807, 9007199254740993]\n").points<std::uint64_t>("seeds"),
            (std::vector<std::uint64_t>{9223372036854775807ull, 9007199254740993ull}));
}

TEST(SweepConfig, LogRangeHasExactEndpointsAndDecades) {
  SweepConfig s = parse("lr = { log = [1e-3, 1e-1], num = 5 }\n");
  ASSERT_EQ(s.points<double>("lr").size(), 5u);
  EXPECT_EQ(s.points<double>("lr").front(), 1e-3);
  EXPECT_EQ(s.points<double>("lr").back(), 1e-1);
  EXPECT_EQ(s.points<double>("lr")[2], 1e-2);
  EXPECT_DOUBLE_EQ(s.points<double>("lr")[1], 0.0031622776601683794);
  EXPECT_DOUBLE_EQ(s.points<double>("lr")[3], 0.031622776601683794);
}

TEST(SweepConfig, LinearRange) {
  SweepConfig s = parse("momentum = { linear = [0, 0.9], num = 4 }\n");
  ASSERT_EQ(s.points<double>("momentum").size(), 4u);
  EXPECT_EQ(s.points<double>("momentum").front(), 0.0);
  EXPECT_EQ(s.points<double>("momentum").back(), 0.9);
  EXPECT_DOUBLE_EQ(s.points<double>("momentum")[1], 0.3);
  EXPECT_DOUBLE_EQ(s.points<double>("momentum")[2], 0.6);
}

TEST(SweepConfig, RangeAsTableSectionAndOnePoint) {
  SweepConfig s = parse("steps = 10\n\n[weight_decay]\nlinear = [1e-4, 1e-3]\nnum = 1\n");
  EXPECT_EQ(s.points<double>("weight_decay"), (std::vector<double>{1e-4}));  // num = 1: the low bound
  EXPECT_EQ(s.base.steps, 10);
}

TEST(SweepConfig, IntegerAxisRangeRoundsToIntegers) {
  SweepConfig s = parse("batch_size = { log = [16, 256], num = 5 }\n");
  EXPECT_EQ(s.points<std::int64_t>("batch_size"), (std::vector<std::int64_t>{16, 32, 64, 128, 256}));
}

// ------------------------------------------------------------------ the grid

TEST(SweepConfig, GridIsTheFullProductTimesSeeds) {
  SweepConfig s = parse(
      "lr = [0.01, 0.1, 1]\nbatch_size = [32, 64]\nweight_decay = [0, 1e-4]\n"
      "momentum = [0, 0.9]\nseeds = [0, 1, 2]\n");
  auto runs = expand(s);
  ASSERT_EQ(runs.size(), 3u * 2 * 2 * 2 * 3);
  std::set<std::tuple<double, std::int64_t, double, double, std::uint64_t>> points;
  for (const auto& r : runs)
    points.insert({r.cfg.lr, r.cfg.batch_size, r.cfg.weight_decay, r.cfg.momentum, r.cfg.seed});
  EXPECT_EQ(points.size(), runs.size());  // every point once
  for (double lr : s.points<double>("lr"))
    for (auto b : s.points<std::int64_t>("batch_size"))
      for (double wd : s.points<double>("weight_decay"))
        for (double m : s.points<double>("momentum"))
          for (auto seed : s.points<std::uint64_t>("seeds")) EXPECT_EQ(points.count({lr, b, wd, m, seed}), 1u);
}

TEST(SweepConfig, LongestRunsFirstThenGridOrder) {
  SweepConfig s = parse("lr = [0.1, 0.05]\nbatch_size = [32, 128, 64]\n");
  auto runs = expand(s);
  EXPECT_EQ(names(runs), (std::vector<std::string>{"lr0.1-b128", "lr0.05-b128", "lr0.1-b64", "lr0.05-b64",
                                                   "lr0.1-b32", "lr0.05-b32"}));
}

TEST(SweepConfig, NamesShowEveryVaryingValueInAFixedOrder) {
  SweepConfig s = parse(
      "name = \"vgg\"\nseeds = [0, 1]\nmomentum = [0, 0.9]\nweight_decay = [5e-4, 0]\n"
      "batch_size = [128, 64]\nlr = [0.1, 0.2]\n");
  auto runs = expand(s);
  ASSERT_EQ(runs.size(), 32u);
  EXPECT_EQ(runs.front().name, "vgg-lr0.1-b128-wd5e-4-m0-s0");
  EXPECT_EQ(runs.back().name, "vgg-lr0.2-b64-wd0-m0.9-s1");
  std::set<std::string> unique;
  for (const auto& r : runs) {
    unique.insert(r.name);
    EXPECT_LE(r.name.size(), 64u);
    EXPECT_TRUE(std::all_of(r.name.begin(), r.name.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_';
    })) << r.name;
  }
  EXPECT_EQ(unique.size(), runs.size());
}

TEST(SweepConfig, NameValuesAreShort) {
  auto runs = expand(parse("lr = [0.001, 0.05, 0.1, 1.5, 3e-5, 0.00316228, 123456789]\n"));
  EXPECT_EQ(names(runs), (std::vector<std::string>{"lr1e-3", "lr0.05", "lr0.1", "lr1.5", "lr3e-5",
                                                   "lr0.00316228", "lr1.23457e8"}));
}

TEST(SweepConfig, OnePointGridIsNamedByItsPrefix) {
  auto runs = expand(parse("name = \"baseline\"\nlr = [0.1]\n"));
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].name, "baseline");
}

TEST(SweepConfig, CollidingNamesGetAHashSuffix) {
  // Equal to 6 significant digits: both would be "lr0.1".
  auto runs = expand(parse("lr = [0.1, 0.1000001]\n"));
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_NE(runs[0].name, runs[1].name);
  for (const auto& r : runs) {
    EXPECT_EQ(r.name.rfind("lr0.1-", 0), 0u) << r.name;
    EXPECT_EQ(r.name.size(), std::string("lr0.1-").size() + 8) << r.name;
  }
}

TEST(SweepConfig, RunKeysOtherThanAxesReachEveryRun) {
  auto runs = expand(parse("model = \"mlp\"\ndtype = \"float64\"\nsteps = 7\nrecord_every = 2\nlr = [0.1, 0.2]\n"));
  for (const auto& r : runs) {
    EXPECT_EQ(r.cfg.model, "mlp");
    EXPECT_EQ(r.cfg.dtype, "float64");
    EXPECT_EQ(r.cfg.steps, 7);
    EXPECT_EQ(r.cfg.record_every, 2);
  }
}

// ------------------------------------------------------------------ errors

TEST(SweepConfigErrors, EmptyList) {
  EXPECT_EQ(error_of("lr = []\n"), "cfg.toml:1: key 'lr': empty list (give at least one value)");
  EXPECT_EQ(error_of("\nseeds = []\n"), "cfg.toml:2: key 'seeds': empty list (give at least one value)");
}

TEST(SweepConfigErrors, NonNumericElementNamesItsLine) {
  EXPECT_EQ(error_of("lr = [0.1, \"a\"]\n"), "cfg.toml:1: key 'lr': element 2: expected a number, got a string");
  EXPECT_EQ(error_of("lr = [\n  0.1,\n  true,\n]\n"),
            "cfg.toml:3: key 'lr': element 2: expected a number, got a boolean");
  EXPECT_EQ(error_of("batch_size = [12.5]\n"),
            "cfg.toml:1: key 'batch_size': element 1: expected an integer, got 12.5");
  EXPECT_EQ(error_of("seeds = [0, -1]\n"), "cfg.toml:1: key 'seeds': element 2: must be >= 0");
  EXPECT_EQ(error_of("momentum = \"high\"\n"), "cfg.toml:1: key 'momentum': expected a number, got a string");
}

TEST(SweepConfigErrors, ValuesGetTheRunChecks) {
  EXPECT_EQ(error_of("lr = [0.1, -0.2]\n"), "cfg.toml:1: key 'lr': element 2: must be > 0, got -0.2");
  EXPECT_EQ(error_of("momentum = [0, 1]\n"), "cfg.toml:1: key 'momentum': element 2: must be in [0, 1), got 1");
  EXPECT_EQ(error_of("momentum = 1.5\n"), "cfg.toml:1: key 'momentum': must be in [0, 1)");  // as in a run
  EXPECT_EQ(error_of("batch_size = { linear = [0, 8], num = 3 }\n"),
            "cfg.toml:1: key 'batch_size': range point 1: must be >= 1, got 0");
  EXPECT_EQ(error_of("width = -1\nlr = [0.1]\n"), "cfg.toml:1: key 'width': must be > 0");
}

TEST(SweepConfigErrors, RangeTables) {
  EXPECT_EQ(error_of("lr = 0.1\nmomentum = { linear = [0, 0.9], num = 0 }\n"),
            "cfg.toml:2: key 'momentum': num must be >= 1, got 0");
  EXPECT_EQ(error_of("lr = { log = [0, 0.1], num = 3 }\n"),
            "cfg.toml:1: key 'lr': log range bounds must be > 0, got 0");
  EXPECT_EQ(error_of("lr = { log = [1e-3, -1], num = 3 }\n"),
            "cfg.toml:1: key 'lr': log range bounds must be > 0, got -1");
  EXPECT_EQ(error_of("lr = { log = [1e-3, 1e-1], linear = [1, 2], num = 3 }\n"),
            "cfg.toml:1: key 'lr': a range takes 'log' or 'linear', not both");
  EXPECT_EQ(error_of("lr = { num = 3 }\n"),
            "cfg.toml:1: key 'lr': a range needs 'log' or 'linear' = [low, high], and 'num'");
  EXPECT_EQ(error_of("lr = { log = [1e-3, 1e-1] }\n"),
            "cfg.toml:1: key 'lr': a range needs 'num', the number of points");
  EXPECT_EQ(error_of("lr = { log = [1e-3], num = 2 }\n"),
            "cfg.toml:1: key 'lr': 'log' must be [low, high], two numbers");
  EXPECT_EQ(error_of("lr = { log = [1e-3, \"x\"], num = 2 }\n"),
            "cfg.toml:1: key 'lr': 'log' must be [low, high], two numbers; bound 2: expected a number, got a string");
  EXPECT_EQ(error_of("lr = { log = [1e-3, 1e-1], num = 2.5 }\n"),
            "cfg.toml:1: key 'lr': num: expected an integer, got 2.5");
  EXPECT_EQ(error_of("lr = { log = [1e-3, 1e-1], step = 2 }\n"),
            "cfg.toml:1: key 'lr': unknown range key 'step' (a range is { log = [low, high], num = N } or "
            "{ linear = [low, high], num = N })");
  EXPECT_EQ(error_of("seeds = { linear = [0, 3], num = 4 }\n"),
            "cfg.toml:1: key 'seeds': expected an integer or a list of integers, got a table");
}

TEST(SweepConfigErrors, UnknownKeySuggestsSweepKeysToo) {
  EXPECT_EQ(error_of("lr = [0.1]\nrank_per_run = 2\n"),
            "cfg.toml:2: key 'rank_per_run': unknown key (did you mean 'ranks_per_run'?)");
  EXPECT_EQ(error_of("lrr = [0.1]\n"), "cfg.toml:1: key 'lrr': unknown key (did you mean 'lr'?)");
}

TEST(SweepConfigErrors, RanksPerRun) {
  EXPECT_EQ(error_of("ranks_per_run = 0\n"), "cfg.toml:1: key 'ranks_per_run': must be >= 1, got 0");
  EXPECT_EQ(error_of("ranks_per_run = [1, 2]\n"),
            "cfg.toml:1: key 'ranks_per_run': expected an integer, got an array");
}

TEST(SweepConfigErrors, OnlyAxesTakeLists) {
  EXPECT_EQ(error_of("steps = [10, 20]\n"),
            "cfg.toml:1: key 'steps': takes one value in a sweep; only model, lr, batch_size, weight_decay, "
            "momentum, dampening and seeds may be lists");
  EXPECT_EQ(error_of("seed = [0, 1]\n"), "cfg.toml:1: key 'seed': takes one seed; a list of seeds is 'seeds = [...]'");
  EXPECT_EQ(error_of("seed = 1\nseeds = [0, 1]\n"),
            "cfg.toml:2: key 'seeds': conflicts with 'seed' (cfg.toml:1); give the seeds here only");
}

TEST(SweepConfigErrors, RepeatedValue) {
  EXPECT_EQ(error_of("lr = [0.1, 0.05, 0.1]\n"),
            "cfg.toml:1: key 'lr': value 0.1 appears twice (a grid point would run twice)");
}

TEST(SweepConfigErrors, CrossKeyRuleOnAGridPointNamesTheKey) {
  EXPECT_EQ(error_of("nesterov = true\nmomentum = [0.9, 0]\n"),
            "cfg.toml:1: key 'nesterov': true needs momentum > 0 (LibTorch rule), but momentum = 0 (from "
            "cfg.toml:2)");
  EXPECT_EQ(error_of("input_size = 16\n"),
            "cfg.toml:1: key 'input_size': must be >= 28 for dataset fashion-mnist (28x28 images are "
            "padded, not cropped)");
}

TEST(SweepConfigErrors, DerivedNameTooLong) {
  const std::string prefix(60, 'p');
  EXPECT_EQ(error_of("name = \"" + prefix + "\"\nlr = [0.1, 0.2]\n"),
            "cfg.toml:1: key 'name': run name '" + prefix + "-lr0.1': must be at most 64 characters, got 66");
}

TEST(SweepConfigErrors, SyntaxErrorIsLocated) {
  // Reported by the run config's parser, with line and column.
  const std::string e = error_of("lr = [0.1, 0.2\nsteps = 3\n");
  EXPECT_EQ(e.rfind("cfg.toml:2:", 0), 0u) << e;
  EXPECT_NE(e.find(": TOML syntax error: "), std::string::npos) << e;
}

TEST(SweepConfigErrors, GridTooLarge) {
  EXPECT_EQ(error_of("lr = { log = [1e-4, 1], num = 1000 }\nmomentum = { linear = [0, 0.9], num = 1000 }\n"),
            "cfg.toml: the grid has 1000000 runs, more than 100000");
}

TEST(SweepConfigErrors, HandBuiltConfigIsCheckedByExpand) {
  SweepConfig s;
  s.points<double>("lr").clear();
  EXPECT_EQ(expand_error(s), "<sweep>: key 'lr': empty list (give at least one value)");
  s = SweepConfig{};
  s.ranks_per_run = 0;
  EXPECT_EQ(expand_error(s), "<sweep>: key 'ranks_per_run': must be >= 1, got 0");
  s = SweepConfig{};
  s.points<double>("momentum") = {0.9, 0.0};
  s.base.nesterov = true;
  EXPECT_EQ(expand_error(s),
            "<sweep>: key 'nesterov': true needs momentum > 0 (LibTorch rule), but momentum = 0 (from the default)");
  s = SweepConfig{};
  s.points<double>("lr") = {0.1, -1.0};
  EXPECT_EQ(expand_error(s), "<sweep>: key 'lr': must be > 0");
}

// ------------------------------------------------------------------ canonical text and hash

TEST(SweepHash, EqualForEqualSweepsHoweverWritten) {
  SweepConfig a = parse("lr = [0.05, 0.1]\nmomentum = [0, 0.9]\nsteps = 20\n");
  SweepConfig b = parse("# the same sweep\nsteps = 20.0\nmomentum = [0.0, 0.9]\n\nlr = [5e-2, 1e-1]\nseeds = [0]\n");
  EXPECT_EQ(to_toml(a), to_toml(b));
  EXPECT_EQ(sweep_hash(a), sweep_hash(b));
  EXPECT_EQ(sweep_hash(a).size(), 64u);
  EXPECT_EQ(sweep_hash(parse("lr = 0.1\n")), sweep_hash(parse("lr = [0.1]\n")));
}

TEST(SweepHash, DiffersWhenOneValueChanges) {
  const std::string base = "lr = [0.05, 0.1]\nmomentum = [0, 0.9]\nsteps = 20\n";
  const std::string h = sweep_hash(parse(base));
  EXPECT_NE(h, sweep_hash(parse("lr = [0.05, 0.2]\nmomentum = [0, 0.9]\nsteps = 20\n")));
  EXPECT_NE(h, sweep_hash(parse("lr = [0.1, 0.05]\nmomentum = [0, 0.9]\nsteps = 20\n")));  // order
  EXPECT_NE(h, sweep_hash(parse(base + "seeds = [1]\n")));
  EXPECT_NE(h, sweep_hash(parse(base + "ranks_per_run = 2\n")));
  EXPECT_NE(h, sweep_hash(parse("lr = [0.05, 0.1]\nmomentum = [0, 0.9]\nsteps = 21\n")));
  EXPECT_NE(h, sweep_hash(parse(base + "dtype = \"float64\"\n")));
}

TEST(SweepHash, CanonicalTextParsesBackToTheSameSweep) {
  SweepConfig a = load_sweep_config(kSource + "/configs/sweep-demo.toml");
  const std::string text = to_toml(a);
  EXPECT_NE(text.find("lr = [0.05, 0.1]\n"), std::string::npos) << text;
  EXPECT_NE(text.find("batch_size = [64, 128]\n"), std::string::npos) << text;
  EXPECT_NE(text.find("momentum = [0.9]\n"), std::string::npos) << text;
  EXPECT_NE(text.find("seeds = [0]\n"), std::string::npos) << text;
  EXPECT_NE(text.find("ranks_per_run = 1\n"), std::string::npos) << text;
  EXPECT_EQ(text.find("\nseed = "), std::string::npos) << text;
  SweepConfig b = parse(text);
  EXPECT_EQ(to_toml(b), text);
  EXPECT_EQ(names(expand(b)), names(expand(a)));
}

TEST(SweepHash, DifferingKeysSayWhatChanged) {
  const std::string a = to_toml(parse("lr = [0.05, 0.1]\nsteps = 20\n"));
  const std::string b = to_toml(parse("lr = [0.05]\nsteps = 30\n"));
  EXPECT_EQ(differing_keys(a, b), (std::vector<std::string>{"lr: [0.05, 0.1] -> [0.05]", "steps: 20 -> 30"}));
  EXPECT_TRUE(differing_keys(a, a).empty());
  EXPECT_EQ(differing_keys("x = 1\n", ""), (std::vector<std::string>{"x: 1 -> (absent)"}));
}

TEST(SweepConfig, CheckpointEveryIsReadButIsNotPartOfTheSweepsIdentity) {
  EXPECT_EQ(parse("lr = 0.1\n").checkpoint_every, 100);
  const SweepConfig s = parse("lr = 0.1\ncheckpoint_every = 7\n");
  EXPECT_EQ(s.checkpoint_every, 7);
  EXPECT_EQ(sweep_hash(s), sweep_hash(parse("lr = 0.1\n")));  // a rerun may checkpoint more often
  EXPECT_EQ(to_toml(s).find("checkpoint_every"), std::string::npos);
  EXPECT_EQ(error_of("checkpoint_every = 0\n"), "cfg.toml:1: key 'checkpoint_every': must be >= 1, got 0");
  EXPECT_EQ(error_of("checkpoint_every = [5]\n"),
            "cfg.toml:1: key 'checkpoint_every': expected an integer, got an array");
}

TEST(SweepConfig, DampeningAndModelAreAxes) {
  const SweepConfig s = parse("model = [\"vgg11_bn\", \"vgg11\"]\nmomentum = [0.8, 0.9]\ndampening = [0.0, 0.01]\n");
  const auto runs = expand(s);
  ASSERT_EQ(runs.size(), 8u);
  EXPECT_EQ(runs.front().name, "vgg11_bn-m0.8-d0");
  EXPECT_EQ(runs.back().name, "vgg11-m0.9-d0.01");
  EXPECT_EQ(runs.back().cfg.model, "vgg11");
  EXPECT_EQ(runs.back().cfg.dampening, 0.01);
  EXPECT_NE(sweep_hash(s), sweep_hash(parse("model = [\"vgg11_bn\"]\nmomentum = [0.8, 0.9]\ndampening = [0.0, 0.01]\n")));
  EXPECT_EQ(error_of("model = [\"vgg11\", \"resnet\"]\n"),
            "cfg.toml:1: key 'model': element 2: unknown model 'resnet' (valid: " + valid_models() + ")");
  EXPECT_EQ(error_of("dampening = [0.0, 1.5]\n"), "cfg.toml:1: key 'dampening': element 2: must be in [0, 1), got 1.5");
  EXPECT_EQ(error_of("model = [\"vgg11\", \"vgg11\"]\n"),
            "cfg.toml:1: key 'model': value 'vgg11' appears twice (a grid point would run twice)");
}

TEST(SweepConfig, ReducerKeysAreCheckedAndAreNotPartOfTheSweepsIdentity) {
  const SweepConfig d = parse("lr = 0.1\n");
  EXPECT_EQ(d.reducer.kind, "overlap");
  EXPECT_EQ(d.reducer.bucket_mb, 25.0);
  EXPECT_EQ(d.reducer.first_bucket_mb, 1.0);
  EXPECT_EQ(d.reducer.in_place_mb, 1.0);
  const SweepConfig s =
      parse("lr = 0.1\nreducer = \"single\"\nbucket_mb = 0.5\nfirst_bucket_mb = 2\nin_place_mb = 0.25\n");
  EXPECT_EQ(s.reducer.kind, "single");
  EXPECT_EQ(s.reducer.bucket_mb, 0.5);
  EXPECT_EQ(s.reducer.first_bucket_mb, 2.0);
  EXPECT_EQ(s.reducer.in_place_mb, 0.25);
  EXPECT_EQ(sweep_hash(s), sweep_hash(d));
  EXPECT_EQ(error_of("reducer = \"ring\"\n"),
            "cfg.toml:1: key 'reducer': must be \"overlap\", \"buckets\" or \"single\", got \"ring\"");
  EXPECT_EQ(error_of("lr = 0.1\nbucket_mb = 0\n"), "cfg.toml:2: key 'bucket_mb': must be > 0, got 0.0");
  EXPECT_EQ(error_of("in_place_mb = -1\n"), "cfg.toml:1: key 'in_place_mb': must be > 0, got -1.0");
  EXPECT_EQ(error_of("first_bucket_mb = \"1\"\n"),
            "cfg.toml:1: key 'first_bucket_mb': expected a number, got a string");
}

}  // namespace
}  // namespace nmech::config
