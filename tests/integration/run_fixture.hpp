#pragma once
// Runs the real nmech binary and reads the store it wrote.
#include <cstdint>
#include <string>
#include <vector>

#include "nmech/store/store.hpp"

namespace nmech::test {

struct Command {
  int exit_code = -1;
  std::string out, err;
};
// Runs a shell command line, capturing stdout and stderr.
Command run_command(const std::string& cmdline);
std::string work_dir();  // a scratch folder for this test binary
std::string demo_config();

// [rows, cols] matrix from the store, row-major.
struct Matrix {
  std::uint64_t rows = 0, cols = 0;
  std::vector<double> v;
  double at(std::uint64_t r, std::uint64_t c) const { return v[r * cols + c]; }
};

// A finished run of `nmech run configs/demo.toml` with extra --set overrides, read back.
class RunStore {
 public:
  RunStore(const std::string& tag, const std::vector<std::string>& overrides);
  Matrix get(const std::string& dataset) const;
  const std::string& path() const { return path_; }
  const std::string& stdout_text() const { return out_; }
  std::string run() const;

 private:
  std::string path_, out_;
};

}  // namespace nmech::test
