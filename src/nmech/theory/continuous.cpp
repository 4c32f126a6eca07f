// Continuous predictions of docs/THEORY.md §5 and the angular update of §6.
//
// Stability rule (§5.3; §1f, pitfall 5): every accumulator is multiplied by e^{aη} with Re a ≤ 0 and
// every closed form uses decaying exponentials only, so nothing overflows however long the run.
#include "nmech/theory/continuous.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>

namespace nmech::theory {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
// Below this |γ² − ω²|/γ², 1/(a_+ − a_−) cancels badly: use the critical form (§5.3).
constexpr double kCriticalTol = 1e-6;

const double* need(const double* p, const char* name) {
  if (p == nullptr) {
    throw std::invalid_argument(std::string("nmech::theory continuous predictor: forcing '") +
                                name + "' is required but was not given");
  }
  return p;
}

// The oscillator model needs η > 0 and 0 ≤ β < 1 (γ > 0); anything else is a config error.
void check(const OptimParams& o) {
  if (!(o.lr > 0.0) || !std::isfinite(o.lr) || !(o.momentum >= 0.0 && o.momentum < 1.0) ||
      !(o.weight_decay >= 0.0) || !std::isfinite(o.weight_decay)) {
    throw std::invalid_argument("nmech::theory: continuous model needs lr > 0, 0 <= momentum < 1"
                                " and finite weight_decay >= 0");
  }
}

// Overdamped roots a_± = −γ ± r, r = √(γ² − ω²). a_+ is taken from a_+a_− = ω²: the direct
// −γ + r cancels when ω ≪ γ and would not give a_+ = 0 exactly at λ = 0 (h ≡ 1).
struct OverRoots {
  double ap, am, r;
};
OverRoots over_roots(double gamma, double omega) {
  const double r = std::sqrt((gamma - omega) * (gamma + omega));
  return {-omega * omega / (gamma + r), -gamma - r, r};
}

double under_freq(double gamma, double omega) {
  return std::sqrt((omega - gamma) * (omega + gamma));
}

// β = 0 (§5.1): paper κ = 2λ (translation λ); modloss adds ηλ² (translation ηλ²/2).
double kappa(Family fam, const OptimParams& o, KappaMode mode) {
  const double lam = o.weight_decay;
  const double base = traits(fam).decay_per_lambda * lam;
  return mode == KappaMode::modloss ? base + 0.5 * o.lr * base * lam : base;
}

}  // namespace

std::string to_string(DampingRegime r) {
  switch (r) {
    case DampingRegime::none: return "none";
    case DampingRegime::over: return "over";
    case DampingRegime::critical: return "critical";
    case DampingRegime::under: return "under";
  }
  return "unknown";
}

Oscillator Oscillator::make(Family fam, const OptimParams& opt) {
  check(opt);
  const double eta = opt.effective_lr(), beta = opt.momentum;
  const double stiffness = traits(fam).stiffness;  // ω_T² or ω_S²
  Oscillator o;
  o.gamma = (1.0 - beta) / (eta * (1.0 + beta));
  o.omega = std::sqrt(stiffness * opt.weight_decay / (eta * (1.0 + beta)));
  if (beta == 0.0) {
    o.regime = DampingRegime::none;
  } else {
    const double gap = (o.gamma - o.omega) * (o.gamma + o.omega);  // γ² − ω² without cancellation
    if (std::abs(gap) < kCriticalTol * o.gamma * o.gamma) {
      o.regime = DampingRegime::critical;
    } else {
      o.regime = gap > 0.0 ? DampingRegime::over : DampingRegime::under;
    }
  }
  return o;
}

// For regime none this is the first-order model Ẋ = −κX + F, κ = ω²/(2γ) (the paper's κ: λ for
// translation, 2λ otherwise), the overdamped limit of the oscillator.
double Oscillator::h(double t) const {
  switch (regime) {
    case DampingRegime::none: return std::exp(-omega * omega / (2.0 * gamma) * t);
    case DampingRegime::critical: return std::exp(-gamma * t) * (1.0 + gamma * t);
    case DampingRegime::under: {
      const double w = under_freq(gamma, omega);
      return std::exp(-gamma * t) * (std::cos(w * t) + gamma / w * std::sin(w * t));
    }
    case DampingRegime::over: {
      const OverRoots a = over_roots(gamma, omega);
      return (a.ap * std::exp(a.am * t) - a.am * std::exp(a.ap * t)) / (a.ap - a.am);
    }
  }
  return kNaN;
}

double Oscillator::phi(double s) const {
  switch (regime) {
    case DampingRegime::none: return std::exp(-omega * omega / (2.0 * gamma) * s);
    case DampingRegime::critical: return s * std::exp(-gamma * s);
    case DampingRegime::under: {
      const double w = under_freq(gamma, omega);
      return std::exp(-gamma * s) * std::sin(w * s) / w;
    }
    case DampingRegime::over: {
      // (e^{a_+s} − e^{a_−s})/(2r) = e^{a_+s}(1 − e^{−2rs})/(2r): expm1 keeps small s exact.
      const OverRoots a = over_roots(gamma, omega);
      return -std::exp(a.ap * s) * std::expm1(-2.0 * a.r * s) / (2.0 * a.r);
    }
  }
  return kNaN;
}

ContinuousPredictor::ContinuousPredictor(Family fam, const OptimParams& opt,
                                         std::vector<double> initial, KappaMode mode)
    : fam_(fam),
      opt_(opt),
      mode_(mode),
      osc_(Oscillator::make(fam, opt)),
      x0_(std::move(initial)),
      pred_(x0_) {
  if (!traits(fam_).forced) return;  // no forcing: h alone (§5.3)
  const std::size_t n = x0_.size();
  switch (osc_.regime) {
    case DampingRegime::none: z0_.assign(n, 0.0); break;
    case DampingRegime::under: zc_.assign(n, {0.0, 0.0}); break;
    case DampingRegime::critical: z0_.assign(n, 0.0); z1_.assign(n, 0.0); break;
    case DampingRegime::over: zp_.assign(n, 0.0); zm_.assign(n, 0.0); break;
  }
}

void ContinuousPredictor::save(StateWriter& w) const {
  for (const auto* v : {&x0_, &pred_, &zp_, &zm_, &z0_, &z1_}) w.put(*v);
  w.put(zc_);
  w.put(static_cast<double>(n_));
}

void ContinuousPredictor::load(StateReader& r) {
  for (auto* v : {&x0_, &pred_, &zp_, &zm_, &z0_, &z1_}) r.get(*v);
  r.get(zc_);
  n_ = static_cast<long>(r.get());
}

void ContinuousPredictor::advance(const Forcing& f) {
  if (traits(fam_).forced) accumulate(f);
  ++n_;
  refresh();
}

// Z(n+1) = e^{aη}(Z(n) + x_n) per root a (§5.3); all multipliers have modulus ≤ 1.
void ContinuousPredictor::accumulate(const Forcing& f) {
  const double eta = opt_.effective_lr();
  const std::size_t n = x0_.size();
  if (osc_.regime == DampingRegime::none) {
    const double* g = need(f.grad_sq, "grad_sq");
    const double decay = std::exp(-kappa(fam_, opt_, mode_) * eta);
    for (std::size_t i = 0; i < n; ++i) z0_[i] = decay * z0_[i] + eta * eta * g[i];
    return;
  }
  const double* vel = need(f.velocity_sq, "velocity_sq");
  // |u|² = V/(1 − τ)² (§5.2b); exactly V without dampening.
  const double vscale = opt_.velocity_scale();
  u_sq_.resize(n);
  for (std::size_t i = 0; i < n; ++i) u_sq_[i] = vscale * vel[i];
  const double* v = u_sq_.data();
  const double gamma = osc_.gamma, omega = osc_.omega;
  switch (osc_.regime) {
    case DampingRegime::under: {
      const std::complex<double> q = std::exp(std::complex<double>(-gamma * eta,
                                                                   under_freq(gamma, omega) * eta));
      for (std::size_t i = 0; i < n; ++i) zc_[i] = q * (zc_[i] + v[i]);
      break;
    }
    case DampingRegime::critical: {
      const double q = std::exp(-gamma * eta);
      for (std::size_t i = 0; i < n; ++i) {
        const double z0 = z0_[i];
        z1_[i] = q * (z1_[i] + eta * z0 + eta * v[i]);
        z0_[i] = q * (z0 + v[i]);
      }
      break;
    }
    case DampingRegime::over: {
      // Carry D = Z_+ − Z_− itself: D(n+1) = q_+D + (q_+ − q_−)(Z_− + x), so the forced part
      // never subtracts two nearly equal sums (near critical, or early on).
      const OverRoots a = over_roots(gamma, omega);
      const double qp = std::exp(a.ap * eta), qm = std::exp(a.am * eta);
      const double dq = -qp * std::expm1(-2.0 * a.r * eta);  // q_+ − q_−
      for (std::size_t i = 0; i < n; ++i) {
        const double zm = zm_[i] + v[i];
        zp_[i] = qp * zp_[i] + dq * zm;
        zm_[i] = qm * zm;
      }
      break;
    }
    case DampingRegime::none: break;
  }
}

// value at step n: h(ηn)X_0 + I_n, h evaluated directly (decaying exponentials only).
void ContinuousPredictor::refresh() {
  const double eta = opt_.effective_lr(), t = eta * static_cast<double>(n_);
  const std::size_t n = x0_.size();
  if (osc_.regime == DampingRegime::none) {
    const double hom = std::exp(-kappa(fam_, opt_, mode_) * t);
    for (std::size_t i = 0; i < n; ++i) pred_[i] = hom * x0_[i] + (z0_.empty() ? 0.0 : z0_[i]);
    return;
  }
  const double h = osc_.h(t);
  for (std::size_t i = 0; i < n; ++i) pred_[i] = h * x0_[i];
  if (!traits(fam_).forced) return;
  switch (osc_.regime) {
    case DampingRegime::under: {
      const double scale = 2.0 * eta / under_freq(osc_.gamma, osc_.omega);
      for (std::size_t i = 0; i < n; ++i) pred_[i] += scale * zc_[i].imag();
      break;
    }
    case DampingRegime::critical:
      for (std::size_t i = 0; i < n; ++i) pred_[i] += 2.0 * eta * z1_[i];
      break;
    case DampingRegime::over: {
      const double scale = eta / over_roots(osc_.gamma, osc_.omega).r;  // 2η/(a_+ − a_−)
      for (std::size_t i = 0; i < n; ++i) pred_[i] += scale * zp_[i];
      break;
    }
    case DampingRegime::none: break;
  }
}

// sin(Δ/2) = √(η²U − (√Q' − √Q)²)/(2(QQ')^{1/4}): no copy of θ_k, no 1 − cos cancellation.
double angle_step(double q_k, double q_next, double u_k, double lr) {
  if (!(q_k > 0.0) || !(q_next > 0.0)) return kNaN;
  const double rk = std::sqrt(q_k), rn = std::sqrt(q_next);
  const double dr = (q_next - q_k) / (rn + rk);  // √Q' − √Q without cancellation
  const double chord2 = std::max(0.0, lr * lr * u_k - dr * dr);
  const double s = std::sqrt(chord2 / (4.0 * std::sqrt(q_k * q_next)));
  return 2.0 * std::asin(std::min(1.0, s));
}

}  // namespace nmech::theory
