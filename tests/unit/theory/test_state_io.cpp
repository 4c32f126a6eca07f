// Checkpointed theory state resumes bit for bit (the sweep's exact resume rests on it), in every
// optimizer regime; a corrupt state is refused.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <stdexcept>
#include <vector>

#include "nmech/theory/continuous.hpp"
#include "nmech/theory/exact.hpp"

namespace {

using namespace nmech::theory;

OptimParams params(double lr, double wd, double beta, bool nesterov = false) {
  OptimParams o;
  o.lr = lr;
  o.weight_decay = wd;
  o.momentum = beta;
  o.nesterov = nesterov;
  return o;
}

// Random but repeatable forcing for n sets at step k.
struct Forcings {
  std::vector<double> g, d, v, u, uv;
  Forcing at(long k, std::size_t n) {
    std::mt19937_64 rng(static_cast<std::uint64_t>(k) * 7919 + 13);
    std::uniform_real_distribution<double> U(0.1, 2.0);
    for (auto* x : {&g, &d, &v, &u, &uv}) {
      x->resize(n);
      for (double& e : *x) e = U(rng);
    }
    return Forcing{g.data(), d.data(), v.data(), u.data(), uv.data()};
  }
};

bool same_bits(const std::vector<double>& a, const std::vector<double>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0;
}

// Runs `steps` steps straight, and again with a save at `cut` loaded into a fresh object.
template <class T, class Make, class Advance>
void expect_exact_resume(Make make, Advance advance, long steps, long cut) {
  T straight = make();
  T first = make();
  for (long k = 0; k < steps; ++k) advance(straight, k);
  for (long k = 0; k < cut; ++k) advance(first, k);
  StateWriter w;
  first.save(w);
  T resumed = make();
  StateReader r(w.values());
  resumed.load(r);
  EXPECT_TRUE(r.done());
  for (long k = cut; k < steps; ++k) advance(resumed, k);
  EXPECT_TRUE(same_bits(straight.value(), resumed.value()));
  EXPECT_EQ(straight.step(), resumed.step());
  // Teeth: resuming from the state one step earlier does not give the same bits.
  T early = make();
  for (long k = 0; k + 1 < cut; ++k) advance(early, k);
  for (long k = cut; k < steps; ++k) advance(early, k);
  EXPECT_FALSE(same_bits(straight.value(), early.value()));
}

const std::vector<double> kInitial{1.5, 0.25, 3.0};

TEST(StateIo, ExactRecurrencesResumeBitForBit) {
  for (const OptimParams& o : {params(0.1, 5e-4, 0.0), params(0.1, 5e-4, 0.9), params(0.05, 5e-3, 0.9, true)}) {
    Forcings f;
    expect_exact_resume<ExactQuadratic>([&] { return ExactQuadratic(o, kInitial); },
                                         [&](ExactQuadratic& x, long k) { x.advance(f.at(k, 3)); }, 60, 23);
    expect_exact_resume<ExactTranslation>([&] { return ExactTranslation(o, kInitial); },
                                          [&](ExactTranslation& x, long) { x.advance(); }, 60, 23);
  }
}

TEST(StateIo, ContinuousPredictorsResumeBitForBitInEveryRegime) {
  // β = 0 (first order), under-, over- and critically damped scale oscillators, and translation.
  for (const OptimParams& o : {params(0.1, 5e-4, 0.0), params(0.1, 5e-4, 0.9), params(0.5, 0.05, 0.1)}) {
    for (Family fam : {Family::scale, Family::rescale, Family::translation}) {
      Forcings f;
      expect_exact_resume<ContinuousPredictor>(
          [&] { return ContinuousPredictor(fam, o, kInitial); },
          [&](ContinuousPredictor& x, long k) { x.advance(f.at(k, 3)); }, 80, 31);
    }
  }
}

TEST(StateIo, TruncatedOrCorruptStateIsRefused) {
  ExactQuadratic x(params(0.1, 5e-4, 0.9), kInitial);
  StateWriter w;
  x.save(w);
  std::vector<double> cut(w.values().begin(), w.values().end() - 1);
  StateReader r(cut);
  EXPECT_THROW(x.load(r), std::runtime_error);
  std::vector<double> corrupt = w.values();
  corrupt[0] = 1e9;  // a length no state has
  StateReader r2(corrupt);
  EXPECT_THROW(x.load(r2), std::runtime_error);
}

}  // namespace
