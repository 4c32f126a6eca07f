#include "nmech/plan/plan_memory.hpp"

#include <cstdio>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "nmech/config/run_mapping.hpp"

namespace nmech::plan {

double training_bytes(const models::Wiring& w, std::int64_t shard, std::int64_t dtype_bytes) {
  double params = 0, outputs = 0;  // doubles: a huge width must not overflow the estimate itself
  for (const auto& l : w.layers) {
    const double in = static_cast<double>(l.in), out = static_cast<double>(l.out), k = static_cast<double>(l.kernel);
    if (l.kind == models::LayerKind::conv) params += out * in * k * k + (l.bias ? out : 0);
    if (l.kind == models::LayerKind::linear) params += out * in + (l.bias ? out : 0);
    if (l.kind == models::LayerKind::batchnorm) params += 2 * out;
    outputs += out * static_cast<double>(l.h) * static_cast<double>(l.w);
  }
  const double input = static_cast<double>(w.input_channels * w.input_size * w.input_size);
  const double b = static_cast<double>(dtype_bytes), n = static_cast<double>(shard);
  return params * 6 * b + n * (2 * outputs + input) * b;
}

double available_bytes() {
  std::ifstream f("/proc/meminfo");
  std::string key;
  double kib = 0;
  std::string unit;
  while (f >> key >> kib >> unit)
    if (key == "MemAvailable:") return kib * 1024;
  return 0;
}

void check_memory(const config::RunConfig& cfg, std::int64_t shard, int processes, const std::string& origin) {
  const auto shape = config::dataset_shape(cfg.dataset);
  models::Wiring w;
  try {
    w = models::make_wiring(config::model_spec(cfg, shape.channels, shape.classes));
  } catch (const std::invalid_argument& e) {
    throw config::ConfigError(origin + ": model " + cfg.model + ": " + e.what());
  }
  const double need = training_bytes(w, shard, cfg.dtype == "float64" ? 8 : 4) * processes;
  const double have = available_bytes();
  if (have <= 0 || need <= have) return;
  char buf[400];
  std::snprintf(buf, sizeof buf,
                ": model %s at width %g with batch %lld needs about %.1f GiB for %d process%s, and this machine has "
                "%.1f GiB available: lower width, batch_size or input_size, or run fewer ranks per node",
                cfg.model.c_str(), cfg.width, static_cast<long long>(cfg.batch_size), need / (1 << 30), processes,
                processes == 1 ? "" : "es", have / (1 << 30));
  throw config::ConfigError(origin + buf);
}

}  // namespace nmech::plan
