// config: TOML → RunConfig. Every error case asserts the whole one-line message (file, line, key).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "nmech/config/run_config.hpp"
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

// The message of the ConfigError thrown by parsing `text` (as "cfg.toml") with `overrides`,
// or "no error" so a missing throw shows up in the comparison.
std::string error_of(const std::string& text, const std::vector<std::string>& overrides = {}) {
  try {
    parse_run_config(text, "cfg.toml", overrides);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "no error";
}

RunConfig parse(const std::string& text, const std::vector<std::string>& overrides = {}) {
  return parse_run_config(text, "cfg.toml", overrides);
}

// RunConfig has no operator==; compare every field so a failure names the field.
void expect_same(const RunConfig& a, const RunConfig& b) {
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.model, b.model);
  EXPECT_EQ(a.width, b.width);
  EXPECT_EQ(a.classifier_width, b.classifier_width);
  EXPECT_EQ(a.mlp_depth, b.mlp_depth);
  EXPECT_EQ(a.dropout, b.dropout);
  EXPECT_EQ(a.bn_eps, b.bn_eps);
  EXPECT_EQ(a.init, b.init);
  EXPECT_EQ(a.dataset, b.dataset);
  EXPECT_EQ(a.data_dir, b.data_dir);
  EXPECT_EQ(a.input_size, b.input_size);
  EXPECT_EQ(a.lr, b.lr);
  EXPECT_EQ(a.weight_decay, b.weight_decay);
  EXPECT_EQ(a.momentum, b.momentum);
  EXPECT_EQ(a.dampening, b.dampening);
  EXPECT_EQ(a.nesterov, b.nesterov);
  EXPECT_EQ(a.decoupled_weight_decay, b.decoupled_weight_decay);
  EXPECT_EQ(a.batch_size, b.batch_size);
  EXPECT_EQ(a.steps, b.steps);
  EXPECT_EQ(a.time, b.time);
  EXPECT_EQ(a.seed, b.seed);
  EXPECT_EQ(a.dtype, b.dtype);
  EXPECT_EQ(a.threads, b.threads);
  EXPECT_EQ(a.device, b.device);
  EXPECT_EQ(a.record_every, b.record_every);
}

// The documented defaults, spelled out (not RunConfig{}), so a changed default is noticed.
void expect_defaults(const RunConfig& c) {
  EXPECT_EQ(c.name, "");
  EXPECT_EQ(c.model, "vgg16_bn");
  EXPECT_EQ(c.width, 0.125);
  EXPECT_EQ(c.classifier_width, 0);
  EXPECT_EQ(c.mlp_depth, 2);
  EXPECT_EQ(c.dropout, 0.0);
  EXPECT_EQ(c.bn_eps, 1e-5);
  EXPECT_EQ(c.dataset, "fashion-mnist");
  EXPECT_EQ(c.data_dir, "/usr/share/datasets/fashion-mnist");
  EXPECT_EQ(c.input_size, 32);
  EXPECT_EQ(c.lr, 0.1);
  EXPECT_EQ(c.weight_decay, 5e-4);
  EXPECT_EQ(c.momentum, 0.9);
  EXPECT_EQ(c.dampening, 0.0);
  EXPECT_FALSE(c.nesterov);
  EXPECT_FALSE(c.decoupled_weight_decay);
  EXPECT_EQ(c.batch_size, 128);
  EXPECT_EQ(c.steps, 200);
  EXPECT_EQ(c.seed, 0u);
  EXPECT_EQ(c.dtype, "float32");
  EXPECT_EQ(c.threads, 1);
  EXPECT_EQ(c.record_every, 1);
}

// ------------------------------------------------------------------ parsing values

TEST(RunConfig, EmptyFileGivesDefaults) {
  expect_defaults(parse(""));
  expect_defaults(parse("# only a comment\n\n"));
}

TEST(RunConfig, EveryKeyIsRead) {
  RunConfig c = parse(R"(name = "my-run_1.a"
model = "mlp_bn"
width = 0.5
classifier_width = 100
mlp_depth = 3
dropout = 0.25
bn_eps = 1e-3
dataset = "synthetic"
data_dir = "/tmp/data"
input_size = 16
augment = true
lr = 0.05
weight_decay = 0.0
momentum = 0.0
dampening = 0.5
nesterov = false
decoupled_weight_decay = true
batch_size = 64
steps = 1000
seed = 42
dtype = "float64"
threads = 4
record_every = 10
eval_every = 20
)");
  EXPECT_EQ(c.name, "my-run_1.a");
  EXPECT_EQ(c.model, "mlp_bn");
  EXPECT_EQ(c.width, 0.5);
  EXPECT_EQ(c.classifier_width, 100);
  EXPECT_EQ(c.mlp_depth, 3);
  EXPECT_EQ(c.dropout, 0.25);
  EXPECT_EQ(c.bn_eps, 1e-3);
  EXPECT_EQ(c.dataset, "synthetic");
  EXPECT_EQ(c.data_dir, "/tmp/data");
  EXPECT_EQ(c.input_size, 16);
  EXPECT_TRUE(c.augment);
  EXPECT_EQ(c.eval_every, 20);
  EXPECT_EQ(c.lr, 0.05);
  EXPECT_EQ(c.weight_decay, 0.0);
  EXPECT_EQ(c.momentum, 0.0);
  EXPECT_EQ(c.dampening, 0.5);
  EXPECT_FALSE(c.nesterov);
  EXPECT_TRUE(c.decoupled_weight_decay);
  EXPECT_EQ(c.batch_size, 64);
  EXPECT_EQ(c.steps, 1000);
  EXPECT_EQ(c.seed, 42u);
  EXPECT_EQ(c.dtype, "float64");
  EXPECT_EQ(c.threads, 4);
  EXPECT_EQ(c.record_every, 10);
}

TEST(RunConfig, IntegersAreAcceptedForFloats) {
  RunConfig c = parse("lr = 1\nweight_decay = 0\nwidth = 2\n");
  EXPECT_EQ(c.lr, 1.0);
  EXPECT_EQ(c.weight_decay, 0.0);
  EXPECT_EQ(c.width, 2.0);
}

TEST(RunConfig, WholeFloatsAreAcceptedForIntegers) {
  RunConfig c = parse("batch_size = 64.0\nsteps = 1e3\nseed = 7.0\n");
  EXPECT_EQ(c.batch_size, 64);
  EXPECT_EQ(c.steps, 1000);
  EXPECT_EQ(c.seed, 7u);
}

TEST(RunConfig, EveryValidModelIsAccepted) {
  for (const char* m : {"vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19",
                        "vgg19_bn", "mlp", "mlp_bn"}) {
    EXPECT_EQ(parse(std::string("model = \"") + m + "\"").model, m);
  }
}

TEST(RunConfig, BoundaryValuesAreAccepted) {
  RunConfig c = parse("momentum = 0.0\ndampening = 0.0\ndropout = 0.0\nweight_decay = 0.0\n"
                      "batch_size = 1\nsteps = 1\nrecord_every = 1\nthreads = 1\ninput_size = 28\n");
  EXPECT_EQ(c.momentum, 0.0);
  EXPECT_EQ(c.input_size, 28);
  std::string name64(64, 'a');
  EXPECT_EQ(parse("name = \"" + name64 + "\"").name, name64);
  EXPECT_EQ(parse("seed = 9223372036854775807").seed, 9223372036854775807ull);
}

// time = t sets steps = round(t/lr) after every key is in, --set included.
TEST(RunConfig, TimeSetsStepsFromTheLearningRate) {
  EXPECT_EQ(parse("lr = 0.025\ntime = 10\n").steps, 400);
  EXPECT_EQ(parse("lr = 0.3\ntime = 10\nsteps = 7\n").steps, 33);  // round(33.3)
  EXPECT_EQ(parse("lr = 0.1\ntime = 0.01\n").steps, 1);             // at least one step
  EXPECT_EQ(parse("lr = 0.1\nsteps = 7\n").steps, 7);               // time 0: steps as given
  EXPECT_EQ(parse_run_config("lr = 0.1\ntime = 10\n", "cfg.toml", {"lr=0.05"}).steps, 200);
  EXPECT_NE(error_of("time = -1\n").find("time"), std::string::npos);
}

TEST(RunConfig, DemoFileIsTheDefaultRun) {
  RunConfig c = load_run_config(std::string(NMECH_SOURCE_DIR) + "/configs/demo.toml");
  expect_defaults(c);  // the demo documents every key at its default
  EXPECT_EQ(c.model, "vgg16_bn");
  EXPECT_EQ(c.width, 0.125);
  EXPECT_EQ(c.dataset, "fashion-mnist");
  EXPECT_EQ(c.batch_size, 128);
  EXPECT_EQ(c.steps, 200);
  EXPECT_EQ(c.lr, 0.1);
  EXPECT_EQ(c.momentum, 0.9);
  EXPECT_EQ(c.weight_decay, 5e-4);
  EXPECT_EQ(c.dtype, "float32");
  EXPECT_EQ(c.record_every, 1);
}

// ------------------------------------------------------------------ errors in the file

TEST(RunConfigErrors, MalformedToml) {
  EXPECT_EQ(error_of("lr = 0.1\nsteps = = 3\n"),
            "cfg.toml:2:9: TOML syntax error: Error while parsing value: could not determine value "
            "type");
  EXPECT_EQ(error_of("lr = 0.1\n[model\n"),
            "cfg.toml:2:7: TOML syntax error: Error while parsing table header: expected ']', "
            "saw '\\n'");
  EXPECT_EQ(error_of("lr = 0.1\nlr = 0.2\n"),
            "cfg.toml:2:6: TOML syntax error: Error while parsing key-value pair: cannot redefine "
            "existing floating-point 'lr'");
}

TEST(RunConfigErrors, UnknownKeySuggestsTheClosest) {
  EXPECT_EQ(error_of("lr = 0.1\n\nlrr = 0.1\n"),
            "cfg.toml:3: key 'lrr': unknown key (did you mean 'lr'?)");
  EXPECT_EQ(error_of("momentm = 0.5\n"),
            "cfg.toml:1: key 'momentm': unknown key (did you mean 'momentum'?)");
  EXPECT_EQ(error_of("batchsize = 5\n"),
            "cfg.toml:1: key 'batchsize': unknown key (did you mean 'batch_size'?)");
}

TEST(RunConfigErrors, UnknownKeyFarFromAllListsThem) {
  const std::string known =
      "augment, batch_size, bn_eps, classifier_width, dampening, data_dir, dataset, decoupled_weight_decay, "
      "device, dropout, dtype, eval_every, init, input_size, lr, mlp_depth, model, momentum, name, nesterov, "
      "record_every, seed, steps, threads, time, weight_decay, width";
  EXPECT_EQ(error_of("steps = 3\nlearning_rate = 0.1\n"),
            "cfg.toml:2: key 'learning_rate': unknown key (known keys: " + known + ")");
  // one letter is never "close" to a two-letter key
  EXPECT_EQ(error_of("x = 1\n"), "cfg.toml:1: key 'x': unknown key (known keys: " + known + ")");
}

TEST(RunConfigErrors, FirstErrorInFileOrderIsReported) {
  // toml::table iterates keys sorted ("lr" < "steps"); the report follows the file instead.
  EXPECT_EQ(error_of("steps = 0\nlr = -1\n"), "cfg.toml:1: key 'steps': must be >= 1");
}

TEST(RunConfigErrors, WrongType) {
  EXPECT_EQ(error_of("steps = 3\nlr = \"fast\"\n"),
            "cfg.toml:2: key 'lr': expected a number, got a string");
  EXPECT_EQ(error_of("lr = true"), "cfg.toml:1: key 'lr': expected a number, got a boolean");
  EXPECT_EQ(error_of("model = 16"), "cfg.toml:1: key 'model': expected a string, got an integer");
  EXPECT_EQ(error_of("nesterov = 1"),
            "cfg.toml:1: key 'nesterov': expected a boolean (true or false), got an integer");
  EXPECT_EQ(error_of("nesterov = \"true\""),
            "cfg.toml:1: key 'nesterov': expected a boolean (true or false), got a string");
  EXPECT_EQ(error_of("batch_size = \"128\""),
            "cfg.toml:1: key 'batch_size': expected an integer, got a string");
  EXPECT_EQ(error_of("seed = 1979-05-27"), "cfg.toml:1: key 'seed': expected an integer, got a date");
}

TEST(RunConfigErrors, FractionalFloatForIntegerKey) {
  EXPECT_EQ(error_of("\n\nsteps = 12.5\n"), "cfg.toml:3: key 'steps': expected an integer, got 12.5");
  EXPECT_EQ(error_of("batch_size = 1e30"), "cfg.toml:1: key 'batch_size': is out of range");
  EXPECT_EQ(error_of("seed = 0.5"), "cfg.toml:1: key 'seed': expected an integer, got 0.5");
}

TEST(RunConfigErrors, TablesAndArraysWhereScalarsAreExpected) {
  EXPECT_EQ(error_of("lr = [0.1, 0.2]"), "cfg.toml:1: key 'lr': expected a number, got an array");
  EXPECT_EQ(error_of("dtype = { a = 1 }"), "cfg.toml:1: key 'dtype': expected a string, got a table");
  EXPECT_EQ(error_of("lr = 0.1\n\n[model]\nname = \"vgg\"\n"),
            "cfg.toml:3: key 'model': expected a string, got a table");
  // a multi-line array is blamed on the line of its key
  EXPECT_EQ(error_of("steps = 5\nbatch_size = [\n  1,\n  2,\n]\n"),
            "cfg.toml:2: key 'batch_size': expected an integer, got an array");
  // dotted keys make a table too: the flat config has no such key
  EXPECT_EQ(error_of("model.depth = 3"), "cfg.toml:1: key 'model': expected a string, got a table");
}

struct RangeCase {
  std::string line;  // placed on line 3 of the file
  std::string message;  // after "cfg.toml:3: "
};

TEST(RunConfigErrors, ValueOutOfRange) {
  const std::vector<RangeCase> cases = {
      {"lr = 0", "key 'lr': must be > 0"},
      {"lr = -0.1", "key 'lr': must be > 0"},
      {"lr = inf", "key 'lr': must be a finite number"},
      {"lr = nan", "key 'lr': must be a finite number"},
      {"weight_decay = -1e-4", "key 'weight_decay': must be >= 0"},
      {"momentum = 1", "key 'momentum': must be in [0, 1)"},
      {"momentum = -0.1", "key 'momentum': must be in [0, 1)"},
      {"dampening = 1.0", "key 'dampening': must be in [0, 1)"},
      {"dampening = -0.5", "key 'dampening': must be in [0, 1)"},
      {"batch_size = 0", "key 'batch_size': must be >= 1"},
      {"steps = 0", "key 'steps': must be >= 1"},
      {"steps = -5", "key 'steps': must be >= 1"},
      {"record_every = 0", "key 'record_every': must be >= 1"},
      {"record_every = -1", "key 'record_every': must be >= 1"},
      {"threads = 0", "key 'threads': must be >= 1"},
      {"width = 0", "key 'width': must be > 0"},
      {"width = -0.125", "key 'width': must be > 0"},
      {"dropout = 1", "key 'dropout': must be in [0, 1)"},
      {"dropout = -0.1", "key 'dropout': must be in [0, 1)"},
      {"bn_eps = 0", "key 'bn_eps': must be > 0"},
      {"init = \"xavier\"", "key 'init': unknown init 'xavier' (valid: paper, torch)"},
      {"classifier_width = -1", "key 'classifier_width': must be >= 0"},
      {"mlp_depth = 0", "key 'mlp_depth': must be >= 1"},
      {"input_size = 0", "key 'input_size': must be >= 1"},
      {"seed = -1", "key 'seed': must be >= 0"},
      {"dtype = \"float16\"", "key 'dtype': unknown dtype 'float16' (valid: float32, float64)"},
      {"dtype = \"Float32\"", "key 'dtype': unknown dtype 'Float32' (valid: float32, float64)"},
      {"model = \"vgg17\"", "key 'model': unknown model 'vgg17' (valid: " + valid_models() + ")"},
      {"model = \"resnet18\"", "key 'model': unknown model 'resnet18' (valid: " + valid_models() + ")"},
      {"dataset = \"imagenet\"",
       "key 'dataset': unknown dataset 'imagenet' (valid: fashion-mnist, synthetic, tiny-imagenet, cifar10, cifar100)"},
      {"eval_every = -1", "key 'eval_every': must be >= 0"},
      {"device = \"gpu\"", "key 'device': unknown device 'gpu' (valid: cpu, cuda)"},
      {"name = \"my run\"", "key 'name': may contain only A-Z a-z 0-9 . _ -, got 'my run'"},
      {"name = \"a/b\"", "key 'name': may contain only A-Z a-z 0-9 . _ -, got 'a/b'"},
      {"name = \"" + std::string(65, 'x') + "\"", "key 'name': must be at most 64 characters, got 65"},
      {"name = \"..\"", "key 'name': must not be '.' or '..'"},
  };
  for (const RangeCase& c : cases) {
    SCOPED_TRACE(c.line);
    EXPECT_EQ(error_of("# comment\ndata_dir = \"/tmp\"\n" + c.line + "\n"), "cfg.toml:3: " + c.message);
  }
}

TEST(RunConfigErrors, NesterovNeedsMomentumAndNoDampening) {
  EXPECT_EQ(error_of("momentum = 0.0\nnesterov = true\n"),
            "cfg.toml:2: key 'nesterov': true needs momentum > 0 (LibTorch rule), but momentum = 0 "
            "(from cfg.toml:1)");
  EXPECT_EQ(error_of("nesterov = true\n\ndampening = 0.1\n"),
            "cfg.toml:1: key 'nesterov': true needs dampening = 0 (LibTorch rule), but dampening = 0.1 "
            "(from cfg.toml:3)");
  RunConfig c = parse("nesterov = true\nmomentum = 0.5\n");
  EXPECT_TRUE(c.nesterov);
  EXPECT_EQ(c.momentum, 0.5);
}

TEST(RunConfigErrors, InputSizeMustFitFashionMnist) {
  EXPECT_EQ(error_of("input_size = 27\n"),
            "cfg.toml:1: key 'input_size': must be >= 28 for dataset fashion-mnist (28x28 images are "
            "padded, not cropped)");
  EXPECT_EQ(parse("input_size = 8\ndataset = \"synthetic\"\n").input_size, 8);
  EXPECT_EQ(error_of("dataset = \"tiny-imagenet\"\ninput_size = 32\n"),
            "cfg.toml:2: key 'input_size': must be >= 64 for dataset tiny-imagenet (64x64 images are padded, not cropped)");
  EXPECT_EQ(error_of("record_every = 10\neval_every = 25\n"),
            "cfg.toml:2: key 'eval_every': must be a multiple of record_every = 10 (from cfg.toml:1), got 25");
}

TEST(RunConfigErrors, MessagesStayOnOneLine) {
  std::string msg = error_of("\"a\\nb\" = 1\n");
  EXPECT_EQ(msg.find('\n'), std::string::npos);
  EXPECT_EQ(msg.rfind("cfg.toml:1: key 'a\\nb': unknown key (known keys: ", 0), 0u) << msg;
}

TEST(RunConfigErrors, OriginIsUsedVerbatim) {
  try {
    parse_run_config("steps = 0", "<demo>");
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(), "<demo>:1: key 'steps': must be >= 1");
  }
}

TEST(RunConfigErrors, FileMissingOrUnreadable) {
  try {
    load_run_config("/nonexistent/dir/run.toml");
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(), "/nonexistent/dir/run.toml: cannot read: No such file or directory");
  }
  try {
    load_run_config(NMECH_SOURCE_DIR);  // a directory opens, then fails to read
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()), std::string(NMECH_SOURCE_DIR) + ": cannot read: Is a directory");
  }
}

TEST(RunConfigErrors, LoadedFileErrorsNameThePath) {
  std::string path = std::string(NMECH_BINARY_DIR) + "/test_config_bad_lr.toml";
  std::FILE* f = std::fopen(path.c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fputs("steps = 10\nlr = -1\n", f);
  std::fclose(f);
  try {
    load_run_config(path);
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()), path + ":2: key 'lr': must be > 0");
  }
  std::remove(path.c_str());
}

// ------------------------------------------------------------------ overrides

TEST(RunConfigOverrides, ValuesAreToml) {
  RunConfig c = parse("", {"lr=0.05", "nesterov=true", "dtype=\"float64\"", "batch_size=64",
                           "decoupled_weight_decay=true", "weight_decay=0"});
  EXPECT_EQ(c.lr, 0.05);
  EXPECT_TRUE(c.nesterov);
  EXPECT_EQ(c.dtype, "float64");
  EXPECT_EQ(c.batch_size, 64);
  EXPECT_TRUE(c.decoupled_weight_decay);
  EXPECT_EQ(c.weight_decay, 0.0);
}

TEST(RunConfigOverrides, BareWordsAreStrings) {
  RunConfig c = parse("", {"dtype=float64", "model=vgg11_bn", "dataset=synthetic",
                           "data_dir=/data/my dir", "name=run-1.a"});
  EXPECT_EQ(c.dtype, "float64");
  EXPECT_EQ(c.model, "vgg11_bn");
  EXPECT_EQ(c.dataset, "synthetic");
  EXPECT_EQ(c.data_dir, "/data/my dir");
  EXPECT_EQ(c.name, "run-1.a");
  // a string key takes a TOML non-string as its text
  EXPECT_EQ(parse("", {"name=2024"}).name, "2024");
  EXPECT_EQ(parse("", {"name=1e5"}).name, "1e5");
  EXPECT_EQ(parse("name = \"x\"", {"name="}).name, "");
}

TEST(RunConfigOverrides, SpacesAroundKeyAndValue) {
  RunConfig c = parse("", {" lr = 0.05 ", "steps= 7"});
  EXPECT_EQ(c.lr, 0.05);
  EXPECT_EQ(c.steps, 7);
}

TEST(RunConfigOverrides, OverridesBeatTheFileAndEachOtherInOrder) {
  RunConfig c = parse("lr = 0.2\nsteps = 10\n", {"lr=0.3", "steps=20", "steps=30"});
  EXPECT_EQ(c.lr, 0.3);
  EXPECT_EQ(c.steps, 30);
}

TEST(RunConfigOverrides, ErrorsNameTheOverride) {
  EXPECT_EQ(error_of("", {"lr=-1"}), "--set lr=-1: key 'lr': must be > 0");
  EXPECT_EQ(error_of("", {"lr=fast"}), "--set lr=fast: key 'lr': expected a number, got a string");
  EXPECT_EQ(error_of("", {"lr=[1]"}), "--set lr=[1]: key 'lr': expected a number, got an array");
  EXPECT_EQ(error_of("", {"steps=2.5"}), "--set steps=2.5: key 'steps': expected an integer, got 2.5");
  EXPECT_EQ(error_of("", {"nesterov=yes"}),
            "--set nesterov=yes: key 'nesterov': expected a boolean (true or false), got a string");
  EXPECT_EQ(error_of("", {"dtype=half"}),
            "--set dtype=half: key 'dtype': unknown dtype 'half' (valid: float32, float64)");
  EXPECT_EQ(error_of("", {"lrr=0.1"}), "--set lrr=0.1: key 'lrr': unknown key (did you mean 'lr'?)");
  EXPECT_EQ(error_of("", {"lr=0.1", "input_size=20"}),
            "--set input_size=20: key 'input_size': must be >= 28 for dataset fashion-mnist (28x28 "
            "images are padded, not cropped)");
}

TEST(RunConfigOverrides, MalformedOverride) {
  EXPECT_EQ(error_of("", {"lr"}), "--set lr: expected key=value");
  EXPECT_EQ(error_of("", {"lr 0.1"}), "--set lr 0.1: expected key=value");
  EXPECT_EQ(error_of("", {"=0.1"}), "--set =0.1: expected key=value, the key is missing");
}

TEST(RunConfigOverrides, FileErrorsComeFirst) {
  EXPECT_EQ(error_of("lr = -1\n", {"lr=0.1"}), "cfg.toml:1: key 'lr': must be > 0");
}

TEST(RunConfigOverrides, CrossKeyRulesAreCheckedAfterAllOverrides) {
  // the file alone breaks the nesterov rule; an override repairs it
  RunConfig c = parse("nesterov = true\nmomentum = 0.0\n", {"momentum=0.5"});
  EXPECT_TRUE(c.nesterov);
  EXPECT_EQ(c.momentum, 0.5);
  // nesterov set before momentum on the command line: still judged on the final values
  EXPECT_EQ(error_of("", {"nesterov=true", "momentum=0"}),
            "--set nesterov=true: key 'nesterov': true needs momentum > 0 (LibTorch rule), but "
            "momentum = 0 (from --set momentum=0)");
  EXPECT_EQ(error_of("nesterov = true\n", {"dampening=0.25"}),
            "cfg.toml:1: key 'nesterov': true needs dampening = 0 (LibTorch rule), but dampening = "
            "0.25 (from --set dampening=0.25)");
  EXPECT_EQ(parse("input_size = 8\n", {"dataset=synthetic"}).input_size, 8);
}

// ------------------------------------------------------------------ canonical text and hash

TEST(RunConfigToml, DefaultsInCanonicalForm) {
  EXPECT_EQ(to_toml(RunConfig{}),
            "augment = false\n"
            "batch_size = 128\n"
            "bn_eps = 1e-05\n"
            "classifier_width = 0\n"
            "dampening = 0.0\n"
            "data_dir = \"/usr/share/datasets/fashion-mnist\"\n"
            "dataset = \"fashion-mnist\"\n"
            "decoupled_weight_decay = false\n"
            "device = \"cpu\"\n"
            "dropout = 0.0\n"
            "dtype = \"float32\"\n"
            "eval_every = 0\n"
            "init = \"paper\"\n"
            "input_size = 32\n"
            "lr = 0.1\n"
            "mlp_depth = 2\n"
            "model = \"vgg16_bn\"\n"
            "momentum = 0.9\n"
            "name = \"\"\n"
            "nesterov = false\n"
            "record_every = 1\n"
            "seed = 0\n"
            "steps = 200\n"
            "threads = 1\n"
            "time = 0.0\n"
            "weight_decay = 5e-04\n"
            "width = 0.125\n");
}

TEST(RunConfigToml, RoundTripIsExact) {
  RunConfig c;
  c.name = "rt.1";
  c.model = "vgg19";
  c.width = 1.0 / 3.0;
  c.classifier_width = 77;
  c.mlp_depth = 5;
  c.dropout = 0.1 + 0.2;  // 0.30000000000000004: needs all 17 digits
  c.bn_eps = 1e-300;
  c.dataset = "synthetic";
  c.data_dir = "C:\\data \"quoted\"\ttab\nnewline é";
  c.input_size = 3;
  c.lr = 2.0;  // integral double must come back as a float
  c.weight_decay = 1e20;
  c.momentum = 0.0;
  c.dampening = 0.999999999;
  c.nesterov = false;
  c.decoupled_weight_decay = true;
  c.batch_size = 1;
  c.steps = 123456789;
  c.seed = 9223372036854775807ull;
  c.dtype = "float64";
  c.threads = 16;
  c.record_every = 7;
  std::string text = to_toml(c);
  RunConfig back = parse_run_config(text, "<canonical>");
  expect_same(back, c);
  EXPECT_EQ(to_toml(back), text);
  expect_same(parse_run_config(to_toml(RunConfig{}), "<canonical>"), RunConfig{});
}

TEST(RunConfigToml, KeysAreSortedAndComplete) {
  std::string text = to_toml(RunConfig{});
  std::vector<std::string> keys;
  for (std::size_t at = 0; at < text.size(); at = text.find('\n', at) + 1) {
    keys.push_back(text.substr(at, text.find(" = ", at) - at));
  }
  EXPECT_EQ(keys.size(), 27u);
  EXPECT_TRUE(std::is_sorted(keys.begin(), keys.end()));
}

TEST(RunConfigToml, EqualConfigsHashEqual) {
  RunConfig a = parse("lr = 0.1\nsteps = 200\n");
  RunConfig b = parse("steps = 200.0\n# same run, other spelling\nlr = 1e-1\n");
  RunConfig c = parse("", {"seed=1"});
  EXPECT_EQ(to_toml(a), to_toml(b));
  EXPECT_EQ(sha256_hex(to_toml(a)), sha256_hex(to_toml(b)));
  EXPECT_NE(sha256_hex(to_toml(a)), sha256_hex(to_toml(c)));
}

// ------------------------------------------------------------------ short names

TEST(ShortName, DefaultsAndExplicitName) {
  RunConfig c;
  EXPECT_EQ(short_name(c), "vgg16_bn-w0.125-lr0.1-wd0.0005-m0.9-b128-s0");
  c.name = "given";
  EXPECT_EQ(short_name(c), "given");
}

TEST(ShortName, OptionalPartsOnlyWhenNonDefault) {
  RunConfig c =
      parse("", {"model=vgg11", "width=1", "lr=1e-5", "weight_decay=0", "momentum=0", "seed=3"});
  EXPECT_EQ(short_name(c), "vgg11-w1-lr1e-5-wd0-b128-s3");
  c = parse("", {"momentum=0.5", "dampening=0.1", "decoupled_weight_decay=true", "dtype=float64",
                 "dataset=synthetic", "dropout=0.5", "classifier_width=64", "weight_decay=1e20"});
  EXPECT_EQ(short_name(c), "vgg16_bn-w0.125-cw64-do0.5-lr0.1-wd1e20-m0.5-damp0.1-dwd-b128-f64-syn-s0");
  c = parse("", {"model=mlp", "mlp_depth=4", "nesterov=true", "batch_size=32", "lr=0.123456789"});
  EXPECT_EQ(short_name(c), "mlp-w0.125-depth4-lr0.123457-wd0.0005-m0.9-nest-b32-s0");
}

TEST(ShortName, DerivedNamesAreValidNames) {
  RunConfig c = parse("", {"lr=1e-7", "weight_decay=1e30", "width=0.0625"});
  std::string n = short_name(c);
  EXPECT_EQ(n, "vgg16_bn-w0.0625-lr1e-7-wd1e30-m0.9-b128-s0");
  EXPECT_EQ(parse("", {"name=" + n}).name, n);  // passes the name check
}

// ------------------------------------------------------------------ sha256

TEST(Sha256, StandardVectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha256_hex(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, PaddingBoundaries) {
  // lengths around the 55/56-byte and 64-byte block edges (reference: coreutils sha256sum)
  const std::vector<std::pair<std::size_t, std::string>> cases = {
      {55, "d5e285683cd4efc02d021a5c62014694958901005d6f71e89e0989fac77e4072"},
      {56, "04c26261370ee7541549d16dee320c723e3fd14671e66a099afe0a377c16888e"},
      {63, "75220b47218278e656f2013bb8f0c455a25eaf01e86c64924e9d48d89776d6f2"},
      {64, "7ce100971f64e7001e8fe5a51973ecdfe1ced42befe7ee8d5fd6219506b5393c"},
      {65, "9537c5fdf120482f7d58d25e9ed583f52c02b4e304ea814db1633ad565aed7e9"},
      {119, "000b48d4edf0fa7bee3c6236ecd2785baa5db4eeb8bb54341b029e0d9fa5fb0c"},
  };
  for (const auto& [n, hex] : cases) {
    SCOPED_TRACE(n);
    EXPECT_EQ(sha256_hex(std::string(n, 'x')), hex);
  }
}

}  // namespace
}  // namespace nmech::config
