// The exact recurrences of docs/THEORY.md §4 against (i) closed forms and direct sums written
// independently of the recurrences (characteristic roots, Sylvester matrix powers, no
// iteration), and (ii) a float64 simulation of the LibTorch optimizer (§0) on toys with exact
// symmetries, fed only the measured forcings. Each test also shows that dropping the forcing or
// treating the quantity as conserved misses by many orders of magnitude more than the tolerance.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <complex>
#include <cstdint>
#include <limits>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "nmech/theory/closed_forms.hpp"
#include "nmech/theory/continuous.hpp"
#include "nmech/theory/exact.hpp"

namespace {

using nmech::theory::ContinuousPredictor;
using nmech::theory::ExactQuadratic;
using nmech::theory::ExactTranslation;
using nmech::theory::Family;
using nmech::theory::Forcing;
using nmech::theory::KappaMode;
using nmech::theory::OptimParams;
// References are evaluated in long double (64-bit mantissa on x86-64) so that their own
// round-off stays far below the float64 recurrences they judge.
using LD = long double;
using Cplx = std::complex<LD>;
using Mat2 = std::array<LD, 4>;  // row major
using Vec2 = std::array<LD, 2>;
using Table = std::vector<std::vector<double>>;  // [step][set]

constexpr double kTol = 1e-12;    // exact recurrence, float64 (docs/THEORY.md §7b; measured ≤ 3e-13)
constexpr double kTeeth = 1e-6;   // what a wrong model must miss by: ≥ 10⁶ × kTol

OptimParams params(double lr, double wd, double beta, double tau = 0.0, bool nesterov = false,
                   bool decoupled = false) {
  OptimParams o;
  o.lr = lr;
  o.weight_decay = wd;
  o.momentum = beta;
  o.dampening = tau;
  o.nesterov = nesterov;
  o.decoupled = decoupled;
  return o;
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

// ---------------------------------------------------------------------------------------------
// Independent closed forms

// M^n by Sylvester's formula over the (possibly complex) eigenvalues: no iteration, hence
// independent of the recurrences under test. Needs distinct eigenvalues. The discriminant is
// taken as (m₀ − m₃)² + 4m₁m₂, not tr² − 4det, which cancels for β → 1.
Mat2 mat_pow(const Mat2& m, long n) {
  const LD tr = m[0] + m[3];
  const Cplx sq = std::sqrt(Cplx((m[0] - m[3]) * (m[0] - m[3]) + 4 * m[1] * m[2]));
  const Cplx mu1 = LD(0.5) * (tr + sq), mu2 = LD(0.5) * (tr - sq);
  const Cplx p1 = std::pow(mu1, static_cast<LD>(n)), p2 = std::pow(mu2, static_cast<LD>(n));
  Mat2 out{};
  for (int i = 0; i < 4; ++i) {
    const LD id = (i == 0 || i == 3) ? 1 : 0;
    out[i] = ((p1 * (m[i] - mu2 * id) - p2 * (m[i] - mu1 * id)) / (mu1 - mu2)).real();
  }
  return out;
}

Vec2 mul(const Mat2& m, const Vec2& z) {
  return {m[0] * z[0] + m[1] * z[1], m[2] * z[0] + m[3] * z[1]};
}

// z_n = M^{n−1}(M_0 z_0 + f_0) + Σ_{1≤k<n} M^{n−1−k} f_k for every n ≤ N, by the direct O(N²)
// sum. M_0 differs from M only through ν_0 = 1 (LibTorch copies d_0 into the first buffer).
std::vector<Vec2> direct_sum(const Mat2& m0, const Mat2& m, const Vec2& z0,
                             const std::vector<Vec2>& f, int steps) {
  std::vector<Mat2> pw(steps);
  for (int j = 0; j < steps; ++j) pw[j] = mat_pow(m, j);
  const Vec2 mz = mul(m0, z0);
  const Vec2 z1{mz[0] + f[0][0], mz[1] + f[0][1]};
  std::vector<Vec2> out{z0};
  for (int n = 1; n <= steps; ++n) {
    Vec2 z = mul(pw[n - 1], z1);
    for (int k = 1; k < n; ++k) {
      const Vec2 t = mul(pw[n - 1 - k], f[k]);
      z[0] += t[0];
      z[1] += t[1];
    }
    out.push_back(z);
  }
  return out;
}

// §4.3 restated as z_{k+1} = M(ν_k) z_k + f_k for each variant.
Mat2 heavy_ball_matrix(const OptimParams& o, LD nu) {
  const LD eta = o.lr, lam = o.weight_decay, beta = o.momentum;
  return {1 - 2 * eta * lam * nu, -2 * eta * beta, nu * lam, beta};
}
Mat2 nesterov_matrix(const OptimParams& o) {
  const LD eta = o.lr, lam = o.weight_decay, beta = o.momentum;
  return {1 - 2 * eta * lam * (1 + beta), -2 * eta * beta * beta, lam, beta};
}
// The decoupled optimizer multiplies by the double c = fl(1 − ηλ) (TorchSgd below does too).
LD decoupled_shrink(const OptimParams& o) { return 1.0 - o.lr * o.weight_decay; }
Mat2 decoupled_matrix(const OptimParams& o) {
  const LD eta = o.lr, beta = o.momentum, c = decoupled_shrink(o);
  return {c * c, -2 * eta * c * beta, 0, c * beta};
}
// Translation Nesterov on (S, m): m' = βm + λS, S' = S − η(λS + βm').
Mat2 nesterov_translation_matrix(const OptimParams& o) {
  const LD eta = o.lr, lam = o.weight_decay, beta = o.momentum;
  return {1 - eta * lam * (1 + beta), -eta * beta * beta, lam, beta};
}
LD geometric(LD c, long n) { return std::pow(c, static_cast<LD>(n)); }

// Translation heavy ball with dampening via the characteristic roots of
// S_{k+1} = (1 + β − ηλν)S_k − βS_{k−1} (k ≥ 1), started from S_0 and S_1 = s1_factor·S_0.
// b² − 4β is written as (1 − β)² − 2(1 + β)x + x², x = ηλν, to avoid cancelling near 1.
LD translation_closed(const OptimParams& o, LD s0, LD s1_factor, long n) {
  const LD beta = o.momentum, x = LD(o.lr) * LD(o.weight_decay) * (1 - LD(o.dampening));
  const LD b = 1 + beta - x;
  const Cplx sq = std::sqrt(Cplx((1 - beta) * (1 - beta) - 2 * (1 + beta) * x + x * x));
  const Cplx rp = LD(0.5) * (b + sq), rm = LD(0.5) * (b - sq);
  const LD s1 = s1_factor * s0;
  const Cplx cp = (s1 - rm * s0) / (rp - rm), cm = (rp * s0 - s1) / (rp - rm);
  const LD dn = static_cast<LD>(n);
  return (cp * std::pow(rp, dn) + cm * std::pow(rm, dn)).real();
}

// ---------------------------------------------------------------------------------------------
// Translation, closed forms

TEST(ExactTranslation, SgdIsGeometric) {
  const OptimParams o = params(0.1, 5e-3, 0.0);
  const std::vector<double> s0{1.7, -0.4, 3e3};
  ExactTranslation ex(o, s0);
  double worst = 0.0;
  for (long n = 0; n <= 5000; ++n) {
    for (std::size_t i = 0; i < s0.size(); ++i) {
      const LD want = geometric(1 - LD(o.lr) * LD(o.weight_decay), n) * s0[i];
      worst = std::max(worst, double(std::abs(ex.value()[i] - want) / std::abs(s0[i])));
    }
    ex.advance();
  }
  report("translation SGD vs (1-eta*lam)^n", worst);
  EXPECT_LE(worst, kTol);
}

TEST(ExactTranslation, HeavyBallAndDampeningMatchCharacteristicRoots) {
  struct Case {
    const char* name;
    OptimParams o;
  };
  const Case cases[] = {{"beta 0.9 (real roots)", params(0.1, 5e-4, 0.9)},
                        {"beta 0.99 (oscillating)", params(0.1, 5e-4, 0.99)},
                        {"beta 0.8 lam 1e-2", params(0.1, 1e-2, 0.8)},
                        {"beta 0.9 dampening 0.3", params(0.1, 5e-3, 0.9, 0.3)},
                        {"beta 0.99 dampening 0.01", params(0.1, 5e-4, 0.99, 0.01)}};
  for (const Case& c : cases) {
    const double s0 = 2.3;
    const LD first = 1 - LD(c.o.lr) * LD(c.o.weight_decay);  // ν_0 = 1
    const LD wrong_first = 1 - LD(c.o.lr) * LD(c.o.weight_decay) * (1 - LD(c.o.dampening));
    ExactTranslation ex(c.o, {s0});
    double worst = 0.0, conserved = 0.0, damped_first = 0.0;
    for (long n = 0; n <= 20000; ++n) {
      const LD want = translation_closed(c.o, s0, first, n);
      worst = std::max(worst, double(std::abs(ex.value()[0] - want) / s0));
      conserved = std::max(conserved, double(std::abs(s0 - want) / s0));
      damped_first = std::max(
          damped_first, double(std::abs(translation_closed(c.o, s0, wrong_first, n) - want) / s0));
      ex.advance();
    }
    report(std::string("translation heavy ball vs roots, ") + c.name, worst);
    EXPECT_LE(worst, kTol) << c.name;
    EXPECT_GE(conserved, kTeeth) << c.name;
    if (c.o.dampening > 0.0) {
      // Pitfall 6: dampening the first buffer too is a visible, not a round-off, difference.
      report(std::string("  teeth: first buffer dampened, ") + c.name, damped_first);
      EXPECT_GE(damped_first, 1e-3 * kTeeth) << c.name;
      EXPECT_GE(damped_first, 1e3 * worst) << c.name;
    }
  }
}

TEST(ExactTranslation, NesterovAndDecoupledMatchClosedForms) {
  const OptimParams nes = params(0.1, 5e-3, 0.9, 0.0, true);
  const Mat2 m = nesterov_translation_matrix(nes);
  ExactTranslation ex(nes, {1.5});
  double worst = 0.0;
  for (long n = 0; n <= 5000; ++n) {
    const Vec2 want = mul(mat_pow(m, n), {1.5, 0.0});
    worst = std::max(worst, double(std::abs(ex.value()[0] - want[0]) / 1.5));
    worst = std::max(worst, double(std::abs(ex.aux()[0] - want[1]) / (1.5 * nes.weight_decay)));
    ex.advance();
  }
  report("translation Nesterov vs matrix power", worst);
  EXPECT_LE(worst, kTol);

  // Decoupled: Σ_A v ≡ 0, so S_n = (1 − ηλ)^n S_0 for any β, and m stays exactly 0.
  for (double beta : {0.0, 0.9, 0.99}) {
    const OptimParams dec = params(0.1, 5e-3, beta, 0.0, false, true);
    ExactTranslation dx(dec, {-0.7});
    double err = 0.0;
    for (long n = 0; n <= 5000; ++n) {
      const LD want = geometric(decoupled_shrink(dec), n) * -0.7;
      err = std::max(err, double(std::abs(dx.value()[0] - want) / 0.7));
      EXPECT_EQ(dx.aux()[0], 0.0);
      dx.advance();
    }
    EXPECT_LE(err, kTol) << "decoupled beta " << beta;
  }
}

TEST(ExactTranslation, TheoryTargets) {
  // §6: SGD over 39,100 steps, S(end)/S(0) exact vs continuous.
  struct Row {
    double lam, exact, continuous;
  };
  for (const Row& r : {Row{1e-3, 0.020037, 0.020041}, Row{5e-4, 0.14156, 0.14156},
                       Row{1e-4, 0.67638, 0.67638}}) {
    ExactTranslation ex(params(0.1, r.lam, 0.0), {1.0});
    ContinuousPredictor cp(Family::translation, params(0.1, r.lam, 0.0), {1.0});
    for (int k = 0; k < 39100; ++k) {
      ex.advance();
      cp.advance(Forcing{});
    }
    EXPECT_NEAR(ex.value()[0], r.exact, 5e-6) << r.lam;
    EXPECT_NEAR(cp.value()[0], r.continuous, 5e-6) << r.lam;
  }
  // §6: (0.1, 5e-4, 0.99) oscillates with period ≈ 1257 steps and |r| = √β.
  ExactTranslation ex(params(0.1, 5e-4, 0.99), {1.0});
  std::vector<double> crossings;
  double prev = 1.0;
  for (int k = 1; k <= 12000; ++k) {
    ex.advance();
    const double s = ex.value()[0];
    if ((s < 0.0) != (prev < 0.0)) crossings.push_back(k - 1 + prev / (prev - s));
    prev = s;
  }
  ASSERT_GE(crossings.size(), 10u);
  const double period = 2.0 * (crossings.back() - crossings.front()) / (crossings.size() - 1);
  report("translation beta 0.99 period (steps; theory ~1257)", period);
  EXPECT_NEAR(period, 1257.0, 2.0);
}

TEST(ExactTranslation, ZeroSumStaysZero) {
  for (const OptimParams& o : {params(0.1, 5e-4, 0.0), params(0.1, 5e-4, 0.9, 0.3),
                               params(0.1, 5e-4, 0.9, 0.0, true), params(0.1, 5e-4, 0.9, 0.0, false, true)}) {
    ExactTranslation ex(o, {0.0, 0.0});
    for (int k = 0; k < 1000; ++k) ex.advance();
    EXPECT_EQ(ex.value()[0], 0.0);
    EXPECT_EQ(ex.aux()[1], 0.0);
    EXPECT_EQ(ex.step(), 1000);
  }
}

// ---------------------------------------------------------------------------------------------
// Scale / rescale, closed forms and direct sums

TEST(ExactQuadratic, SgdMatchesClosedForm) {
  const OptimParams o = params(0.1, 5e-3, 0.0);
  const int steps = 2000;
  const LD rho = (1 - LD(o.lr) * LD(o.weight_decay)) * (1 - LD(o.lr) * LD(o.weight_decay));
  // set 0: scale (G ≥ 0); set 1: rescale (G_in − G_out of either sign).
  const std::vector<double> g0 = uniform(steps, 0.0, 30.0, 1), g1 = uniform(steps, -20.0, 20.0, 2);
  const std::vector<double> x0{2.5, 0.3};
  ExactQuadratic ex(o, x0);
  double worst = 0.0, unforced = 0.0, conserved = 0.0;
  for (int n = 0; n <= steps; ++n) {
    for (int s = 0; s < 2; ++s) {
      const std::vector<double>& g = s == 0 ? g0 : g1;
      LD want = geometric(rho, n) * x0[s], scale = std::abs(want);
      for (int k = 0; k < n; ++k) {
        const LD term = LD(o.lr) * LD(o.lr) * geometric(rho, n - 1 - k) * g[k];
        want += term;
        scale += std::abs(term);
      }
      worst = std::max(worst, double(std::abs(ex.value()[s] - want) / scale));
      unforced = std::max(unforced, double(std::abs(geometric(rho, n) * x0[s] - want) / scale));
      conserved = std::max(conserved, double(std::abs(x0[s] - want) / scale));
    }
    if (n < steps) {
      const double g[2] = {g0[n], g1[n]};
      ex.advance(Forcing{g});
      EXPECT_EQ(ex.aux()[0], 0.0);
    }
  }
  report("quadratic SGD vs closed form", worst);
  report("  teeth: forcing dropped", unforced);
  report("  teeth: conserved", conserved);
  EXPECT_LE(worst, kTol);
  EXPECT_GE(unforced, kTeeth);
  EXPECT_GE(conserved, kTeeth);
}

// Runs ExactQuadratic over random forcings and compares with direct_sum.
struct DirectCase {
  const char* name;
  OptimParams o;
};

double run_against_direct(const DirectCase& c, double* unforced_err = nullptr) {
  const OptimParams& o = c.o;
  const int steps = 1500;
  const double q0 = 3.0;
  // Forcing scaled so that the fixed point Q* = ηV(1 + β)/(2λ) is ≈ Q_0 (λ = 0: slow growth).
  const double vstar = o.weight_decay > 0 ? 2.0 * o.weight_decay * q0 / (o.lr * (1 + o.momentum))
                                          : 1e-3 * q0 / (o.lr * o.lr);
  const std::vector<double> v = uniform(steps, 0.2 * vstar, 1.8 * vstar, 7);
  const std::vector<double> w = uniform(steps, -0.5 * vstar, 1.5 * vstar, 8);  // ⟨u, v'⟩
  Mat2 m0{}, m{};
  std::vector<Vec2> f(steps), zero(steps, Vec2{0.0, 0.0});
  if (o.nesterov) {
    m0 = m = nesterov_matrix(o);
  } else if (o.decoupled) {
    m0 = m = decoupled_matrix(o);
  } else {
    m0 = heavy_ball_matrix(o, 1.0);
    m = heavy_ball_matrix(o, 1.0 - o.dampening);
  }
  const LD eta = o.lr;
  for (int k = 0; k < steps; ++k) f[k] = {eta * eta * v[k], -eta * (o.nesterov ? w[k] : v[k])};
  const std::vector<Vec2> want = direct_sum(m0, m, {q0, 0.0}, f, steps);
  ExactQuadratic ex(o, {q0});
  double worst = 0.0;
  for (int n = 0; n <= steps; ++n) {
    // A = ⟨θ, v⟩ is measured in units of Q/η (ηA = ⟨θ_k, θ_k − θ_{k+1}⟩ for heavy ball): a
    // float64 state pins A only to ~ulp(Q)/η.
    const LD scale = std::abs(want[n][0]);
    worst = std::max(worst, double(std::abs(ex.value()[0] - want[n][0]) / scale));
    worst = std::max(worst, double(eta * std::abs(ex.aux()[0] - want[n][1]) / scale));
    if (n == steps) break;
    Forcing fk;
    fk.velocity_sq = &v[n];
    fk.update_sq = &v[n];
    fk.update_dot_velocity = &w[n];
    ex.advance(fk);
  }
  if (unforced_err != nullptr) {
    const std::vector<Vec2> free = direct_sum(m0, m, {q0, 0.0}, zero, steps);
    *unforced_err = 0.0;
    for (int n = 0; n <= steps; ++n) {
      *unforced_err = std::max(*unforced_err, double(std::abs(free[n][0] - want[n][0]) / std::abs(want[n][0])));
    }
  }
  return worst;
}

TEST(ExactQuadratic, MomentumVariantsMatchDirectSums) {
  const DirectCase cases[] = {
      {"heavy ball 0.9 (over)", params(0.1, 5e-4, 0.9)},
      {"heavy ball 0.99 (oscillating)", params(0.1, 5e-4, 0.99)},
      {"heavy ball 0.99 lam 5e-2 eta 0.05", params(0.05, 5e-2, 0.99)},
      {"heavy ball 0.9 no decay", params(0.1, 0.0, 0.9)},
      {"dampening 0.3", params(0.1, 5e-3, 0.9, 0.3)},
      {"dampening 0.01 beta 0.99", params(0.1, 5e-4, 0.99, 0.01)},
      {"nesterov 0.9", params(0.1, 5e-3, 0.9, 0.0, true)},
      {"decoupled 0.9", params(0.1, 5e-3, 0.9, 0.0, false, true)},
      {"decoupled 0.99", params(0.1, 5e-4, 0.99, 0.0, false, true)}};
  for (const DirectCase& c : cases) {
    double unforced = 0.0;
    const double worst = run_against_direct(c, &unforced);
    report(std::string("quadratic vs direct sum, ") + c.name, worst);
    EXPECT_LE(worst, kTol) << c.name;
    EXPECT_GE(unforced, kTeeth) << c.name;
  }
}

TEST(ExactQuadratic, DampeningSparesTheFirstBuffer) {
  // The recurrence must use ν_0 = 1; a direct sum with ν_0 = 1 − τ (pitfall 6) must miss.
  const OptimParams o = params(0.1, 5e-3, 0.9, 0.3);
  const int steps = 800;
  const std::vector<double> v = uniform(steps, 0.01, 0.05, 3);
  std::vector<Vec2> f(steps);
  const LD eta = o.lr;
  for (int k = 0; k < steps; ++k) f[k] = {eta * eta * v[k], -eta * v[k]};
  const Mat2 m = heavy_ball_matrix(o, 1 - LD(o.dampening));
  const std::vector<Vec2> right = direct_sum(heavy_ball_matrix(o, 1.0), m, {3.0, 0.0}, f, steps);
  const std::vector<Vec2> wrong = direct_sum(m, m, {3.0, 0.0}, f, steps);
  ExactQuadratic ex(o, {3.0});
  double err = 0.0, miss = 0.0;
  for (int n = 0; n <= steps; ++n) {
    err = std::max(err, double(std::abs(ex.value()[0] - right[n][0]) / right[n][0]));
    miss = std::max(miss, double(std::abs(wrong[n][0] - right[n][0]) / right[n][0]));
    if (n < steps) ex.advance(Forcing{nullptr, nullptr, &v[n]});
  }
  report("  teeth: dampened first buffer (quadratic)", miss);
  EXPECT_LE(err, kTol);
  EXPECT_GE(miss, kTeeth);
}

TEST(ExactQuadratic, ReadsOnlyTheForcingsItNeeds) {
  const double g = 2.0, v = 3.0, u = 5.0, w = 7.0;
  auto run = [](const OptimParams& o, const Forcing& f) {
    ExactQuadratic ex(o, {1.0});
    ex.advance(f);
    return ex.value()[0];
  };
  const OptimParams sgd = params(0.1, 1e-2, 0.0), hb = params(0.1, 1e-2, 0.9);
  const OptimParams nes = params(0.1, 1e-2, 0.9, 0.0, true);
  const OptimParams dsgd = params(0.1, 1e-2, 0.0, 0.0, false, true);
  EXPECT_THROW(run(sgd, Forcing{nullptr, &g, &v, &u, &w}), std::invalid_argument);
  EXPECT_NO_THROW(run(sgd, Forcing{&g}));
  EXPECT_THROW(run(hb, Forcing{&g, &g, nullptr, &u, &w}), std::invalid_argument);
  EXPECT_NO_THROW(run(hb, Forcing{nullptr, nullptr, &v}));
  EXPECT_THROW(run(nes, Forcing{&g, &g, &v, nullptr, &w}), std::invalid_argument);
  EXPECT_THROW(run(nes, Forcing{&g, &g, &v, &u, nullptr}), std::invalid_argument);
  EXPECT_NO_THROW(run(nes, Forcing{nullptr, nullptr, nullptr, &u, &w}));
  EXPECT_THROW(run(dsgd, Forcing{nullptr, &g}), std::invalid_argument);
  // Decoupled SGD: v' = g, so G stands in for V; V wins when both are given.
  const double c = 1.0 - 0.1 * 1e-2;
  EXPECT_DOUBLE_EQ(run(dsgd, Forcing{&g}), c * c + 0.01 * g);
  EXPECT_DOUBLE_EQ(run(dsgd, Forcing{&g, nullptr, &v}), c * c + 0.01 * v);
  // The one-step values, by hand: SGD (1 − ηλ)² + η²G; heavy ball 1 − 2ηλ + η²V.
  EXPECT_DOUBLE_EQ(run(sgd, Forcing{&g}), c * c + 0.01 * g);
  EXPECT_DOUBLE_EQ(run(hb, Forcing{nullptr, nullptr, &v}), 1.0 - 2e-3 + 0.01 * v);
}

TEST(ExactQuadratic, MillionStepsStayAccurate) {
  // Constant forcing: z_n = M^n z_0 + (I − M)⁻¹(I − M^n) f, and the fixed point of §6.
  const long steps = 1000000;
  const OptimParams hb = params(0.1, 5e-4, 0.99);
  const double v = 0.37, eta = hb.lr, lam = hb.weight_decay, beta = hb.momentum;
  const Mat2 m = heavy_ball_matrix(hb, 1.0);
  const Vec2 f{LD(eta) * LD(eta) * v, -LD(eta) * v};
  const LD det = (1 - m[0]) * (1 - m[3]) - m[1] * m[2];  // det(I − M) = 2ηλ
  auto closed = [&](long n) {
    const Mat2 p = mat_pow(m, n);
    const Vec2 z = mul(p, {2.0, 0.0});
    const Vec2 r{f[0] - (p[0] * f[0] + p[1] * f[1]), f[1] - (p[2] * f[0] + p[3] * f[1])};
    return Vec2{z[0] + ((1 - m[3]) * r[0] + m[1] * r[1]) / det,
                z[1] + (m[2] * r[0] + (1 - m[0]) * r[1]) / det};
  };
  ExactQuadratic ex(hb, {2.0});
  ExactQuadratic sgd(params(0.1, 5e-4, 0.0), {2.0});
  ExactTranslation tr(hb, {2.0});
  const LD rho = (1 - LD(eta) * LD(lam)) * (1 - LD(eta) * LD(lam));
  double worst = 0.0, worst_sgd = 0.0;
  bool finite = true;
  for (long n = 0; n <= steps; ++n) {
    if (n == 10 || n == 1000 || n == 100000 || n == steps) {
      const Vec2 want = closed(n);
      worst = std::max(worst, double(std::abs(ex.value()[0] - want[0]) / want[0]));
      worst = std::max(worst, double(eta * std::abs(ex.aux()[0] - want[1]) / want[0]));  // A in Q/η
      const LD rn = geometric(rho, n);
      const LD want_sgd = rn * 2 + LD(eta) * LD(eta) * v * (1 - rn) / (1 - rho);
      worst_sgd = std::max(worst_sgd, double(std::abs(sgd.value()[0] - want_sgd) / want_sgd));
    }
    finite = finite && std::isfinite(ex.value()[0]) && std::isfinite(tr.value()[0]);
    if (n == steps) break;
    ex.advance(Forcing{nullptr, nullptr, &v});
    sgd.advance(Forcing{&v});
    tr.advance();
  }
  report("quadratic heavy ball 1e6 steps vs closed form", worst);
  report("quadratic SGD 1e6 steps vs closed form", worst_sgd);
  EXPECT_TRUE(finite);
  EXPECT_LE(worst, kTol);
  // A float64 state contracting by |ρ − 1| = 1e-4 per step stalls anywhere its increment is
  // below half an ulp: |X − X*|/X ≤ ε/|ρ − 1| (1.1e-12 here) is the float64 floor, not drift.
  EXPECT_LE(worst_sgd, 2 * std::numeric_limits<double>::epsilon() / (1 - double(rho)));
  // §6 fixed point: Q* = ηV(1 + β)/(2λ), A* = −ηV/2; SGD ηG = (2λ − ηλ²)Q.
  EXPECT_NEAR(ex.value()[0] / (eta * v * (1 + beta) / (2 * lam)), 1.0, kTol);
  // A* is pinned only to ~ulp(Q*)/η by a float64 state: compare it in units of Q*/η.
  EXPECT_NEAR(eta * (ex.aux()[0] + eta * v / 2) / ex.value()[0], 0.0, kTol);
  EXPECT_NEAR(nmech::theory::equilibrium_ratio(hb, v, ex.value()[0]), 1.0, kTol);
  EXPECT_NEAR(nmech::theory::equilibrium_ratio(params(0.1, 5e-4, 0.0), v, sgd.value()[0]), 1.0,
              kTol);
  EXPECT_LE(std::abs(tr.value()[0]), 1e-300);  // oscillates down to (sub)normals, never NaN
}

// ---------------------------------------------------------------------------------------------
// Float64 simulation of the optimizer on toys with exact symmetries

// LibTorch SGD (docs/THEORY.md §0): d = g + λθ; v_1 = d_0 (undampened copy), v_{k+1} = βv_k + (1 − τ)d_k;
// u = v_{k+1} or d + βv_{k+1} (Nesterov); θ ← θ − ηu. Decoupled: d = g, θ ← (1 − ηλ)θ − ηu.
class TorchSgd {
 public:
  explicit TorchSgd(const OptimParams& p) : p_(p) {}
  void step(std::vector<double>& theta, const std::vector<double>& g) {
    const std::size_t n = theta.size();
    d_.resize(n);
    u_.resize(n);
    for (std::size_t i = 0; i < n; ++i) d_[i] = p_.decoupled ? g[i] : g[i] + p_.weight_decay * theta[i];
    if (p_.momentum != 0.0) {
      if (buf_.empty()) {
        buf_ = d_;
      } else {
        for (std::size_t i = 0; i < n; ++i) buf_[i] = p_.momentum * buf_[i] + (1.0 - p_.dampening) * d_[i];
      }
      v_ = buf_;
      for (std::size_t i = 0; i < n; ++i) u_[i] = p_.nesterov ? d_[i] + p_.momentum * buf_[i] : buf_[i];
    } else {
      v_ = d_;
      u_ = d_;
    }
    const double c = p_.decoupled ? 1.0 - p_.lr * p_.weight_decay : 1.0;
    for (std::size_t i = 0; i < n; ++i) theta[i] = c * theta[i] - p_.lr * u_[i];
  }
  const std::vector<double>& d() const { return d_; }
  const std::vector<double>& v() const { return v_; }
  const std::vector<double>& u() const { return u_; }

 private:
  OptimParams p_;
  std::vector<double> buf_, d_, v_, u_;
};

struct SetSpec {
  std::vector<std::size_t> in, out;  // a scale or translation set has out empty
};

class Toy {
 public:
  virtual ~Toy() = default;
  virtual std::vector<double> init(std::mt19937_64& rng) const = 0;
  virtual void grad(const std::vector<double>& theta, std::vector<double>& g,
                    std::mt19937_64& rng) const = 0;
  virtual std::vector<SetSpec> sets() const = 0;
};

// L(θ) = ¼|C ŵ − y|², ŵ = θ/|θ|, fresh C ∈ R^{4×12}, y per step: one stochastic scale set.
class ScaleToy : public Toy {
 public:
  static constexpr std::size_t kDim = 12, kRows = 4;
  std::vector<double> init(std::mt19937_64& rng) const override {
    std::normal_distribution<double> n(0.0, 1.0);
    std::vector<double> t(kDim);
    for (auto& x : t) x = n(rng);
    return t;
  }
  void grad(const std::vector<double>& theta, std::vector<double>& g,
            std::mt19937_64& rng) const override {
    std::normal_distribution<double> n(0.0, 1.0);
    double q = 0.0;
    for (double x : theta) q += x * x;
    const double norm = std::sqrt(q);
    std::vector<double> df(kDim, 0.0);
    for (std::size_t r = 0; r < kRows; ++r) {
      std::vector<double> c(kDim);
      double res = -n(rng);
      for (std::size_t j = 0; j < kDim; ++j) {
        c[j] = n(rng);
        res += c[j] * theta[j] / norm;
      }
      for (std::size_t j = 0; j < kDim; ++j) df[j] += 0.5 * res * c[j];
    }
    // ∇_θ = (I − ŵŵᵀ)∇_ŵ f/|θ|; project twice so that ⟨g, θ⟩ is at round-off.
    g.assign(kDim, 0.0);
    for (std::size_t j = 0; j < kDim; ++j) g[j] = df[j] / norm;
    for (int pass = 0; pass < 2; ++pass) {
      double p = 0.0;
      for (std::size_t j = 0; j < kDim; ++j) p += g[j] * theta[j];
      for (std::size_t j = 0; j < kDim; ++j) g[j] -= p / q * theta[j];
    }
  }
  std::vector<SetSpec> sets() const override {
    SetSpec s;
    for (std::size_t j = 0; j < kDim; ++j) s.in.push_back(j);
    return {s};
  }
};

// Linear layer z = Wx + b, W ∈ R^{5×6}, mean softmax CE over 8 random samples per step.
// Translation sets: each column of W and the bias (Σ_i ∂ℓ/∂z_i = 0).
class SoftmaxToy : public Toy {
 public:
  static constexpr std::size_t kK = 5, kF = 6, kB = 8;
  explicit SoftmaxToy(bool zero_bias = false) : zero_bias_(zero_bias) {}
  std::vector<double> init(std::mt19937_64& rng) const override {
    std::normal_distribution<double> n(0.0, 1.0);
    std::vector<double> t(kK * kF + kK);
    for (std::size_t i = 0; i < kK * kF; ++i) t[i] = 1.0 + 0.5 * n(rng);
    for (std::size_t i = 0; i < kK; ++i) t[kK * kF + i] = zero_bias_ ? 0.0 : 0.3 + 0.2 * n(rng);
    return t;
  }
  void grad(const std::vector<double>& theta, std::vector<double>& g,
            std::mt19937_64& rng) const override {
    std::normal_distribution<double> n(0.0, 1.0);
    std::uniform_int_distribution<std::size_t> label(0, kK - 1);
    g.assign(theta.size(), 0.0);
    for (std::size_t s = 0; s < kB; ++s) {
      double x[kF], z[kK];
      for (auto& v : x) v = n(rng);
      const std::size_t y = label(rng);
      double zmax = -1e300;
      for (std::size_t i = 0; i < kK; ++i) {
        z[i] = theta[kK * kF + i];
        for (std::size_t j = 0; j < kF; ++j) z[i] += theta[i * kF + j] * x[j];
        zmax = std::max(zmax, z[i]);
      }
      double sum = 0.0;
      for (auto& v : z) sum += (v = std::exp(v - zmax));
      for (std::size_t i = 0; i < kK; ++i) {
        const double dz = (z[i] / sum - (i == y ? 1.0 : 0.0)) / kB;
        for (std::size_t j = 0; j < kF; ++j) g[i * kF + j] += dz * x[j];
        g[kK * kF + i] += dz;
      }
    }
  }
  std::vector<SetSpec> sets() const override {
    std::vector<SetSpec> out(kF + 1);
    for (std::size_t j = 0; j < kF; ++j) {
      for (std::size_t i = 0; i < kK; ++i) out[j].in.push_back(i * kF + j);
    }
    for (std::size_t i = 0; i < kK; ++i) out[kF].in.push_back(kK * kF + i);
    return out;
  }

 private:
  bool zero_bias_;
};

// 5 → 4 (ReLU) → 3, mean squared error over 8 random samples. Rescale pair per hidden unit j:
// in = W1[j, :] ∪ {b1[j]}, out = W2[:, j].
class ReluToy : public Toy {
 public:
  static constexpr std::size_t kI = 5, kH = 4, kO = 3, kB = 8;
  static constexpr std::size_t kW1 = 0, kB1 = kH * kI, kW2 = kB1 + kH, kB2 = kW2 + kO * kH;
  std::vector<double> init(std::mt19937_64& rng) const override {
    std::normal_distribution<double> n(0.0, 0.7);
    std::vector<double> t(kB2 + kO, 0.0);
    for (std::size_t i = 0; i < kB1; ++i) t[kW1 + i] = n(rng);
    for (std::size_t i = 0; i < kH; ++i) t[kB1 + i] = 0.1;
    for (std::size_t i = 0; i < kO * kH; ++i) t[kW2 + i] = n(rng);
    return t;
  }
  void grad(const std::vector<double>& theta, std::vector<double>& g,
            std::mt19937_64& rng) const override {
    std::normal_distribution<double> n(0.0, 1.0);
    g.assign(theta.size(), 0.0);
    for (std::size_t s = 0; s < kB; ++s) {
      double x[kI], z[kH], a[kH], out[kO], dout[kO];
      for (auto& v : x) v = n(rng);
      for (std::size_t j = 0; j < kH; ++j) {
        z[j] = theta[kB1 + j];
        for (std::size_t i = 0; i < kI; ++i) z[j] += theta[kW1 + j * kI + i] * x[i];
        a[j] = std::max(0.0, z[j]);
      }
      for (std::size_t o = 0; o < kO; ++o) {
        out[o] = theta[kB2 + o];
        for (std::size_t j = 0; j < kH; ++j) out[o] += theta[kW2 + o * kH + j] * a[j];
        dout[o] = (out[o] - n(rng)) / kB;
        g[kB2 + o] += dout[o];
        for (std::size_t j = 0; j < kH; ++j) g[kW2 + o * kH + j] += dout[o] * a[j];
      }
      for (std::size_t j = 0; j < kH; ++j) {
        if (z[j] <= 0.0) continue;
        double da = 0.0;
        for (std::size_t o = 0; o < kO; ++o) da += theta[kW2 + o * kH + j] * dout[o];
        g[kB1 + j] += da;
        for (std::size_t i = 0; i < kI; ++i) g[kW1 + j * kI + i] += da * x[i];
      }
    }
  }
  std::vector<SetSpec> sets() const override {
    std::vector<SetSpec> out(kH);
    for (std::size_t j = 0; j < kH; ++j) {
      for (std::size_t i = 0; i < kI; ++i) out[j].in.push_back(kW1 + j * kI + i);
      out[j].in.push_back(kB1 + j);
      for (std::size_t o = 0; o < kO; ++o) out[j].out.push_back(kW2 + o * kH + j);
    }
    return out;
  }
};

// Per-set reductions of one run (docs/THEORY.md §4.5), all as in − out. x and norm have steps + 1 rows.
struct Measured {
  Table x, norm, g, d, v, u, uv;
  std::vector<std::vector<double>> theta;  // θ_k, for angles
};

template <class F>
double reduce(const SetSpec& s, F f) {
  double in = 0.0, out = 0.0;
  for (std::size_t i : s.in) in += f(i);
  for (std::size_t i : s.out) out += f(i);
  return in - out;
}

// sums: translation (x = Σθ, norm |S_0|); otherwise x = Q_in − Q_out, norm Q_in + Q_out.
Measured simulate(const Toy& toy, const OptimParams& opt, int steps, bool sums,
                  std::uint64_t seed = 42) {
  std::mt19937_64 rng(seed);
  std::vector<double> theta = toy.init(rng), g;
  const std::vector<SetSpec> sets = toy.sets();
  TorchSgd sgd(opt);
  Measured m;
  auto state_row = [&]() {
    std::vector<double> x, norm;
    for (const SetSpec& s : sets) {
      if (sums) {
        x.push_back(reduce(s, [&](std::size_t i) { return theta[i]; }));
        norm.push_back(m.x.empty() ? std::abs(x.back()) : m.norm[0][norm.size()]);
      } else {
        x.push_back(reduce(s, [&](std::size_t i) { return theta[i] * theta[i]; }));
        double total = 0.0;
        for (std::size_t i : s.in) total += theta[i] * theta[i];
        for (std::size_t i : s.out) total += theta[i] * theta[i];
        norm.push_back(total);
      }
    }
    m.x.push_back(x);
    m.norm.push_back(norm);
    m.theta.push_back(theta);
  };
  for (int k = 0; k < steps; ++k) {
    state_row();
    toy.grad(theta, g, rng);
    sgd.step(theta, g);
    std::vector<double> gr, dr, vr, ur, uvr;
    for (const SetSpec& s : sets) {
      gr.push_back(reduce(s, [&](std::size_t i) { return g[i] * g[i]; }));
      dr.push_back(reduce(s, [&](std::size_t i) { return sgd.d()[i] * sgd.d()[i]; }));
      vr.push_back(reduce(s, [&](std::size_t i) { return sgd.v()[i] * sgd.v()[i]; }));
      ur.push_back(reduce(s, [&](std::size_t i) { return sgd.u()[i] * sgd.u()[i]; }));
      uvr.push_back(reduce(s, [&](std::size_t i) { return sgd.u()[i] * sgd.v()[i]; }));
    }
    m.g.push_back(gr);
    m.d.push_back(dr);
    m.v.push_back(vr);
    m.u.push_back(ur);
    m.uv.push_back(uvr);
  }
  state_row();
  return m;
}

Forcing forcing_at(const Measured& m, std::size_t k) {
  return Forcing{m.g[k].data(), m.d[k].data(), m.v[k].data(), m.u[k].data(), m.uv[k].data()};
}

double max_error(const Table& pred, const Measured& m) {
  double worst = 0.0;
  for (std::size_t k = 0; k < pred.size(); ++k) {
    for (std::size_t s = 0; s < pred[k].size(); ++s) {
      worst = std::max(worst, std::abs(pred[k][s] - m.x[k][s]) / m.norm[k][s]);
    }
  }
  return worst;
}

// Free-running recurrence from x_0 on the measured forcings (or on zero forcings).
Table quadratic_run(const Measured& m, const OptimParams& o, bool drop_forcing) {
  ExactQuadratic ex(o, m.x[0]);
  const std::vector<double> zero(m.x[0].size(), 0.0);
  const Forcing none{zero.data(), zero.data(), zero.data(), zero.data(), zero.data()};
  Table out{ex.value()};
  for (std::size_t k = 0; k + 1 < m.x.size(); ++k) {
    ex.advance(drop_forcing ? none : forcing_at(m, k));
    out.push_back(ex.value());
  }
  return out;
}

Table translation_run(const Measured& m, const OptimParams& o) {
  ExactTranslation ex(o, m.x[0]);
  Table out{ex.value()};
  for (std::size_t k = 0; k + 1 < m.x.size(); ++k) {
    ex.advance();
    out.push_back(ex.value());
  }
  return out;
}

Table conserved(const Measured& m) { return Table(m.x.size(), m.x[0]); }

struct Variant {
  const char* name;
  OptimParams o;
};

std::vector<Variant> variants() {
  return {{"sgd", params(0.1, 5e-3, 0.0)},
          {"heavy ball 0.9", params(0.1, 5e-3, 0.9)},
          {"heavy ball 0.99", params(0.1, 5e-3, 0.99)},
          {"heavy ball 0.9 no decay", params(0.1, 0.0, 0.9)},
          {"dampening 0.3", params(0.1, 5e-3, 0.9, 0.3)},
          {"nesterov 0.9", params(0.1, 5e-3, 0.9, 0.0, true)},
          {"decoupled sgd", params(0.1, 5e-3, 0.0, 0.0, false, true)},
          {"decoupled 0.9", params(0.1, 5e-3, 0.9, 0.0, false, true)},
          {"decoupled nesterov 0.9", params(0.1, 5e-3, 0.9, 0.0, true, true)}};
}

constexpr int kSimSteps = 3000;

TEST(Simulation, ScaleToyFollowsTheRecurrence) {
  ScaleToy toy;
  double weakest = 1e300;
  for (const Variant& var : variants()) {
    const Measured m = simulate(toy, var.o, kSimSteps, false);
    const double err = max_error(quadratic_run(m, var.o, false), m);
    const double unforced = max_error(quadratic_run(m, var.o, true), m);
    const double cons = max_error(conserved(m), m);
    report(std::string("scale toy, ") + var.name, err);
    EXPECT_LE(err, kTol) << var.name;
    EXPECT_GE(unforced, kTeeth) << var.name;
    EXPECT_GE(cons, kTeeth) << var.name;
    weakest = std::min({weakest, unforced, cons});
  }
  report("  teeth: scale toy, smallest miss (forcing dropped / conserved)", weakest);
}

TEST(Simulation, RescaleToyFollowsTheRecurrence) {
  ReluToy toy;
  double weakest = 1e300;
  for (const Variant& var : variants()) {
    const Measured m = simulate(toy, var.o, kSimSteps, false);
    const double err = max_error(quadratic_run(m, var.o, false), m);
    const double unforced = max_error(quadratic_run(m, var.o, true), m);
    const double cons = max_error(conserved(m), m);
    report(std::string("rescale toy, ") + var.name, err);
    EXPECT_LE(err, kTol) << var.name;
    EXPECT_GE(unforced, kTeeth) << var.name;
    EXPECT_GE(cons, kTeeth) << var.name;
    weakest = std::min({weakest, unforced, cons});
  }
  report("  teeth: rescale toy, smallest miss (forcing dropped / conserved)", weakest);
}

TEST(Simulation, TranslationToyFollowsTheRecurrence) {
  SoftmaxToy toy;
  double weakest = 1e300;
  for (const Variant& var : variants()) {
    const Measured m = simulate(toy, var.o, kSimSteps, true);
    const double err = max_error(translation_run(m, var.o), m);
    const double cons = max_error(conserved(m), m);
    report(std::string("translation toy, ") + var.name, err);
    EXPECT_LE(err, kTol) << var.name;
    // Without decay S is conserved exactly (§3); otherwise conservation must fail badly.
    if (var.o.weight_decay > 0.0) {
      EXPECT_GE(cons, kTeeth) << var.name;
      weakest = std::min(weakest, cons);
    }
  }
  report("  teeth: translation toy, smallest miss (conserved)", weakest);
  // A zero-initialised bias sum stays at round-off, and the recurrence keeps it exactly 0.
  const Measured m = simulate(SoftmaxToy(true), params(0.1, 5e-3, 0.9), kSimSteps, true);
  const Table pred = translation_run(m, params(0.1, 5e-3, 0.9));
  double drift = 0.0;
  for (std::size_t k = 0; k < m.x.size(); ++k) {
    EXPECT_EQ(pred[k][SoftmaxToy::kF], 0.0);
    drift = std::max(drift, std::abs(m.x[k][SoftmaxToy::kF]));
  }
  report("translation toy, zero bias sum drift (absolute)", drift);
  EXPECT_LE(drift, 1e-14);
}

// Kahan's angle between two vectors: 2 atan2(|â − b̂|, |â + b̂|), accurate at any angle.
double vector_angle(const std::vector<double>& a, const std::vector<double>& b) {
  double na = 0.0, nb = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  na = std::sqrt(na);
  nb = std::sqrt(nb);
  double dm = 0.0, dp = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    dm += (a[i] / na - b[i] / nb) * (a[i] / na - b[i] / nb);
    dp += (a[i] / na + b[i] / nb) * (a[i] / na + b[i] / nb);
  }
  return 2.0 * std::atan2(std::sqrt(dm), std::sqrt(dp));
}

TEST(Simulation, AngularUpdateAndEquilibrium) {
  // §6 toy (λ = 5e-3): RMS angle ≈ Δ* (0.03162 at β = 0, 0.02294 at β = 0.9) and the
  // equilibrium ratio ≈ 1, after 5 T_rel, averaged over ≥ T_rel steps (§7: 5%).
  for (double beta : {0.0, 0.9}) {
    const OptimParams o = params(0.1, 5e-3, beta);
    const long t_rel = std::lround(nmech::theory::relax_steps(o));
    const int steps = static_cast<int>(5 * t_rel + 4 * t_rel);
    const Measured m = simulate(ScaleToy(), o, steps, false, 7);
    double worst = 0.0, sum_sq = 0.0, forcing = 0.0, q = 0.0;
    long count = 0;
    for (int k = 0; k < steps; ++k) {
      const double u = beta == 0.0 ? m.d[k][0] : m.v[k][0];  // |θ_{k+1} − θ_k|²/η²
      const double ang = nmech::theory::angle_step(m.x[k][0], m.x[k + 1][0], u, o.lr);
      const double truth = vector_angle(m.theta[k], m.theta[k + 1]);
      worst = std::max(worst, std::abs(ang - truth) / truth);
      if (k >= 5 * t_rel) {
        sum_sq += ang * ang;
        forcing += beta == 0.0 ? m.g[k][0] : m.v[k][0];
        q += m.x[k][0];
        ++count;
      }
    }
    const double rms = std::sqrt(sum_sq / count);
    const double ratio = nmech::theory::equilibrium_ratio(o, forcing / count, q / count);
    report("angle_step vs vector angle, beta " + std::to_string(beta), worst);
    report("RMS angle / angle_eq, beta " + std::to_string(beta), rms / nmech::theory::angle_eq(o));
    report("equilibrium_ratio, beta " + std::to_string(beta), ratio);
    EXPECT_LE(worst, 1e-10);
    EXPECT_NEAR(rms / nmech::theory::angle_eq(o), 1.0, 0.05);
    EXPECT_NEAR(ratio, 1.0, 0.05);
  }
}

// §7 recommended float64 tolerances for the continuous predictions against the simulated truth
// (informative figures there; these are the recommended pass/fail bounds).
TEST(Simulation, ContinuousWithinRecommendedTolerances) {
  struct Case {
    const char* name;
    OptimParams o;
    KappaMode mode;
    double max_tol, late_tol;  // whole run (0: report only); second half
  };
  const Case cases[] = {
      {"sgd paper kappa", params(0.1, 1e-2, 0.0), KappaMode::paper, 1e-3, 1e-3},
      {"sgd modloss kappa", params(0.1, 1e-2, 0.0), KappaMode::modloss, 1e-6, 1e-6},
      // The oscillator's early maximum is model error in a transient where this toy's Q grows
      // 25× within ~10 steps (Ẋ(0) = 0 is assumed): reported, not asserted.
      {"beta 0.9 overdamped", params(0.1, 5e-4, 0.9), KappaMode::paper, 0.0, 1e-3},
      {"beta 0.99 underdamped", params(0.1, 5e-4, 0.99), KappaMode::paper, 0.0, 1e-2}};
  for (const Case& c : cases) {
    const int steps = 6000;
    const Measured m = simulate(ScaleToy(), c.o, steps, false, 11);
    ContinuousPredictor cp(Family::scale, c.o, m.x[0], c.mode);
    double worst = 0.0, late = 0.0;
    int at = 0;
    for (int k = 0; k <= steps; ++k) {
      const double err = std::abs(cp.value()[0] - m.x[k][0]) / m.x[k][0];
      if (err > worst) at = k;
      worst = std::max(worst, err);
      if (k >= steps / 2) late = std::max(late, err);
      if (k < steps) cp.advance(forcing_at(m, k));
    }
    report(std::string("continuous vs scale toy (max), ") + c.name, worst);
    std::printf("             (at step %d; Q_0 %.3g, Q_end %.3g)\n", at, m.x[0][0], m.x[steps][0]);
    report(std::string("continuous vs scale toy (2nd half), ") + c.name, late);
    if (c.max_tol > 0.0) {
      EXPECT_LE(worst, c.max_tol) << c.name;
    }
    EXPECT_LE(late, c.late_tol) << c.name;
  }
}

}  // namespace
