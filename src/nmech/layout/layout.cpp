#include "nmech/layout/layout.hpp"

#include <map>
#include <sstream>
#include <tuple>
#include <utility>

#include "nmech/config/run_mapping.hpp"
#include "nmech/theory/closed_forms.hpp"
#include "nmech/theory/continuous.hpp"

namespace nmech::layout {

using symmetry::Family;

std::uint64_t row_count(std::int64_t steps, std::int64_t record_every) {
  return static_cast<std::uint64_t>(steps / record_every + 1 + (steps % record_every != 0 ? 1 : 0));
}

std::int64_t row_of_step(std::int64_t k, std::int64_t steps, std::int64_t record_every) {
  if (k == steps) return static_cast<std::int64_t>(row_count(steps, record_every)) - 1;
  return k % record_every == 0 ? k / record_every : -1;
}

namespace {

// units and description of every per-set quantity
const std::map<std::string, std::pair<std::string, std::string>>& catalogue() {
  static const std::map<std::string, std::pair<std::string, std::string>> c = {
      {"translation_sum", {"param", "S_k = sum of theta over the set, before update k"}},
      {"translation_abs_sum", {"param", "sum of |theta| over the set, before update k (error scale)"}},
      {"grad_sum", {"grad", "sum of g_k over the set (translation constraint, ideally 0)"}},
      {"scale_sq_norm", {"param^2", "Q_k = |theta_A|^2 before update k"}},
      {"rescale_diff", {"param^2", "R_k = sq_norm_in - sq_norm_out before update k"}},
      {"sq_norm", {"param^2", "squared norm of the side before update k"}},
      {"grad_sq", {"grad^2", "G_k = |g_A|^2 after backward and reduction, before the step"}},
      {"step_sq", {"grad^2", "D_k = |g_A + lambda theta_A|^2 before the step"}},
      {"velocity_sq", {"grad^2", "V_{k+1} = |v_A|^2 of the momentum buffer after update k"}},
      {"update_sq", {"grad^2", "|u_k|^2, the Nesterov update direction"}},
      {"update_dot_velocity", {"grad^2", "<u_k, v_{k+1}>, Nesterov"}},
      {"theta_dot_grad", {"param*grad", "P_k = <theta_A, g_A> (symmetry violation, ideally 0)"}},
      {"pred_exact", {"", "exact discrete recurrence (docs/THEORY.md §4), free running from step 0"}},
      {"pred_exact_aux", {"", "second state of the recurrence: A_k = <theta, v_k> or m_k = sum v_k"}},
      {"pred_paper", {"", "continuous prediction (docs/THEORY.md §5.1 kappa=2 lambda, or §5.2 oscillator)"}},
      {"pred_modloss", {"", "continuous prediction, modified loss kappa = 2 lambda + eta lambda^2"}},
      {"angle_step", {"rad", "angle between theta_k and theta_{k+1} (docs/THEORY.md §6)"}},
  };
  return c;
}

std::pair<std::string, std::string> describe(const std::string& name) {
  std::string base = name;
  std::string side;
  for (const char* suffix : {"_in", "_out"}) {
    const std::string s = suffix;
    if (base.size() > s.size() && base.compare(base.size() - s.size(), s.size(), s) == 0) {
      base.resize(base.size() - s.size());
      side = s == "_in" ? " (side A1, into the unit)" : " (side A2, out of the unit)";
    }
  }
  auto it = catalogue().find(base);
  if (it == catalogue().end()) return {"", name};
  return {it->second.first, it->second.second + side};
}

}  // namespace

std::vector<std::string> family_datasets(Family f, const theory::OptimParams& opt) {
  std::vector<std::string> forcings = {"grad_sq", "step_sq", "theta_dot_grad"};
  if (opt.heavy_ball()) forcings.push_back("velocity_sq");
  if (opt.heavy_ball() && opt.nesterov) {
    forcings.push_back("update_sq");
    forcings.push_back("update_dot_velocity");
  }
  std::vector<std::string> names;
  switch (f) {
    case Family::translation:
      names = {"translation_sum", "translation_abs_sum", "grad_sum", "grad_sq"};
      break;
    case Family::scale:
      names = {"scale_sq_norm"};
      names.insert(names.end(), forcings.begin(), forcings.end());
      names.push_back("angle_step");
      break;
    case Family::rescale:
      names = {"rescale_diff", "sq_norm_in", "sq_norm_out"};
      for (const auto& q : forcings) {
        names.push_back(q + "_in");
        names.push_back(q + "_out");
      }
      break;
  }
  for (const char* p : {"pred_exact", "pred_exact_aux", "pred_paper"}) names.push_back(p);
  if (!opt.heavy_ball()) names.push_back("pred_modloss");
  return names;
}

std::vector<store::DatasetSpec> run_datasets(const symmetry::SymmetrySets& sets,
                                             const theory::OptimParams& opt, bool eval) {
  std::vector<store::DatasetSpec> ds = {
      {"step", 0, "", "step", "updates completed before the row (k)"},
      {"time", 0, "", "lr*step", "t = sum of the learning rate over completed updates"},
      {"loss", 0, "", "nats", "mean minibatch loss at theta_k (NaN on the final row)"},
      {"accuracy", 0, "", "fraction", "minibatch top-1 accuracy at theta_k (NaN on the final row)"},
  };
  if (eval)
    for (const auto& [name, units, what] : {std::tuple{"val_loss", "nats", "mean loss"},
                                            std::tuple{"val_top1", "fraction", "top-1 accuracy"},
                                            std::tuple{"val_top5", "fraction", "top-5 accuracy"}})
      ds.push_back({name, 0, "", units,
                    std::string(what) + " over the validation split at theta_k, in eval mode (BatchNorm running "
                                        "statistics), every eval_every steps and on the final row; NaN otherwise"});
  for (Family f : theory::kFamilies) {
    const auto& fs = sets.get(f);
    if (fs.count() == 0) continue;
    const std::string fam = symmetry::to_string(f);
    for (const auto& name : family_datasets(f, opt)) {
      auto [units, desc] = describe(name);
      ds.push_back({fam + "/" + name, static_cast<std::uint64_t>(fs.count()), fam, units, desc});
    }
  }
  if (sets.sample.count() > 0)
    ds.push_back({"sample/value", static_cast<std::uint64_t>(sets.sample.count()), "sample", "param",
                  "raw value of a fixed sample of weights, before update k (columns: /models/<model>/sets/sample)"});
  return ds;
}

std::vector<store::SetTable> set_tables(const symmetry::SymmetrySets& sets) {
  std::vector<store::SetTable> t;
  for (Family f : theory::kFamilies) {
    const auto& fs = sets.get(f);
    if (fs.count() == 0) continue;
    t.push_back({symmetry::to_string(f), fs.names, fs.layer, fs.index});
  }
  if (sets.sample.count() > 0) t.push_back({"sample", sets.sample.names, sets.sample.layer, sets.sample.index});
  return t;
}

store::Attrs file_attrs() {
  std::string names, hyper;
  store::Attrs a;
  for (const auto& [name, value] : config::run_attributes(config::RunConfig{}))
    hyper += (hyper.empty() ? "" : " ") + name;
  for (Family f : theory::kFamilies) {
    const auto& t = theory::traits(f);
    names += (names.empty() ? "" : " ") + std::string(t.name);
    std::string scale;
    for (const auto& d : t.error_scale) scale += (scale.empty() ? "" : " + ") + d;
    a.push_back({std::string(t.name) + "_measured", std::string(t.measured)});
    a.push_back({std::string(t.name) + "_error_scale", scale});
  }
  a.insert(a.begin(), store::Attrs::value_type{"families", names});
  a.push_back({"hyperparameters", hyper});
  std::string forms;
  for (const auto& [name, value] : theory::closed_forms(theory::OptimParams{}))
    forms += (forms.empty() ? "" : " ") + name;
  a.push_back({"closed_forms", forms});
  return a;
}

std::string model_key(const config::RunConfig& cfg) {
  std::ostringstream k;
  k << cfg.model << "-w" << cfg.width << "-c" << cfg.classifier_width << "-in" << cfg.input_size;
  if (cfg.model.rfind("mlp", 0) == 0) k << "-d" << cfg.mlp_depth;
  return k.str();
}

store::RunLayout run_layout(const config::RunConfig& c, const symmetry::SymmetrySets& sets,
                            const std::string& run_name, std::int64_t classes) {
  const theory::OptimParams opt = config::optim_params(c);
  store::RunLayout l;
  l.name = run_name;
  l.model = model_key(c);
  l.rows = row_count(c.steps, c.record_every);
  l.datasets = run_datasets(sets, opt, c.eval_every > 0);
  l.attrs = config::run_attributes(c);  // the hyperparameters, from the config's key table
  l.attrs.insert(l.attrs.end(), {{"classes", classes}, {"config", config::to_toml(c)}});
  for (const auto& [name, value] : theory::closed_forms(opt)) l.attrs.push_back({name, value});
  for (Family f : theory::kFamilies) {
    const auto osc = theory::Oscillator::make(f, opt);
    const std::string fam = theory::to_string(f);
    l.attrs.push_back({fam + "_gamma", osc.gamma});
    l.attrs.push_back({fam + "_omega", osc.omega});
    l.attrs.push_back({fam + "_damping_regime", theory::to_string(osc.regime)});
  }
  return l;
}

}  // namespace nmech::layout
