#include "nmech/trace/reduce.hpp"

#include <ATen/ATen.h>

#include <cmath>
#include <stdexcept>

namespace nmech::trace {

void Sums::reset(std::size_t n) {
  for (auto* v : {&x, &ax, &xx, &yy, &dd, &xy, &y}) v->assign(n, 0.0);
}

namespace {

constexpr bool has(unsigned m, unsigned bit) { return (m & bit) != 0; }

// One slice [outer, n, inner]; W is a compile-time mask so each pass has only its own work.
// The inner loop is a SIMD reduction: double partial sums in a fixed, build-determined order.
template <typename T, unsigned W>
void pass(const T* x, const T* y, double lambda, const symmetry::Slice& sl, Sums& s) {
  const T lam = static_cast<T>(lambda);
  for (std::int64_t o = 0; o < sl.outer; ++o)
    for (std::int64_t j = 0; j < sl.n; ++j) {
      const std::int64_t off = (o * sl.n + j) * sl.inner;
      const T* xp = x + off;
      const T* yp = has(W, kYSq | kDSq | kXY | kYSum) ? y + off : nullptr;
      double sx = 0, sa = 0, sxx = 0, syy = 0, sdd = 0, sxy = 0, sy = 0;
#pragma omp simd reduction(+ : sx, sa, sxx, syy, sdd, sxy, sy)
      for (std::int64_t i = 0; i < sl.inner; ++i) {
        const double a = xp[i];
        if constexpr (has(W, kSum)) sx += a;
        if constexpr (has(W, kAbs)) sa += std::abs(a);
        if constexpr (has(W, kSq)) sxx += a * a;
        if constexpr (has(W, kYSq | kDSq | kXY | kYSum)) {
          const double b = yp[i];
          if constexpr (has(W, kYSq)) syy += b * b;
          if constexpr (has(W, kDSq)) {
            // d = g + λθ formed in the parameter dtype, as the optimizer forms it
            const double d = static_cast<T>(yp[i] + lam * xp[i]);
            sdd += d * d;
          }
          if constexpr (has(W, kXY)) sxy += a * b;
          if constexpr (has(W, kYSum)) sy += b;
        }
      }
      const std::int64_t k = sl.first_set + j;
      if constexpr (has(W, kSum)) s.x[k] += sx;
      if constexpr (has(W, kAbs)) s.ax[k] += sa;
      if constexpr (has(W, kSq)) s.xx[k] += sxx;
      if constexpr (has(W, kYSq)) s.yy[k] += syy;
      if constexpr (has(W, kDSq)) s.dd[k] += sdd;
      if constexpr (has(W, kXY)) s.xy[k] += sxy;
      if constexpr (has(W, kYSum)) s.y[k] += sy;
    }
}

template <typename T>
void dispatch(const symmetry::Slice& sl, const T* x, const T* y, double lambda, Sums& s, unsigned want) {
  switch (want) {
    case kTranslation: return pass<T, kTranslation>(x, y, lambda, sl, s);
    case kQuadratic: return pass<T, kQuadratic>(x, y, lambda, sl, s);
    case kAfterStep: return pass<T, kAfterStep>(x, y, lambda, sl, s);
    case kUpdate: return pass<T, kUpdate>(x, y, lambda, sl, s);
    case kThetaOnly: return pass<T, kThetaOnly>(x, y, lambda, sl, s);
    case kSq: return pass<T, kSq>(x, y, lambda, sl, s);
    case kAll: return pass<T, kAll>(x, y, lambda, sl, s);
    default: throw std::logic_error("tracer: unsupported reduction mask");
  }
}

bool reads_y(unsigned want) { return has(want, kYSq | kDSq | kXY | kYSum); }

}  // namespace

void accumulate(const symmetry::Slice& sl, const at::Tensor& x, const at::Tensor& y, double lambda, Sums& s,
                unsigned want) {
  if (x.numel() != sl.outer * sl.n * sl.inner)
    throw std::logic_error("slice " + sl.param + " does not match its tensor's size");
  if (reads_y(want) && !y.defined()) throw std::logic_error("tracer pass needs a second tensor (" + sl.param + ")");
  if (!x.is_cpu() || !x.is_contiguous() ||
      (reads_y(want) && (!y.is_contiguous() || y.scalar_type() != x.scalar_type())))
    throw std::logic_error("tracer needs contiguous CPU tensors of one dtype (" + sl.param + ")");
  if (x.scalar_type() == at::kDouble)
    dispatch<double>(sl, x.data_ptr<double>(), reads_y(want) ? y.data_ptr<double>() : nullptr, lambda, s, want);
  else if (x.scalar_type() == at::kFloat)
    dispatch<float>(sl, x.data_ptr<float>(), reads_y(want) ? y.data_ptr<float>() : nullptr, lambda, s, want);
  else
    throw std::logic_error("tracer supports float32 and float64 parameters");
}

}  // namespace nmech::trace
