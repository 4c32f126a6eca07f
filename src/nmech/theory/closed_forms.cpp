// Closed forms of docs/THEORY.md §4.1 and §6, per run's optimiser settings.
#include "nmech/theory/closed_forms.hpp"

#include <cmath>
#include <limits>

namespace nmech::theory {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kPi = 3.14159265358979323846;

// The (S, m) map of ExactTranslation for k ≥ 1 (ν = 1 − τ): S' = cS − ηΣu, m' = βm + νλ_c S, as
// [[a, b], [c, d]]. With decoupled weight decay m stays 0, so only S' = (1 − ηλ)S is excited.
struct Map2 {
  double a, b, c, d;
};

Map2 translation_map(const OptimParams& opt) {
  const double eta = opt.lr, lam = opt.weight_decay, beta = opt.momentum, nu = opt.nu(1);
  if (opt.decoupled) return {1.0 - eta * lam, 0.0, 0.0, 0.0};
  if (opt.nesterov) return {1.0 - eta * lam * (1.0 + beta * nu), -eta * beta * beta, nu * lam, beta};
  return {1.0 - eta * nu * lam, -eta * beta, nu * lam, beta};
}

}  // namespace

// §6 on η' = η(1 − τ) and |u|² = V/(1 − τ)² (§5.2b): the dampened run is heavy ball in u.
double angle_eq(const OptimParams& opt) {
  return std::sqrt(2.0 * opt.effective_lr() * opt.weight_decay / (1.0 + opt.momentum));
}

double relax_steps(const OptimParams& opt) {
  if (opt.weight_decay == 0.0) return kNaN;  // no decay: no equilibrium to relax to
  return (1.0 - opt.momentum) / (4.0 * opt.effective_lr() * opt.weight_decay);
}

double equilibrium_factor(const OptimParams& opt) {
  const double eta = opt.lr, lam = opt.weight_decay, beta = opt.momentum;
  if (lam == 0.0) return kNaN;
  if (beta == 0.0) return eta / (2.0 * lam - eta * lam * lam);
  return opt.effective_lr() * opt.velocity_scale() * (1.0 + beta) / (2.0 * lam);
}

double equilibrium_ratio(const OptimParams& opt, double forcing, double q) {
  return equilibrium_factor(opt) * forcing / q;
}

std::pair<std::complex<double>, std::complex<double>> translation_roots(const OptimParams& opt) {
  const Map2 m = translation_map(opt);
  const double tr = m.a + m.d, det = m.a * m.d - m.b * m.c;
  const double disc = tr * tr - 4.0 * det;
  if (disc < 0.0) {
    const std::complex<double> r(0.5 * tr, 0.5 * std::sqrt(-disc));
    return {r, std::conj(r)};
  }
  // the larger root without cancellation, the smaller from the product of the two
  const double big = 0.5 * (tr + std::copysign(std::sqrt(disc), tr));
  return {big, big == 0.0 ? 0.0 : det / big};
}

double translation_root(const OptimParams& opt) { return std::abs(translation_roots(opt).first); }

double translation_fast_root(const OptimParams& opt) { return std::abs(translation_roots(opt).second); }

double translation_period(const OptimParams& opt) {
  const std::complex<double> r = translation_roots(opt).first;
  if (r.imag() == 0.0 && r.real() >= 0.0) return std::numeric_limits<double>::infinity();
  return 2.0 * kPi / std::abs(std::arg(r));  // 2 for a negative real root: S flips sign each step
}

std::vector<std::pair<std::string, double>> closed_forms(const OptimParams& opt) {
  return {{"angle_eq", angle_eq(opt)},
          {"relax_steps", relax_steps(opt)},
          {"equilibrium_factor", equilibrium_factor(opt)},
          {"translation_rate", translation_root(opt)},
          {"translation_fast_rate", translation_fast_root(opt)},
          {"translation_period", translation_period(opt)}};
}

}  // namespace nmech::theory
