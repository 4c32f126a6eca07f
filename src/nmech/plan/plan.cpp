// The dry run of a sweep: runs, sizes, groups, launch lines. Nothing here touches the disk.
#include "nmech/plan/plan.hpp"

#include <map>
#include <queue>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <stdexcept>
#include <type_traits>
#include <variant>

#include "nmech/models/wiring.hpp"
#include "nmech/symmetry/sets.hpp"
#include "nmech/config/run_mapping.hpp"
#include "nmech/layout/layout.hpp"

namespace nmech::plan {
namespace {

using config::ConfigError;

std::string where_of(const config::SweepConfig& s, const std::string& key) {
  auto it = s.where.find(key);
  return it == s.where.end() ? s.origin : it->second;
}

// The network's input as data::load_dataset provides it: the dataset's channels and classes
// (config::dataset_shape), padded to input_size.
models::ModelSpec model_spec(const config::RunConfig& c) {
  const auto shape = config::dataset_shape(c.dataset);
  return config::model_spec(c, shape.channels, shape.classes);
}

// make_wiring refuses impossible shapes with std::invalid_argument; the user fixes a key.
models::Wiring wiring(const config::SweepConfig& s, const config::RunConfig& c) {
  try {
    return models::make_wiring(model_spec(c));
  } catch (const std::invalid_argument& e) {
    const std::string what = e.what();
    const std::string key = what.find("input_size") != std::string::npos ? "input_size" : "model";
    throw ConfigError(where_of(s, key) + ": key '" + key + "': " + what + " (model " + c.model +
                      ", input_size " + std::to_string(c.input_size) + ")");
  }
}

ModelSummary summarize(const models::Wiring& w, const symmetry::SymmetrySets& sets) {
  ModelSummary m;
  m.model = w.model;
  m.parameters = models::parameter_count(w);
  for (auto f : theory::kFamilies) m.sets[theory::index(f)] = sets.get(f).count();
  m.input_channels = w.input_channels;
  m.input_size = w.input_size;
  m.classes = w.classes;
  return m;
}

PlannedRun plan_run(const config::RunSpec& r, const symmetry::SymmetrySets& sets) {
  PlannedRun p;
  p.cfg = r.cfg;
  p.name = r.name;
  p.rows = layout::row_count(r.cfg.steps, r.cfg.record_every);
  const auto datasets = layout::run_datasets(sets, config::optim_params(r.cfg), r.cfg.eval_every > 0);
  p.datasets = datasets.size();
  for (const auto& d : datasets) p.values_per_row += std::max<std::uint64_t>(d.cols, 1);
  p.bytes = p.rows * p.values_per_row * 8 + p.datasets * kDatasetOverheadBytes + kRunOverheadBytes;
  return p;
}

// The set tables: fixed-length names (the longest name sets the width) and two int64 columns.
std::uint64_t set_table_bytes(const symmetry::SymmetrySets& sets) {
  std::uint64_t bytes = 0;
  for (const auto& t : layout::set_tables(sets)) {
    std::size_t width = 1;
    for (const auto& n : t.names) width = std::max(width, n.size());
    bytes += t.names.size() * (width + 16) + 3 * kDatasetOverheadBytes;
  }
  return bytes;
}

void check_world(const config::SweepConfig& s, std::int64_t world) {
  const std::string r = std::to_string(s.ranks_per_run);
  const std::string at = " (ranks_per_run = " + r + ", " + where_of(s, "ranks_per_run") + ")";
  if (world < 1) throw ConfigError("world size must be >= 1, got " + std::to_string(world));
  if (world < s.ranks_per_run)
    throw ConfigError("world size " + std::to_string(world) + " is smaller than one group of " + r +
                      " ranks" + at);
  if (world % s.ranks_per_run != 0)
    throw ConfigError("world size " + std::to_string(world) + " is not a multiple of " + r + at);
}

std::vector<std::string> notes(const Plan& p, const std::string& slurm_ntasks) {
  std::vector<std::string> n;
  const auto runs = static_cast<std::int64_t>(p.runs.size());
  if (p.groups > runs)
    n.push_back(std::to_string(p.groups - runs) + " of " + std::to_string(p.groups) +
                " groups will have no run: a world size of " + std::to_string(runs * p.ranks_per_run) +
                " is enough");
  if (!slurm_ntasks.empty() && slurm_ntasks != std::to_string(p.world_size))
    n.push_back("SLURM_NTASKS is " + slurm_ntasks + ", not " + std::to_string(p.world_size) +
                ": nmech sweep refuses a world that differs from SLURM_NTASKS");
  return n;
}

std::string mb(std::uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", static_cast<double>(bytes) / 1e6);
  return buf;
}

// "45 s", "12 min", "3.4 h".
std::string duration(double s) {
  char buf[32];
  if (s < 120) std::snprintf(buf, sizeof buf, "%.0f s", s);
  else if (s < 7200) std::snprintf(buf, sizeof buf, "%.0f min", s / 60);
  else std::snprintf(buf, sizeof buf, "%.1f h", s / 3600);
  return buf;
}

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

std::string axis_text(const config::AxisValue& v) {
  return std::visit(
      [](const auto& x) -> std::string {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::string>) {
          return x;
        } else if constexpr (std::is_floating_point_v<T>) {
          return num(x);
        } else {
          return std::to_string(x);
        }
      },
      v);
}

}  // namespace

Plan make_plan(const config::SweepConfig& s, std::int64_t world_size, const std::string& config_path,
          const std::string& store_path, const std::string& slurm_ntasks) {
  check_world(s, world_size);
  Plan p;
  p.config_path = config_path;
  p.store_path = store_path.empty() ? default_store_path(config_path) : store_path;
  p.config_sha256 = config::sweep_hash(s);
  // The first model summarises the plan; each model of a model axis has its own sets.
  const models::Wiring w = wiring(s, s.base);
  const symmetry::SymmetrySets sets = symmetry::derive_sets(w);
  p.model = summarize(w, sets);
  std::map<std::string, symmetry::SymmetrySets> by_model{{s.base.model, sets}};
  std::uint64_t other_tables = 0;
  for (const auto& r : config::expand(s)) {
    if (by_model.count(r.cfg.model) == 0) {
      by_model.emplace(r.cfg.model, symmetry::derive_sets(wiring(s, r.cfg)));
      other_tables += set_table_bytes(by_model.at(r.cfg.model));
    }
    p.runs.push_back(plan_run(r, by_model.at(r.cfg.model)));
  }
  p.world_size = world_size;
  p.ranks_per_run = s.ranks_per_run;
  p.groups = world_size / s.ranks_per_run;
  p.shared_bytes = kFileOverheadBytes + set_table_bytes(sets) + other_tables;
  p.total_bytes = p.shared_bytes;
  std::uint64_t datasets = 0;
  for (const auto& r : p.runs) {
    p.total_bytes += r.bytes;
    datasets += r.datasets;
  }
  p.create_seconds = static_cast<double>(datasets) * kCreateSecondsPerDataset +
                     static_cast<double>(p.total_bytes) / kCreateBytesPerSecond;
  const std::string np = std::to_string(world_size);
  p.mpirun_args = {"mpirun", "-np", np, "nmech", "sweep", p.config_path, "-o", p.store_path};
  p.srun_args = {"srun", "--mpi=pmix", "-n", np, "nmech", "sweep", p.config_path, "-o", p.store_path};
  p.notes = notes(p, slurm_ntasks);
  return p;
}

void estimate_wall(Plan& p, double step_ms) {
  // Longest first, each run to the group that frees up first (what the work queue does).
  std::priority_queue<double, std::vector<double>, std::greater<>> free_at;
  for (std::int64_t g = 0; g < p.groups; ++g) free_at.push(0.0);
  double end = 0;
  for (const auto& r : p.runs) {
    const double t = free_at.top() + static_cast<double>(r.cfg.steps) * step_ms / 1e3 + kRunOverheadSeconds;
    free_at.pop();
    free_at.push(t);
    end = std::max(end, t);
  }
  const config::RunConfig c = p.runs.empty() ? config::RunConfig{} : p.runs.front().cfg;
  const bool gpu = c.device != "cpu";
  p.step_ms = step_ms;
  p.wall_seconds = p.create_seconds + end;
  p.resource = gpu ? "GPU-hours" : "core-hours";
  p.resource_hours = p.wall_seconds / 3600 * static_cast<double>(p.world_size) * (gpu ? 1.0 : static_cast<double>(c.threads));
}

std::int64_t default_world_size(const config::SweepConfig& s, const std::string& slurm_ntasks) {
  try {
    std::size_t used = 0;
    const long long n = std::stoll(slurm_ntasks, &used);
    if (used == slurm_ntasks.size() && n > 0) return n;
  } catch (const std::exception&) {
    // unset or not a number: not inside an allocation
  }
  return static_cast<std::int64_t>(config::expand(s).size()) * s.ranks_per_run;
}

std::string default_store_path(const std::string& config_path) {
  std::string stem = config_path.substr(config_path.find_last_of('/') + 1);  // npos + 1 == 0
  const auto dot = stem.rfind('.');
  if (dot != std::string::npos && dot > 0) stem.resize(dot);
  return (stem.empty() ? "sweep" : stem) + ".h5";
}

std::string quote_arg(const std::string& arg) {
  auto safe = [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           std::string_view("_./:=@%+,-").find(c) != std::string_view::npos;
  };
  if (!arg.empty() && std::all_of(arg.begin(), arg.end(), safe)) return arg;
  // Inside single quotes a shell expands nothing; a quote itself ends the quoting, is written
  // escaped, and quoting starts again.
  std::string out = "'";
  for (char c : arg) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string command_line(const std::vector<std::string>& args) {
  std::string out;
  for (const auto& a : args) out += (out.empty() ? "" : " ") + quote_arg(a);
  return out;
}

// "vgg16_bn width 0.125" or "mlp_bn 2 x 32": the model keys that shape the network.
std::string model_words(const config::RunConfig& c) {
  if (c.model.rfind("mlp", 0) != 0) return c.model + " width " + num(c.width);
  const std::int64_t hidden = c.classifier_width > 0 ? c.classifier_width : 256;  // as make_wiring
  return c.model + " " + std::to_string(c.mlp_depth) + " x " + std::to_string(hidden);
}

std::string format_plan(const Plan& p) {
  std::string out;
  auto line = [&out](const std::string& s) { out += s + "\n"; };
  const config::RunConfig c = p.runs.empty() ? config::RunConfig{} : p.runs.front().cfg;
  const auto& m = p.model;
  line("sweep " + p.config_path + "  (config sha256 " + p.config_sha256.substr(0, 16) + ")");
  std::string counts;
  for (auto f : theory::kFamilies)
    counts += (counts.empty() ? "" : ", ") + std::string(theory::to_string(f)) + " " + std::to_string(m.sets[theory::index(f)]);
  line("model " + model_words(c) + ", " + std::to_string(m.parameters) + " parameters; sets: " + counts);
  line("data  " + c.dataset + ", input " + std::to_string(m.input_channels) + "x" +
       std::to_string(m.input_size) + "x" + std::to_string(m.input_size) + ", " + c.dtype +
       (c.device == "cpu" ? std::string() : " on " + c.device) + ", a row every " +
       (c.record_every == 1 ? std::string("step") : std::to_string(c.record_every) + " steps and the last"));
  line("");
  // One column per grid axis (config::grid_point), then the run's size.
  std::vector<std::vector<std::string>> rows = {{"run"}};
  for (const auto& [key, v] : config::grid_point(c)) rows[0].push_back(key);
  for (const char* h : {"steps", "rows", "MB"}) rows[0].push_back(h);
  for (const auto& r : p.runs) {
    std::vector<std::string> cells = {r.name};
    for (const auto& [key, v] : config::grid_point(r.cfg)) cells.push_back(axis_text(v));
    for (const std::string& s : {std::to_string(r.cfg.steps), std::to_string(r.rows), mb(r.bytes)}) cells.push_back(s);
    rows.push_back(cells);
  }
  std::vector<std::size_t> width(rows[0].size(), 0);
  for (const auto& cells : rows)
    for (std::size_t i = 0; i < cells.size(); ++i) width[i] = std::max(width[i], cells[i].size());
  for (const auto& cells : rows) {
    std::string text;
    for (std::size_t i = 0; i < cells.size(); ++i) {
      const std::string pad(width[i] - cells[i].size(), ' ');
      text += i == 0 ? cells[i] + pad : " " + pad + cells[i];  // the name left, the numbers right
    }
    line(text);
  }
  line("");
  char buf[512];
  line(std::to_string(p.runs.size()) + " runs, handed out longest first to " + std::to_string(p.groups) +
       (p.groups == 1 ? " group" : " groups") + " of " + std::to_string(p.ranks_per_run) +
       (p.ranks_per_run == 1 ? " rank" : " ranks") + " (world size " + std::to_string(p.world_size) + ")");
  line("store " + p.store_path + ": " + mb(p.total_bytes) + " MB (runs " + mb(p.total_bytes - p.shared_bytes) +
       " MB, shared " + mb(p.shared_bytes) + " MB)");
  std::snprintf(buf, sizeof buf, "store creation: about %s (rank 0; %.2f ms a dataset and %.0f MB/s of fill, as measured "
                "on a 2-core VM)", duration(p.create_seconds).c_str(), kCreateSecondsPerDataset * 1e3,
                kCreateBytesPerSecond / 1e6);
  line(buf);
  if (p.step_ms > 0) {
    std::snprintf(buf, sizeof buf, "with a %g ms step: about %s wall on %lld ranks, %.1f %s", p.step_ms,
                  duration(p.wall_seconds).c_str(), static_cast<long long>(p.world_size), p.resource_hours,
                  p.resource.c_str());
    line(buf);
  } else {
    line("wall time: give --step-ms (a group's step, measured with a short run) for an estimate");
  }
  for (const auto& n : p.notes) line("note: " + n);
  line("");
  line("launch:");
  line("  " + command_line(p.mpirun_args));
  line("  " + command_line(p.srun_args));
  return out;
}

namespace {

// Slurm's time formats: minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS.
bool slurm_time(const std::string& t) {
  if (t.empty() || t.size() > 16) return false;
  int colons = 0, dashes = 0;
  for (char c : t) {
    if (c == ':') ++colons;
    else if (c == '-') ++dashes;
    else if (c < '0' || c > '9') return false;
  }
  return dashes <= 1 && colons <= 2 && t.front() != ':' && t.front() != '-' && t.back() != ':' &&
         t.back() != '-' && t.find("::") == std::string::npos;
}

}  // namespace

std::vector<std::string> sbatch_args(const Plan& p, const SlurmOptions& o) {
  if (o.nodes < 1 || p.world_size % o.nodes != 0)
    throw ConfigError("--nodes " + std::to_string(o.nodes) + " does not divide the world of " +
                      std::to_string(p.world_size) + " ranks evenly (-P sets the world size)");
  const std::int64_t per_node = p.world_size / o.nodes;
  if (o.gpus_per_node > 0 && o.gpus_per_node != per_node)
    throw ConfigError("--gpus-per-node " + std::to_string(o.gpus_per_node) + " must equal the " +
                      std::to_string(per_node) + " ranks per node: one GPU per rank");
  if (!o.time.empty() && !slurm_time(o.time))
    throw ConfigError("--time '" + o.time + "' is not a Slurm time (minutes, HH:MM:SS or D-HH:MM:SS)");
  std::string stem = std::filesystem::path(p.config_path).stem().string();
  std::vector<std::string> a = {"sbatch", "--job-name=nmech-" + stem, "--nodes=" + std::to_string(o.nodes),
                                "--ntasks-per-node=" + std::to_string(per_node)};
  if (o.gpus_per_node > 0) a.push_back("--gpus-per-node=" + std::to_string(o.gpus_per_node));
  if (!o.time.empty()) a.push_back("--time=" + o.time);
  if (!o.partition.empty()) a.push_back("--partition=" + o.partition);
  for (const auto& x : {o.script, p.config_path, p.store_path}) a.push_back(x);
  return a;
}

std::string plan_json(const Plan& p) {
  nlohmann::json runs = nlohmann::json::array();
  for (const auto& r : p.runs) {
    nlohmann::json run = {{"name", r.name},         {"steps", r.cfg.steps},   {"record_every", r.cfg.record_every},
                          {"rows", r.rows},         {"datasets", r.datasets}, {"values_per_row", r.values_per_row},
                          {"bytes", r.bytes}};
    for (const auto& [key, v] : config::grid_point(r.cfg)) std::visit([&, k = key](const auto& x) { run[k] = x; }, v);
    runs.push_back(run);
  }
  const auto& m = p.model;
  nlohmann::json set_counts = nlohmann::json::object();
  for (auto f : theory::kFamilies) set_counts[theory::to_string(f)] = m.sets[theory::index(f)];
  nlohmann::json j = {
      {"config", p.config_path},
      {"config_sha256", p.config_sha256},
      {"store", p.store_path},
      {"model",
       {{"name", m.model}, {"parameters", m.parameters},
        {"sets", set_counts}}},
      {"world_size", p.world_size},
      {"ranks_per_run", p.ranks_per_run},
      {"groups", p.groups},
      {"runs", runs},
      {"shared_bytes", p.shared_bytes},
      {"total_bytes", p.total_bytes},
      {"create_seconds", p.create_seconds},
      {"launch",
       {{"mpirun", p.mpirun_args},
        {"srun", p.srun_args},
        {"mpirun_line", command_line(p.mpirun_args)},
        {"srun_line", command_line(p.srun_args)}}},
      {"notes", p.notes}};
  if (p.step_ms > 0)
    j["estimate"] = {{"step_ms", p.step_ms}, {"wall_seconds", p.wall_seconds}, {p.resource, p.resource_hours}};
  return j.dump(2) + "\n";
}

}  // namespace nmech::plan
