#pragma once
// The closed forms of one run's optimiser settings (docs/THEORY.md §4.1, §6): the equilibrium the
// scale sets relax to and the decay of the translation sums. Their one home: the store writes them
// as run attributes (layout/layout.cpp) and the Python analysis reads them from there.
#include <complex>
#include <string>
#include <utility>
#include <vector>

#include "nmech/theory/optim_params.hpp"

namespace nmech::theory {

// Δ* = √(2η'λ/(1 + β)); T_rel = (1 − β)/(4η'λ) (NaN without weight decay); the equilibrium ratio is
// c·forcing/Q with c = η'(1 + β)/(2λ(1 − τ)²) on V (SGD: η/(2λ − ηλ²) on G); η' = η(1 − τ) (§5.2b).
double angle_eq(const OptimParams& opt);
double relax_steps(const OptimParams& opt);
double equilibrium_factor(const OptimParams& opt);
double equilibrium_ratio(const OptimParams& opt, double forcing, double q);

// §4.1: the roots of the map of (S_k, m_k), m = Σ_A v, for k ≥ 1 that S excites from m_0 = 0, the
// larger modulus first. Decoupled weight decay keeps m ≡ 0 (Σg = 0 and no decay in v), so there S
// decays by 1 − ηλ alone. translation_root is |r_+| (√β when S oscillates; Li & Arora's
// equivalent LR factor is its inverse square per step), translation_period the steps per
// oscillation, 2π/|arg r_+| (infinite for a positive real root, 2 for a negative one, more than
// 2 exactly when the roots are complex).
std::pair<std::complex<double>, std::complex<double>> translation_roots(const OptimParams& opt);
double translation_root(const OptimParams& opt);
double translation_fast_root(const OptimParams& opt);  // |r_−|: how fast the transient goes
double translation_period(const OptimParams& opt);

// Every closed form above that a run's analysis reads, by its run-attribute name, in store order.
std::vector<std::pair<std::string, double>> closed_forms(const OptimParams& opt);

}  // namespace nmech::theory
