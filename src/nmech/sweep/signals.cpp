#include "nmech/sweep/signals.hpp"

#include <csignal>
#include <initializer_list>

namespace nmech::sweep {

namespace {
volatile std::sig_atomic_t caught = 0;
extern "C" void on_stop_signal(int sig) { caught = sig; }
}  // namespace

void install_stop_signals() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;  // a signal during I/O must not make the write fail
  for (int sig : {SIGUSR1, SIGUSR2, SIGTERM}) sigaction(sig, &sa, nullptr);
}

int stop_signal() { return caught; }

const char* signal_name(int sig) {
  switch (sig) {
    case SIGUSR1: return "USR1";
    case SIGUSR2: return "USR2";
    case SIGTERM: return "TERM";
    default: return "?";
  }
}

}  // namespace nmech::sweep
