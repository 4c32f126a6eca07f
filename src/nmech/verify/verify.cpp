#include "nmech/verify/verify.hpp"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <random>
#include <stdexcept>

#include "nmech/trace/reduce.hpp"

namespace nmech::verify {

using at::Tensor;
using models::Layer;
using models::LayerKind;
using symmetry::Family;
using symmetry::FamilySets;
using symmetry::Slice;
using symmetry::SymmetrySets;

Tolerances tolerances(at::ScalarType dtype) {
  if (dtype == at::kDouble) return {1e-10, 1e-10, 1e-8, 1e-10, false};
  return {1e-5, 1e-5, 1e-3, 1e-4, true};
}

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kAlpha[2] = {0.6, 1.7};  // finite scale/rescale factors (docs/THEORY.md §2a item 1)
constexpr double kShift = 0.5;            // translation by ±0.5
// Scale invariance is exact only at BatchNorm ε = 0. The gradient constraint's ε term is known
// exactly (E below) and subtracted; the finite-α and Hessian ε terms are not (they need per-channel
// ε-derivatives LibTorch's BatchNorm does not expose, and reach 1e-6 when σ_c² is small), so those
// two checks of the scale family run in the ε → 0 limit, with every BatchNorm's ε set to this
// (small against any σ_c², large enough that float32 products with it stay normal).
double scale_eps(at::ScalarType dtype) { return dtype == at::kDouble ? 1e-20 : 1e-12; }
constexpr std::int64_t kMaxInvarianceSample = 64, kMaxHessianSample = 8;

// a/b with 0/0 = 0: a set whose terms all vanish satisfies its constraint trivially.
double ratio(double a, double b) {
  if (b == 0) return a == 0 ? 0.0 : kInf;
  return a / b;
}

// Worst of two residuals, NaN (a non-finite loss or gradient) counting as the worst.
double worst(double acc, double r) {
  if (std::isnan(r)) return kInf;
  return std::isnan(acc) ? r : std::max(acc, r);
}

bool within(double r, double tol) { return std::isnan(r) || r <= tol; }  // NaN: not checked

std::string owner_of(const std::string& name) { return name.substr(0, name.rfind('.')); }

double sq_norm(const Tensor& t) { return t.to(at::kDouble).square().sum().item<double>(); }

// A field over the parameters (param index → tensor of its shape); absent entries are zero.
using Field = std::map<std::size_t, Tensor>;

double sq_norm(const Field& f) {
  double s = 0;
  for (const auto& [p, t] : f) s += sq_norm(t);
  return s;
}

// A residual that is not a number (non-finite loss or gradient) counts as a failure.
double clean(double r) { return std::isnan(r) ? kInf : r; }

Tensor view3(const Tensor& t, const Slice& s) { return t.view({s.outer, s.n, s.inner}); }

// One set's elements in one parameter: middle index j of the slice's [outer, n, inner] view.
struct Part {
  std::size_t param = 0;
  const Slice* slice = nullptr;
  std::int64_t j = 0;
  int side = 1;  // +1: the set, or rescale side A1; −1: rescale side A2
};

struct Group {
  std::int64_t begin = 0, end = 0;  // sets [begin, end) share an owning layer
  std::string layer;
  double invariance = kNotChecked;
};

// Everything computed for one family.
struct FamilyWork {
  Family family;
  const FamilySets* fs = nullptr;
  std::vector<std::pair<const Slice*, int>> slices;  // with their side
  std::vector<std::size_t> slice_param;
  std::vector<std::vector<Part>> parts;  // per set
  std::vector<Group> groups;
  std::vector<double> gradient, eps_term, eps_norm, eps_ratio, invariance, hessian;
  std::vector<char> zero_grad;
  std::vector<std::int64_t> inv_sample, hess_sample;
  double combined_invariance = kNotChecked, combined_hessian = kNotChecked;
  std::int64_t count() const { return fs->count(); }
};

// A BatchNorm layer: its options (ε is changed for the scale Hessian) and running buffers.
struct BnLayer {
  torch::nn::BatchNormOptions* options = nullptr;
  Tensor running_mean, running_var, weight;
  std::int64_t per_channel = 0;  // elements of one channel in the batch: N·H·W
  std::vector<double> var;       // σ_c², the biased batch variance of the pre-BN channel
};

double forward_macs(const models::Wiring& w, std::int64_t batch) {
  double m = 0;
  for (const auto& l : w.layers) {
    if (l.kind == LayerKind::conv) m += double(l.out) * l.in * l.kernel * l.kernel * l.h * l.w;
    if (l.kind == LayerKind::linear) m += double(l.in) * l.out;
  }
  return m * batch;
}

class Verifier {
 public:
  Verifier(net::Net& net, const SymmetrySets& sets, const Tensor& x, const Tensor& y,
           const VerifyOptions& opt);
  VerifyReport run();

 private:
  // set-up
  void index_params();
  void index_family(FamilyWork& fw, Family f, const FamilySets& fs);
  void index_batchnorm();
  void choose_samples();
  // passes
  Tensor forward_loss();
  double loss_value();
  std::vector<Tensor> gradient(bool create_graph);
  std::vector<Tensor> base_pass(bool create_graph);
  void scale_checks(FamilyWork& fw);
  // checks
  void gradient_checks(FamilyWork& fw);
  void epsilon_terms(FamilyWork& fw, trace::Sums& in);
  void group_epsilon_term(FamilyWork& fw, trace::Sums& in, std::int64_t set,
                          std::vector<Layer>::const_iterator next_bn);
  void hessian_checks(FamilyWork& fw, const std::vector<Tensor>& g);
  void invariance_checks(FamilyWork& fw);
  // tools
  std::vector<Tensor> hvp(const std::vector<Tensor>& g, const Field& v);
  double residual_norm(const std::vector<Tensor>& hv, const Field& r) const;
  Field combine(const FamilyWork& fw, const std::vector<double>& c, const std::vector<Tensor>* x) const;
  Field single(const FamilyWork& fw, std::int64_t s, const std::vector<Tensor>* x) const;
  double translation_reference(const FamilyWork& fw, const std::vector<Tensor>& g);
  double act_and_measure(const FamilyWork& fw, const std::vector<double>& factor);
  void assemble(VerifyReport& rep);

  net::Net& net_;
  const Tensor x_, y_;
  VerifyOptions opt_;
  Tolerances tol_;
  std::mt19937_64 rng_;
  std::vector<std::string> names_;
  std::vector<Tensor> params_;
  std::map<std::string, std::size_t> index_;
  std::map<std::string, BnLayer> bn_;
  std::vector<FamilyWork> fam_;
  std::vector<Tensor> g_;  // gradient at θ (detached, contiguous)
  double loss_ = 0;
  double translation_curvature_ = kNotChecked;
  bool exhaustive_ = false;
};

Verifier::Verifier(net::Net& net, const SymmetrySets& sets, const Tensor& x, const Tensor& y,
                   const VerifyOptions& opt)
    : net_(net), x_(x), y_(y), opt_(opt), rng_(opt.seed ^ 0x9e3779b97f4a7c15ULL) {
  index_params();
  tol_ = tolerances(params_.front().scalar_type());
  if (x_.scalar_type() != params_.front().scalar_type())
    throw std::invalid_argument("verify: the batch and the network have different dtypes");
  for (Family f : theory::kFamilies) {
    if (sets.get(f).count() == 0) continue;
    fam_.push_back({});
    index_family(fam_.back(), f, sets.get(f));
  }
  index_batchnorm();
  choose_samples();
}

void Verifier::index_params() {
  for (const auto& p : net_->named_parameters(true)) {
    index_[p.key()] = names_.size();
    names_.push_back(p.key());
    params_.push_back(p.value());
  }
  if (params_.empty()) throw std::invalid_argument("verify: the network has no parameters");
}

void Verifier::index_family(FamilyWork& fw, Family f, const FamilySets& fs) {
  fw.family = f;
  fw.fs = &fs;
  const std::int64_t n = fs.count();
  fw.parts.resize(n);
  for (int side : {1, -1}) {
    for (const auto& sl : side > 0 ? fs.in : fs.out) {
      auto it = index_.find(sl.param);
      if (it == index_.end())
        throw std::invalid_argument("verify: claimed " + std::string(to_string(f)) + " slice names " +
                                    sl.param + ", which the network does not have");
      if (params_[it->second].numel() != sl.outer * sl.n * sl.inner || sl.first_set + sl.n > n)
        throw std::invalid_argument("verify: claimed slice of " + sl.param + " does not fit its size");
      fw.slices.emplace_back(&sl, side);
      fw.slice_param.push_back(it->second);
      for (std::int64_t j = 0; j < sl.n; ++j) fw.parts[sl.first_set + j].push_back({it->second, &sl, j, side});
    }
  }
  for (std::int64_t s = 0; s < n; ++s) {
    if (fw.groups.empty() || fs.layer[s] != fs.layer[fw.groups.back().begin])
      fw.groups.push_back({s, s, owner_of(fs.names[s])});
    fw.groups.back().end = s + 1;
  }
  for (auto* v : {&fw.gradient, &fw.eps_norm, &fw.eps_ratio, &fw.invariance, &fw.hessian}) v->assign(n, kNotChecked);
  fw.eps_term.assign(n, 0.0);
  fw.zero_grad.assign(n, 0);
}

// Every BatchNorm of the network, found by the wiring's names.
void Verifier::index_batchnorm() {
  auto modules = net_->named_modules("", false);
  const std::int64_t batch = x_.size(0);
  for (const auto& l : net_->wiring().layers) {
    if (l.kind != LayerKind::batchnorm) continue;
    BnLayer b;
    auto m = modules[l.name];
    if (auto p = std::dynamic_pointer_cast<torch::nn::BatchNorm2dImpl>(m)) {
      b.options = &p->options;
      b.running_mean = p->running_mean, b.running_var = p->running_var, b.weight = p->weight;
    } else if (auto q = std::dynamic_pointer_cast<torch::nn::BatchNorm1dImpl>(m)) {
      b.options = &q->options;
      b.running_mean = q->running_mean, b.running_var = q->running_var, b.weight = q->weight;
    } else {
      throw std::logic_error("verify: layer " + l.name + " is not a BatchNorm module");
    }
    if (!b.options->momentum() || !b.running_var.defined())
      throw std::logic_error("verify: BatchNorm " + l.name + " needs running statistics with a momentum");
    b.per_channel = batch * l.h * l.w;
    bn_[l.name] = b;
  }
}

// Stratified sample: round robin over the family's layers (in random order), a random set each.
std::vector<std::int64_t> stratified(const FamilyWork& fw, std::int64_t k, std::mt19937_64& rng) {
  std::vector<std::int64_t> out;
  if (k >= fw.count()) {
    for (std::int64_t s = 0; s < fw.count(); ++s) out.push_back(s);
    return out;
  }
  std::vector<std::vector<std::int64_t>> pools;
  for (const auto& g : fw.groups) {
    pools.emplace_back();
    for (std::int64_t s = g.begin; s < g.end; ++s) pools.back().push_back(s);
    std::shuffle(pools.back().begin(), pools.back().end(), rng);
  }
  std::shuffle(pools.begin(), pools.end(), rng);
  for (std::size_t round = 0; static_cast<std::int64_t>(out.size()) < k; ++round)
    for (auto& p : pools)
      if (round < p.size() && static_cast<std::int64_t>(out.size()) < k) out.push_back(p[round]);
  std::sort(out.begin(), out.end());
  return out;
}

// Exhaustive when every set's per-set checks (two forwards and one Hessian-vector product, about
// eight forwards) fit the budget; otherwise samples sized to it, at least 2 and 1 per family.
void Verifier::choose_samples() {
  const double m = forward_macs(net_->wiring(), x_.size(0));
  std::int64_t total = 0;
  for (const auto& fw : fam_) total += fw.count();
  exhaustive_ = opt_.all || total * 10.0 * m <= opt_.budget_macs;
  const double share = opt_.budget_macs / 6.0;  // half invariance, half Hessian, over 3 families
  const auto fit = [&](double cost, std::int64_t lo, std::int64_t hi) {
    return std::clamp<std::int64_t>(static_cast<std::int64_t>(share / std::max(cost, 1.0)), lo, hi);
  };
  for (auto& fw : fam_) {
    const std::int64_t k_inv = exhaustive_ ? fw.count() : fit(2 * m, 2, kMaxInvarianceSample);
    const std::int64_t k_hess = exhaustive_ ? fw.count() : fit(8 * m, 1, kMaxHessianSample);
    fw.inv_sample = stratified(fw, k_inv, rng_);
    fw.hess_sample = stratified(fw, k_hess, rng_);
  }
}

Tensor Verifier::forward_loss() {
  torch::manual_seed(opt_.seed);  // identical dropout masks in every forward
  return net_->loss(net_->forward(x_), y_);
}

double Verifier::loss_value() {
  torch::NoGradGuard no_grad;
  return forward_loss().item<double>();
}

// ∂L/∂θ for every parameter (zeros where unused); with the graph for double backward if asked.
std::vector<Tensor> Verifier::gradient(bool create_graph) {
  const Tensor loss = forward_loss();
  auto g = torch::autograd::grad({loss}, params_, {}, create_graph, create_graph, /*allow_unused=*/true);
  for (std::size_t i = 0; i < g.size(); ++i)
    if (!g[i].defined()) g[i] = torch::zeros_like(params_[i]);
  return g;
}

// The gradient at θ (kept in g_, detached), and σ_c² of every BatchNorm: with the running
// statistics zeroed, one training-mode forward leaves running_var = momentum·(unbiased batch
// variance). Returns the gradient with its graph when asked, for Hessian-vector products.
std::vector<Tensor> Verifier::base_pass(bool create_graph) {
  {
    torch::NoGradGuard no_grad;
    for (auto& [name, b] : bn_) {
      b.running_mean.zero_();
      b.running_var.zero_();
    }
  }
  auto g = gradient(create_graph);
  g_.clear();
  for (const auto& t : g) g_.push_back(t.detach().contiguous());
  for (auto& [name, b] : bn_) {
    const double m = *b.options->momentum();
    const double n = static_cast<double>(b.per_channel);
    const Tensor v = (b.running_var.to(at::kDouble) / m * ((n - 1) / n)).contiguous();
    b.var.assign(v.data_ptr<double>(), v.data_ptr<double>() + v.numel());
  }
  return g;
}

// Expected ⟨g_A, θ_A⟩ of a scale set under BatchNorm ε (docs/THEORY.md §2c, derived exactly):
// E = ε/(σ_c² + ε)·w_c·∂L/∂w_c, for the BatchNorm right after the set's layer. A BN-affine group
// (docs/THEORY.md §1d) scales every channel of the next BatchNorm's input: its E is the sum of theirs.
void Verifier::epsilon_terms(FamilyWork& fw, trace::Sums& in) {
  const auto& layers = net_->wiring().layers;
  for (const auto& [sl, side] : fw.slices) {
    const std::string owner = owner_of(sl->param);
    auto it = std::find_if(layers.begin(), layers.end(), [&](const Layer& l) { return l.name == owner; });
    if (it != layers.end() && it->kind == LayerKind::batchnorm && sl->n == 1) {
      group_epsilon_term(fw, in, sl->first_set, std::find_if(it + 1, layers.end(), [](const Layer& l) {
                           return l.kind == LayerKind::batchnorm;
                         }));
      continue;
    }
    if (it == layers.end() || it + 1 == layers.end() || (it + 1)->kind != LayerKind::batchnorm) continue;
    const BnLayer& b = bn_.at((it + 1)->name);
    const double eps = b.options->eps();
    const Tensor w = b.weight.detach().to(at::kDouble).contiguous();
    const Tensor gw = g_[index_.at((it + 1)->name + ".weight")].to(at::kDouble).contiguous();
    for (std::int64_t j = 0; j < sl->n && j < w.numel(); ++j) {
      const std::int64_t s = sl->first_set + j;
      fw.eps_ratio[s] = eps / (b.var[j] + eps);
      fw.eps_term[s] = fw.eps_ratio[s] * w.data_ptr<double>()[j] * gw.data_ptr<double>()[j];
      fw.eps_norm[s] = ratio(std::abs(fw.eps_term[s]), std::sqrt(in.sq[s] * in.y_sq[s]));
    }
  }
}

void Verifier::group_epsilon_term(FamilyWork& fw, trace::Sums& in, std::int64_t s,
                                  std::vector<Layer>::const_iterator next_bn) {
  if (next_bn == net_->wiring().layers.end()) return;
  const BnLayer& b = bn_.at(next_bn->name);
  const double eps = b.options->eps();
  const Tensor w = b.weight.detach().to(at::kDouble).contiguous();
  const Tensor gw = g_[index_.at(next_bn->name + ".weight")].to(at::kDouble).contiguous();
  double term = 0.0, worst_ratio = 0.0;
  for (std::int64_t j = 0; j < w.numel(); ++j) {
    const double r = eps / (b.var[j] + eps);
    term += r * w.data_ptr<double>()[j] * gw.data_ptr<double>()[j];
    worst_ratio = std::max(worst_ratio, r);
  }
  fw.eps_ratio[s] = worst_ratio;
  fw.eps_term[s] = term;
  fw.eps_norm[s] = ratio(std::abs(term), std::sqrt(in.sq[s] * in.y_sq[s]));
}

// docs/THEORY.md §2a item 2, every set, from per-set reductions of one gradient.
void Verifier::gradient_checks(FamilyWork& fw) {
  const std::int64_t n = fw.count();
  trace::Sums in, out;
  in.reset(n);
  out.reset(n);
  for (std::size_t i = 0; i < fw.slices.size(); ++i) {
    const auto& [sl, side] = fw.slices[i];
    const std::size_t p = fw.slice_param[i];
    trace::accumulate(*sl, params_[p].detach().contiguous(), g_[p], 0.0, side > 0 ? in : out);
  }
  if (fw.family == Family::scale) epsilon_terms(fw, in);
  const auto sizes = fw.fs->sizes();
  for (std::int64_t s = 0; s < n; ++s) {
    fw.zero_grad[s] = in.y_sq[s] + out.y_sq[s] == 0;
    switch (fw.family) {
      case Family::translation:
        fw.gradient[s] = clean(ratio(std::abs(in.y_sum[s]), std::sqrt(double(sizes[s]) * in.y_sq[s])));
        break;
      case Family::scale:
        fw.gradient[s] = clean(ratio(std::abs(in.xy[s] - fw.eps_term[s]), std::sqrt(in.sq[s] * in.y_sq[s])));
        break;
      case Family::rescale:
        fw.gradient[s] = clean(ratio(std::abs(in.xy[s] - out.xy[s]),
                                     std::sqrt(in.sq[s] * in.y_sq[s]) + std::sqrt(out.sq[s] * out.y_sq[s])));
        break;
    }
  }
}

// H·v by double backward: the gradient of ⟨g, v⟩ with v detached. Only the gradients v touches
// are differentiated, so autograd walks just the part of the graph that feeds them.
std::vector<Tensor> Verifier::hvp(const std::vector<Tensor>& g, const Field& v) {
  std::vector<Tensor> outputs, directions;
  for (const auto& [p, t] : v)
    if (g[p].requires_grad()) {
      outputs.push_back(g[p]);
      directions.push_back(t);
    }
  std::vector<Tensor> hv(params_.size());
  if (!outputs.empty())
    hv = torch::autograd::grad(outputs, params_, directions, /*retain_graph=*/true, false, /*allow_unused=*/true);
  return hv;
}

// |H·v + r| over all parameters.
double Verifier::residual_norm(const std::vector<Tensor>& hv, const Field& r) const {
  double s = 0;
  for (std::size_t i = 0; i < hv.size(); ++i) {
    auto it = r.find(i);
    if (hv[i].defined() && it != r.end())
      s += sq_norm(hv[i] + it->second);
    else if (hv[i].defined())
      s += sq_norm(hv[i]);
    else if (it != r.end())
      s += sq_norm(it->second);
  }
  return std::sqrt(s);
}

// Σ_s c_s·side·X_{A_s}, X = x (θ or g), or 1 when x is null (translation generator).
Field Verifier::combine(const FamilyWork& fw, const std::vector<double>& c, const std::vector<Tensor>* x) const {
  Field f;
  for (std::size_t i = 0; i < fw.slices.size(); ++i) {
    const auto& [sl, side] = fw.slices[i];
    const std::size_t p = fw.slice_param[i];
    std::vector<double> cs(c.begin() + sl->first_set, c.begin() + sl->first_set + sl->n);
    if (std::all_of(cs.begin(), cs.end(), [](double v) { return v == 0; })) continue;
    const Tensor cv = torch::tensor(cs, torch::kDouble).to(params_[p].scalar_type()).view({1, sl->n, 1}) * side;
    Tensor& t = f[p];
    if (!t.defined()) t = torch::zeros_like(params_[p]);
    if (x)
      view3(t, *sl).add_(cv * view3((*x)[p], *sl));
    else
      view3(t, *sl).add_(cv);
  }
  return f;
}

// side·X_A of one set, written through its parts (exact: no coefficients).
Field Verifier::single(const FamilyWork& fw, std::int64_t s, const std::vector<Tensor>* x) const {
  Field f;
  for (const auto& pt : fw.parts[s]) {
    Tensor& t = f[pt.param];
    if (!t.defined()) t = torch::zeros_like(params_[pt.param]);
    Tensor dst = view3(t, *pt.slice).select(1, pt.j);
    if (x)
      dst.add_(view3((*x)[pt.param], *pt.slice).select(1, pt.j) * pt.side);
    else
      dst.add_(static_cast<double>(pt.side));
  }
  return f;
}

// Translation residuals |H·1_A| are normalised by |H·w|·|1_A|/|w|: the curvature along a random
// Gaussian w on the family's parameters, one extra product per family (docs/THEORY.md §2a item 3).
double Verifier::translation_reference(const FamilyWork& fw, const std::vector<Tensor>& g) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(opt_.seed + 17);
  Field w;
  for (std::size_t p : fw.slice_param)
    if (!w.count(p)) w[p] = at::randn(params_[p].sizes(), gen, params_[p].options().requires_grad(false));
  double wn = 0;
  for (const auto& [p, t] : w) wn += sq_norm(t);
  return residual_norm(hvp(g, w), {}) / std::sqrt(wn);
}

// docs/THEORY.md §2a item 3: translation H·1_A = 0; scale H·θ_A = −g_A; rescale
// H(θ_A1 − θ_A2) = −(g_A1 − g_A2). Family-wide with random signs, then per set for the sample.
void Verifier::hessian_checks(FamilyWork& fw, const std::vector<Tensor>& g) {
  std::vector<Tensor> gd(g.size()), theta(params_.size());
  for (std::size_t i = 0; i < g.size(); ++i) gd[i] = g[i].detach();
  for (std::size_t i = 0; i < params_.size(); ++i) theta[i] = params_[i].detach();
  const bool translation = fw.family == Family::translation;
  if (translation) translation_curvature_ = translation_reference(fw, g);
  const auto measure = [&](const Field& v, const Field& r) {
    const auto hv = hvp(g, v);
    if (translation) return clean(ratio(residual_norm(hv, {}), translation_curvature_ * std::sqrt(sq_norm(v))));
    return clean(ratio(residual_norm(hv, r), std::sqrt(sq_norm(r))));
  };
  std::vector<double> c(fw.count());
  std::bernoulli_distribution coin(0.5);
  for (auto& v : c) v = coin(rng_) ? 1.0 : -1.0;
  fw.combined_hessian = measure(combine(fw, c, translation ? nullptr : &theta),
                                translation ? Field{} : combine(fw, c, &gd));
  for (std::int64_t s : fw.hess_sample)
    fw.hessian[s] = measure(single(fw, s, translation ? nullptr : &theta),
                            translation ? Field{} : single(fw, s, &gd));
}

// Acts on every set with its own factor (translation: shift a_s, 0 = untouched; scale and
// rescale: α_s on the set or side A1 and 1/α_s on side A2, 1 = untouched; the actions of
// different sets commute) and returns the loss. θ is restored exactly from a copy.
double Verifier::act_and_measure(const FamilyWork& fw, const std::vector<double>& factor) {
  torch::NoGradGuard no_grad;
  const bool shift = fw.family == Family::translation;
  const double neutral = shift ? 0.0 : 1.0;
  std::map<std::size_t, Tensor> saved;
  for (std::size_t i = 0; i < fw.slices.size(); ++i) {
    const auto& [sl, side] = fw.slices[i];
    const std::size_t p = fw.slice_param[i];
    std::vector<double> f(factor.begin() + sl->first_set, factor.begin() + sl->first_set + sl->n);
    if (std::all_of(f.begin(), f.end(), [&](double v) { return v == neutral; })) continue;
    if (!saved.count(p)) saved[p] = params_[p].clone();
    const Tensor fv = torch::tensor(f, torch::kDouble).to(params_[p].scalar_type()).view({1, sl->n, 1});
    if (shift)
      view3(params_[p], *sl).add_(fv);
    else
      view3(params_[p], *sl).mul_(side > 0 ? fv : 1.0 / fv);
  }
  double loss = std::numeric_limits<double>::quiet_NaN();
  try {
    loss = loss_value();
  } catch (...) {
    for (auto& [p, t] : saved) params_[p].copy_(t);
    throw;
  }
  for (auto& [p, t] : saved) params_[p].copy_(t);
  return loss;
}

// docs/THEORY.md §2a item 1: per set (two factors each), per layer (sampled mode) and family-wide.
void Verifier::invariance_checks(FamilyWork& fw) {
  const bool shift = fw.family == Family::translation;
  const double neutral = shift ? 0.0 : 1.0;
  const double a0 = shift ? kShift : kAlpha[0], a1 = shift ? -kShift : kAlpha[1];
  const double l0 = loss_value();
  const auto residual = [&](const std::vector<double>& f) {
    return clean(ratio(std::abs(act_and_measure(fw, f) - l0), std::abs(l0)));
  };
  std::vector<double> f(fw.count(), neutral);
  for (std::int64_t s : fw.inv_sample) {
    double r = 0;
    for (double a : {a0, a1}) {
      f[s] = a;
      r = worst(r, residual(f));
    }
    f[s] = neutral;
    fw.invariance[s] = r;
  }
  std::bernoulli_distribution coin(0.5);
  std::vector<double> pattern(fw.count()), complement(fw.count());
  for (std::int64_t s = 0; s < fw.count(); ++s) {
    const bool first = coin(rng_);
    pattern[s] = first ? a0 : a1;
    complement[s] = first ? a1 : a0;
  }
  if (!exhaustive_)
    for (auto& g : fw.groups) {
      std::fill(f.begin(), f.end(), neutral);
      std::copy(pattern.begin() + g.begin, pattern.begin() + g.end, f.begin() + g.begin);
      g.invariance = residual(f);
    }
  fw.combined_invariance = worst(residual(pattern), residual(complement));
}

// Saves the network state the checks touch (BatchNorm buffers and ε, training mode) and puts it
// back on every exit.
class StateGuard {
 public:
  StateGuard(net::Net& net, std::map<std::string, BnLayer>& bn) : net_(net), bn_(bn) {
    training_ = net->is_training();
    for (auto& b : net->buffers(true)) buffers_.emplace_back(b, b.clone());
    for (auto& [name, l] : bn) eps_.push_back(l.options->eps());
  }
  ~StateGuard() {
    torch::NoGradGuard no_grad;
    for (auto& [live, copy] : buffers_) live.copy_(copy);
    std::size_t i = 0;
    for (auto& [name, l] : bn_) l.options->eps(eps_[i++]);
    net_->train(training_);
  }

 private:
  net::Net& net_;
  std::map<std::string, BnLayer>& bn_;
  bool training_ = true;
  std::vector<std::pair<Tensor, Tensor>> buffers_;
  std::vector<double> eps_;
};

// The scale family's Hessian and invariance checks, in the ε → 0 limit (scale_eps).
void Verifier::scale_checks(FamilyWork& fw) {
  std::vector<double> eps;
  for (auto& [name, b] : bn_) {
    eps.push_back(b.options->eps());
    b.options->eps(scale_eps(params_.front().scalar_type()));
  }
  const auto restore = [&] {
    std::size_t i = 0;
    for (auto& [name, b] : bn_) b.options->eps(eps[i++]);
  };
  try {
    hessian_checks(fw, gradient(true));
    invariance_checks(fw);
  } catch (...) {
    restore();
    throw;
  }
  restore();
}

VerifyReport Verifier::run() {
  const auto t0 = std::chrono::steady_clock::now();
  VerifyReport rep;
  {
    StateGuard guard(net_, bn_);
    net_->train();  // batch statistics: the scale symmetry needs them (docs/THEORY.md §2b)
    bool real_eps_hessian = false;
    for (const auto& fw : fam_) real_eps_hessian |= fw.family != Family::scale;
    {
      const auto g = base_pass(real_eps_hessian);
      for (auto& fw : fam_) gradient_checks(fw);
      for (auto& fw : fam_)
        if (fw.family != Family::scale) hessian_checks(fw, g);
    }  // the double-backward graph is freed here
    for (auto& fw : fam_)
      if (fw.family != Family::scale) invariance_checks(fw);
    for (auto& fw : fam_)
      if (fw.family == Family::scale) {
        scale_checks(fw);
        rep.scale_bn_eps = bn_.empty() ? 0.0 : scale_eps(params_.front().scalar_type());
      }
    loss_ = loss_value();
  }
  rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  assemble(rep);
  return rep;
}

std::string sci(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2e", v);
  return buf;
}

// Per-set verdicts, then one row per family and layer, and the group checks.
void Verifier::assemble(VerifyReport& rep) {
  rep.tol = tol_;
  rep.exhaustive = exhaustive_;
  rep.loss = loss_;
  const bool hess_counts = !tol_.hessian_informational;
  for (const auto& fw : fam_) {
    FamilyResult fr;
    fr.family = fw.family;
    fr.sets = fw.count();
    fr.invariance_checked = static_cast<std::int64_t>(fw.inv_sample.size());
    fr.hessian_checked = static_cast<std::int64_t>(fw.hess_sample.size());
    fr.invariance = fw.combined_invariance;
    fr.hessian = fw.combined_hessian;
    const std::string fam = to_string(fw.family);
    if (!within(fr.invariance, tol_.invariance))
      rep.failing_checks.push_back(fam + ": all sets at once: invariance " + sci(fr.invariance));
    if (hess_counts && !within(fr.hessian, tol_.hessian))
      rep.failing_checks.push_back(fam + ": all sets at once: Hessian " + sci(fr.hessian));
    fr.pass = within(fr.invariance, tol_.invariance) && (!hess_counts || within(fr.hessian, tol_.hessian));
    for (const auto& g : fw.groups) {
      LayerResult lr;
      lr.family = fw.family;
      lr.layer = g.layer;
      lr.sets = g.end - g.begin;
      lr.group_invariance = g.invariance;
      for (std::int64_t s = g.begin; s < g.end; ++s) {
        lr.invariance_checked += !std::isnan(fw.invariance[s]);
        lr.hessian_checked += !std::isnan(fw.hessian[s]);
        lr.zero_gradient += fw.zero_grad[s];
        if (fw.zero_grad[s]) rep.zero_gradient.push_back(fw.fs->names[s]);
        if (!std::isnan(fw.invariance[s])) lr.invariance = worst(lr.invariance, fw.invariance[s]);
        if (!std::isnan(fw.hessian[s])) lr.hessian = worst(lr.hessian, fw.hessian[s]);
        lr.gradient = worst(lr.gradient, fw.gradient[s]);
        if (!std::isnan(fw.eps_norm[s])) lr.epsilon = worst(lr.epsilon, fw.eps_norm[s]);
        if (!std::isnan(fw.eps_ratio[s])) lr.epsilon_ratio = worst(lr.epsilon_ratio, fw.eps_ratio[s]);
        const double grad_tol = fw.family == Family::scale ? tol_.scale_gradient : tol_.gradient;
        const bool ok = within(fw.gradient[s], grad_tol) && within(fw.invariance[s], tol_.invariance) &&
                        (!hess_counts || within(fw.hessian[s], tol_.hessian));
        if (!ok) rep.failing.push_back(fw.fs->names[s]);
        lr.pass = lr.pass && ok;
      }
      if (!within(g.invariance, tol_.invariance)) {
        rep.failing_checks.push_back(fam + " " + g.layer + ": whole-layer invariance " + sci(g.invariance));
        lr.pass = false;
      }
      rep.layers.push_back(lr);
    }
    rep.families.push_back(fr);
  }
}

}  // namespace

VerifyReport verify(net::Net& net, const SymmetrySets& claimed, const at::Tensor& images,
                    const at::Tensor& labels, const VerifyOptions& opt) {
  return Verifier(net, claimed, images, labels, opt).run();
}

void move_to_generic_point(net::Net& net, std::uint64_t seed) {
  torch::NoGradGuard no_grad;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed + 1);
  auto params = net->named_parameters(true);
  const auto nudge = [&](const std::string& name, double sd) {
    if (auto* t = params.find(name)) t->add_(at::randn(t->sizes(), gen, t->options()) * sd);
  };
  for (const auto& l : net->wiring().layers) {
    if (l.kind == LayerKind::linear) {
      Tensor& w = params[l.name + ".weight"];
      w.copy_(at::randn(w.sizes(), gen, w.options()) / std::sqrt(static_cast<double>(l.in)));
    }
    if (l.kind == LayerKind::conv || l.kind == LayerKind::linear) nudge(l.name + ".bias", 0.1);
    if (l.kind == LayerKind::batchnorm) {
      nudge(l.name + ".weight", 0.1);
      nudge(l.name + ".bias", 0.1);
    }
  }
}

// ---- negative controls ----------------------------------------------------------------------

Break parse_break(const std::string& s) {
  static const std::map<std::string, Break> kinds = {
      {"none", Break::none}, {"tanh", Break::tanh}, {"gelu", Break::gelu},
      {"bias-after-bn", Break::bias_after_bn}, {"mse", Break::mse}, {"wrong-rescale", Break::wrong_rescale}};
  auto it = kinds.find(s);
  if (it == kinds.end())
    throw std::invalid_argument("unknown break '" + s + "' (tanh, gelu, bias-after-bn, mse, wrong-rescale)");
  return it->second;
}

const char* to_string(Break b) {
  switch (b) {
    case Break::none: return "none";
    case Break::tanh: return "tanh";
    case Break::gelu: return "gelu";
    case Break::bias_after_bn: return "bias-after-bn";
    case Break::mse: return "mse";
    case Break::wrong_rescale: return "wrong-rescale";
  }
  return "?";
}

namespace {

std::int64_t find_layer(const models::Wiring& w, const std::string& name) {
  for (std::size_t i = 0; i < w.layers.size(); ++i)
    if (w.layers[i].name == name) return static_cast<std::int64_t>(i);
  return -1;
}

std::int64_t first_present(const models::Wiring& w, std::initializer_list<const char*> names) {
  for (const char* n : names)
    if (auto i = find_layer(w, n); i >= 0) return i;
  return -1;
}

// The claimed sets of a family owned by layer `layer` of the intact wiring.
std::vector<std::string> owned_by(const FamilySets& fs, std::int64_t layer) {
  std::vector<std::string> out;
  for (std::int64_t s = 0; s < fs.count(); ++s)
    if (fs.layer[s] == layer) out.push_back(fs.names[s]);
  return out;
}

void swap_activation(Control& c, Break b) {
  const std::int64_t r = first_present(c.wiring, {"relu3", "relu1"});
  if (r < 0) throw std::invalid_argument("--break " + std::string(to_string(b)) + ": the model has no relu3 or relu1");
  Layer& l = c.wiring.layers[r];
  l.kind = b == Break::tanh ? LayerKind::tanh : LayerKind::gelu;
  c.touched = owned_by(c.claimed.get(Family::rescale), r - 1);
  // a BatchNorm before it loses its affine group too (docs/THEORY.md §1d: the path must be homogeneous)
  for (const auto& name : owned_by(c.claimed.get(Family::scale), r - 1)) c.touched.push_back(name);
  c.description = l.name + " is " + to_string(b) + ", not positively homogeneous: the rescale sets through it " +
                  "(and a BN-affine group before it) break";
}

void insert_bias(Control& c) {
  const std::int64_t i = first_present(c.wiring, {"bn3", "bn1"});
  if (i < 0) throw std::invalid_argument("--break bias-after-bn needs a model with BatchNorm (vgg*_bn, mlp_bn)");
  const Layer bn = c.wiring.layers[i];
  const bool spatial = i > 0 && c.wiring.layers[i - 1].kind == LayerKind::conv;
  Layer extra{spatial ? LayerKind::conv : LayerKind::linear, "bias_after_" + bn.name, bn.out, bn.out,
              spatial ? 1 : 0, bn.h, bn.w, true};
  c.wiring.layers.insert(c.wiring.layers.begin() + i + 1, extra);
  c.inserted = extra.name;
  c.touched = owned_by(c.claimed.get(Family::rescale), i);
  for (const auto& name : owned_by(c.claimed.get(Family::scale), i)) c.touched.push_back(name);  // its affine group
  c.description = "a learnable per-channel bias after " + bn.name + " (" + extra.name +
                  ", identity weight): scaling " + bn.name + "'s affines no longer scales the unit";
}

void redirect_rescale(Control& c) {
  const auto& layers = c.wiring.layers;
  auto& fs = c.claimed.get(Family::rescale);
  for (auto& sl : fs.out) {
    const std::int64_t n = find_layer(c.wiring, owner_of(sl.param));
    if (n < 0) continue;
    const Layer& next = layers[n];
    const bool affine = next.kind == LayerKind::conv || next.kind == LayerKind::linear;
    if (!affine || sl.inner != (next.kind == LayerKind::conv ? next.kernel * next.kernel : 1)) continue;
    for (std::size_t m = n + 1; m < layers.size(); ++m) {
      const Layer& wrong = layers[m];
      if (wrong.kind != next.kind || wrong.in != next.in || wrong.kernel != next.kernel) continue;
      const std::string was = sl.param;
      sl.param = wrong.name + ".weight";
      sl.outer = wrong.out;
      for (std::int64_t j = 0; j < sl.n; ++j) c.touched.push_back(fs.names[sl.first_set + j]);
      c.description = "the rescale sets " + owner_of(fs.names[sl.first_set]) + ".unit* claim side A2 in " +
                      sl.param + " instead of " + was + " (a layer skipped)";
      return;
    }
  }
  throw std::invalid_argument(
      "--break wrong-rescale: no rescale layer whose out side has a later layer of equal input width");
}

}  // namespace

Control make_control(const models::Wiring& intact, Break b) {
  Control c{intact, symmetry::derive_sets(intact), {}, "intact", ""};
  switch (b) {
    case Break::none: break;
    case Break::tanh:
    case Break::gelu: swap_activation(c, b); break;
    case Break::bias_after_bn: insert_bias(c); break;
    case Break::mse:
      c.wiring.loss = models::Loss::mse;
      c.touched = c.claimed.get(Family::translation).names;
      c.description = "mean-squared error instead of softmax cross-entropy: the translation sets break";
      break;
    case Break::wrong_rescale: redirect_rescale(c); break;
  }
  return c;
}

void init_control(net::Net& net, const Control& c, std::uint64_t seed) {
  if (c.inserted.empty()) return;
  torch::NoGradGuard no_grad;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed + 2);
  auto params = net->named_parameters(true);
  Tensor& w = params[c.inserted + ".weight"];
  w.zero_();
  w.view({w.size(0), w.size(1)}).fill_diagonal_(1.0);
  params[c.inserted + ".bias"].uniform_(0.1, 0.5, gen);
}

}  // namespace nmech::verify
