#include "nmech/trace/reduce.hpp"

#include <ATen/ATen.h>

#include <cmath>
#include <stdexcept>

namespace nmech::trace {

void Sums::reset(std::size_t n) {
  for (auto* v : {&x, &ax, &xx, &yy, &dd, &xy, &y}) v->assign(n, 0.0);
}

namespace {

template <typename T>
void pass_x(const T* x, const symmetry::Slice& sl, Sums& s) {
  for (std::int64_t o = 0; o < sl.outer; ++o)
    for (std::int64_t j = 0; j < sl.n; ++j) {
      const T* xp = x + (o * sl.n + j) * sl.inner;
      double sx = 0, sa = 0, sxx = 0;
      for (std::int64_t i = 0; i < sl.inner; ++i) {
        const double a = xp[i];
        sx += a;
        sa += std::abs(a);
        sxx += a * a;
      }
      const std::int64_t k = sl.first_set + j;
      s.x[k] += sx;
      s.ax[k] += sa;
      s.xx[k] += sxx;
    }
}

template <typename T>
void pass_xy(const T* x, const T* y, double lambda, const symmetry::Slice& sl, Sums& s) {
  for (std::int64_t o = 0; o < sl.outer; ++o)
    for (std::int64_t j = 0; j < sl.n; ++j) {
      const std::int64_t off = (o * sl.n + j) * sl.inner;
      const T* xp = x + off;
      const T* yp = y + off;
      double sx = 0, sa = 0, sxx = 0, syy = 0, sdd = 0, sxy = 0, sy = 0;
      for (std::int64_t i = 0; i < sl.inner; ++i) {
        const double a = xp[i], b = yp[i];
        // d = g + λθ formed in the parameter dtype, as the optimizer forms it
        const double d = static_cast<T>(yp[i] + static_cast<T>(lambda) * xp[i]);
        sx += a;
        sa += std::abs(a);
        sxx += a * a;
        syy += b * b;
        sdd += d * d;
        sxy += a * b;
        sy += b;
      }
      const std::int64_t k = sl.first_set + j;
      s.x[k] += sx;
      s.ax[k] += sa;
      s.xx[k] += sxx;
      s.yy[k] += syy;
      s.dd[k] += sdd;
      s.xy[k] += sxy;
      s.y[k] += sy;
    }
}

template <typename T>
void dispatch(const symmetry::Slice& sl, const at::Tensor& x, const at::Tensor& y, double lambda, Sums& s) {
  if (y.defined())
    pass_xy<T>(x.data_ptr<T>(), y.data_ptr<T>(), lambda, sl, s);
  else
    pass_x<T>(x.data_ptr<T>(), sl, s);
}

}  // namespace

void accumulate(const symmetry::Slice& sl, const at::Tensor& x, const at::Tensor& y, double lambda, Sums& s) {
  if (x.numel() != sl.outer * sl.n * sl.inner)
    throw std::logic_error("slice " + sl.param + " does not match its tensor's size");
  if (!x.is_cpu() || !x.is_contiguous() || (y.defined() && (!y.is_contiguous() || y.scalar_type() != x.scalar_type())))
    throw std::logic_error("tracer needs contiguous CPU tensors of one dtype (" + sl.param + ")");
  if (x.scalar_type() == at::kDouble)
    dispatch<double>(sl, x, y, lambda, s);
  else if (x.scalar_type() == at::kFloat)
    dispatch<float>(sl, x, y, lambda, s);
  else
    throw std::logic_error("tracer supports float32 and float64 parameters");
}

}  // namespace nmech::trace
