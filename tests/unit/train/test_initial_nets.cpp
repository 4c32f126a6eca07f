// The initial net a trainer reuses (train/initial_nets.hpp) starts a run from the bits a fresh
// build gives: parameters, buffers, no gradients, the generator's state, and so the same steps.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <vector>

#include "nmech/data/load.hpp"
#include "nmech/train/trainer.hpp"
#include "nmech/train/trainer_state.hpp"

using namespace nmech;

namespace {

config::RunConfig config_with_seed(int seed) {
  return config::parse_run_config("", "<test>", {"model=\"mlp_bn\"", "dataset=\"synthetic\"", "batch_size=16",
                                                 "steps=3", "momentum=0.9", "seed=" + std::to_string(seed)});
}

std::vector<at::Tensor> values(train::Trainer& t) {
  std::vector<at::Tensor> out;
  for (const auto& p : t.state().net->parameters()) out.push_back(p.detach().clone());
  for (const auto& b : t.state().net->buffers()) out.push_back(b.detach().clone());
  return out;
}

bool same_bits(const std::vector<at::Tensor>& a, const std::vector<at::Tensor>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (!a[i].equal(b[i])) return false;
  return true;
}

at::Tensor generator_state() { return at::detail::getDefaultCPUGenerator().get_state(); }

std::vector<double> losses(train::Trainer& t) {
  std::vector<double> out;
  for (std::int64_t k = 0; k < 3; ++k) out.push_back(t.step(k, false));
  return out;
}

}  // namespace

TEST(InitialNets, ARunWithTheSameKeyStartsFromTheBitsOfAFreshBuild) {
  const auto cfg = config_with_seed(3);
  const auto data = data::load_dataset(cfg, "<test>");
  std::vector<at::Tensor> built;
  at::Tensor gen_built;
  std::vector<double> first;
  const void* first_net = nullptr;
  {
    train::Trainer a(cfg, data);
    built = values(a);
    gen_built = generator_state();
    first_net = a.state().net.get();
    first = losses(a);  // moves parameters, BatchNorm's statistics, gradients and the generator
    ASSERT_FALSE(same_bits(values(a), built));
  }
  torch::manual_seed(12345);  // a generator somewhere else: the reused net must put it back
  train::Trainer b(cfg, data);
  EXPECT_EQ(b.state().net.get(), first_net);  // reused, not rebuilt
  EXPECT_TRUE(same_bits(values(b), built));
  for (const auto& p : b.state().net->parameters()) EXPECT_FALSE(p.grad().defined());
  EXPECT_TRUE(generator_state().equal(gen_built));
  {
    // While b holds it, the same key builds afresh, to the same bits.
    torch::manual_seed(12345);
    train::Trainer c(cfg, data);
    EXPECT_NE(c.state().net.get(), first_net);
    EXPECT_TRUE(same_bits(values(c), built));
    EXPECT_TRUE(generator_state().equal(gen_built));
  }
  EXPECT_EQ(losses(b), first);  // the same steps, bit for bit
}

TEST(InitialNets, AnotherSeedIsAnotherNet) {
  const auto cfg = config_with_seed(3);
  const auto data = data::load_dataset(cfg, "<test>");
  std::vector<at::Tensor> three;
  {
    train::Trainer a(cfg, data);
    three = values(a);
  }
  train::Trainer b(config_with_seed(4), data);
  EXPECT_FALSE(same_bits(values(b), three));
}
