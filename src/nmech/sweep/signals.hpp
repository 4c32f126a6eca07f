#pragma once
// Stop signals (docs/DESIGN.md "Distributed execution"): SIGUSR2 (Slurm's --signal=B:USR2@120),
// SIGUSR1 and SIGTERM only set a flag; the sweep acts on it at the next step boundary.
namespace nmech::sweep {

void install_stop_signals();
// The stop signal caught so far (0: none).
int stop_signal();
// "USR2", "TERM", ...
const char* signal_name(int sig);

}  // namespace nmech::sweep
