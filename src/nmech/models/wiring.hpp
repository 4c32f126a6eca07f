#pragma once
// A model's wiring: the ordered layers, with the shapes the symmetry sets need. Torch-free, so
// symmetry sets can be derived and tested without building a network.
#include <cstdint>
#include <string>
#include <vector>

namespace nmech::models {

enum class LayerKind { conv, linear, batchnorm, relu, maxpool, flatten, dropout, tanh, gelu };

struct Layer {
  LayerKind kind;
  std::string name;          // module name: parameters are "<name>.weight", "<name>.bias"
  std::int64_t in = 0;       // input channels / features
  std::int64_t out = 0;      // output channels / features (batchnorm: in == out)
  std::int64_t kernel = 0;   // conv kernel size
  std::int64_t h = 1, w = 1; // spatial size of this layer's output (1×1 for vectors)
  bool bias = true;          // conv/linear have a bias
  double p = 0.0;            // dropout probability
};

enum class Loss { softmax_ce, mse };

struct Wiring {
  std::string model;  // e.g. "vgg16_bn"
  std::vector<Layer> layers;
  Loss loss = Loss::softmax_ce;
  std::int64_t input_channels = 1, input_size = 32, classes = 10;

  bool has_params(const Layer& l) const;
};

// Every built-in model name: vgg<depth> and vgg<depth>_bn for each row of the VGG table
// (wiring.cpp, vgg_configs), then mlp and mlp_bn. The one list: the config checks against it.
std::vector<std::string> model_names();

struct ModelSpec {
  std::string name = "vgg16_bn";  // one of model_names()
  double width = 0.125;
  std::int64_t classifier_width = 0;  // 0: 512·width (VGG), 256 (MLP)
  std::int64_t mlp_depth = 2;
  double dropout = 0.0;
  std::int64_t input_channels = 1, input_size = 32, classes = 10;
};

// Throws std::invalid_argument for an unknown name or impossible shape.
Wiring make_wiring(const ModelSpec& spec);
// Number of trainable parameters the wiring implies.
std::int64_t parameter_count(const Wiring& w);

}  // namespace nmech::models
