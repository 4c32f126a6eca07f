#include "nmech/config/sha256.hpp"
#include "nmech/data/dataset.hpp"

namespace nmech::data {

std::string fingerprint(const Dataset& d) {
  config::Sha256 h;
  const std::int64_t shape[] = {d.count, d.channels, d.height, d.width, d.classes};
  h.update(shape, sizeof shape);
  h.update(d.pixels.data(), d.pixels.size());
  h.update(d.labels.data(), d.labels.size() * sizeof(std::int64_t));
  return h.hex();
}

}  // namespace nmech::data
