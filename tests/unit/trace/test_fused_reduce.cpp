// The fused row-and-column pass (trace/reduce.hpp) gives what a row pass and a column pass over
// the same tensor give, up to the order of the additions, for every mask pair the tracer uses.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "nmech/trace/reduce.hpp"
#include "worst_relative.hpp"

namespace nmech::trace {
namespace {

const auto worst = test::worst_relative;

struct Case {
  unsigned rm, cm;
};

void check(at::ScalarType dtype, std::int64_t O, std::int64_t I, std::int64_t K, double tol) {
  torch::manual_seed(3);
  const auto x = torch::randn({O, I, K}, torch::TensorOptions().dtype(dtype));
  const auto y = torch::randn({O, I, K}, torch::TensorOptions().dtype(dtype));
  const symmetry::Slice row{"w", 1, O, I * K, 2};  // sets 2 … 2+O-1 of a family of O + 5
  const symmetry::Slice col{"w", O, I, K, 1};      // sets 1 … I of a family of I + 3
  ASSERT_TRUE(rows_and_columns(row, col));
  for (const Case c : {Case{kQuadratic, kQuadratic}, Case{kAfterStep, kYSq}, Case{kYSq, kYSq}, Case{kThetaOnly, kThetaOnly}}) {
    Sums rf, cf, rs, cs;
    rf.reset(O + 5), rs.reset(O + 5), cf.reset(I + 3), cs.reset(I + 3);
    rf.sq[0] = rs.sq[0] = 1.5;  // sums are added to what is there
    accumulate_rows_and_columns(row, rf, c.rm, col, cf, c.cm, x, y, 5e-4);
    accumulate(row, x, y, 5e-4, rs, c.rm);
    accumulate(col, x, y, 5e-4, cs, c.cm);
    for (auto m : {&Sums::sum, &Sums::abs_sum, &Sums::sq, &Sums::y_sq, &Sums::d_sq, &Sums::xy, &Sums::y_sum}) {
      EXPECT_LE(worst(rf.*m, rs.*m), tol) << "rows, masks " << c.rm << "/" << c.cm;
      EXPECT_LE(worst(cf.*m, cs.*m), tol) << "columns, masks " << c.rm << "/" << c.cm;
    }
    if (c.rm == kQuadratic) {  // the comparison has teeth: rows are not columns
      EXPECT_GT(worst(std::vector<double>(rf.sq.begin() + 2, rf.sq.begin() + 2 + std::min(O, I)),
                      std::vector<double>(cs.sq.begin() + 1, cs.sq.begin() + 1 + std::min(O, I))),
                1e-3);
    }
  }
}

TEST(FusedReduce, ConvShapedFloat64MatchesSeparatePasses) { check(at::kDouble, 12, 7, 9, 1e-14); }
TEST(FusedReduce, ConvShapedFloat32MatchesSeparatePasses) { check(at::kFloat, 16, 8, 9, 1e-14); }
TEST(FusedReduce, OtherBlockSizes) {
  check(at::kDouble, 5, 6, 1, 1e-14);  // a Linear weight: rows and columns of single elements
  check(at::kDouble, 4, 3, 16, 1e-14);  // the flatten into the first Linear (4×4 positions)
}

TEST(FusedReduce, RefusesSlicesThatDoNotTile) {
  const symmetry::Slice row{"w", 1, 4, 27, 0}, col{"w", 4, 3, 8, 0};
  EXPECT_FALSE(rows_and_columns(row, col));
  Sums a, b;
  a.reset(4), b.reset(3);
  EXPECT_THROW(accumulate_rows_and_columns(row, a, kSq, col, b, kSq, torch::zeros({108}), at::Tensor(), 0.0),
               std::logic_error);
}

}  // namespace
}  // namespace nmech::trace
