#pragma once
// `nmech verify`: checks numerically that every symmetry set the suite traces for a model is a
// symmetry (docs/THEORY.md §2), or, with --break, that a deliberately broken model fails on exactly the
// sets the break invalidates.
#include <cstdint>
#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace nmech::apps {

struct VerifyArgs {
  std::string model = "vgg16_bn";
  std::vector<std::string> sets;  // run-config overrides, key=value
  std::string dtype = "float64";
  std::int64_t batch = 32;
  bool json = false;
  bool all = false;   // per-set invariance and Hessian checks for every set
  std::string brk;    // negative control: tanh, gelu, bias-after-bn, mse, wrong-rescale
};

// Registers the subcommand and its options on `app`.
CLI::App* add_verify_command(CLI::App& app, VerifyArgs& a);

// Runs it: prints the table (or JSON) and returns util::kComplete or util::kVerifyFailed. Bad input throws
// config::ConfigError or data::DataError (exit 2).
int cmd_verify(const VerifyArgs& a);

}  // namespace nmech::apps
