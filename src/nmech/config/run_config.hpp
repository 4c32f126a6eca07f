#pragma once
// One training run's settings: TOML → validated RunConfig. Torch-free.
// Every error is a ConfigError whose message names the file, line and key.
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace nmech::config {

// Bad input: the CLI prints what() on one line and exits with code 2.
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct RunConfig {
  // identity
  std::string name = "";  // empty: derived from the parameters (see short_name)
  // model
  std::string model = "vgg16_bn";  // one of models::model_names(): vgg11 … vgg19 [_bn], mlp, mlp_bn
  double width = 0.125;            // channel multiplier (VGG: 64·width … 512·width)
  std::int64_t classifier_width = 0;  // hidden units of fc1/fc2 (VGG) or of each MLP layer; 0: 512·width (VGG), 256 (MLP)
  std::int64_t mlp_depth = 2;      // MLP hidden layers
  double dropout = 0.0;            // VGG classifier dropout probability
  double bn_eps = 1e-5;
  std::string init = "paper";      // paper (docs/THEORY.md §9) | torch (LibTorch's default initialisation)
  // data
  // fashion-mnist | synthetic | tiny-imagenet | cifar10 | cifar100 (the last three: a file
  // written by `nmech prepare-data`, named by data_dir)
  std::string dataset = "fashion-mnist";
  std::string data_dir = "/usr/share/datasets/fashion-mnist";
  std::int64_t input_size = 32;  // Fashion-MNIST 28×28 is zero-padded to this
  bool augment = false;          // random crop (4-pixel zero padding) and horizontal flip, per image
                                 // from (seed, step, position in the batch)
  // optimizer
  double lr = 0.1;
  double weight_decay = 5e-4;
  double momentum = 0.9;
  double dampening = 0.0;
  bool nesterov = false;
  bool decoupled_weight_decay = false;
  // training
  std::int64_t batch_size = 128;
  std::int64_t steps = 200;
  // Training time t = ηk (docs/THEORY.md §0); > 0 sets steps = round(time/lr) for each run, so runs
  // that differ in lr are compared at equal t (resolve_time).
  double time = 0.0;
  std::uint64_t seed = 0;
  std::string dtype = "float32";  // float32 | float64
  std::int64_t threads = 1;
  // cpu | cuda. With cuda each rank trains on one GPU: its index among the ranks of its node
  // modulo the GPUs it sees (comm::local_rank), which is also the GPU its NCCL reducer uses.
  std::string device = "cpu";
  // tracing
  std::int64_t record_every = 1;
  // evaluation on the validation split (loss, top-1, top-5) every eval_every steps and at the
  // end, stored in the row of that step; 0: never. A multiple of record_every.
  std::int64_t eval_every = 0;
};

// Input channels, image size and classes of a dataset (fashion-mnist and synthetic: 1, 28, 10).
struct DatasetShape {
  std::int64_t channels = 1, size = 28, classes = 10;
};
DatasetShape dataset_shape(const std::string& dataset);

// Parse a TOML file; overrides are "key=value" strings (value in TOML syntax, bare strings
// allowed) applied on top, each validated like a file key. Throws ConfigError.
RunConfig load_run_config(const std::string& path, const std::vector<std::string>& overrides = {});
// Same from TOML text; `origin` names the source in errors (a path, or "<demo>").
// steps = max(1, round(time/lr)) when time > 0; after every key is in (files, --set, sweep axes).
void resolve_time(RunConfig& cfg);

RunConfig parse_run_config(const std::string& toml_text, const std::string& origin,
                           const std::vector<std::string>& overrides = {});
// Canonical TOML of a resolved config (every key, sorted): stored in the run record and hashed.
std::string to_toml(const RunConfig& cfg);
// The run's hyperparameters as the store's run attributes, in the key table's order: the keys it
// marks (run_config.cpp, kFields), bools and the seed as integers, `model` as "model_name".
using AttrValue = std::variant<double, std::int64_t, std::string>;
std::vector<std::pair<std::string, AttrValue>> run_attributes(const RunConfig& cfg);
// Short readable name derived from the parameters, e.g. "vgg16_bn-w0.125-lr0.1-wd0.0005-m0.9-b128-s0".
std::string short_name(const RunConfig& cfg);
// SHA-256 hex of a text (for config hashes).
std::string sha256_hex(const std::string& text);

// ---- Shared with configs that embed run keys (sweep_config.cpp); a run config needs none of it.

// Where each key was set: "file:line" (or "--set k=v"); keys absent here kept their default.
using KeyOrigins = std::map<std::string, std::string>;
// Reads a document's keys as a run config file does (same types, ranges and messages), except
// `own_keys`, which the embedding config reads itself; those also join the unknown-key hint.
// Rules between keys are not checked: call check_run_keys once the caller's values are in.
RunConfig parse_run_keys(const std::string& toml_text, const std::string& origin,
                         const std::vector<std::string>& own_keys, KeyOrigins& where);
// What is wrong with cfg's value of one run key ("" when fine): the range check of a file line.
std::string check_run_key(const RunConfig& cfg, const std::string& key);
// The rules between keys (nesterov needs momentum, ...) that parse_run_config checks last; an
// error names where[key], or `origin` for a key left at its default.
void check_run_keys(const RunConfig& cfg, const std::string& origin, const KeyOrigins& where);
// A config file's text; ConfigError "<path>: cannot read: <reason>".
std::string read_config_file(const std::string& path);
// A number as short_name shows it: %g (6 significant digits) with a tidy exponent (5e-5, not 5e-05).
std::string name_number(double v);

}  // namespace nmech::config
