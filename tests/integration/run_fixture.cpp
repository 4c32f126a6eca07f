#include "run_fixture.hpp"

#include <mpi.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <gtest/gtest.h>

namespace nmech::test {

namespace {
std::string slurp(const std::string& p) {
  std::ifstream f(p);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// Store::open_read needs MPI initialised (singleton, no launcher).
struct MpiEnv : ::testing::Environment {
  void SetUp() override {
    int flag = 0;
    MPI_Initialized(&flag);
    if (!flag) MPI_Init(nullptr, nullptr);
  }
  void TearDown() override { MPI_Finalize(); }
};
const auto* const kMpiEnv = ::testing::AddGlobalTestEnvironment(new MpiEnv);
}  // namespace

std::string work_dir() {
  std::filesystem::create_directories(NMECH_WORK_DIR);
  return NMECH_WORK_DIR;
}

std::string demo_config() { return std::string(NMECH_SOURCE_DIR) + "/configs/demo.toml"; }

Command run_command(const std::string& cmdline) {
  const std::string o = work_dir() + "/cmd.out", e = work_dir() + "/cmd.err";
  const int rc = std::system((cmdline + " >" + o + " 2>" + e).c_str());
  Command c;
  c.exit_code = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  c.out = slurp(o);
  c.err = slurp(e);
  return c;
}

RunStore::RunStore(const std::string& tag, const std::vector<std::string>& overrides) {
  path_ = work_dir() + "/" + tag + ".h5";
  std::string cmd = std::string(NMECH_BIN) + " run " + demo_config() + " -o " + path_ + " --overwrite";
  for (const auto& o : overrides) cmd += " --set " + o;
  auto c = run_command(cmd);
  if (c.exit_code != 0) throw std::runtime_error(cmd + " failed (" + std::to_string(c.exit_code) + "): " + c.err);
  out_ = c.out;
  std::printf("%s\n%s", cmd.c_str(), out_.c_str());
}

std::string RunStore::run() const { return store::Store::open_read(path_).runs().at(0); }

Matrix RunStore::get(const std::string& dataset) const {
  auto st = store::Store::open_read(path_);
  const auto r = st.runs().at(0);
  auto shape = st.shape(r, dataset);
  Matrix m;
  m.rows = shape.at(0);
  m.cols = shape.size() > 1 ? shape[1] : 1;
  m.v = st.read(r, dataset);
  return m;
}

}  // namespace nmech::test
