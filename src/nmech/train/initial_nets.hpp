#pragma once
// Building a model draws its initial weights from the seeded generator, and a sweep builds one
// per run. In a grid over the optimiser's settings the runs share model, seed and
// initialisation, so their initial weights are the same bits, and building them again cost a
// short run about a third of what it spent besides its steps (docs/BENCHMARKS.md). This keeps
// the net built last with a copy of its initial parameters and buffers and of the generator's
// state after building it; asked again for the same key, it hands back that net reset to the
// copy (no gradients) and leaves the generator as building it would have. A net another
// trainer still holds is never handed out: then it builds afresh.
#include <functional>
#include <string>

#include "nmech/net/net.hpp"

namespace nmech::train {

// `key` names everything `build` depends on (model, seed, initialisation, dtype, device).
// Not thread-safe: trainers are built on one thread per process.
net::Net initial_net(const std::string& key, const std::function<net::Net()>& build);

}  // namespace nmech::train
