#include "verify_cmd.hpp"

#include <torch/torch.h>

#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <numeric>
#include <set>
#include <stdexcept>

#include "nmech/data/load.hpp"
#include "nmech/config/run_config.hpp"
#include "nmech/data/dataset.hpp"
#include "nmech/net/net.hpp"
#include "nmech/verify/verify.hpp"
#include "nmech/train/trainer.hpp"
#include "nmech/util/exit_codes.hpp"

namespace nmech::apps {

using verify::VerifyReport;

CLI::App* add_verify_command(CLI::App& app, VerifyArgs& a) {
  auto* v = app.add_subcommand("verify", "check numerically that every traced set is a symmetry");
  std::string names;
  for (const auto& m : models::model_names()) names += (names.empty() ? "" : ", ") + m;
  v->add_option("--model", a.model, "built-in model (" + names + ")")->capture_default_str();
  v->add_option("--set", a.sets,
                "run-config key: width, classifier_width, input_size, bn_eps, dropout, dataset, data_dir, "
                "seed, mlp_depth, threads (repeatable)");
  v->add_option("--dtype", a.dtype, "float64 or float32")
      ->check(CLI::IsMember({"float64", "float32"}))
      ->capture_default_str();
  v->add_option("--batch", a.batch, "images in the fixed batch")->check(CLI::Range(2, 1 << 20))->capture_default_str();
  v->add_flag("--json", a.json, "print the report as JSON");
  v->add_flag("--all", a.all, "per-set invariance and Hessian checks for every set (slow on large models)");
  v->add_option("--break", a.brk, "negative control: build the model broken, claim the intact sets")
      ->check(CLI::IsMember({"tanh", "gelu", "bias-after-bn", "mse", "wrong-rescale"}));
  return v;
}

namespace {

std::string num(double v) {
  if (std::isnan(v)) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1e", v);
  return buf;
}

// "a, b, c (and 13 more)"
std::string first_few(const std::vector<std::string>& names, std::size_t k = 8) {
  std::string s;
  for (std::size_t i = 0; i < names.size() && i < k; ++i) s += (i ? ", " : "") + names[i];
  if (names.size() > k) s += " (and " + std::to_string(names.size() - k) + " more)";
  return s;
}

std::int64_t total_sets(const VerifyReport& r) {
  std::int64_t n = 0;
  for (const auto& f : r.families) n += f.sets;
  return n;
}

// The sets a break can show on this batch: those it invalidates, less those whose gradient is
// exactly zero here (dead units: acting on them changes nothing, whatever the loss).
std::set<std::string> visible(const VerifyReport& r, const verify::Control& c) {
  std::set<std::string> v(c.touched.begin(), c.touched.end());
  for (const auto& name : r.zero_gradient) v.erase(name);
  return v;
}

// Whether the failing sets are exactly those.
bool matches(const VerifyReport& r, const verify::Control& c) {
  return std::set<std::string>(r.failing.begin(), r.failing.end()) == visible(r, c);
}

void print_table(const VerifyReport& r) {
  std::printf("%-12s %-14s %6s %10s %8s  %-10s %-10s %-10s %-10s %s\n", "family", "layer", "sets", "inv/hess",
              "zero-g", "invariance", "gradient", "Hessian", "eps term", "result");
  for (const auto& l : r.layers) {
    const std::string checked = std::to_string(l.invariance_checked) + "/" + std::to_string(l.hessian_checked);
    const double inv = std::isnan(l.group_invariance) ? l.invariance
                       : std::isnan(l.invariance)     ? l.group_invariance
                                                      : std::max(l.invariance, l.group_invariance);
    std::printf("%-12s %-14s %6lld %10s %8lld  %-10s %-10s %-10s %-10s %s\n", symmetry::to_string(l.family),
                l.layer.c_str(), static_cast<long long>(l.sets), checked.c_str(),
                static_cast<long long>(l.zero_gradient), num(inv).c_str(), num(l.gradient).c_str(),
                num(l.hessian).c_str(), num(l.epsilon).c_str(), l.pass ? "pass" : "FAIL");
  }
  for (const auto& f : r.families)
    std::printf("%-12s %-14s %6lld %10s %8s  %-10s %-10s %-10s %-10s %s\n", symmetry::to_string(f.family),
                "(all at once)", static_cast<long long>(f.sets), "", "", num(f.invariance).c_str(), "",
                num(f.hessian).c_str(), "", f.pass ? "pass" : "FAIL");
}

void print_notes(const VerifyReport& r) {
  double ratio = 0;
  for (const auto& l : r.layers)
    if (!std::isnan(l.epsilon_ratio)) ratio = std::max(ratio, l.epsilon_ratio);
  std::printf("\ntolerances: invariance %.0e, gradient %.0e (scale %.0e), Hessian %.0e%s\n", r.tol.invariance,
              r.tol.gradient, r.tol.scale_gradient, r.tol.hessian,
              r.tol.hessian_informational ? " (informational in float32)" : "");
  std::printf("checks: the gradient constraint for every set; %s;\n"
              "  \"(all at once)\": every set of a family acted on together with random factors, and one\n"
              "  Hessian-vector product of the sum of their generators with random signs\n",
              r.exhaustive ? "per-set invariance (α 0.6, 1.7; translation ±0.5) and Hessian for every set"
                           : "per-set invariance and Hessian for the sample in inv/hess (--all: every set),\n"
                             "  and each layer's sets acted on together (its invariance column includes that)");
  if (ratio > 0)
    std::printf("BatchNorm ε: scale gradient residuals are after subtracting ε/(σ²+ε)·w·∂L/∂w (\"eps term\": its\n"
                "  size before; ε/(σ²+ε) up to %.1e); scale invariance and Hessian at ε = %.0e (ε → 0)\n",
                ratio, r.scale_bn_eps);
  std::printf("zero-g: sets whose gradient is exactly 0 on this batch (dead units): they pass trivially\n");
}

void print_verdict(const VerifyReport& r, const verify::Control& c, bool control) {
  std::printf("\n");
  if (control) {
    const std::size_t dead = c.touched.size() - visible(r, c).size();
    std::printf("negative control: %s\n  the break invalidates %zu claimed sets", c.description.c_str(),
                c.touched.size());
    if (dead > 0) std::printf(", %zu of them with zero gradient on this batch (dead units)", dead);
    std::printf("; verify flags %zu: %s\n", r.failing.size(),
                matches(r, c) ? (dead > 0 ? "exactly the others" : "exactly those") : "NOT exactly those");
  }
  if (r.pass()) {
    std::printf("PASS: all %lld sets (%.1f s)\n", static_cast<long long>(total_sets(r)), r.seconds);
    return;
  }
  std::printf("FAIL: %zu of %lld sets fail%s%s (%.1f s)\n", r.failing.size(), static_cast<long long>(total_sets(r)),
              r.failing.empty() ? "" : ": ", first_few(r.failing).c_str(), r.seconds);
  for (const auto& chk : r.failing_checks) std::printf("  failing check: %s\n", chk.c_str());
}

nlohmann::json to_json(const VerifyReport& r) {
  using nlohmann::json;
  const auto val = [](double v) { return std::isnan(v) ? json(nullptr) : json(v); };
  json j = {{"pass", r.pass()},
            {"exhaustive", r.exhaustive},
            {"loss", r.loss},
            {"seconds", r.seconds},
            {"scale_bn_eps", r.scale_bn_eps},
            {"tolerances",
             {{"invariance", r.tol.invariance},
              {"gradient", r.tol.gradient},
              {"scale_gradient", r.tol.scale_gradient},
              {"hessian", r.tol.hessian},
              {"hessian_informational", r.tol.hessian_informational}}},
            {"failing", r.failing},
            {"failing_checks", r.failing_checks},
            {"zero_gradient", r.zero_gradient}};
  for (const auto& f : r.families)
    j["families"].push_back({{"family", symmetry::to_string(f.family)},
                             {"sets", f.sets},
                             {"invariance_checked", f.invariance_checked},
                             {"hessian_checked", f.hessian_checked},
                             {"invariance_all_at_once", val(f.invariance)},
                             {"hessian_all_at_once", val(f.hessian)},
                             {"pass", f.pass}});
  for (const auto& l : r.layers)
    j["layers"].push_back({{"family", symmetry::to_string(l.family)},
                           {"layer", l.layer},
                           {"sets", l.sets},
                           {"invariance_checked", l.invariance_checked},
                           {"hessian_checked", l.hessian_checked},
                           {"zero_gradient", l.zero_gradient},
                           {"invariance", val(l.invariance)},
                           {"layer_invariance", val(l.group_invariance)},
                           {"gradient", val(l.gradient)},
                           {"hessian", val(l.hessian)},
                           {"epsilon_term", val(l.epsilon)},
                           {"epsilon_ratio", val(l.epsilon_ratio)},
                           {"pass", l.pass}});
  return j;
}

// The intact model's wiring and claims, or the broken model and the intact claims.
verify::Control control_for(const VerifyArgs& a, const config::RunConfig& cfg, const data::Dataset& d) {
  try {
    const auto brk = verify::parse_break(a.brk.empty() ? "none" : a.brk);
    return verify::make_control(models::make_wiring(train::model_spec(cfg, d)), brk);
  } catch (const std::invalid_argument& e) {
    throw config::ConfigError(std::string("verify: ") + e.what());
  }
}

}  // namespace

int cmd_verify(const VerifyArgs& a) {
  std::vector<std::string> overrides = {"model=" + a.model};
  overrides.insert(overrides.end(), a.sets.begin(), a.sets.end());
  overrides.push_back("dtype=" + a.dtype);
  overrides.push_back("batch_size=" + std::to_string(a.batch));
  const auto cfg = config::parse_run_config("", "--set", overrides);
  const auto data = data::load_dataset(cfg, "--batch");
  torch::set_num_threads(static_cast<int>(cfg.threads));
  const auto dtype = cfg.dtype == "float64" ? torch::kDouble : torch::kFloat;
  const auto control = control_for(a, cfg, data);

  torch::manual_seed(cfg.seed);
  net::Net net(control.wiring, cfg.bn_eps);
  net->init_paper();
  verify::move_to_generic_point(net, cfg.seed);
  verify::init_control(net, control, cfg.seed);
  net->to(dtype);
  std::vector<std::int64_t> idx(a.batch);
  std::iota(idx.begin(), idx.end(), 0);  // the first images: one fixed, reproducible batch
  const auto batch = data::make_batch(data, idx, cfg.input_size, dtype);

  verify::VerifyOptions opt;
  opt.all = a.all;
  opt.seed = cfg.seed;
  if (!a.json) {
    std::printf("nmech verify: %s, width %g, input %lld, %lld parameters, %s, batch %lld of %s, training mode\n",
                cfg.model.c_str(), cfg.width, static_cast<long long>(cfg.input_size),
                static_cast<long long>(models::parameter_count(control.wiring)), cfg.dtype.c_str(),
                static_cast<long long>(a.batch), data.name.c_str());
    std::fflush(stdout);
  }
  const auto r = verify::verify(net, control.claimed, batch.images, batch.labels, opt);
  const bool is_control = !a.brk.empty();
  if (a.json) {
    auto j = to_json(r);
    j.update({{"model", cfg.model},   {"width", cfg.width},      {"input_size", cfg.input_size},
              {"batch", a.batch},     {"dtype", cfg.dtype},      {"dataset", data.name},
              {"seed", cfg.seed}});
    if (is_control)
      j["control"] = {{"break", a.brk},
                      {"description", control.description},
                      {"invalidated", control.touched},
                      {"exactly_those_fail", matches(r, control)}};
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    print_table(r);
    print_notes(r);
    print_verdict(r, control, is_control);
  }
  return r.pass() ? util::kComplete : util::kVerifyFailed;
}

}  // namespace nmech::apps
