#pragma once
// The exact discrete recurrences of docs/THEORY.md §4: the pass/fail oracle. Free running (never
// reset to measurements), double precision, one state per set.
#include <vector>

#include "nmech/theory/forcing.hpp"
#include "nmech/theory/optim_params.hpp"
#include "nmech/theory/state_io.hpp"

namespace nmech::theory {

// Translation (§4.1): state (S_k, m_k), m_k = Σ_A v_k. No forcing.
class ExactTranslation {
 public:
  ExactTranslation(const OptimParams& opt, std::vector<double> initial_sum);
  const std::vector<double>& value() const { return s_; }  // prediction of S_k
  const std::vector<double>& aux() const { return m_; }    // m_k (pred_exact_aux)
  void advance();                                          // k → k + 1
  long step() const { return k_; }
  void save(StateWriter& w) const;  // checkpoint: the whole state, exactly
  void load(StateReader& r);

 private:
  OptimParams opt_;
  std::vector<double> s_, m_;
  long k_ = 0;
};

// Scale (§4.2, §4.3) and rescale (§4.4, forcings as differences in − out): state (X_k, A_k),
// A_k = ⟨θ_k, v_k⟩ (for rescale the difference of the two sides), A_0 = 0.
// SGD (β = 0, no Nesterov): X_{k+1} = (1 − ηλ)² X_k + η² G_k.
class ExactQuadratic {
 public:
  ExactQuadratic(const OptimParams& opt, std::vector<double> initial);
  const std::vector<double>& value() const { return x_; }  // prediction of Q_k (or R_k)
  const std::vector<double>& aux() const { return a_; }    // A_k (pred_exact_aux)
  void advance(const Forcing& f);                          // consume update k's forcing
  long step() const { return k_; }
  void save(StateWriter& w) const;
  void load(StateReader& r);

 private:
  OptimParams opt_;
  std::vector<double> x_, a_;
  long k_ = 0;
};

}  // namespace nmech::theory
