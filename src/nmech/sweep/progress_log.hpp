#pragma once
// What a user watching a sweep reads: per-run lines (run, step/total, steps per second, loss,
// ETA) at a steady interval, one line per line so a Slurm log file reads well, or one live
// status line redrawn in place on a terminal.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace nmech::sweep {

enum class ProgressMode { lines, bar, none };

class ProgressLog {
 public:
  ProgressLog(ProgressMode mode, double every_s, std::FILE* out = stdout)
      : mode_(mode), every_s_(every_s), out_(out) {}
  // `label`: "run 3/8, group 1"
  void start(const std::string& run, const std::string& label, std::int64_t first_step, std::int64_t steps);
  void step(std::int64_t k, double loss);  // after step k; prints when the interval has passed
  void finish(const std::string& verdict);  // "done", "diverged at step 12", "stopped at step 40"
  void note(const std::string& text);       // any other line, timestamped

 private:
  void print(const std::string& line, bool in_place);
  ProgressMode mode_;
  double every_s_;
  std::FILE* out_;
  std::string run_, label_;
  std::int64_t first_ = 0, steps_ = 0, last_k_ = -1;
  double last_loss_ = 0;
  std::chrono::steady_clock::time_point t0_, last_print_;
  bool bar_open_ = false;
};

// "1:02:03", "4:05" (hours only when needed).
std::string format_duration(double seconds);

}  // namespace nmech::sweep
