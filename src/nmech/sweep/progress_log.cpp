#include "nmech/sweep/progress_log.hpp"

#include <cmath>
#include <ctime>

namespace nmech::sweep {

namespace {

std::string clock_now() {
  char buf[32];
  const std::time_t t = std::time(nullptr);
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", std::localtime(&t));
  return buf;
}

double seconds(std::chrono::steady_clock::duration d) { return std::chrono::duration<double>(d).count(); }

}  // namespace

std::string format_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  const long t = std::lround(s);
  char buf[32];
  if (t >= 3600)
    std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
  else
    std::snprintf(buf, sizeof buf, "%ld:%02ld", t / 60, t % 60);
  return buf;
}

void ProgressLog::print(const std::string& line, bool in_place) {
  if (mode_ == ProgressMode::none) return;
  const std::string stamped = "[" + clock_now() + "] " + line;
  if (mode_ == ProgressMode::bar && in_place) {
    std::fprintf(out_, "\r\033[K%s", stamped.c_str());
    bar_open_ = true;
  } else {
    std::fprintf(out_, "%s%s\n", bar_open_ ? "\r\033[K" : "", stamped.c_str());
    bar_open_ = false;
  }
  std::fflush(out_);  // one write per line: lines of different ranks do not interleave
}

void ProgressLog::start(const std::string& run, const std::string& label, std::int64_t first_step,
                        std::int64_t steps) {
  run_ = run;
  label_ = label;
  first_ = first_step;
  steps_ = steps;
  last_k_ = first_step - 1;
  t0_ = last_print_ = std::chrono::steady_clock::now();
  print(run_ + " (" + label_ + "): " +
            (first_step > 0 ? "resume at step " + std::to_string(first_step) : std::string("start")) +
            ", " + std::to_string(steps) + " steps",
        false);
}

void ProgressLog::step(std::int64_t k, double loss) {
  last_k_ = k;
  last_loss_ = loss;
  const auto now = std::chrono::steady_clock::now();
  if (seconds(now - last_print_) < every_s_ && k + 1 < steps_) return;
  last_print_ = now;
  const double elapsed = seconds(now - t0_);
  const double done = static_cast<double>(k + 1 - first_);
  const double rate = elapsed > 0 ? done / elapsed : 0;
  const double eta = rate > 0 ? static_cast<double>(steps_ - k - 1) / rate : NAN;
  char buf[256];
  std::snprintf(buf, sizeof buf, "%s (%s): step %lld/%lld %3.0f%% | %.2f steps/s | loss %.4g | eta %s",
                run_.c_str(), label_.c_str(), static_cast<long long>(k + 1), static_cast<long long>(steps_),
                100.0 * static_cast<double>(k + 1) / static_cast<double>(steps_), rate, loss,
                format_duration(eta).c_str());
  print(buf, mode_ == ProgressMode::bar);
}

void ProgressLog::finish(const std::string& verdict) {
  char buf[256];
  std::snprintf(buf, sizeof buf, "%s (%s): %s after %s, last loss %.4g", run_.c_str(), label_.c_str(),
                verdict.c_str(), format_duration(seconds(std::chrono::steady_clock::now() - t0_)).c_str(),
                last_loss_);
  print(buf, false);
}

void ProgressLog::note(const std::string& text) { print(text, false); }

}  // namespace nmech::sweep
