#pragma once
// The dataset a run config names, loaded and checked against the config: Fashion-MNIST from the
// Debian package, the synthetic set, or a file from `nmech prepare-data`.
#include <string>

#include "nmech/config/run_config.hpp"
#include "nmech/data/dataset.hpp"

namespace nmech::data {

// Loads the configured dataset; DataError or ConfigError (batch larger than the data) on bad input.
Dataset load_dataset(const config::RunConfig& cfg, const std::string& origin);
// The validation split of the configured dataset (Fashion-MNIST's test images, a packed file's
// val split, a second synthetic set), for eval_every > 0.
Dataset load_eval_dataset(const config::RunConfig& cfg);
// The checks load_dataset makes, for another config on the same data (the runs of a sweep).
void check_dataset(const config::RunConfig& cfg, const Dataset& d, const std::string& origin);

}  // namespace nmech::data
