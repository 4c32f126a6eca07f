#include "nmech/symmetry/sets.hpp"

#include <stdexcept>

namespace nmech::symmetry {

using models::Layer;
using models::LayerKind;
using models::Wiring;

std::vector<std::int64_t> FamilySets::sizes() const {
  std::vector<std::int64_t> s(names.size(), 0);
  for (const auto* side : {&in, &out})
    for (const auto& sl : *side)
      for (std::int64_t j = 0; j < sl.n; ++j) s[sl.first_set + j] += sl.outer * sl.inner;
  return s;
}

namespace {

bool is_affine(const Layer& l) { return l.kind == LayerKind::conv || l.kind == LayerKind::linear; }

std::int64_t fan_in(const Layer& l) { return l.kind == LayerKind::conv ? l.in * l.kernel * l.kernel : l.in; }

// The rows of an affine layer: weight [out, fan_in] and bias [out], set j = output unit j.
void add_rows(std::vector<Slice>& side, const Layer& l, std::int64_t first) {
  side.push_back({l.name + ".weight", 1, l.out, fan_in(l), first});
  if (l.bias) side.push_back({l.name + ".bias", 1, l.out, 1, first});
}

void add_names(FamilySets& fs, const std::string& prefix, std::int64_t layer, std::int64_t n) {
  for (std::int64_t j = 0; j < n; ++j) {
    fs.names.push_back(prefix + std::to_string(j));
    fs.layer.push_back(layer);
    fs.index.push_back(j);
  }
}

// Softmax cross-entropy: the logits' gradient sums to zero over classes, so every column of the
// last Linear, and its bias, can be shifted uniformly.
void derive_translation(const Wiring& w, FamilySets& fs) {
  if (w.loss != models::Loss::softmax_ce) return;
  for (std::int64_t i = static_cast<std::int64_t>(w.layers.size()) - 1; i >= 0; --i) {
    const Layer& l = w.layers[i];
    if (l.kind != LayerKind::linear) {
      if (w.has_params(l)) return;  // logits not produced by a Linear: no translation sets
      continue;
    }
    fs.in.push_back({l.name + ".weight", l.out, l.in, 1, 0});
    add_names(fs, l.name + ".col", i, l.in);
    if (l.bias) {
      fs.in.push_back({l.name + ".bias", 1, 1, l.out, l.in});
      fs.names.push_back(l.name + ".bias");
      fs.layer.push_back(i);
      fs.index.push_back(-1);
    }
    return;
  }
}

// Is the BatchNorm at layer i's output scaled by α when all of its affine parameters are? Yes when
// it reaches, through a ReLU and per-channel homogeneous ops (max-pool, dropout), an affine map
// that is itself followed by BatchNorm (docs/THEORY.md §1d): that map's output scales by α (its bias
// is removed by the batch mean) and the second BatchNorm undoes it. Not for the last BatchNorm
// before the classifier, whose next affine map has no BatchNorm.
bool affine_group_is_scale_set(const Wiring& w, std::size_t bn) {
  bool through_relu = false;
  for (std::size_t i = bn + 1; i < w.layers.size(); ++i) {
    const Layer& l = w.layers[i];
    switch (l.kind) {
      case LayerKind::relu: through_relu = true; continue;
      case LayerKind::maxpool:
      case LayerKind::dropout: continue;
      case LayerKind::conv:
      case LayerKind::linear:
        return through_relu && i + 1 < w.layers.size() && w.layers[i + 1].kind == LayerKind::batchnorm;
      default: return false;
    }
  }
  return false;
}

// Train-mode BatchNorm right after an affine map makes that map's output rows scale-invariant;
// a BatchNorm whose whole affine group feeds another BatchNorm is one scale set more.
void derive_scale(const Wiring& w, FamilySets& fs) {
  for (std::size_t i = 0; i + 1 < w.layers.size(); ++i) {
    const Layer& l = w.layers[i];
    if (is_affine(l) && w.layers[i + 1].kind == LayerKind::batchnorm) {
      add_rows(fs.in, l, fs.count());
      add_names(fs, l.name + ".ch", static_cast<std::int64_t>(i), l.out);
    } else if (l.kind == LayerKind::batchnorm && affine_group_is_scale_set(w, i)) {
      const std::int64_t set = fs.count();
      fs.in.push_back({l.name + ".weight", 1, 1, l.out, set});
      fs.in.push_back({l.name + ".bias", 1, 1, l.out, set});
      fs.names.push_back(l.name + ".affine");
      fs.layer.push_back(static_cast<std::int64_t>(i));
      fs.index.push_back(-1);
    }
  }
}

// The side that feeds unit c of a ReLU: BN affines if a BatchNorm precedes it, else the rows of
// the affine layer. Returns the owning layer index, or -1 if no positively homogeneous path.
std::int64_t rescale_in(const Wiring& w, std::size_t relu, std::vector<Slice>& side, std::int64_t first) {
  if (relu == 0) return -1;
  const Layer& prev = w.layers[relu - 1];
  if (prev.kind == LayerKind::batchnorm) {
    side.push_back({prev.name + ".weight", 1, prev.out, 1, first});
    side.push_back({prev.name + ".bias", 1, prev.out, 1, first});
    return static_cast<std::int64_t>(relu - 1);
  }
  if (is_affine(prev)) {
    add_rows(side, prev, first);
    return static_cast<std::int64_t>(relu - 1);
  }
  return -1;
}

// The weights that read unit c downstream, through per-channel homogeneous ops (max-pool,
// dropout) and a flatten (channel c → columns c·H·W … c·H·W + H·W − 1). False if the path
// crosses a non-homogeneous op or reaches no affine layer.
bool rescale_out(const Wiring& w, std::size_t relu, std::int64_t units, std::vector<Slice>& side,
                 std::int64_t first) {
  std::int64_t spatial = 1;
  bool flattened = false;
  for (std::size_t i = relu + 1; i < w.layers.size(); ++i) {
    const Layer& l = w.layers[i];
    switch (l.kind) {
      case LayerKind::maxpool:
      case LayerKind::dropout:
        continue;
      case LayerKind::flatten:
        spatial = l.out / l.in;
        flattened = true;
        continue;
      case LayerKind::conv:
        if (flattened) return false;
        side.push_back({l.name + ".weight", l.out, units, l.kernel * l.kernel, first});
        return true;
      case LayerKind::linear:
        side.push_back({l.name + ".weight", l.out, units, spatial, first});
        return true;
      default:
        return false;  // batchnorm, another activation: not a rescale path
    }
  }
  return false;
}

// ReLU is positively homogeneous: scaling a unit's input side by α and its output side by 1/α
// leaves the network's function unchanged.
void derive_rescale(const Wiring& w, FamilySets& fs) {
  for (std::size_t i = 0; i < w.layers.size(); ++i) {
    const Layer& l = w.layers[i];
    if (l.kind != LayerKind::relu) continue;
    std::vector<Slice> in, out;
    const std::int64_t owner = rescale_in(w, i, in, fs.count());
    if (owner < 0 || !rescale_out(w, i, l.out, out, fs.count())) continue;
    fs.in.insert(fs.in.end(), in.begin(), in.end());
    fs.out.insert(fs.out.end(), out.begin(), out.end());
    add_names(fs, w.layers[owner].name + ".unit", owner, l.out);
  }
}

void derive_sample(const Wiring& w, ParamSample& s) {
  for (std::size_t i = 0; i < w.layers.size(); ++i) {
    const Layer& l = w.layers[i];
    if (!is_affine(l)) continue;
    const std::int64_t numel = l.out * fan_in(l);
    for (std::int64_t j = 0; j < kSamplePerWeight && j < numel; ++j) {
      // Knuth's multiplicative hash: evenly spaced flat indices would all fall in one input column
      // (e.g. an image's zero border pixel), whose weights only decay.
      const auto e = static_cast<std::int64_t>((static_cast<std::uint64_t>(j) + 1) * 2654435761ull %
                                               static_cast<std::uint64_t>(numel));
      s.names.push_back(l.name + ".weight[" + std::to_string(e) + "]");
      s.layer.push_back(static_cast<std::int64_t>(i));
      s.index.push_back(e);
      s.param.push_back(l.name + ".weight");
    }
  }
}

}  // namespace

SymmetrySets derive_sets(const Wiring& w) {
  SymmetrySets s;
  derive_translation(w, s.get(Family::translation));
  derive_scale(w, s.get(Family::scale));
  derive_rescale(w, s.get(Family::rescale));
  derive_sample(w, s.sample);
  return s;
}

}  // namespace nmech::symmetry
