// The exact discrete recurrences of docs/THEORY.md §4. Every step eliminates ⟨θ, u⟩ with the
// symmetry constraint (Σ_A g = 0, resp. ⟨g_A, θ_A⟩ = 0), so the only inputs are the initial
// state and the measured forcings; nothing is ever reset to a measurement.
#include "nmech/theory/exact.hpp"

#include <cstddef>
#include <stdexcept>
#include <string>
#include <utility>

namespace nmech::theory {
namespace {

// A null forcing the branch needs would silently read as garbage; fail loudly instead.
const double* need(const double* p, const char* name) {
  if (p == nullptr) {
    throw std::invalid_argument(std::string("nmech::theory exact recurrence: forcing '") + name +
                                "' is required by this optimizer but was not given");
  }
  return p;
}

bool plain_sgd(const OptimParams& o) {
  return o.momentum == 0.0 && !o.nesterov && !o.decoupled;
}

// Coupled decay enters the step through d = g + λθ; decoupled decay shrinks θ directly by
// c = 1 − ηλ and leaves d = g. Writing both as (λ_c, c) gives one formula per family.
double coupled_decay(const OptimParams& o) { return o.decoupled ? 0.0 : o.weight_decay; }
double shrink(const OptimParams& o) { return o.decoupled ? 1.0 - o.lr * o.weight_decay : 1.0; }

// Multipliers near 1 are applied as x + (c − 1)x, with c − 1 accurate: rounding c·x itself
// costs ε|x| per step, i.e. a drift ~nε over a free run.
// Decoupled decay: the optimizer multiplies by the double c = fl(1 − ηλ); c − 1 is then exact
// (Sterbenz), so the recurrence follows the very same c. Coupled: c = 1.
double shrink_minus_one(const OptimParams& o) { return shrink(o) - 1.0; }
double shrink_sq_minus_one(const OptimParams& o) {
  const double c = shrink(o);
  return (c - 1.0) * (c + 1.0);
}
// SGD: ρ − 1 = (1 − ηλ)² − 1 = −ηλ(2 − ηλ); here no optimizer constant is rounded to ρ.
double rho_minus_one(double eta_lam) { return -eta_lam * (2.0 - eta_lam); }

// §4.2 (rescale §4.4): the G form, exact because ⟨θ, g⟩ = 0. Without a buffer A is not
// defined; it is reported as 0.
void sgd_step(const OptimParams& o, const Forcing& f, std::vector<double>& x,
              std::vector<double>& a) {
  const double* g = need(f.grad_sq, "grad_sq");
  const double rho_m1 = rho_minus_one(o.lr * o.weight_decay), eta2 = o.lr * o.lr;
  for (std::size_t i = 0; i < x.size(); ++i) {
    x[i] += rho_m1 * x[i] + eta2 * g[i];
    a[i] = 0.0;
  }
}

// §4.3 (rescale §4.4) with dampening, Nesterov and decoupled decay. B = ⟨θ_k, v_{k+1}⟩ follows
// from v_{k+1} = βv_k + ν_k d_k and the constraint; the update u is v_{k+1} (heavy ball) or
// d_k + βv_{k+1} (Nesterov), and θ_{k+1} = cθ_k − ηu_k.
void momentum_step(const OptimParams& o, long k, const Forcing& f, std::vector<double>& x,
                   std::vector<double>& a) {
  const double eta = o.lr, beta = o.momentum, lam = coupled_decay(o), c = shrink(o);
  const double c2_m1 = shrink_sq_minus_one(o);
  const double nu = o.nu(k);
  const double* u_sq = nullptr;     // |u_k|²
  const double* u_dot_v = nullptr;  // ⟨u_k, v_{k+1}⟩
  if (o.nesterov) {
    u_sq = need(f.update_sq, "update_sq");
    u_dot_v = need(f.update_dot_velocity, "update_dot_velocity");
  } else {
    // u = v_{k+1}; decoupled SGD (β = 0) has v_{k+1} = g_k, so G stands in for V.
    const double* v = f.velocity_sq;
    if (v == nullptr && beta == 0.0) v = f.grad_sq;
    u_sq = u_dot_v = need(v, "velocity_sq");
  }
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double b = beta * a[i] + nu * lam * x[i];
    const double theta_dot_u = o.nesterov ? lam * x[i] + beta * b : b;
    x[i] += c2_m1 * x[i] - 2.0 * eta * c * theta_dot_u + eta * eta * u_sq[i];
    a[i] = c * b - eta * u_dot_v[i];
  }
}

}  // namespace

ExactTranslation::ExactTranslation(const OptimParams& opt, std::vector<double> initial_sum)
    : opt_(opt), s_(std::move(initial_sum)), m_(s_.size(), 0.0) {}

// §4.1: Σ_A g = 0, so Σ_A d_k = λ_c S_k and the pair (S, m) closes on itself.
void ExactTranslation::advance() {
  const double eta = opt_.lr, beta = opt_.momentum, lam = coupled_decay(opt_);
  const double c_m1 = shrink_minus_one(opt_), nu = opt_.nu(k_);
  for (std::size_t i = 0; i < s_.size(); ++i) {
    const double m_next = beta * m_[i] + nu * lam * s_[i];
    const double u_sum = opt_.nesterov ? lam * s_[i] + beta * m_next : m_next;
    s_[i] += c_m1 * s_[i] - eta * u_sum;
    m_[i] = m_next;
  }
  ++k_;
}

ExactQuadratic::ExactQuadratic(const OptimParams& opt, std::vector<double> initial)
    : opt_(opt), x_(std::move(initial)), a_(x_.size(), 0.0) {}

void ExactQuadratic::advance(const Forcing& f) {
  if (plain_sgd(opt_)) {
    sgd_step(opt_, f, x_, a_);
  } else {
    momentum_step(opt_, k_, f, x_, a_);
  }
  ++k_;
}

namespace {

// Both recurrences' whole state: two vectors and the step.
void put_state(StateWriter& w, const std::vector<double>& a, const std::vector<double>& b, long k) {
  w.put(a);
  w.put(b);
  w.put(static_cast<double>(k));
}

void get_state(StateReader& r, std::vector<double>& a, std::vector<double>& b, long& k) {
  r.get(a);
  r.get(b);
  k = static_cast<long>(r.get());
}

}  // namespace

void ExactTranslation::save(StateWriter& w) const { put_state(w, s_, m_, k_); }
void ExactTranslation::load(StateReader& r) { get_state(r, s_, m_, k_); }
void ExactQuadratic::save(StateWriter& w) const { put_state(w, x_, a_, k_); }
void ExactQuadratic::load(StateReader& r) { get_state(r, x_, a_, k_); }

}  // namespace nmech::theory
