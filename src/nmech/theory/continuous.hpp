#pragma once
// The paper's continuous predictions (docs/THEORY.md §5) in stable online form: O(1) double state
// per set, every multiplier of modulus < 1, never e^{+ct}.
#include <complex>
#include <string>
#include <vector>

#include "nmech/theory/family.hpp"
#include "nmech/theory/forcing.hpp"
#include "nmech/theory/optim_params.hpp"
#include "nmech/theory/state_io.hpp"

namespace nmech::theory {

enum class DampingRegime { none, over, critical, under };  // none: first-order (β = 0)
std::string to_string(DampingRegime r);

// Oscillator constants of §5.2 for a family (ω_T for translation, ω_S otherwise).
struct Oscillator {
  double gamma = 0, omega = 0;
  DampingRegime regime = DampingRegime::none;
  static Oscillator make(Family fam, const OptimParams& opt);
  double h(double t) const;    // homogeneous solution, X(0) = 1, Ẋ(0) = 0
  double phi(double s) const;  // Green's function
};

// β = 0: pred_{n+1} = e^{−κη} pred_n + η² x_n with x = G (rescale G_in − G_out, translation 0).
// kappa_mode paper: κ = 2λ (translation λ); modloss: κ = 2λ + ηλ² (translation λ + ηλ²/2).
// β > 0: the damped oscillator X(ηn) = h(ηn) X_0 + 2η Σ_{k<n} φ(η(n − k)) V_{k+1} (§5.3);
// with dampening τ on η' = η(1 − τ) and V/(1 − τ)² (§5.2b).
enum class KappaMode { paper, modloss };

class ContinuousPredictor {
 public:
  ContinuousPredictor(Family fam, const OptimParams& opt, std::vector<double> initial,
                      KappaMode mode = KappaMode::paper);
  const std::vector<double>& value() const { return pred_; }  // prediction at step n
  void advance(const Forcing& f);                             // consume update n's forcing
  const Oscillator& oscillator() const { return osc_; }
  long step() const { return n_; }
  void save(StateWriter& w) const;  // checkpoint: the whole state, exactly
  void load(StateReader& r);

 private:
  void accumulate(const Forcing& f);  // fold update n's forcing into the accumulators
  void refresh();                     // value() at the current step n

  Family fam_;
  OptimParams opt_;
  KappaMode mode_;
  Oscillator osc_;
  std::vector<double> x0_, pred_;
  // online accumulators (only the ones the regime needs are sized)
  std::vector<std::complex<double>> zc_;   // underdamped Z_+
  std::vector<double> zp_, zm_, z0_, z1_;  // overdamped Z_+ − Z_−, Z_−; critical Z0, Z1
                                           // (β = 0: z0_ holds the forced part)
  std::vector<double> u_sq_;               // scratch: the forcing |u|² = V/(1 − τ)² of one step
  long n_ = 0;
};

// §6: per-step angular update from recorded scalars, U_k = |θ_{k+1} − θ_k|²/η².
double angle_step(double q_k, double q_next, double u_k, double lr);

}  // namespace nmech::theory
