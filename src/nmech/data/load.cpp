#include "nmech/data/load.hpp"

#include "nmech/data/packed.hpp"

namespace nmech::data {
namespace {

// A file from `nmech prepare-data`: it must hold the dataset the config names, in its image
// shape. The classes are the file's (a subset of the classes, e.g. a miniature, is fine).
Dataset load_prepared(const config::RunConfig& cfg, const std::string& split) {
  Dataset d = load_packed(cfg.data_dir, split);
  const auto shape = config::dataset_shape(cfg.dataset);
  const std::string name = d.name.substr(0, d.name.find(' '));
  if (name != cfg.dataset || d.channels != shape.channels || d.height != shape.size)
    throw DataError(cfg.data_dir + ": holds " + name + " (" + std::to_string(d.channels) + "×" +
                    std::to_string(d.height) + "×" + std::to_string(d.width) + " images), not the dataset '" +
                    cfg.dataset + "' of the config");
  return d;
}

}  // namespace

Dataset load_dataset(const config::RunConfig& cfg, const std::string& origin) {
  Dataset d = cfg.dataset == "synthetic"       ? make_synthetic(1024, 1, 28, 10, 12345)
              : cfg.dataset == "fashion-mnist" ? load_fashion_mnist(cfg.data_dir, true)
                                               : load_prepared(cfg, "train");
  check_dataset(cfg, d, origin);
  d.sha256 = fingerprint(d);
  return d;
}

Dataset load_eval_dataset(const config::RunConfig& cfg) {
  if (cfg.dataset == "synthetic") return make_synthetic(256, 1, 28, 10, 54321);
  if (cfg.dataset == "fashion-mnist") return load_fashion_mnist(cfg.data_dir, false);
  return load_prepared(cfg, "val");
}

void check_dataset(const config::RunConfig& cfg, const Dataset& d, const std::string& origin) {
  if (cfg.batch_size > d.count)
    throw config::ConfigError(origin + ": key 'batch_size': " + std::to_string(cfg.batch_size) +
                              " exceeds the " + std::to_string(d.count) + " images of " + d.name);
  if (cfg.input_size < d.height)
    throw config::ConfigError(origin + ": key 'input_size': " + std::to_string(cfg.input_size) +
                              " is smaller than the " + std::to_string(d.height) + "-pixel images");
}

}  // namespace nmech::data
