#include "nmech/train/initial_nets.hpp"

#include <torch/torch.h>

#include <mutex>
#include <utility>
#include <vector>

namespace nmech::train {

namespace {

struct Kept {
  std::string key;
  net::Net net{nullptr};
  std::vector<at::Tensor> values;  // parameters, then buffers, as built
  at::Tensor generator;            // the CPU generator's state after building
};

Kept& kept() {
  static Kept k;
  return k;
}

std::vector<at::Tensor> tensors_of(const net::Net& n) {
  std::vector<at::Tensor> out;
  for (const auto& p : n->parameters(true)) out.push_back(p);
  for (const auto& b : n->buffers(true)) out.push_back(b);
  return out;
}

at::Tensor generator_state() {
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  return gen.get_state();
}

void set_generator_state(const at::Tensor& state) {
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(state);
}

}  // namespace

net::Net initial_net(const std::string& key, const std::function<net::Net()>& build) {
  Kept& k = kept();
  const bool free = !k.net.is_empty() && k.net.ptr().use_count() == 1;  // only the cache holds it
  if (free && k.key == key) {
    torch::NoGradGuard no_grad;
    const std::vector<at::Tensor> now = tensors_of(k.net);
    for (std::size_t i = 0; i < now.size(); ++i) {
      now[i].copy_(k.values[i]);
      now[i].mutable_grad() = at::Tensor();
    }
    set_generator_state(k.generator);
    return k.net;
  }
  net::Net n = build();
  if (k.net.is_empty() || free) {  // keep the newest; one net at a time bounds the memory
    torch::NoGradGuard no_grad;
    k.key = key;
    k.net = n;
    k.values.clear();
    for (const auto& t : tensors_of(n)) k.values.push_back(t.clone());
    k.generator = generator_state();
  }
  return n;
}

}  // namespace nmech::train
