// TOML → validated SweepConfig → one RunConfig per grid point, names, canonical TOML and hash.
// Design: the run keys of a sweep file are read by the run config's own code (parse_run_keys,
// check_run_key, check_run_keys), so a key means and checks exactly what it does in a run file;
// this file reads only the axes, seeds and ranks_per_run.
#include "nmech/config/sweep_config.hpp"
#include "nmech/config/toml_words.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

namespace nmech::config {
namespace {

// Grids larger than this are almost surely a typo (num = 1e6) and would make a store with as
// many groups; refuse them before allocating anything.
constexpr std::int64_t kMaxRuns = 100000;

std::string line_of(const std::string& origin, const toml::source_region& r) {
  return origin + ":" + std::to_string(r.begin.line);
}

// ---------------------------------------------------------------- axes

// One value of an axis, with where it was written and how an error names it. Integer axes keep
// the exact integer too: a double would round seeds above 2^53.
struct Point {
  double value = 0;
  std::int64_t integer = 0;
  std::string where;
  std::string label;  // "" for a scalar (errors read as in a run config), else "element 2", ...
};

std::string read_value(const toml::node& n, bool integer, Point& p) {
  if (!integer) return read_number(n, p.value);
  std::string err = read_integer(n, p.integer);
  p.value = static_cast<double>(p.integer);
  return err;
}

struct Range {
  bool log = false;
  double lo = 0, hi = 0;
  std::int64_t num = 0;
};

std::pair<double, double> read_bounds(const toml::node& n, const char* kind, const std::string& where,
                                      std::string_view key) {
  const std::string what = quoted(kind) + " must be [low, high], two numbers";
  const toml::array* a = n.as_array();
  if (!a || a->size() != 2) fail(where, key, what);
  double b[2] = {0, 0};
  for (std::size_t i = 0; i < 2; ++i) {
    std::string err = read_number(*a->get(i), b[i]);
    if (!err.empty()) fail(where, key, what + "; bound " + std::to_string(i + 1) + ": " + err);
  }
  return {b[0], b[1]};
}

Range read_range(const toml::table& t, const std::string& where, std::string_view key) {
  for (auto&& [k, v] : t) {
    if (k != "log" && k != "linear" && k != "num")
      fail(where, key, "unknown range key " + quoted(k.str()) +
                           " (a range is { log = [low, high], num = N } or { linear = [low, high], num = N })");
  }
  Range r;
  r.log = t.contains("log");
  if (r.log == t.contains("linear"))
    fail(where, key, r.log ? "a range takes 'log' or 'linear', not both"
                           : "a range needs 'log' or 'linear' = [low, high], and 'num'");
  const char* kind = r.log ? "log" : "linear";
  std::tie(r.lo, r.hi) = read_bounds(*t.get(kind), kind, where, key);
  if (!t.contains("num")) fail(where, key, "a range needs 'num', the number of points");
  std::string err = read_integer(*t.get("num"), r.num);
  if (!err.empty()) fail(where, key, "num: " + err);
  if (r.num < 1) fail(where, key, "num must be >= 1, got " + std::to_string(r.num));
  if (r.num > kMaxRuns) fail(where, key, "num must be <= " + std::to_string(kMaxRuns));
  if (r.log && (r.lo <= 0 || r.hi <= 0))
    fail(where, key, "log range bounds must be > 0, got " + shortest_text(r.lo <= 0 ? r.lo : r.hi));
  return r;
}

// Evenly spaced points, the bounds exact. Log spacing is done in powers of ten so that decades
// land on round numbers (1e-3 … 1e-1, num 5: 1e-2 is exactly 0.01). num = 1 gives the low bound.
std::vector<double> range_values(const Range& r) {
  std::vector<double> v(static_cast<std::size_t>(r.num));
  const double a = r.log ? std::log10(r.lo) : r.lo;
  const double b = r.log ? std::log10(r.hi) : r.hi;
  for (std::int64_t i = 0; i < r.num; ++i) {
    const double x = r.num == 1 ? a : a + (b - a) * static_cast<double>(i) / static_cast<double>(r.num - 1);
    v[static_cast<std::size_t>(i)] = r.log ? std::pow(10.0, x) : x;
  }
  v.front() = r.lo;
  if (r.num > 1) v.back() = r.hi;
  return v;
}

// Where a key was written: the line of a list element (lists may span lines), else the key's.
struct At {
  std::string origin;  // the file
  std::string where;   // "file:line" of the key
  std::string key;     // the key
  std::string of(const toml::node& n) const {
    return n.source().begin.line > 0 ? line_of(origin, n.source()) : where;
  }
};

std::vector<Point> range_points(const toml::table& t, const std::string& where, std::string_view key,
                                bool integer) {
  std::vector<Point> pts;
  for (double v : range_values(read_range(t, where, key))) {
    // Integer axes (batch_size) take the nearest integer of each point.
    if (integer && std::fabs(v) >= 9.2e18) fail(where, key, "range bound is out of range");
    const double x = integer ? std::round(v) : v;
    pts.push_back({x, static_cast<std::int64_t>(x), where, "range point " + std::to_string(pts.size() + 1)});
  }
  return pts;
}

// An axis as scalar, list or (if `ranges`) range table.
std::vector<Point> read_axis(const toml::node& n, const At& at, std::string_view key, bool integer,
                             bool ranges) {
  const std::string& where = at.where;
  if (auto t = n.as_table(); t && ranges) return range_points(*t, where, key, integer);
  if (auto a = n.as_array()) {
    if (a->empty()) fail(where, key, "empty list (give at least one value)");
    std::vector<Point> pts;
    for (std::size_t i = 0; i < a->size(); ++i) {
      const toml::node& e = *a->get(i);
      const std::string label = "element " + std::to_string(i + 1);
      Point p{0, 0, at.of(e), label};
      std::string err = read_value(e, integer, p);
      if (!err.empty()) fail(p.where, key, label + ": " + err);
      pts.push_back(p);
    }
    return pts;
  }
  if (n.is_table()) fail(where, key, "expected an integer or a list of integers, got a table");
  Point p{0, 0, where, ""};
  std::string err = read_value(n, integer, p);
  if (!err.empty()) fail(where, key, err);
  return {p};
}

// The range check a run file applies to `key`, for every point of its axis.
template <typename T>
std::vector<T> checked(const std::vector<Point>& pts, std::string_view key, T RunConfig::*member) {
  std::vector<T> out;
  for (const Point& p : pts) {
    RunConfig probe;
    if constexpr (std::is_integral_v<T>) {
      probe.*member = p.integer;
    } else {
      probe.*member = p.value;
    }
    std::string err = check_run_key(probe, std::string(key));
    if (!err.empty()) fail(p.where, key, p.label.empty() ? err : p.label + ": " + err + ", got " + shortest_text(p.value));
    out.push_back(probe.*member);
  }
  return out;
}

std::vector<std::uint64_t> read_seeds(const toml::node& n, const At& at) {
  std::vector<std::uint64_t> seeds;
  for (const Point& p : read_axis(n, at, "seeds", /*integer=*/true, /*ranges=*/false)) {
    if (p.integer < 0) fail(p.where, "seeds", (p.label.empty() ? "" : p.label + ": ") + "must be >= 0");
    seeds.push_back(static_cast<std::uint64_t>(p.integer));
  }
  return seeds;
}

// The model axis: one name or a list of names, each checked as a run file checks `model`.
std::vector<std::string> read_models(const toml::node& n, const At& at) {
  std::vector<std::pair<const toml::node*, std::string>> items;
  if (auto a = n.as_array()) {
    if (a->empty()) fail(at.where, "model", "empty list (give at least one value)");
    for (std::size_t i = 0; i < a->size(); ++i) items.push_back({a->get(i), "element " + std::to_string(i + 1) + ": "});
  } else {
    items.push_back({&n, ""});
  }
  std::vector<std::string> out;
  for (const auto& [e, label] : items) {
    const auto v = e->value<std::string>();
    if (!v) fail(at.of(*e), "model", label + "expected a string, got " + type_words(*e));
    RunConfig probe;
    probe.model = *v;
    const std::string err = check_run_key(probe, "model");
    if (!err.empty()) fail(at.of(*e), "model", label + err);
    out.push_back(*v);
  }
  return out;
}

// ---------------------------------------------------------------- the axes

// A grid axis: its sweep key, the run key its points set, and what the sweep does with it, the
// same for every axis (make_axis below). The grid is the product of the rows of axes(), in its
// order, the last varying fastest; a new axis is a row there.
struct Axis {
  const char* key;
  const char* run_key;
  std::function<AxisPoints()> fresh;  // the run key's default, the axis's one point
  std::function<void(SweepConfig&, const toml::node&, const At&)> read;
  std::function<std::size_t(const SweepConfig&)> size;
  std::function<void(const SweepConfig&)> check;                            // non-empty, no repeats
  std::function<void(const SweepConfig&, std::size_t, RunConfig&)> assign;  // point i into a run
  std::function<std::string(const RunConfig&)> name_part;                   // "lr0.1", "b128", "vgg16_bn"
  std::function<std::string(const SweepConfig&)> toml;                      // the canonical list
  std::function<AxisValue(const RunConfig&)> value;                         // a run's point
};
const std::vector<Axis>& axes();

// "model, lr, … and seeds": the keys that may be lists.
std::string axis_words() {
  std::string out;
  for (std::size_t i = 0; i < axes().size(); ++i)
    out += std::string(i == 0 ? "" : i + 1 == axes().size() ? " and " : ", ") + axes()[i].key;
  return out;
}

std::int64_t read_ranks_per_run(const toml::node& n, const std::string& where) {
  std::int64_t r = 0;
  std::string err = read_integer(n, r);
  if (err.empty() && r < 1) err = "must be >= 1, got " + std::to_string(r);
  if (!err.empty()) fail(where, "ranks_per_run", err);
  return r;
}

// ---------------------------------------------------------------- the file

std::optional<toml::table> try_parse(const std::string& text, const std::string& origin) {
  try {
    return toml::parse(text, origin);
  } catch (const toml::parse_error&) {
    return std::nullopt;  // parse_run_keys reports it, with line and column
  }
}

struct Entry {
  std::string key;
  const toml::node* node;
  At at;
};

// The file's keys in the order they appear, each with where it was written.
std::vector<Entry> entries(const toml::table& t, const std::string& origin) {
  std::vector<Entry> out;
  for (auto& [k, n] : in_file_order(t)) {
    const std::string key(k->str());
    out.push_back({key, n, At{origin, line_of(origin, k->source()), key}});
  }
  return out;
}

bool is_sweep_key(const std::string& k) {
  const auto& keys = sweep_keys();
  return std::find(keys.begin(), keys.end(), k) != keys.end();
}

// A list where a run key takes one value is a grid the sweep cannot run: say which keys can.
// (A key's default always passes its check, so check_run_key on defaults only reports unknown keys.)
void refuse_run_key_lists(const toml::table& doc, const std::string& origin) {
  for (const Entry& e : entries(doc, origin)) {
    const std::string& key = e.key;
    if (is_sweep_key(key) || !(e.node->is_array() || e.node->is_table())) continue;
    const std::string& where = e.at.where;
    std::string unknown = check_run_key(RunConfig{}, key);
    if (!unknown.empty()) fail(where, key, unknown);
    if (key == "seed") fail(where, key, "takes one seed; a list of seeds is 'seeds = [...]'");
    fail(where, key, "takes one value in a sweep; only " + axis_words() + " may be lists");
  }
}

void read_sweep_key(SweepConfig& s, const Entry& e) {
  const std::string& key = e.key;
  const toml::node& n = *e.node;
  s.where[key] = e.at.where;
  for (const Axis& a : axes())
    if (key == a.key) a.read(s, n, e.at);
  if (key == "ranks_per_run") s.ranks_per_run = read_ranks_per_run(n, e.at.where);
  if (key == "checkpoint_every") {
    std::string err = read_integer(n, s.checkpoint_every);
    if (err.empty() && s.checkpoint_every < 1) err = "must be >= 1, got " + std::to_string(s.checkpoint_every);
    if (!err.empty()) fail(e.at.where, key, err);
  }
  if (key == "reducer") {
    const auto v = n.value<std::string>();
    if (!v) fail(e.at.where, key, "expected a string, got " + type_words(n));
    if (std::find(kReducerKinds.begin(), kReducerKinds.end(), *v) == kReducerKinds.end()) {
      std::string kinds;
      for (std::size_t i = 0; i < kReducerKinds.size(); ++i)
        kinds += std::string(i == 0 ? "" : i + 1 == kReducerKinds.size() ? " or " : ", ") + "\"" + kReducerKinds[i] + "\"";
      fail(e.at.where, key, "must be " + kinds + ", got \"" + *v + "\"");
    }
    s.reducer.kind = *v;
  }
  for (const ReducerSize& size : kReducerSizes) {
    if (key != size.key) continue;
    double& out = s.reducer.*size.member;
    std::string err = read_number(n, out);
    if (err.empty() && !(out > 0)) err = "must be > 0, got " + toml_float(out);
    if (!err.empty()) fail(e.at.where, key, err);
  }
}

// seeds defaults to [seed]; giving both is ambiguous.
void resolve_seeds(SweepConfig& s) {
  auto seeds = s.where.find("seeds");
  auto seed = s.where.find("seed");
  if (seeds != s.where.end() && seed != s.where.end())
    fail(seeds->second, "seeds", "conflicts with 'seed' (" + seed->second + "); give the seeds here only");
  if (seeds == s.where.end()) {
    s.points<std::uint64_t>("seeds") = {s.base.seed};
    if (seed != s.where.end()) s.where["seeds"] = seed->second;
  }
}

// ---------------------------------------------------------------- expansion

std::string where_of(const SweepConfig& s, const std::string& key) {
  auto it = s.where.find(key);
  return it == s.where.end() ? s.origin : it->second;
}

// Axes built by hand (not parsed) still get the file's checks: non-empty, no repeats.
template <typename T>
void check_axis(const SweepConfig& s, const std::string& key, const std::vector<T>& v) {
  if (v.empty()) fail(where_of(s, key), key, "empty list (give at least one value)");
  std::set<T> seen;
  for (const T& x : v) {
    if (seen.insert(x).second) continue;
    std::string text;
    if constexpr (std::is_same_v<T, std::string>) {
      text = quoted(x);
    } else if constexpr (std::is_integral_v<T>) {
      text = std::to_string(x);
    } else {
      text = shortest_text(x);
    }
    fail(where_of(s, key), key, "value " + text + " appears twice (a grid point would run twice)");
  }
}

void check_grid(const SweepConfig& s) {
  for (const Axis& a : axes()) a.check(s);
  if (s.ranks_per_run < 1)
    fail(where_of(s, "ranks_per_run"), "ranks_per_run", "must be >= 1, got " + std::to_string(s.ranks_per_run));
  double runs = 1.0;
  for (const Axis& a : axes()) runs *= static_cast<double>(a.size(s));
  if (runs > kMaxRuns) {
    char n[64];
    std::snprintf(n, sizeof n, "%.0f", runs);
    throw ConfigError(s.origin + ": the grid has " + n + " runs, more than " + std::to_string(kMaxRuns));
  }
}

// Every rule a run config file gets, for one grid point.
void check_point(const SweepConfig& s, const RunConfig& c) {
  for (const Axis& a : axes()) {
    std::string err = check_run_key(c, a.run_key);
    if (!err.empty()) fail(where_of(s, a.key), a.run_key, err);
  }
  check_run_keys(c, s.origin, s.where);
}

// The shorter of the name_number text (%g) and scientific notation, so small values read as
// powers: 5e-4 rather than 0.0005, 1e-3 rather than 0.001; 0.05 and 0.9 stay as they are.
std::string name_value(double v) {
  const std::string g = name_number(v);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.5e", v);  // d.ddddde±XX: 6 significant digits, like %g
  std::string sci = buf;
  const auto e = sci.find('e');
  std::string mant = sci.substr(0, e);
  mant.erase(mant.find_last_not_of('0') + 1);
  if (mant.back() == '.') mant.pop_back();
  std::string exp = sci.substr(e + 2);
  exp.erase(0, std::min(exp.find_first_not_of('0'), exp.size() - 1));
  sci = mant + "e" + (sci[e + 1] == '-' ? "-" : "") + exp;
  return sci.size() < g.size() ? sci : g;
}

std::string varying_part(const SweepConfig& s, const RunConfig& c) {
  std::string out;
  auto add = [&out](const std::string& part) { out += (out.empty() ? "" : "-") + part; };
  for (const Axis& a : axes())
    if (a.size(s) > 1) add(a.name_part(c));
  return out;
}

// "<prefix>-<varying>"; a one-point grid is named by its prefix, or by the run's short_name.
std::string run_name(const SweepConfig& s, RunConfig c) {
  const std::string part = varying_part(s, c);
  const std::string& prefix = s.base.name;
  if (part.empty()) {
    c.name.clear();
    return prefix.empty() ? short_name(c) : prefix;
  }
  return prefix.empty() ? part : prefix + "-" + part;
}

// Names equal to 6 significant digits (lr 0.1 and 0.1000001) get the first 8 hex digits of their
// config's hash, so each stays readable and the pair stays distinguishable.
void name_runs(const SweepConfig& s, std::vector<RunSpec>& runs) {
  std::map<std::string, int> count;
  for (RunSpec& r : runs) ++count[r.name = run_name(s, r.cfg)];
  std::set<std::string> seen;
  for (RunSpec& r : runs) {
    if (count[r.name] > 1) {
      RunConfig anonymous = r.cfg;
      anonymous.name.clear();
      r.name += "-" + sha256_hex(to_toml(anonymous)).substr(0, 8);
    }
    r.cfg.name = r.name;
    std::string err = check_run_key(r.cfg, "name");
    if (!err.empty()) fail(where_of(s, "name"), "name", "run name " + quoted(r.name) + ": " + err);
    if (!seen.insert(r.name).second)
      throw ConfigError(s.origin + ": two runs are both named " + quoted(r.name));
  }
}

// ---------------------------------------------------------------- canonical text

template <typename T>
std::string toml_list(const std::vector<T>& v) {
  std::string out = "[";
  for (const T& x : v) {
    if (out.size() > 1) out += ", ";
    if constexpr (std::is_floating_point_v<T>) {
      out += toml_float(x);
    } else if constexpr (std::is_same_v<T, std::string>) {
      out += toml_string(x);
    } else {
      out += std::to_string(x);
    }
  }
  return out + "]";
}

// "key = value" lines → map (keys hold no spaces; a value may hold " = ").
std::map<std::string, std::string> key_values(const std::string& toml_text) {
  std::map<std::string, std::string> kv;
  std::size_t pos = 0;
  while (pos < toml_text.size()) {
    std::size_t end = toml_text.find('\n', pos);
    if (end == std::string::npos) end = toml_text.size();
    const std::string line = toml_text.substr(pos, end - pos);
    const std::size_t eq = line.find(" = ");
    if (eq != std::string::npos) kv[line.substr(0, eq)] = line.substr(eq + 3);
    pos = end + 1;
  }
  return kv;
}

// The row of an axis whose points are T, read by `read`, setting RunConfig's `member`.
template <typename T, typename R>
Axis make_axis(const char* key, const char* run_key, const char* prefix, R RunConfig::*member,
               std::vector<T> (*read)(const toml::node&, const At&)) {
  Axis a{key, run_key, {}, {}, {}, {}, {}, {}, {}, {}};
  a.fresh = [=] { return AxisPoints{std::vector<T>{RunConfig{}.*member}}; };
  a.read = [=](SweepConfig& s, const toml::node& n, const At& at) { s.points<T>(key) = read(n, at); };
  a.size = [=](const SweepConfig& s) { return s.points<T>(key).size(); };
  a.check = [=](const SweepConfig& s) { check_axis(s, key, s.points<T>(key)); };
  a.assign = [=](const SweepConfig& s, std::size_t i, RunConfig& c) { c.*member = s.points<T>(key)[i]; };
  a.name_part = [=](const RunConfig& c) -> std::string {
    if constexpr (std::is_same_v<T, std::string>) {
      return prefix + c.*member;
    } else if constexpr (std::is_integral_v<T>) {
      return prefix + std::to_string(c.*member);
    } else {
      return prefix + name_value(c.*member);
    }
  };
  a.toml = [=](const SweepConfig& s) { return toml_list(s.points<T>(key)); };
  a.value = [=](const RunConfig& c) { return AxisValue{c.*member}; };
  return a;
}

// A numeric axis: scalar, list or range table, every point checked as a run file checks its key.
template <typename T, T RunConfig::*member>
std::vector<T> numbers(const toml::node& n, const At& at) {
  const std::string key = at.key;
  return checked(read_axis(n, at, key, std::is_integral_v<T>, /*ranges=*/true), key, member);
}

const std::vector<Axis>& axes() {
  static const std::vector<Axis> rows = {
      make_axis("model", "model", "", &RunConfig::model, read_models),
      make_axis("lr", "lr", "lr", &RunConfig::lr, numbers<double, &RunConfig::lr>),
      make_axis("batch_size", "batch_size", "b", &RunConfig::batch_size, numbers<std::int64_t, &RunConfig::batch_size>),
      make_axis("weight_decay", "weight_decay", "wd", &RunConfig::weight_decay, numbers<double, &RunConfig::weight_decay>),
      make_axis("momentum", "momentum", "m", &RunConfig::momentum, numbers<double, &RunConfig::momentum>),
      make_axis("dampening", "dampening", "d", &RunConfig::dampening, numbers<double, &RunConfig::dampening>),
      make_axis("seeds", "seed", "s", &RunConfig::seed, read_seeds),
  };
  return rows;
}

}  // namespace

std::map<std::string, AxisPoints> default_axes() {
  std::map<std::string, AxisPoints> m;
  for (const Axis& a : axes()) m.emplace(a.key, a.fresh());
  return m;
}

std::vector<std::pair<std::string, AxisValue>> grid_point(const RunConfig& c) {
  std::vector<std::pair<std::string, AxisValue>> out;
  for (const Axis& a : axes()) out.emplace_back(a.run_key, a.value(c));
  return out;
}

const std::vector<std::string>& sweep_keys() {
  static const std::vector<std::string> keys = [] {
    std::vector<std::string> k;
    for (const Axis& a : axes()) k.push_back(a.key);
    for (const char* own : {"ranks_per_run", "checkpoint_every", "reducer"}) k.push_back(own);
    for (const ReducerSize& size : kReducerSizes) k.push_back(size.key);
    return k;
  }();
  return keys;
}

SweepConfig parse_sweep_config(const std::string& toml_text, const std::string& origin) {
  SweepConfig s;
  s.origin = origin;
  const std::optional<toml::table> doc = try_parse(toml_text, origin);
  if (doc) refuse_run_key_lists(*doc, origin);
  s.base = parse_run_keys(toml_text, origin, sweep_keys(), s.where);  // reports syntax errors
  if (!doc) throw ConfigError(one_line(origin + ": TOML syntax error"));  // not reached
  for (const Entry& e : entries(*doc, origin))
    if (is_sweep_key(e.key)) read_sweep_key(s, e);
  resolve_seeds(s);
  for (const Axis& a : axes()) a.assign(s, 0, s.base);
  expand(s);  // every grid point is checked now, not when the sweep reaches it
  return s;
}

SweepConfig load_sweep_config(const std::string& path) {
  return parse_sweep_config(read_config_file(path), path);
}

std::vector<RunSpec> expand(const SweepConfig& s) {
  check_grid(s);
  std::vector<RunSpec> runs;
  // Every point of the product, the first axis outermost (an odometer over the rows).
  std::vector<std::size_t> at(axes().size(), 0);
  for (bool more = true; more;) {
    RunConfig c = s.base;
    for (std::size_t a = 0; a < at.size(); ++a) axes()[a].assign(s, at[a], c);
    resolve_time(c);
    check_point(s, c);
    runs.push_back({c, ""});
    std::size_t a = at.size();
    while (a > 0 && ++at[a - 1] == axes()[a - 1].size(s)) at[--a] = 0;
    more = a > 0;
  }
  // Longest first, so the last runs handed out are short and groups finish together.
  std::stable_sort(runs.begin(), runs.end(), [](const RunSpec& a, const RunSpec& b) {
    return 1.0 * a.cfg.steps * a.cfg.batch_size > 1.0 * b.cfg.steps * b.cfg.batch_size;
  });
  name_runs(s, runs);
  return runs;
}

std::string to_toml(const SweepConfig& s) {
  auto kv = key_values(to_toml(s.base));
  kv.erase("seed");
  for (const Axis& a : axes()) kv[a.key] = a.toml(s);
  kv["ranks_per_run"] = std::to_string(s.ranks_per_run);
  std::string out;
  for (const auto& [k, v] : kv) out += k + " = " + v + "\n";
  return out;
}

std::string sweep_hash(const SweepConfig& s) { return sha256_hex(to_toml(s)); }

std::vector<std::string> differing_keys(const std::string& old_toml, const std::string& new_toml) {
  const auto a = key_values(old_toml);
  const auto b = key_values(new_toml);
  std::set<std::string> keys;
  for (const auto& [k, v] : a) keys.insert(k);
  for (const auto& [k, v] : b) keys.insert(k);
  std::vector<std::string> out;
  for (const std::string& k : keys) {
    auto x = a.find(k);
    auto y = b.find(k);
    const std::string old_v = x == a.end() ? "(absent)" : x->second;
    const std::string new_v = y == b.end() ? "(absent)" : y->second;
    if (old_v != new_v) out.push_back(k + ": " + old_v + " -> " + new_v);
  }
  return out;
}

}  // namespace nmech::config
