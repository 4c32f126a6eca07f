#pragma once
// `nmech sweep CONFIG -o STORE` under mpirun/srun (sweep/engine.hpp).
namespace CLI {
class App;
}
namespace nmech::sweep {
struct SweepOptions;
}

namespace nmech::apps {

CLI::App* add_sweep_command(CLI::App& app, sweep::SweepOptions& o);
int cmd_sweep(const sweep::SweepOptions& o);

}  // namespace nmech::apps
