#pragma once
// `nmech verify`: numerical proof that claimed symmetry sets are symmetries of a network
// (docs/THEORY.md §2). For every set, in training mode on one fixed batch: loss invariance under finite
// group actions, the normalised gradient constraint, and the Hessian constraint by double
// backward. Also the negative controls: a network with one symmetry deliberately broken, checked
// against the claims of the intact wiring.
//
// What is checked for which set (VerifyReport::exhaustive says which mode ran):
//  - gradient constraint: every set, always (one backward, per-set reductions);
//  - family-wide ("combined") checks, always: one Hessian-vector product per family with
//    v = Σ_s c_s·generator_s, c_s = ±1 at random (the identity is linear in v, so it must hold for
//    any c), and the loss under all sets of the family acted on at once, each with its own
//    random factor (the actions commute), in two complementary patterns;
//  - exhaustive mode (--all, or a model whose per-set checks fit the cost budget): per-set loss
//    invariance (two factors each) and a per-set Hessian-vector product for every set;
//  - sampled mode (large models): per-set invariance and Hessian for a stratified random sample of
//    each family (round robin over its layers), plus per-layer invariance with all sets of the
//    layer acted on at once. Failures are attributed to sets only by per-set checks; a group check
//    that fails is reported as a failing check.
// BatchNorm ε breaks scale invariance slightly. The gradient constraint of a scale set is checked at
// the network's ε after subtracting the exact ε term E = ε/(σ_c² + ε)·w_c·∂L/∂w_c (docs/THEORY.md §2c),
// which is reported; the scale family's invariance and Hessian checks, whose ε terms are not known
// in closed form (they reach 1e-6 when σ_c² is small, e.g. MLP-BN at the paper's initialisation),
// run in the ε → 0 limit: every BatchNorm's ε is set to 1e-20 (float32: 1e-12) for them.
#include <ATen/Tensor.h>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "nmech/net/net.hpp"
#include "nmech/symmetry/sets.hpp"

namespace nmech::verify {

// Pass/fail thresholds (docs/THEORY.md §2a, §7b). float32 Hessian residuals are reported, never failed.
struct Tolerances {
  double invariance = 1e-10, gradient = 1e-10, hessian = 1e-8;
  // Scale sets' gradient residual, after subtracting the ε term. float32: 1e-4, since float32
  // BatchNorm backward sums N·H·W products per channel (8192 on conv1 at batch 8) and leaves up
  // to 4e-5 on conv1's 10-element sets; float64 leaves 1e-14.
  double scale_gradient = 1e-10;
  bool hessian_informational = false;
};
Tolerances tolerances(at::ScalarType dtype);

struct VerifyOptions {
  bool all = false;           // per-set invariance and Hessian checks for every set
  std::uint64_t seed = 0;     // torch is reseeded with it before every forward (same dropout mask);
                              // it also draws the random coefficients and samples
  double budget_macs = 2e11;  // multiply-accumulates the per-set checks may cost before sampling
};

constexpr double kNotChecked = std::numeric_limits<double>::quiet_NaN();

// One row of the table: the sets of one family owned by one layer. Residuals are the worst over
// the sets checked (kNotChecked when none was).
struct LayerResult {
  symmetry::Family family = symmetry::Family::translation;
  std::string layer;  // owning layer: "fc3", "conv3", "bn3"
  std::int64_t sets = 0;
  std::int64_t invariance_checked = 0, hessian_checked = 0;  // sets with per-set checks
  std::int64_t zero_gradient = 0;  // g_A ≡ 0 on this batch (dead unit): constraints hold trivially
  double invariance = kNotChecked;        // |L(ψ(θ,α)) − L(θ)|/|L| (scale: at ε → 0)
  double gradient = kNotChecked;          // docs/THEORY.md §2a item 2 (scale: less the ε term)
  double hessian = kNotChecked;           // docs/THEORY.md §2a item 3 (scale: at ε → 0)
  double group_invariance = kNotChecked;  // sampled mode: all sets of the layer acted on at once
  double epsilon = kNotChecked;           // scale: worst expected ε term |E|/(|θ_A||g_A|)
  double epsilon_ratio = kNotChecked;     // scale: worst ε/(σ_c² + ε)
  bool pass = true;
};

// Family-wide checks: every set of the family at once, with random coefficients. `pass` is theirs
// alone; the per-set verdicts are in the layers.
struct FamilyResult {
  symmetry::Family family = symmetry::Family::translation;
  std::int64_t sets = 0;
  std::int64_t invariance_checked = 0, hessian_checked = 0;  // sets with per-set checks
  double invariance = kNotChecked;  // worst of two complementary patterns of per-set factors
  double hessian = kNotChecked;     // one HVP, v = Σ_s c_s·generator_s
  bool pass = true;
};

struct VerifyReport {
  Tolerances tol;
  bool exhaustive = false;
  double loss = 0;               // L(θ) on the batch
  double scale_bn_eps = 0;       // BatchNorm ε of the scale family's invariance and Hessian checks
  double seconds = 0;
  std::vector<FamilyResult> families;      // families with sets, in family order
  std::vector<LayerResult> layers;         // per family, per owning layer
  std::vector<std::string> failing;        // failing set names, in family and set order
  std::vector<std::string> failing_checks; // failing group checks, described
  std::vector<std::string> zero_gradient;  // sets with g_A ≡ 0 on this batch (pass trivially)
  bool pass() const { return failing.empty() && failing_checks.empty(); }
};

// Checks `claimed` on `net` (which may be built from another, broken, wiring): images [N, C, H, W]
// and labels [N] are one fixed batch in the network's dtype. The network is left exactly as it was
// (parameters, BatchNorm buffers and ε, training mode). Throws std::invalid_argument when a claimed
// slice names a parameter the network lacks or does not fit its size.
VerifyReport verify(net::Net& net, const symmetry::SymmetrySets& claimed, const at::Tensor& images,
                    const at::Tensor& labels, const VerifyOptions& opt = {});

// Moves the network from the paper's initialisation to a generic point: every bias and BatchNorm
// affine off its special value (biases += N(0, 0.1²), BN weight and bias += N(0, 0.1²)), and Linear
// weights redrawn N(0, 1/fan_in) so the logits are O(1) (the paper's N(0, 0.01²) makes the loss
// nearly constant and kills many classifier units on a batch). A symmetry holds at every θ; zero
// biases would hide a claimed set that omits a bias, and a flat loss would blunt every check.
void move_to_generic_point(net::Net& net, std::uint64_t seed);

// Negative controls (`nmech verify --break KIND`).
enum class Break { none, tanh, gelu, bias_after_bn, mse, wrong_rescale };
Break parse_break(const std::string& s);  // "tanh", "gelu", "bias-after-bn", "mse", "wrong-rescale"
const char* to_string(Break b);

struct Control {
  models::Wiring wiring;   // the network to build: the intact wiring with the break applied
  symmetry::SymmetrySets claimed;  // derived from the intact wiring (wrong-rescale: one side redirected)
  std::vector<std::string> touched;  // the claimed sets the break invalidates
  std::string description;
  std::string inserted;    // bias-after-bn: name of the added layer
};

// tanh/gelu replace relu3 (relu1 if there is none); mse swaps the loss; bias-after-bn inserts,
// after bn3 (else bn1), a 1×1 conv (Linear for vectors) with identity weight and a nonzero bias,
// i.e. a learnable per-channel bias on the BatchNorm output; wrong-rescale points the out side of
// the first rescale layer that allows it at the next same-kind layer of equal input width (the
// official code's skip). Throws std::invalid_argument when the model has no place for the break.
Control make_control(const models::Wiring& intact, Break b);
// Sets the inserted layer of bias-after-bn to identity weights and biases uniform in [0.1, 0.5].
void init_control(net::Net& net, const Control& c, std::uint64_t seed);

}  // namespace nmech::verify
