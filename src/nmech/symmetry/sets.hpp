#pragma once
// The exact index sets of every translation, scale and rescale symmetry (docs/THEORY.md §1), derived
// from a model's wiring rather than assumed. Torch-free: plain index arithmetic.
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "nmech/models/wiring.hpp"
#include "nmech/theory/family.hpp"

namespace nmech::symmetry {

// The families and their names are theory/family.hpp's: one enum for sets, tracer and predictors.
using theory::Family;
using theory::to_string;

// A parameter viewed as [outer, n, inner] (row-major): its elements with middle index j
// belong to set first_set + j. Rows of a conv weight are [1, C_out, C_in·k·k]; the input
// slice of the next layer for channel c is [C_next, C, k·k]; fc1 columns of a flattened
// channel are [F, C, H·W]; a translation column is [K, F, 1].
struct Slice {
  std::string param;  // "conv3.weight"
  std::int64_t outer = 1, n = 1, inner = 1;
  std::int64_t first_set = 0;
};

struct FamilySets {
  Family family;
  std::vector<std::string> names;   // one per set
  std::vector<std::int64_t> layer;  // index of the owning layer in the wiring
  std::vector<std::int64_t> index;  // column, channel or unit within that layer
  std::vector<Slice> in;            // translation/scale: the set; rescale: side A1 (into a unit)
  std::vector<Slice> out;           // rescale only: side A2 (out of the unit)

  std::int64_t count() const { return static_cast<std::int64_t>(names.size()); }
  // Sizes of each set (rescale: |A1| + |A2|), for checks.
  std::vector<std::int64_t> sizes() const;
};

// A few raw parameters of every conv and linear weight, traced as they are: single parameters
// look chaotic while the sets' quantities are smooth (the paper's Fig. 1). Not a symmetry: no
// predictions. Fixed elements spread over rows and columns by a multiplicative hash (sets.cpp).
constexpr std::int64_t kSamplePerWeight = 4;
struct ParamSample {
  std::vector<std::string> names;   // "conv3.weight[17]"
  std::vector<std::int64_t> layer;  // owning layer index in the wiring
  std::vector<std::int64_t> index;  // flat index into the parameter
  std::vector<std::string> param;   // "conv3.weight"
  std::int64_t count() const { return static_cast<std::int64_t>(names.size()); }
};

struct SymmetrySets {
  // One per family, in the order of theory::kFamilies: a new family needs no member here.
  std::array<FamilySets, theory::kFamilyCount> families = [] {
    std::array<FamilySets, theory::kFamilyCount> a{};
    for (Family f : theory::kFamilies) a[theory::index(f)].family = f;
    return a;
  }();
  ParamSample sample;  // traced beside the sets (store: sample/value)
  const FamilySets& get(Family f) const { return families[theory::index(f)]; }
  FamilySets& get(Family f) { return families[theory::index(f)]; }
};

SymmetrySets derive_sets(const models::Wiring& w);

}  // namespace nmech::symmetry
