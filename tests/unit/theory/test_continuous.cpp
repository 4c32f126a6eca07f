// Continuous predictions (docs/THEORY.md §5) and equilibrium quantities (§6).
// h and φ are pinned by their ODE and initial conditions; the online accumulators are checked
// against direct O(n²) Green's-function sums in every regime, over 10⁶ steps against closed
// forms and Kahan-summed direct sums, and the §6 tables to their printed digits.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <complex>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "nmech/theory/closed_forms.hpp"
#include "nmech/theory/continuous.hpp"
#include "nmech/theory/exact.hpp"

namespace {

using nmech::theory::angle_eq;
using nmech::theory::angle_step;
using nmech::theory::ContinuousPredictor;
using nmech::theory::DampingRegime;
using nmech::theory::equilibrium_ratio;
using nmech::theory::ExactQuadratic;
using nmech::theory::Family;
using nmech::theory::Forcing;
using nmech::theory::KappaMode;
using nmech::theory::OptimParams;
using nmech::theory::Oscillator;
using nmech::theory::relax_steps;
using nmech::theory::translation_fast_root;
using nmech::theory::translation_period;
using nmech::theory::translation_root;
using Cplx = std::complex<double>;

constexpr double kGreenTol = 1e-10;  // online accumulators vs direct Green's-function sums

OptimParams params(double lr, double wd, double beta) {
  OptimParams o;
  o.lr = lr;
  o.weight_decay = wd;
  o.momentum = beta;
  return o;
}

// γ = ω_S exactly: (1 − β)²/(η²(1 + β)²) = 4λ/(η(1 + β)).
double critical_decay(double lr, double beta) {
  return (1.0 - beta) * (1.0 - beta) / (4.0 * lr * (1.0 + beta));
}

void report(const std::string& what, double v) {
  std::printf("[ measured ] %-58s %.3e\n", what.c_str(), v);
}

std::vector<double> uniform(std::size_t n, double lo, double hi, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(lo, hi);
  std::vector<double> x(n);
  for (auto& v : x) v = u(rng);
  return x;
}

// Kahan-compensated accumulator.
struct Kahan {
  double sum = 0.0, c = 0.0;
  void add(double x) {
    const double y = x - c, t = sum + y;
    c = (t - sum) - y;
    sum = t;
  }
};

// X_n = h(ηn)X_0 + 2η Σ_{k<n} φ(η(n − k)) x_k by the direct O(n) sum; *scale gets the sum of the
// absolute values of the terms (the natural denominator when x changes sign).
double green_sum(const Oscillator& osc, double lr, double x0, const std::vector<double>& x,
                 long n, double* scale) {
  Kahan s, a;
  for (long k = 0; k < n; ++k) {
    const double term = osc.phi(lr * static_cast<double>(n - k)) * x[k];
    s.add(term);
    a.add(std::abs(term));
  }
  const double hom = osc.h(lr * static_cast<double>(n)) * x0;
  *scale = std::abs(hom) + 2.0 * lr * a.sum;
  return hom + 2.0 * lr * s.sum;
}

// ---------------------------------------------------------------------------------------------
// Oscillator

TEST(Oscillator, ConstantsAndRegimesOfSection6) {
  const Oscillator o9 = Oscillator::make(Family::scale, params(0.1, 1e-3, 0.9));
  EXPECT_NEAR(o9.gamma, 0.526, 5e-4);
  EXPECT_NEAR(o9.omega, 0.145, 5e-4);
  EXPECT_EQ(o9.regime, DampingRegime::over);
  struct Row {
    double lam, omega;
    DampingRegime regime;
  };
  for (const Row& r : {Row{1e-4, 0.0448, DampingRegime::over},
                       Row{5e-4, 0.100, DampingRegime::under},
                       Row{1e-3, 0.142, DampingRegime::under}}) {
    const Oscillator o = Oscillator::make(Family::scale, params(0.1, r.lam, 0.99));
    EXPECT_NEAR(o.gamma, 0.0503, 5e-5);
    EXPECT_NEAR(o.omega, r.omega, 5e-4) << r.lam;
    EXPECT_EQ(o.regime, r.regime) << r.lam;
  }
  // ω_T² = ω_S²/2; β = 0 is first order.
  const Oscillator t = Oscillator::make(Family::translation, params(0.1, 5e-4, 0.99));
  EXPECT_NEAR(t.omega * std::sqrt(2.0),
              Oscillator::make(Family::rescale, params(0.1, 5e-4, 0.99)).omega, 1e-15);
  EXPECT_EQ(Oscillator::make(Family::scale, params(0.1, 5e-4, 0.0)).regime, DampingRegime::none);
  EXPECT_EQ(nmech::theory::to_string(DampingRegime::none), "none");
  EXPECT_EQ(nmech::theory::to_string(DampingRegime::over), "over");
  EXPECT_EQ(nmech::theory::to_string(DampingRegime::critical), "critical");
  EXPECT_EQ(nmech::theory::to_string(DampingRegime::under), "under");
}

// §6: at ηλ = 5e-5 norms oscillate for β > 0.9801, translation sums for β > 0.98591, and the
// discrete (§4) and continuous conditions agree to 4 decimals.
TEST(Oscillator, OscillationThresholds) {
  struct Case {
    Family fam;
    double target, stiffness;  // discrete: (1 + β − sηλ)² < 4β, s = 2 scale, 1 translation
  };
  for (const Case& c : {Case{Family::scale, 0.9801, 2.0}, Case{Family::translation, 0.98591, 1.0}}) {
    double continuous = -1.0, discrete = -1.0;
    for (double beta = 0.97; beta < 0.99; beta += 1e-6) {
      const bool under =
          Oscillator::make(c.fam, params(0.1, 5e-4, beta)).regime == DampingRegime::under;
      const double b = 1.0 + beta - c.stiffness * 5e-5;
      if (under && continuous < 0) continuous = beta;
      if (b * b < 4.0 * beta && discrete < 0) discrete = beta;
    }
    report("oscillation threshold beta (continuous)", continuous);
    EXPECT_NEAR(continuous, c.target, 1e-5);
    EXPECT_NEAR(discrete, continuous, 1e-4);
  }
}

TEST(Oscillator, CriticalBandAndValidation) {
  const double lc = critical_decay(0.1, 0.9);
  EXPECT_EQ(Oscillator::make(Family::scale, params(0.1, lc, 0.9)).regime, DampingRegime::critical);
  EXPECT_EQ(Oscillator::make(Family::scale, params(0.1, lc * (1 + 5e-7), 0.9)).regime,
            DampingRegime::critical);
  EXPECT_EQ(Oscillator::make(Family::scale, params(0.1, lc * (1 + 1e-5), 0.9)).regime,
            DampingRegime::under);
  EXPECT_EQ(Oscillator::make(Family::scale, params(0.1, lc * (1 - 1e-5), 0.9)).regime,
            DampingRegime::over);
  EXPECT_EQ(Oscillator::make(Family::translation, params(0.1, 2 * lc, 0.9)).regime,
            DampingRegime::critical);
  EXPECT_THROW(Oscillator::make(Family::scale, params(0.0, 1e-4, 0.9)), std::invalid_argument);
  EXPECT_THROW(Oscillator::make(Family::scale, params(0.1, 1e-4, 1.0)), std::invalid_argument);
  EXPECT_THROW(Oscillator::make(Family::scale, params(0.1, -1e-4, 0.9)), std::invalid_argument);
}

struct OdeCase {
  const char* name;
  Family fam;
  OptimParams o;
  DampingRegime regime;
};

std::vector<OdeCase> ode_cases() {
  const double lc = critical_decay(0.1, 0.9);
  return {{"over", Family::scale, params(0.1, 5e-4, 0.9), DampingRegime::over},
          {"under", Family::scale, params(0.1, 5e-4, 0.99), DampingRegime::under},
          {"critical", Family::scale, params(0.1, lc, 0.9), DampingRegime::critical},
          {"near-critical over", Family::scale, params(0.1, lc * (1 - 2e-6), 0.9), DampingRegime::over},
          {"near-critical under", Family::scale, params(0.1, lc * (1 + 2e-6), 0.9), DampingRegime::under},
          {"translation over", Family::translation, params(0.1, 5e-4, 0.9), DampingRegime::over},
          {"translation under", Family::translation, params(0.1, 5e-4, 0.99), DampingRegime::under},
          {"strong under", Family::rescale, params(0.05, 5e-2, 0.99), DampingRegime::under},
          {"no decay", Family::scale, params(0.1, 0.0, 0.9), DampingRegime::over}};
}

// h and φ solve f'' + 2γf' + ω²f = 0 with (f, f')(0) = (1, 0) resp. (0, 1): that fixes them.
TEST(Oscillator, HomogeneousAndGreenFunctionsSolveTheOde) {
  for (const OdeCase& c : ode_cases()) {
    const Oscillator o = Oscillator::make(c.fam, c.o);
    ASSERT_EQ(o.regime, c.regime) << c.name;
    const double rate = std::max(o.gamma, o.omega), dt = 1e-3 / rate;
    auto d1 = [&](auto f, double t) { return (f(t + dt) - f(t - dt)) / (2 * dt); };
    auto d2 = [&](auto f, double t) { return (f(t + dt) - 2 * f(t) + f(t - dt)) / (dt * dt); };
    auto h = [&](double t) { return o.h(t); };
    auto phi = [&](double t) { return o.phi(t); };
    EXPECT_DOUBLE_EQ(o.h(0.0), 1.0) << c.name;
    EXPECT_EQ(o.phi(0.0), 0.0) << c.name;
    EXPECT_NEAR(d1(h, 0.0), 0.0, 1e-6 * rate) << c.name;
    EXPECT_NEAR(d1(phi, 0.0), 1.0, 1e-6) << c.name;
    double worst = 0.0;
    for (double scaled : {0.05, 0.3, 1.0, 2.5, 7.0, 20.0}) {
      const double t = scaled / rate;
      for (int which = 0; which < 2; ++which) {
        auto f = [&](double s) { return which == 0 ? o.h(s) : o.phi(s); };
        const double a = d2(f, t), b = 2 * o.gamma * d1(f, t), w = o.omega * o.omega * f(t);
        worst = std::max(worst, std::abs(a + b + w) / (std::abs(a) + std::abs(b) + std::abs(w)));
      }
    }
    EXPECT_LE(worst, 1e-5) << c.name;
  }
  // β = 0: the first-order model Ẋ = −κX, κ = 2λ (λ translation), with φ = h.
  for (Family fam : {Family::scale, Family::translation}) {
    const Oscillator o = Oscillator::make(fam, params(0.1, 5e-3, 0.0));
    const double kappa = fam == Family::scale ? 1e-2 : 5e-3;
    for (double t : {0.0, 10.0, 1e3}) {
      EXPECT_NEAR(o.h(t), std::exp(-kappa * t), 1e-14);
      EXPECT_NEAR(o.phi(t), std::exp(-kappa * t), 1e-14);
    }
  }
}

TEST(Oscillator, ContinuousAcrossTheCriticalPoint) {
  const double lc = critical_decay(0.1, 0.9);
  const Oscillator crit = Oscillator::make(Family::scale, params(0.1, lc, 0.9));
  struct Side {
    double rel, tol;
  };
  for (const Side& side : {Side{1e-4, 1e-4}, Side{2e-6, 5e-6}}) {
    for (double sign : {-1.0, 1.0}) {
      const Oscillator o = Oscillator::make(Family::scale, params(0.1, lc * (1 + sign * side.rel), 0.9));
      ASSERT_EQ(o.regime, sign < 0 ? DampingRegime::over : DampingRegime::under);
      double worst = 0.0;
      for (double g : {0.01, 0.5, 1.0, 3.0, 6.0}) {
        const double t = g / crit.gamma;
        worst = std::max(worst, std::abs(o.h(t) - crit.h(t)));
        worst = std::max(worst, std::abs(o.phi(t) - crit.phi(t)) * crit.gamma);
      }
      EXPECT_LE(worst, side.tol) << side.rel << " " << sign;
    }
  }
}

TEST(Oscillator, ZeroDecayHoldsStill) {
  for (Family fam : {Family::translation, Family::scale}) {
    const Oscillator o = Oscillator::make(fam, params(0.1, 0.0, 0.9));
    EXPECT_EQ(o.omega, 0.0);
    for (double t : {0.0, 1.0, 1e3, 1e6}) EXPECT_EQ(o.h(t), 1.0);
    for (double s : {0.5, 5.0, 1e4}) {
      EXPECT_NEAR(o.phi(s), -std::expm1(-2 * o.gamma * s) / (2 * o.gamma), 1e-15);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Online predictors against direct sums

TEST(ContinuousPredictor, FirstOrderMatchesDirectSum) {
  const int steps = 2000;
  const OptimParams o = params(0.1, 1e-2, 0.0);
  const double eta = o.lr, lam = o.weight_decay;
  for (KappaMode mode : {KappaMode::paper, KappaMode::modloss}) {
    const double k_scale = mode == KappaMode::paper ? 2 * lam : 2 * lam + eta * lam * lam;
    const double k_trans = mode == KappaMode::paper ? lam : lam + eta * lam * lam / 2;
    // set 0: scale (G ≥ 0); set 1: rescale (G_in − G_out of either sign).
    const std::vector<double> g0 = uniform(steps, 0.0, 40.0, 3), g1 = uniform(steps, -30.0, 30.0, 4);
    const std::vector<double> x0{2.0, 0.25};
    ContinuousPredictor cp(Family::rescale, o, x0, mode);
    ContinuousPredictor tr(Family::translation, o, {1.5}, mode);
    ASSERT_EQ(cp.oscillator().regime, DampingRegime::none);
    double worst = 0.0, worst_t = 0.0;
    for (int n = 0; n <= steps; ++n) {
      for (int s = 0; s < 2; ++s) {
        const std::vector<double>& g = s == 0 ? g0 : g1;
        const double hom = std::exp(-k_scale * eta * n) * x0[s];
        Kahan sum, abs_sum;
        for (int k = 0; k < n; ++k) {
          const double term = eta * eta * std::exp(-k_scale * eta * (n - 1 - k)) * g[k];
          sum.add(term);
          abs_sum.add(std::abs(term));
        }
        const double want = hom + sum.sum;
        worst = std::max(worst, std::abs(cp.value()[s] - want) / (std::abs(hom) + abs_sum.sum));
      }
      const double want_t = std::exp(-k_trans * eta * n) * 1.5;
      worst_t = std::max(worst_t, std::abs(tr.value()[0] - want_t) / want_t);
      EXPECT_EQ(cp.step(), n);
      if (n == steps) break;
      const double g[2] = {g0[n], g1[n]};
      cp.advance(Forcing{g});
      tr.advance(Forcing{});  // translation reads no forcing
    }
    const std::string tag = mode == KappaMode::paper ? "paper" : "modloss";
    report("first order vs direct sum, " + tag, worst);
    report("first order translation vs exp, " + tag, worst_t);
    EXPECT_LE(worst, kGreenTol);
    EXPECT_LE(worst_t, kGreenTol);
  }
}

struct GreenCase {
  const char* name;
  Family fam;
  OptimParams o;
  DampingRegime regime;
  bool signed_forcing;
};

TEST(ContinuousPredictor, OscillatorMatchesDirectGreenSum) {
  const double lc = critical_decay(0.1, 0.9);
  const GreenCase cases[] = {
      {"over", Family::scale, params(0.1, 5e-4, 0.9), DampingRegime::over, false},
      {"under", Family::scale, params(0.1, 5e-4, 0.99), DampingRegime::under, false},
      {"critical", Family::scale, params(0.1, lc, 0.9), DampingRegime::critical, false},
      {"critical band edge", Family::scale, params(0.1, lc * (1 + 4e-7), 0.9), DampingRegime::critical, false},
      {"near-critical over", Family::scale, params(0.1, lc * (1 - 2e-6), 0.9), DampingRegime::over, false},
      {"near-critical under", Family::scale, params(0.1, lc * (1 + 2e-6), 0.9), DampingRegime::under, false},
      {"over beta 0.99 lam 1e-4", Family::scale, params(0.1, 1e-4, 0.99), DampingRegime::over, false},
      {"no decay", Family::scale, params(0.1, 0.0, 0.9), DampingRegime::over, false},
      {"rescale under, signed", Family::rescale, params(0.05, 5e-2, 0.99), DampingRegime::under, true},
      {"rescale over, signed", Family::rescale, params(0.1, 1e-3, 0.8), DampingRegime::over, true}};
  const int steps = 2000;
  for (const GreenCase& c : cases) {
    const Oscillator osc = Oscillator::make(c.fam, c.o);
    ASSERT_EQ(osc.regime, c.regime) << c.name;
    // Forcing of the size that holds X near X_0 (X* ≈ 2x/ω²).
    const double xs = osc.omega > 0 ? 0.5 * osc.omega * osc.omega : 1e-3;
    const std::vector<double> x0{1.0, 3.0};
    std::vector<std::vector<double>> x(2);
    x[0] = uniform(steps, c.signed_forcing ? -xs : 0.5 * xs, 1.5 * xs, 5);
    x[1] = uniform(steps, c.signed_forcing ? -3 * xs : 0.0, 3 * xs, 6);
    ContinuousPredictor cp(c.fam, c.o, x0);
    double worst = 0.0;
    for (int n = 0; n <= steps; ++n) {
      for (int s = 0; s < 2; ++s) {
        double scale = 0.0;
        const double want = green_sum(osc, c.o.lr, x0[s], x[s], n, &scale);
        worst = std::max(worst, std::abs(cp.value()[s] - want) / scale);
      }
      if (n == steps) break;
      const double v[2] = {x[0][n], x[1][n]};
      cp.advance(Forcing{nullptr, nullptr, v});
    }
    report(std::string("oscillator vs direct Green sum, ") + c.name, worst);
    EXPECT_LE(worst, kGreenTol) << c.name;
  }
}

TEST(ContinuousPredictor, TranslationUsesOnlyTheHomogeneousSolution) {
  for (double beta : {0.9, 0.99}) {
    const OptimParams o = params(0.1, 5e-4, beta);
    const Oscillator osc = Oscillator::make(Family::translation, o);
    ContinuousPredictor cp(Family::translation, o, {2.0, -1.0});
    for (int n = 0; n <= 5000; ++n) {
      EXPECT_NEAR(cp.value()[0], 2.0 * osc.h(0.1 * n), 1e-15);
      EXPECT_NEAR(cp.value()[1], -osc.h(0.1 * n), 1e-15);
      cp.advance(Forcing{});
    }
  }
  ContinuousPredictor still(Family::translation, params(0.1, 0.0, 0.9), {1.25});
  for (int n = 0; n < 1000; ++n) still.advance(Forcing{});
  EXPECT_EQ(still.value()[0], 1.25);  // λ = 0: h ≡ 1, exactly
}

TEST(ContinuousPredictor, RequiresItsForcing) {
  const double x = 1.0;
  ContinuousPredictor sgd(Family::scale, params(0.1, 1e-3, 0.0), {1.0});
  EXPECT_THROW(sgd.advance(Forcing{nullptr, &x, &x}), std::invalid_argument);
  EXPECT_NO_THROW(sgd.advance(Forcing{&x}));
  ContinuousPredictor hb(Family::rescale, params(0.1, 1e-3, 0.9), {1.0});
  EXPECT_THROW(hb.advance(Forcing{&x, &x}), std::invalid_argument);
  EXPECT_NO_THROW(hb.advance(Forcing{nullptr, nullptr, &x}));
}

// 10⁶ steps: constant forcing against closed geometric sums, random forcing against
// Kahan-summed direct sums at sampled n; every value finite.
TEST(ContinuousPredictor, MillionStepsStayFiniteAndAccurate) {
  const long steps = 1000000;
  const double lc = critical_decay(0.1, 0.9);
  const GreenCase cases[] = {
      {"under beta 0.99", Family::scale, params(0.1, 5e-4, 0.99), DampingRegime::under, false},
      {"over beta 0.9", Family::scale, params(0.1, 5e-4, 0.9), DampingRegime::over, false},
      {"critical", Family::scale, params(0.1, lc, 0.9), DampingRegime::critical, false},
      {"sgd", Family::scale, params(0.1, 5e-4, 0.0), DampingRegime::none, false}};
  const long samples[] = {1, 1000, 100000, steps};
  for (const GreenCase& c : cases) {
    const Oscillator osc = Oscillator::make(c.fam, c.o);
    ASSERT_EQ(osc.regime, c.regime) << c.name;
    const double eta = c.o.lr, xc = 0.5 * osc.omega * osc.omega;
    const std::vector<double> xr = uniform(steps, 0.0, 2.0 * xc, 9);
    ContinuousPredictor cp(c.fam, c.o, {1.0, 1.0});
    double worst_const = 0.0, worst_rand = 0.0;
    bool finite = true;
    for (long n = 0, si = 0; n <= steps; ++n) {
      finite = finite && std::isfinite(cp.value()[0]) && std::isfinite(cp.value()[1]);
      if (n == samples[si]) {
        ++si;
        double want_const = 0.0, want_rand = 0.0, scale = 0.0;
        if (c.regime == DampingRegime::none) {
          // pred_n = e^{−κηn} + η²x Σ_{j<n} e^{−κηj}, κ = 2λ; and the direct sum.
          const double kh = 2 * c.o.weight_decay * eta;
          want_const = std::exp(-kh * n) + eta * eta * xc * std::expm1(-kh * n) / std::expm1(-kh);
          Kahan s;
          for (long k = 0; k < n; ++k) s.add(std::exp(-kh * (n - 1 - k)) * xr[k]);
          want_rand = std::exp(-kh * n) + eta * eta * s.sum;
          scale = want_rand;
        } else {
          const std::vector<double> cst(static_cast<std::size_t>(n), xc);
          double unused = 0.0;
          want_const = green_sum(osc, eta, 1.0, cst, n, &unused);
          want_rand = green_sum(osc, eta, 1.0, xr, n, &scale);
        }
        worst_const = std::max(worst_const, std::abs(cp.value()[0] - want_const) / want_const);
        worst_rand = std::max(worst_rand, std::abs(cp.value()[1] - want_rand) / scale);
      }
      if (n == steps) break;
      const double x[2] = {xc, xr[n]};
      cp.advance(c.regime == DampingRegime::none ? Forcing{x} : Forcing{nullptr, nullptr, x});
    }
    report(std::string("1e6 steps, constant forcing, ") + c.name, worst_const);
    report(std::string("1e6 steps, random forcing (sampled), ") + c.name, worst_rand);
    EXPECT_TRUE(finite) << c.name;
    EXPECT_LE(worst_const, kGreenTol) << c.name;
    EXPECT_LE(worst_rand, kGreenTol) << c.name;
    if (c.regime == DampingRegime::under) {
      // Closed form of the constant response, Σ_{j≥1} φ(ηj) = Im[q/(1 − q)]/Ω, q = e^{(−γ+iΩ)η},
      // and its continuum limit X* = 2x/ω² (Euler–Maclaurin: relative O(η²ω²)).
      const double w = std::sqrt(osc.omega * osc.omega - osc.gamma * osc.gamma);
      const Cplx q = std::exp(Cplx(-osc.gamma * eta, w * eta));
      const double limit = 2 * eta * xc * (q / (1.0 - q)).imag() / w;
      EXPECT_NEAR(cp.value()[0] / limit, 1.0, kGreenTol);
      EXPECT_NEAR(cp.value()[0] / (2 * xc / (osc.omega * osc.omega)), 1.0, 1e-4);
    }
  }
}

// §5.1: the modified-loss rate tracks the exact SGD recurrence to O((ηλ)³) per step.
TEST(ContinuousPredictor, ModlossTracksTheExactSgdRecurrence) {
  const OptimParams o = params(0.1, 1e-2, 0.0);
  const int steps = 5000;
  const double gstar = 2 * o.weight_decay / o.lr;  // holds Q near 1
  const std::vector<double> g = uniform(steps, 0.0, 2 * gstar, 10);
  ExactQuadratic ex(o, {1.0});
  ContinuousPredictor paper(Family::scale, o, {1.0}, KappaMode::paper);
  ContinuousPredictor mod(Family::scale, o, {1.0}, KappaMode::modloss);
  double e_paper = 0.0, e_mod = 0.0;
  for (int n = 0; n <= steps; ++n) {
    e_paper = std::max(e_paper, std::abs(paper.value()[0] / ex.value()[0] - 1));
    e_mod = std::max(e_mod, std::abs(mod.value()[0] / ex.value()[0] - 1));
    if (n == steps) break;
    const Forcing f{&g[n]};
    ex.advance(f);
    paper.advance(f);
    mod.advance(f);
  }
  report("continuous vs exact SGD, paper kappa", e_paper);
  report("continuous vs exact SGD, modloss kappa", e_mod);
  EXPECT_LE(e_paper, 1e-3);
  EXPECT_LE(e_mod, 1e-6);
  EXPECT_GE(e_paper, 100 * e_mod);
}

// §5.2b: with dampening τ the oscillator runs on η' = η(1 − τ) and |u|² = V/(1 − τ)². Against the
// exact recurrences with τ, its error must stay at the τ = 0 level; the model that ignores τ (the
// predictor before dampening was modelled) must miss by far more.
struct DampedErrors {
  double with_tau, tau0, ignoring_tau;
};

DampedErrors damped_errors(Family fam, double tau, int steps) {
  OptimParams o = params(0.1, 1e-3, 0.9), undamped = o;
  o.dampening = tau;
  const double vstar = 2 * o.weight_decay / o.lr;  // holds Q near 1
  const std::vector<double> v = uniform(steps, 0.0, 2 * vstar, 11);
  auto run = [&](const OptimParams& truth, const OptimParams& model) {
    ExactQuadratic ex(truth, {1.0});
    nmech::theory::ExactTranslation ext(truth, {1.0});
    ContinuousPredictor cont(fam, model, {1.0});
    double err = 0.0;
    for (int n = 0; n < steps; ++n) {
      const Forcing f{nullptr, nullptr, &v[n]};
      ex.advance(f);
      ext.advance();
      cont.advance(f);
      const double truth_now = fam == Family::translation ? ext.value()[0] : ex.value()[0];
      if (n >= steps / 2) err = std::max(err, std::abs(cont.value()[0] - truth_now));
    }
    return err;
  };
  return {run(o, o), run(undamped, undamped), run(o, undamped)};
}

TEST(ContinuousPredictor, DampeningRunsOnTheEffectiveLearningRate) {
  for (const Family fam : {Family::translation, Family::scale}) {
    const DampedErrors e = damped_errors(fam, 0.01, 3000);
    report(fam == Family::translation ? "translation, tau 0.01" : "scale, tau 0.01", e.with_tau);
    report("  tau 0", e.tau0);
    report("  tau ignored", e.ignoring_tau);
    EXPECT_LE(e.with_tau, 3 * e.tau0 + 1e-12);
    EXPECT_GE(e.ignoring_tau, 10 * e.with_tau);  // teeth: the undamped model is visibly wrong
  }
  // The equilibrium quantities of §6 on η' and V/(1 − τ)².
  OptimParams o = params(0.1, 5e-4, 0.9);
  o.dampening = 0.5;
  EXPECT_NEAR(angle_eq(o), std::sqrt(2 * 0.05 * 5e-4 / 1.9), 1e-15);
  EXPECT_NEAR(relax_steps(o), 0.1 / (4 * 0.05 * 5e-4), 1e-9);
  EXPECT_NEAR(equilibrium_ratio(o, 0.3, 0.05 * (0.3 / 0.25) * 1.9 / (2 * 5e-4)), 1.0, 1e-15);
}

// ---------------------------------------------------------------------------------------------
// §6 equilibrium quantities

TEST(Equilibrium, TableOfSection6) {
  struct Row {
    double lr, lam, beta, angle, unit, t_rel;
  };
  const Row rows[] = {{0.1, 5e-4, 0.9, 7.25e-3, 1e-5, 500},    {0.1, 1e-4, 0.9, 3.24e-3, 1e-5, 2500},
                      {0.1, 1e-3, 0.9, 1.03e-2, 1e-4, 250},    {0.05, 5e-4, 0.9, 5.13e-3, 1e-5, 1000},
                      {0.01, 5e-4, 0.9, 2.29e-3, 1e-5, 5000},  {0.1, 5e-4, 0.0, 1.00e-2, 1e-4, 5000},
                      {0.1, 1e-3, 0.0, 1.414e-2, 1e-5, 2500},  {0.1, 1e-4, 0.0, 4.47e-3, 1e-5, 25000}};
  for (const Row& r : rows) {
    const OptimParams o = params(r.lr, r.lam, r.beta);
    EXPECT_NEAR(angle_eq(o), r.angle, 0.5 * r.unit) << r.lr << " " << r.lam << " " << r.beta;
    EXPECT_NEAR(relax_steps(o), r.t_rel, 1e-9 * r.t_rel) << r.lr << " " << r.lam << " " << r.beta;
  }
  // §6 toy values: Δ* = 0.03162 (β = 0) and 0.02294 (β = 0.9) at λ = 5e-3.
  EXPECT_NEAR(angle_eq(params(0.1, 5e-3, 0.0)), 0.03162, 5e-6);
  EXPECT_NEAR(angle_eq(params(0.1, 5e-3, 0.9)), 0.02294, 5e-6);
}

TEST(Equilibrium, TranslationRootTargets) {
  const double r = translation_root(params(0.1, 5e-4, 0.9));
  EXPECT_NEAR(r, 0.99949773, 5e-9);
  EXPECT_NEAR(std::pow(r, -2), 1.0010053, 5e-8);
  EXPECT_NEAR(std::pow(r, -782), 1.481, 5e-4);          // per 391-step epoch
  EXPECT_NEAR(std::log(2.0) / -std::log(r), 1380, 1.0);  // half-life
  EXPECT_NEAR(r, 1 - 0.1 * 5e-4 / (1 - 0.9), 5e-6);
  EXPECT_NEAR(std::pow(translation_root(params(0.1, 1e-4, 0.9)), -2), 1.0002002, 5e-8);
  EXPECT_NEAR(translation_root(params(0.1, 5e-4, 0.99)), std::sqrt(0.99), 1e-15);
  EXPECT_NEAR(translation_root(params(0.1, 5e-4, 0.0)), 1 - 5e-5, 1e-16);
  // The root is the asymptotic per-step ratio of the exact translation recurrence.
  OptimParams nes = params(0.1, 5e-3, 0.9), damp = params(0.1, 5e-3, 0.9), dec = params(0.1, 5e-3, 0.9);
  nes.nesterov = true;
  damp.dampening = 0.3;
  dec.decoupled = true;
  for (const OptimParams& o : {params(0.1, 5e-4, 0.9), nes, damp, dec}) {
    nmech::theory::ExactTranslation ex(o, {1.0});
    for (int k = 0; k < 3000; ++k) ex.advance();
    const double before = ex.value()[0];
    ex.advance();
    EXPECT_NEAR(ex.value()[0] / before, translation_root(o), 1e-12);
  }
}

TEST(Equilibrium, TranslationPeriodTransientAndDecoupledDecay) {
  // Heavy ball: r² − (1 + β − ηλ)r + β = 0, so r_+r_− = β and, when S oscillates, the phase per
  // step is acos((1 + β − ηλ)/(2√β)).
  const OptimParams under = params(0.1, 5e-4, 0.99), over = params(0.1, 5e-4, 0.9);
  const double period = 2 * M_PI / std::acos((1.99 - 5e-5) / (2 * std::sqrt(0.99)));
  EXPECT_NEAR(translation_period(under), period, 1e-10 * period);  // acos near 0 loses digits
  EXPECT_NEAR(translation_fast_root(under), std::sqrt(0.99), 1e-15);
  EXPECT_TRUE(std::isinf(translation_period(over)));
  EXPECT_DOUBLE_EQ(translation_period(params(1.0, 3.0, 0.0)), 2.0);  // S_{k+1} = −2S_k: a sign flip
  EXPECT_NEAR(translation_fast_root(over) * translation_root(over), 0.9, 1e-15);
  EXPECT_EQ(translation_fast_root(params(0.1, 5e-4, 0.0)), 0.0);
  // Decoupled weight decay: Σ_A v stays 0, so S_k decays by 1 − ηλ even where β is larger (the
  // mode β of the (S, m) map is never excited).
  OptimParams dec = params(0.1, 5.0, 0.9);
  dec.decoupled = true;
  nmech::theory::ExactTranslation ex(dec, {1.0});
  for (int k = 0; k < 10; ++k) {
    const double before = ex.value()[0];
    ex.advance();
    EXPECT_NEAR(ex.value()[0] / before, 0.5, 1e-15) << k;
  }
  EXPECT_NEAR(translation_root(dec), 0.5, 1e-15);
  EXPECT_TRUE(std::isinf(translation_period(dec)));
  // What the store writes as run attributes: these functions, by name.
  const auto forms = nmech::theory::closed_forms(over);
  ASSERT_EQ(forms.size(), 6u);
  EXPECT_EQ(forms[0].first, "angle_eq");
  EXPECT_EQ(forms[0].second, angle_eq(over));
  EXPECT_EQ(forms[3].first, "translation_rate");
  EXPECT_EQ(forms[3].second, translation_root(over));
  EXPECT_EQ(forms[5].first, "translation_period");
}

TEST(Equilibrium, RatioAndUndefinedCases) {
  // Exactly 1 at the fixed points of §6.
  const OptimParams hb = params(0.1, 5e-4, 0.9), sgd = params(0.1, 5e-4, 0.0);
  EXPECT_NEAR(equilibrium_ratio(hb, 0.3, 0.1 * 0.3 * 1.9 / (2 * 5e-4)), 1.0, 1e-15);
  EXPECT_NEAR(equilibrium_ratio(sgd, 0.3, 0.1 * 0.3 / (2 * 5e-4 - 0.1 * 5e-4 * 5e-4)), 1.0, 1e-15);
  const OptimParams free = params(0.1, 0.0, 0.9);
  EXPECT_TRUE(std::isnan(relax_steps(free)));
  EXPECT_TRUE(std::isnan(equilibrium_ratio(free, 1.0, 1.0)));
  EXPECT_TRUE(std::isnan(equilibrium_ratio(params(0.1, 0.0, 0.0), 1.0, 1.0)));
  EXPECT_EQ(angle_eq(free), 0.0);
}

// Kahan's angle between two vectors: 2 atan2(|â − b̂|, |â + b̂|), accurate at any angle.
double vector_angle(const std::vector<double>& a, const std::vector<double>& b) {
  double na = 0.0, nb = 0.0, dm = 0.0, dp = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  na = std::sqrt(na);
  nb = std::sqrt(nb);
  for (std::size_t i = 0; i < a.size(); ++i) {
    dm += (a[i] / na - b[i] / nb) * (a[i] / na - b[i] / nb);
    dp += (a[i] / na + b[i] / nb) * (a[i] / na + b[i] / nb);
  }
  return 2.0 * std::atan2(std::sqrt(dm), std::sqrt(dp));
}

TEST(AngleStep, MatchesTheGeometricAngle) {
  std::mt19937_64 rng(12);
  std::normal_distribution<double> n(0.0, 1.0);
  const double eta = 0.1;
  double worst = 0.0;
  for (double delta : {1e-7, 1e-4, 1e-2, 0.3, 1.5, 3.0}) {
    for (double radial : {0.0, 0.5, -0.5}) {  // radial change relative to the tangential one
      std::vector<double> a(12), t(12), b(12);
      double q = 0.0, p = 0.0, tn = 0.0;
      for (std::size_t i = 0; i < 12; ++i) {
        a[i] = n(rng);
        t[i] = n(rng);
        q += a[i] * a[i];
        p += a[i] * t[i];
      }
      for (std::size_t i = 0; i < 12; ++i) t[i] -= p / q * a[i];
      for (double v : t) tn += v * v;
      const double scale = 1.0 + radial * std::min(delta, 0.5);
      double qn = 0.0, u = 0.0;
      for (std::size_t i = 0; i < 12; ++i) {
        b[i] = scale * (std::cos(delta) * a[i] + std::sin(delta) * std::sqrt(q / tn) * t[i]);
        qn += b[i] * b[i];
        u += (b[i] - a[i]) * (b[i] - a[i]) / (eta * eta);
      }
      const double truth = vector_angle(a, b);
      const double err = std::abs(angle_step(q, qn, u, eta) - truth) / truth;
      // From recorded scalars the radial term carries the ε·Q rounding of Q_k, Q_{k+1}: a
      // relative angle error ~ ε·(radial change)/Δ², harmless for realistic Δ ≥ 1e-4.
      EXPECT_LE(err, delta >= 1e-4 ? 1e-12 : 1e-9) << delta << " " << radial;
      worst = std::max(worst, delta >= 1e-4 ? err : 0.0);
    }
  }
  report("angle_step vs vector angle (constructed, >= 1e-4 rad)", worst);
  // θ' = −θ, with exactly representable inputs (asin is ill-conditioned at 1).
  EXPECT_DOUBLE_EQ(angle_step(2.0, 2.0, 4 * 2.0 / (0.5 * 0.5), 0.5), M_PI);
  EXPECT_TRUE(std::isnan(angle_step(0.0, 1.0, 1.0, eta)));
}

}  // namespace
