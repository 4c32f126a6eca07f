#pragma once
// The symmetry families (docs/THEORY.md §1) and what the generic code needs to know of each: the
// one list, as nccl-tests keeps one row per collective. Every loop over families, every family
// name, the quantity a family's predictions follow, the scale its errors are judged on (§7) and its
// continuous-time constants (§5) are read from this table; Python reads the same rows from the
// store's file attributes (layout::file_attrs). A family's physics (its sets, its sums, its exact
// recurrence) lives where that physics is: symmetry/sets.cpp, trace/tracer.cpp, theory/exact.cpp.
// Torch-free.
#include <array>
#include <cstddef>
#include <string>
#include <vector>

namespace nmech::theory {

enum class Family { translation, scale, rescale };
constexpr std::size_t kFamilyCount = 3;
constexpr std::array<Family, kFamilyCount> kFamilies = {Family::translation, Family::scale, Family::rescale};

struct FamilyTraits {
  const char* name;                      // the run's group in the store, printouts, Python
  const char* measured;                  // the dataset pred_exact and pred_paper predict
  std::vector<std::string> error_scale;  // datasets whose sum normalises a prediction's error (§7)
  const char* error_scale_words;         // the same for people: "sum|theta|", "Q", …
  double decay_per_lambda;               // β = 0 decay rate κ in units of λ (§5.1): λ or 2λ
  double stiffness;                      // ω² in units of λ/(η(1 + β)) (§5.2): ω_T² = 2, ω_S² = 4
  bool forced;                           // the continuous prediction has a forcing term (§5.3)
};

inline std::size_t index(Family f) { return static_cast<std::size_t>(f); }

// One row per family, in the order of the enum: a new family is an enumerator above and a row here.
inline const FamilyTraits& traits(Family f) {
  static const std::array<FamilyTraits, kFamilyCount> table = {{
      {"translation", "translation_sum", {"translation_abs_sum"}, "sum|theta|", 1.0, 2.0, false},
      {"scale", "scale_sq_norm", {"scale_sq_norm"}, "Q", 2.0, 4.0, true},
      {"rescale", "rescale_diff", {"sq_norm_in", "sq_norm_out"}, "(Q_in + Q_out)", 2.0, 4.0, true},
  }};
  return table[index(f)];
}
inline const char* to_string(Family f) { return traits(f).name; }

}  // namespace nmech::theory
