#include "nmech/theory/family.hpp"

namespace nmech::theory {

const FamilyTraits& traits(Family f) {
  // One row per family, in the order of the enum.
  static const std::array<FamilyTraits, kFamilyCount> table = {{
      {"translation", "translation_sum", {"translation_abs_sum"}, "sum|theta|", 1.0, 2.0, false},
      {"scale", "scale_sq_norm", {"scale_sq_norm"}, "Q", 2.0, 4.0, true},
      {"rescale", "rescale_diff", {"sq_norm_in", "sq_norm_out"}, "(Q_in + Q_out)", 2.0, 4.0, true},
  }};
  return table[index(f)];
}

}  // namespace nmech::theory
