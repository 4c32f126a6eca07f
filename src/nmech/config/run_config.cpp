// TOML → validated RunConfig, canonical TOML back, short names.
// Design: one table (kFields) says, per key, which RunConfig member it fills and what range it
// allows; parsing, overrides, to_toml and the unknown-key hint all read that one table, so a new
// key is one line here plus its member in the header.
#include "nmech/config/run_config.hpp"
#include "nmech/config/toml_words.hpp"
#include "nmech/models/wiring.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <string_view>
#include <system_error>
#include <variant>

#if !TOML_EXCEPTIONS
#error "nmech config reads TOML syntax errors from toml::parse_error exceptions"
#endif

namespace nmech::config {
namespace {

// ---------------------------------------------------------------- messages and numbers


// %g (6 significant digits) with a tidy exponent, 5e-05 → 5e-5 and 1e+20 → 1e20, so derived names
// stay readable and inside the name alphabet [A-Za-z0-9._-].
std::string short_num(double v) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::general, 6);
  std::string s(buf, r.ptr);
  auto e = s.find('e');
  if (e == std::string::npos) return s;
  std::string digits = s.substr(e + 2);  // to_chars always writes a sign after 'e'
  digits.erase(0, std::min(digits.find_first_not_of('0'), digits.size() - 1));
  return s.substr(0, e) + "e" + (s[e + 1] == '-' ? "-" : "") + digits;
}


// ---------------------------------------------------------------- per-key checks
// Each returns what is wrong with a value, or "" when it is fine.

std::string positive(double v) { return v > 0 ? "" : "must be > 0"; }
std::string non_negative(double v) { return v >= 0 ? "" : "must be >= 0"; }
std::string unit_interval(double v) { return v >= 0 && v < 1 ? "" : "must be in [0, 1)"; }
std::string at_least(std::int64_t v, std::int64_t lo) {
  return v >= lo ? "" : "must be >= " + std::to_string(lo);
}
// Sizes with an upper bound: beyond it a value is a typo, not an experiment, and would exhaust
// the machine or run for hours before any other check could refuse it. Memory is judged too,
// per model and batch, before anything is allocated (plan/plan_memory.hpp).
std::string between(std::int64_t v, std::int64_t lo, std::int64_t hi) {
  if (v < lo) return "must be >= " + std::to_string(lo);
  return v <= hi ? "" : "must be <= " + std::to_string(hi);
}
std::string positive_at_most(double v, double hi) {
  if (!(v > 0)) return "must be > 0";
  return v <= hi ? "" : "must be <= " + short_num(hi);
}

std::string one_of(const std::string& v, const std::vector<std::string>& valid, const char* what) {
  std::string list;
  for (const auto& x : valid) {
    if (v == x) return "";
    list += (list.empty() ? "" : ", ") + x;
  }
  return std::string("unknown ") + what + " " + quoted(v) + " (valid: " + list + ")";
}

std::string check_model(const std::string& m) { return one_of(m, models::model_names(), "model"); }

// Names become HDF5 group names (/runs/<name>) and file names: a safe alphabet, a bounded length,
// and never "." or ".." (which mean something else in a path).
std::string check_name(const std::string& n) {
  if (n.size() > 64) return "must be at most 64 characters, got " + std::to_string(n.size());
  auto bad = std::find_if(n.begin(), n.end(), [](char c) {
    return !(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-');
  });
  if (bad != n.end()) return "may contain only A-Z a-z 0-9 . _ -, got " + quoted(n);
  if (n == "." || n == "..") return "must not be '.' or '..'";
  return "";
}

// ---------------------------------------------------------------- the key table

using Member = std::variant<std::string RunConfig::*, double RunConfig::*, std::int64_t RunConfig::*,
                            std::uint64_t RunConfig::*, bool RunConfig::*>;
using Check = std::string (*)(const RunConfig&);

struct Field {
  std::string_view key;
  std::string_view attribute;  // the run attribute it is stored as in the store; "": none
  Member member;
  Check check;  // nullptr: every value of the type is fine
};

// Same order as the header. Rules that involve two keys live in check_cross_keys. Stored as run
// attributes: the hyperparameters a reader groups and compares runs by (`model` as "model_name",
// since "model" is the run's model key); not the run's name, paths, the device, the size keys the
// model key already holds (classifier_width, mlp_depth, input_size), or time (resolved to steps).
const Field kFields[] = {
    {"name", "", &RunConfig::name, [](const RunConfig& c) { return check_name(c.name); }},
    {"model", "model_name", &RunConfig::model, [](const RunConfig& c) { return check_model(c.model); }},
    {"width", "width", &RunConfig::width, [](const RunConfig& c) { return positive_at_most(c.width, 64); }},
    {"classifier_width", "", &RunConfig::classifier_width,
     [](const RunConfig& c) { return between(c.classifier_width, 0, 1 << 20); }},
    {"mlp_depth", "", &RunConfig::mlp_depth, [](const RunConfig& c) { return between(c.mlp_depth, 1, 256); }},
    {"dropout", "dropout", &RunConfig::dropout, [](const RunConfig& c) { return unit_interval(c.dropout); }},
    {"bn_eps", "bn_eps", &RunConfig::bn_eps, [](const RunConfig& c) { return positive(c.bn_eps); }},
    {"init", "init", &RunConfig::init,
     [](const RunConfig& c) { return one_of(c.init, {"paper", "torch"}, "init"); }},
    {"dataset", "dataset", &RunConfig::dataset,
     [](const RunConfig& c) {
       return one_of(c.dataset, {"fashion-mnist", "synthetic", "tiny-imagenet", "cifar10", "cifar100"}, "dataset");
     }},
    {"data_dir", "", &RunConfig::data_dir, nullptr},
    {"input_size", "", &RunConfig::input_size, [](const RunConfig& c) { return between(c.input_size, 1, 4096); }},
    {"augment", "augment", &RunConfig::augment, nullptr},
    {"lr", "lr", &RunConfig::lr, [](const RunConfig& c) { return positive(c.lr); }},
    {"weight_decay", "weight_decay", &RunConfig::weight_decay,
     [](const RunConfig& c) { return non_negative(c.weight_decay); }},
    {"momentum", "momentum", &RunConfig::momentum, [](const RunConfig& c) { return unit_interval(c.momentum); }},
    {"dampening", "dampening", &RunConfig::dampening, [](const RunConfig& c) { return unit_interval(c.dampening); }},
    {"nesterov", "nesterov", &RunConfig::nesterov, nullptr},
    {"decoupled_weight_decay", "decoupled_weight_decay", &RunConfig::decoupled_weight_decay, nullptr},
    {"batch_size", "batch_size", &RunConfig::batch_size, [](const RunConfig& c) { return between(c.batch_size, 1, 1 << 24); }},
    {"steps", "steps", &RunConfig::steps, [](const RunConfig& c) { return between(c.steps, 1, 1'000'000'000); }},
    {"time", "", &RunConfig::time, [](const RunConfig& c) { return non_negative(c.time); }},
    {"seed", "seed", &RunConfig::seed, nullptr},
    {"dtype", "dtype", &RunConfig::dtype,
     [](const RunConfig& c) { return one_of(c.dtype, {"float32", "float64"}, "dtype"); }},
    {"threads", "threads", &RunConfig::threads, [](const RunConfig& c) { return between(c.threads, 1, 1024); }},
    {"device", "", &RunConfig::device, [](const RunConfig& c) { return one_of(c.device, {"cpu", "cuda"}, "device"); }},
    {"record_every", "record_every", &RunConfig::record_every,
     [](const RunConfig& c) { return at_least(c.record_every, 1); }},
    {"eval_every", "eval_every", &RunConfig::eval_every, [](const RunConfig& c) { return at_least(c.eval_every, 0); }},
};

const Field* find_field(std::string_view key) {
  for (const Field& f : kFields) {
    if (f.key == key) return &f;
  }
  return nullptr;
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

// A typo (edit distance <= 2) gets one suggestion; anything further off gets the whole list. The
// distance must also be below the key's length, or "x" would suggest "lr". `extra_keys` are the
// keys of a config that embeds the run keys (a sweep's seeds, ranks_per_run).
std::string unknown_key(std::string_view key, const std::vector<std::string>& extra_keys = {}) {
  std::vector<std::string_view> keys;
  for (const Field& f : kFields) keys.push_back(f.key);
  keys.insert(keys.end(), extra_keys.begin(), extra_keys.end());
  std::string_view best;
  std::size_t best_d = std::min<std::size_t>(3, key.size());
  for (auto k : keys) {
    std::size_t d = edit_distance(key, k);
    if (d < best_d) best = k, best_d = d;
  }
  if (!best.empty()) return "unknown key (did you mean " + quoted(best) + "?)";
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());  // an extra key may be a run key
  std::string list;
  for (auto k : keys) list += (list.empty() ? "" : ", ") + std::string(k);
  return "unknown key (known keys: " + list + ")";
}

// ---------------------------------------------------------------- reading values

}  // namespace


namespace {

// Stores a node into one member, converting between TOML and C++ types; returns what is wrong
// with the node's type, or "". Ranges are the Field's check, run afterwards.
struct Assign {
  RunConfig& cfg;
  const toml::node& node;

  std::string expected(const char* what) const {
    return std::string("expected ") + what + ", got " + type_words(node);
  }

  std::string operator()(std::string RunConfig::*m) const {
    auto s = node.value_exact<std::string>();
    if (!s) return expected("a string");
    cfg.*m = *s;
    return "";
  }
  std::string operator()(double RunConfig::*m) const {
    double v = 0;
    std::string err = read_number(node, v);
    if (err.empty()) cfg.*m = v;
    return err;
  }
  std::string operator()(std::int64_t RunConfig::*m) const {
    std::int64_t v = 0;
    std::string err = read_integer(node, v);
    if (err.empty()) cfg.*m = v;
    return err;
  }
  // TOML integers are signed 64-bit, so seeds span 0 … 2^63−1.
  std::string operator()(std::uint64_t RunConfig::*m) const {
    std::int64_t v = 0;
    std::string err = read_integer(node, v);
    if (err.empty() && v < 0) err = "must be >= 0";
    if (err.empty()) cfg.*m = static_cast<std::uint64_t>(v);
    return err;
  }
  std::string operator()(bool RunConfig::*m) const {
    auto b = node.value_exact<bool>();
    if (!b) return expected("a boolean (true or false)");
    cfg.*m = *b;
    return "";
  }
};

// Renders one member as a TOML value.
struct Format {
  const RunConfig& cfg;
  std::string operator()(std::string RunConfig::*m) const { return toml_string(cfg.*m); }
  std::string operator()(double RunConfig::*m) const { return toml_float(cfg.*m); }
  std::string operator()(std::int64_t RunConfig::*m) const { return std::to_string(cfg.*m); }
  std::string operator()(std::uint64_t RunConfig::*m) const { return std::to_string(cfg.*m); }
  std::string operator()(bool RunConfig::*m) const { return cfg.*m ? "true" : "false"; }
};

// ---------------------------------------------------------------- building a config

// The config under construction, and where each key was last set ("file:line" or "--set k=v"),
// so that rules checked at the end still point at the line to fix.
class Builder {
 public:
  explicit Builder(std::string origin, std::vector<std::string> extra_keys = {})
      : origin_(std::move(origin)), extra_keys_(std::move(extra_keys)) {}
  // A finished config and its origins, to check the rules between keys (check_run_keys).
  Builder(std::string origin, const RunConfig& cfg, const KeyOrigins& where)
      : origin_(std::move(origin)), cfg_(cfg), where_(where) {}

  void set(std::string_view key, const toml::node& node, const std::string& where) {
    const Field* f = find_field(key);
    if (!f) fail(where, key, unknown_key(key, extra_keys_));
    std::string err = std::visit(Assign{cfg_, node}, f->member);
    if (err.empty() && f->check) err = f->check(cfg_);
    if (!err.empty()) fail(where, key, err);
    where_[std::string(key)] = where;
  }

  // Where a key was set; keys left at their default are blamed on the file as a whole.
  std::string where(const std::string& key) const {
    auto it = where_.find(key);
    return it == where_.end() ? origin_ : it->second;
  }
  std::string from(const std::string& key) const {
    auto it = where_.find(key);
    return it == where_.end() ? "the default" : it->second;
  }

  const RunConfig& cfg() const { return cfg_; }
  const KeyOrigins& origins() const { return where_; }

 private:
  std::string origin_;
  std::vector<std::string> extra_keys_;
  RunConfig cfg_;
  KeyOrigins where_;
};

toml::table parse_toml(const std::string& text, const std::string& origin) {
  try {
    return toml::parse(text, origin);
  } catch (const toml::parse_error& e) {
    const auto& at = e.source().begin;
    throw ConfigError(one_line(origin + ":" + std::to_string(at.line) + ":" + std::to_string(at.column) +
                               ": TOML syntax error: " + std::string(e.description())));
  }
}

// Keys in the order they appear in the file (toml::table iterates sorted), so the first error
// reported is the first one a reader meets. Keys in `skip` belong to an embedding config.
void apply_file(Builder& b, const toml::table& table, const std::string& origin,
                const std::vector<std::string>& skip = {}) {
  for (const auto& [key, node] : in_file_order(table)) {
    if (std::find(skip.begin(), skip.end(), key->str()) != skip.end()) continue;
    b.set(key->str(), *node, origin + ":" + std::to_string(key->source().begin.line));
  }
}

std::string trim(std::string_view s) {
  auto first = s.find_first_not_of(" \t");
  if (first == std::string_view::npos) return "";
  auto last = s.find_last_not_of(" \t");
  return std::string(s.substr(first, last - first + 1));
}

// The value of "key=value" as a one-entry table {v = value}. The value is TOML ("lr=0.05",
// "nesterov=true", "dtype=\"float64\""); a bare word that is not TOML is a string
// ("dtype=float64"). For string keys a non-string TOML value is also taken as its text
// ("name=2024"): that is what a shell user means, and the key's check still applies.
toml::table override_value(const std::string& value, bool string_key) {
  try {
    toml::table t = toml::parse("v = " + value);
    bool one_value = t.size() == 1 && t.contains("v");
    if (one_value && !(string_key && !t["v"].is_string())) return t;
  } catch (const toml::parse_error&) {
    // not TOML: fall through to the literal text
  }
  toml::table t;
  t.insert("v", value);
  return t;
}

void apply_override(Builder& b, const std::string& text) {
  const std::string where = "--set " + text;
  auto eq = text.find('=');
  if (eq == std::string::npos) throw ConfigError(one_line(where + ": expected key=value"));
  std::string key = trim(std::string_view(text).substr(0, eq));
  if (key.empty()) throw ConfigError(one_line(where + ": expected key=value, the key is missing"));
  const Field* f = find_field(key);
  if (!f) fail(where, key, unknown_key(key));
  bool string_key = std::holds_alternative<std::string RunConfig::*>(f->member);
  toml::table holder = override_value(trim(std::string_view(text).substr(eq + 1)), string_key);
  b.set(key, *holder.get("v"), where);
}

// Rules between keys, checked once the file and every override are in.
void check_cross_keys(const Builder& b) {
  const RunConfig& c = b.cfg();
  // LibTorch's SGD refuses nesterov without momentum or with dampening.
  if (c.nesterov && c.momentum == 0) {
    fail(b.where("nesterov"), "nesterov",
         "true needs momentum > 0 (LibTorch rule), but momentum = 0 (from " + b.from("momentum") + ")");
  }
  if (c.nesterov && c.dampening != 0) {
    fail(b.where("nesterov"), "nesterov",
         "true needs dampening = 0 (LibTorch rule), but dampening = " + shortest_text(c.dampening) + " (from " +
             b.from("dampening") + ")");
  }
  // Evaluations are stored in rows, so they fall on recorded steps.
  if (c.eval_every > 0 && c.eval_every % c.record_every != 0) {
    fail(b.where("eval_every"), "eval_every",
         "must be a multiple of record_every = " + std::to_string(c.record_every) + " (from " + b.from("record_every") +
             "), got " + std::to_string(c.eval_every));
  }
  // float32 runs hold these in float32: a value it cannot represent is bad input, not a NaN later.
  if (c.dtype == "float32")
    for (const char* key : {"lr", "weight_decay", "momentum", "dampening", "bn_eps", "dropout", "time"}) {
      const double v = c.*std::get<double RunConfig::*>(find_field(key)->member);
      const double a = std::fabs(v);
      if (a > std::numeric_limits<float>::max() || (a > 0 && a < std::numeric_limits<float>::min()))
        fail(b.where(key), key,
             shortest_text(v) + (a > 1 ? " overflows" : " underflows") + " float32 (dtype = \"float32\", from " + b.from("dtype") +
                 "): normal float32 values lie in [1.2e-38, 3.4e38]");
    }
  // Images are padded up to input_size, never cropped.
  const DatasetShape shape = dataset_shape(c.dataset);
  if (c.dataset != "synthetic" && c.input_size < shape.size) {
    fail(b.where("input_size"), "input_size",
         "must be >= " + std::to_string(shape.size) + " for dataset " + c.dataset + " (" + std::to_string(shape.size) +
             "x" + std::to_string(shape.size) + " images are padded, not cropped)");
  }
}

}  // namespace

DatasetShape dataset_shape(const std::string& dataset) {
  if (dataset == "tiny-imagenet") return {3, 64, 200};
  if (dataset == "cifar10") return {3, 32, 10};
  if (dataset == "cifar100") return {3, 32, 100};
  return {1, 28, 10};  // fashion-mnist, synthetic
}

namespace {

std::string read_file(const std::string& path) {
  errno = 0;
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) throw ConfigError(one_line(path + ": cannot read: " + std::strerror(errno)));
  std::string text;
  char buf[1 << 16];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, f.get())) > 0) text.append(buf, n);
  // A directory opens fine on Linux and fails here, with EISDIR.
  if (std::ferror(f.get())) throw ConfigError(one_line(path + ": cannot read: " + std::strerror(errno)));
  return text;
}

}  // namespace

RunConfig parse_run_config(const std::string& toml_text, const std::string& origin,
                           const std::vector<std::string>& overrides) {
  Builder b(origin);
  apply_file(b, parse_toml(toml_text, origin), origin);
  for (const std::string& o : overrides) apply_override(b, o);
  check_cross_keys(b);
  RunConfig cfg = b.cfg();
  resolve_time(cfg);
  return cfg;
}

void resolve_time(RunConfig& cfg) {
  if (cfg.time > 0) cfg.steps = std::max<std::int64_t>(1, std::llround(cfg.time / cfg.lr));
}

RunConfig load_run_config(const std::string& path, const std::vector<std::string>& overrides) {
  return parse_run_config(read_file(path), path, overrides);
}

RunConfig parse_run_keys(const std::string& toml_text, const std::string& origin,
                         const std::vector<std::string>& own_keys, KeyOrigins& where) {
  Builder b(origin, own_keys);
  apply_file(b, parse_toml(toml_text, origin), origin, own_keys);
  where = b.origins();
  return b.cfg();
}

std::string check_run_key(const RunConfig& cfg, const std::string& key) {
  const Field* f = find_field(key);
  if (!f) return unknown_key(key);
  return f->check ? f->check(cfg) : "";
}

void check_run_keys(const RunConfig& cfg, const std::string& origin, const KeyOrigins& where) {
  check_cross_keys(Builder(origin, cfg, where));
}

std::string read_config_file(const std::string& path) { return read_file(path); }

std::string name_number(double v) { return short_num(v); }

std::string to_toml(const RunConfig& cfg) {
  std::vector<const Field*> fields;
  for (const Field& f : kFields) fields.push_back(&f);
  std::sort(fields.begin(), fields.end(), [](auto* a, auto* b) { return a->key < b->key; });
  std::string out;
  for (const Field* f : fields) {
    out += std::string(f->key) + " = " + std::visit(Format{cfg}, f->member) + "\n";
  }
  return out;
}

std::vector<std::pair<std::string, AttrValue>> run_attributes(const RunConfig& cfg) {
  std::vector<std::pair<std::string, AttrValue>> out;
  for (const Field& f : kFields) {
    if (f.attribute.empty()) continue;
    std::visit(
        [&](auto m) {
          using T = std::decay_t<decltype(cfg.*m)>;
          if constexpr (std::is_same_v<T, std::string> || std::is_same_v<T, double>) {
            out.emplace_back(std::string(f.attribute), AttrValue{cfg.*m});
          } else {
            out.emplace_back(std::string(f.attribute), AttrValue{static_cast<std::int64_t>(cfg.*m)});
          }
        },
        f.member);
  }
  return out;
}

// model-w<width>[-cw<classifier_width>][-depth<mlp_depth>][-do<dropout>][-init<init>]-lr<lr>-wd<wd>
// [-m<momentum>][-damp<dampening>][-nest][-dwd]-b<batch>[-f64 | -<dtype>][-syn | -<dataset>]-s<seed>.
// Optional parts appear only when they change the run from plain SGD / the model's defaults, so
// the common names stay short.
std::string short_name(const RunConfig& cfg) {
  if (!cfg.name.empty()) return cfg.name;
  const RunConfig defaults;
  std::string s = cfg.model + "-w" + short_num(cfg.width);
  if (cfg.classifier_width != 0) s += "-cw" + std::to_string(cfg.classifier_width);
  bool mlp = cfg.model.rfind("mlp", 0) == 0;
  if (mlp && cfg.mlp_depth != defaults.mlp_depth) s += "-depth" + std::to_string(cfg.mlp_depth);
  if (cfg.dropout != 0) s += "-do" + short_num(cfg.dropout);
  if (cfg.init != defaults.init) s += "-init" + cfg.init;
  s += "-lr" + short_num(cfg.lr) + "-wd" + short_num(cfg.weight_decay);
  if (cfg.momentum != 0) s += "-m" + short_num(cfg.momentum);
  if (cfg.dampening != 0) s += "-damp" + short_num(cfg.dampening);
  if (cfg.nesterov) s += "-nest";
  if (cfg.decoupled_weight_decay) s += "-dwd";
  s += "-b" + std::to_string(cfg.batch_size);
  if (cfg.dtype != defaults.dtype) s += cfg.dtype == "float64" ? "-f64" : "-" + cfg.dtype;
  if (cfg.dataset != defaults.dataset) s += cfg.dataset == "synthetic" ? "-syn" : "-" + cfg.dataset;
  return s + "-s" + std::to_string(cfg.seed);
}

}  // namespace nmech::config
