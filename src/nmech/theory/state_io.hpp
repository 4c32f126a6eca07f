#pragma once
// Checkpoints of theory state: a flat list of doubles, written and read back in the same order.
// Doubles round-trip bit for bit, so a resumed prediction equals an uninterrupted one; counters
// are stored as doubles (exact below 2^53).
#include <complex>
#include <cstddef>
#include <stdexcept>
#include <vector>

namespace nmech::theory {

class StateWriter {
 public:
  void put(double v) { out_.push_back(v); }
  void put(const std::vector<double>& v) {
    put(static_cast<double>(v.size()));
    out_.insert(out_.end(), v.begin(), v.end());
  }
  void put(const std::vector<std::complex<double>>& v) {
    put(static_cast<double>(v.size()));
    for (const auto& z : v) {
      out_.push_back(z.real());
      out_.push_back(z.imag());
    }
  }
  const std::vector<double>& values() const { return out_; }

 private:
  std::vector<double> out_;
};

class StateReader {
 public:
  explicit StateReader(const std::vector<double>& in) : in_(in) {}
  double get() {
    if (pos_ >= in_.size()) throw std::runtime_error("checkpoint: theory state is truncated");
    return in_[pos_++];
  }
  void get(std::vector<double>& v) {
    v.resize(count());
    for (double& x : v) x = get();
  }
  void get(std::vector<std::complex<double>>& v) {
    v.resize(count());
    for (auto& z : v) {
      const double re = get();
      z = {re, get()};
    }
  }
  bool done() const { return pos_ == in_.size(); }

 private:
  std::size_t count() {
    const double n = get();
    if (n < 0 || n > static_cast<double>(in_.size() - pos_) * 2)
      throw std::runtime_error("checkpoint: theory state is corrupt");
    return static_cast<std::size_t>(n);
  }
  const std::vector<double>& in_;
  std::size_t pos_ = 0;
};

}  // namespace nmech::theory
