#include "nmech/models/wiring.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <stdexcept>

namespace nmech::models {

bool Wiring::has_params(const Layer& l) const {
  return l.kind == LayerKind::conv || l.kind == LayerKind::linear || l.kind == LayerKind::batchnorm;
}

namespace {

constexpr int kPool = 0;  // 'M' in the VGG configurations

// VGG configurations A, B, D, E (Simonyan & Zisserman), as in torchvision.
const std::map<int, std::vector<int>>& vgg_configs() {
  static const std::map<int, std::vector<int>> cfgs = {
      {11, {64, kPool, 128, kPool, 256, 256, kPool, 512, 512, kPool, 512, 512, kPool}},
      {13, {64, 64, kPool, 128, 128, kPool, 256, 256, kPool, 512, 512, kPool, 512, 512, kPool}},
      {16, {64, 64, kPool, 128, 128, kPool, 256, 256, 256, kPool, 512, 512, 512, kPool, 512, 512,
            512, kPool}},
      {19, {64, 64, kPool, 128, 128, kPool, 256, 256, 256, 256, kPool, 512, 512, 512, 512, kPool,
            512, 512, 512, 512, kPool}},
  };
  return cfgs;
}

}  // namespace

std::vector<std::string> model_names() {
  std::vector<std::string> names;
  for (const auto& [depth, layers] : vgg_configs())
    for (const char* bn : {"", "_bn"}) names.push_back("vgg" + std::to_string(depth) + bn);
  names.push_back("mlp");
  names.push_back("mlp_bn");
  return names;
}

namespace {

std::int64_t scaled(int channels, double width) {
  return std::max<std::int64_t>(1, std::llround(channels * width));
}

Wiring vgg(int depth, bool bn, const ModelSpec& s) {
  auto it = vgg_configs().find(depth);
  if (it == vgg_configs().end()) throw std::invalid_argument("unknown VGG depth");
  Wiring w;
  w.input_channels = s.input_channels;
  w.input_size = s.input_size;
  w.classes = s.classes;
  std::int64_t c = s.input_channels, hw = s.input_size;
  int conv_i = 0, pool_i = 0;
  for (int v : it->second) {
    if (v == kPool) {
      hw /= 2;
      if (hw < 1) throw std::invalid_argument("input_size too small for five 2x2 max-pools");
      w.layers.push_back({LayerKind::maxpool, "pool" + std::to_string(++pool_i), c, c, 2, hw, hw});
      continue;
    }
    const std::int64_t out = scaled(v, s.width);
    const std::string idx = std::to_string(++conv_i);
    w.layers.push_back({LayerKind::conv, "conv" + idx, c, out, 3, hw, hw, true});
    if (bn) w.layers.push_back({LayerKind::batchnorm, "bn" + idx, out, out, 0, hw, hw, false});
    w.layers.push_back({LayerKind::relu, "relu" + idx, out, out, 0, hw, hw, false});
    c = out;
  }
  w.layers.push_back({LayerKind::flatten, "flatten", c, c * hw * hw, 0, 1, 1, false});
  const std::int64_t f = s.classifier_width > 0 ? s.classifier_width : scaled(512, s.width);
  std::int64_t in = c * hw * hw;
  for (int i = 1; i <= 2; ++i) {
    const std::string idx = std::to_string(i);
    w.layers.push_back({LayerKind::linear, "fc" + idx, in, f, 0, 1, 1, true});
    w.layers.push_back({LayerKind::relu, "fc_relu" + idx, f, f, 0, 1, 1, false});
    if (s.dropout > 0)
      w.layers.push_back({LayerKind::dropout, "drop" + idx, f, f, 0, 1, 1, false, s.dropout});
    in = f;
  }
  w.layers.push_back({LayerKind::linear, "fc3", in, s.classes, 0, 1, 1, true});
  return w;
}

Wiring mlp(bool bn, const ModelSpec& s) {
  Wiring w;
  w.input_channels = s.input_channels;
  w.input_size = s.input_size;
  w.classes = s.classes;
  std::int64_t in = s.input_channels * s.input_size * s.input_size;
  w.layers.push_back({LayerKind::flatten, "flatten", s.input_channels, in, 0, 1, 1, false});
  const std::int64_t f = s.classifier_width > 0 ? s.classifier_width : 256;
  for (std::int64_t i = 1; i <= s.mlp_depth; ++i) {
    const std::string idx = std::to_string(i);
    w.layers.push_back({LayerKind::linear, "fc" + idx, in, f, 0, 1, 1, true});
    if (bn) w.layers.push_back({LayerKind::batchnorm, "bn" + idx, f, f, 0, 1, 1, false});
    w.layers.push_back({LayerKind::relu, "relu" + idx, f, f, 0, 1, 1, false});
    in = f;
  }
  w.layers.push_back(
      {LayerKind::linear, "fc" + std::to_string(s.mlp_depth + 1), in, s.classes, 0, 1, 1, true});
  return w;
}

}  // namespace

Wiring make_wiring(const ModelSpec& s) {
  std::string name = s.name;
  bool bn = false;
  if (name.size() > 3 && name.compare(name.size() - 3, 3, "_bn") == 0) {
    bn = true;
    name.resize(name.size() - 3);
  }
  Wiring w;
  if (name == "mlp") {
    if (s.mlp_depth < 1) throw std::invalid_argument("mlp_depth must be >= 1");
    w = mlp(bn, s);
  } else if (name.rfind("vgg", 0) == 0 && name.size() > 3 &&
             std::all_of(name.begin() + 3, name.end(), ::isdigit)) {
    w = vgg(std::stoi(name.substr(3)), bn, s);
  } else {
    throw std::invalid_argument("unknown model '" + s.name + "'");
  }
  w.model = s.name;
  return w;
}

std::int64_t parameter_count(const Wiring& w) {
  std::int64_t n = 0;
  for (const auto& l : w.layers) {
    if (l.kind == LayerKind::conv) n += l.out * l.in * l.kernel * l.kernel + (l.bias ? l.out : 0);
    if (l.kind == LayerKind::linear) n += l.out * l.in + (l.bias ? l.out : 0);
    if (l.kind == LayerKind::batchnorm) n += 2 * l.out;
  }
  return n;
}

}  // namespace nmech::models
