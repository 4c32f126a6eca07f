// The paper's configs (configs/paper-*.toml): `nmech plan` gives the paper's grids.
#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <tuple>
#include <utility>

#include "run_fixture.hpp"

namespace {

// Lines of `nmech plan` output naming a run of the grid, and how many of them list `steps`.
std::pair<int, int> plan_rows(const std::string& out, const std::string& prefix, const std::string& steps) {
  int rows = 0, with_steps = 0;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(prefix + "-vgg16", 0) != 0) continue;
    ++rows;
    if (line.find(" " + steps + " ") != std::string::npos) ++with_steps;
  }
  return {rows, with_steps};
}

}  // namespace

TEST(PaperConfigs, PlanGivesThePapersGrids) {
  for (const auto& [name, runs, steps] : {std::tuple{"paper-sgd", 8, "39100"}, std::tuple{"paper-momentum", 48, "78200"}}) {
    const auto r = nmech::test::run_command(std::string(NMECH_BIN) + " plan " + NMECH_SOURCE_DIR + "/configs/" + name +
                                            ".toml -P 8");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find(std::to_string(runs) + " runs, handed out longest first"), std::string::npos) << r.out;
    EXPECT_EQ(plan_rows(r.out, name, steps), std::make_pair(runs, runs)) << r.out;
    // Both models of the grid, at 64×64 with 3 channels and 200 classes.
    EXPECT_NE(r.out.find(std::string(name) + "-vgg16_bn-"), std::string::npos);
    EXPECT_NE(r.out.find(std::string(name) + "-vgg16-"), std::string::npos);
    EXPECT_NE(r.out.find("input 3x64x64"), std::string::npos) << r.out;
  }
}
