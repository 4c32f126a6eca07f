#include "nmech/trace/reduce.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <vector>
#include <stdexcept>
#include <string>

namespace nmech::trace {

void Sums::reset(std::size_t n) {
  for (auto* v : {&sum, &abs_sum, &sq, &y_sq, &d_sq, &xy, &y_sum}) v->assign(n, 0.0);
}

namespace {

constexpr bool has(unsigned m, unsigned bit) { return (m & bit) != 0; }

// Adds the masked sums of one set k (the tail of every pass).
template <unsigned M>
void add_sums(Sums& s, std::int64_t k, double sx, double sa, double sxx, double syy, double sdd, double sxy,
              double sy) {
  if constexpr (has(M, kSum)) s.sum[k] += sx;
  if constexpr (has(M, kAbs)) s.abs_sum[k] += sa;
  if constexpr (has(M, kSq)) s.sq[k] += sxx;
  if constexpr (has(M, kYSq)) s.y_sq[k] += syy;
  if constexpr (has(M, kDSq)) s.d_sq[k] += sdd;
  if constexpr (has(M, kXY)) s.xy[k] += sxy;
  if constexpr (has(M, kYSum)) s.y_sum[k] += sy;
}

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
      add_sums<W>(s, sl.first_set + j, sx, sa, sxx, syy, sdd, sxy, sy);
    }
}

// The fused row-and-column pass. A row (one output channel, cols·block contiguous elements) is
// reduced with SIMD like any row; at the same time each element's terms are added, also with
// SIMD, into per-position column accumulators that are summed by blocks once at the end. So the
// tensor is read once and no loop runs over a short block of 9.
template <typename T, unsigned RM, unsigned CM>
void fused(const T* x, const T* y, double lambda, const symmetry::Slice& row, Sums& rs, const symmetry::Slice& col,
           Sums& cs) {
  constexpr unsigned W = RM | CM;
  constexpr bool ry = has(W, kYSq | kDSq | kXY | kYSum);
  const T lam = static_cast<T>(lambda);
  const std::int64_t len = col.n * col.inner;
  thread_local std::vector<double> buf;
  if (buf.size() < static_cast<size_t>(7 * len)) buf.resize(static_cast<size_t>(7 * len));
  double* cx = buf.data();
  double *cax = cx + len, *cxx = cax + len, *cyy = cxx + len, *cdd = cyy + len, *cxy = cdd + len, *cy = cxy + len;
  const unsigned bits[7] = {kSum, kAbs, kSq, kYSq, kDSq, kXY, kYSum};
  for (int q = 0; q < 7; ++q)  // only the column accumulators this pass uses
    if (has(CM, bits[q])) std::fill(cx + q * len, cx + (q + 1) * len, 0.0);
  for (std::int64_t o = 0; o < col.outer; ++o) {
    const T* xp = x + o * len;
    const T* yp = ry ? y + o * len : nullptr;
    double sx = 0, sa = 0, sxx = 0, syy = 0, sdd = 0, sxy = 0, sy = 0;
#pragma omp simd reduction(+ : sx, sa, sxx, syy, sdd, sxy, sy)
    for (std::int64_t i = 0; i < len; ++i) {
      const double a = xp[i];
      if constexpr (has(W, kSum)) {
        if constexpr (has(RM, kSum)) sx += a;
        if constexpr (has(CM, kSum)) cx[i] += a;
      }
      if constexpr (has(W, kAbs)) {
        const double v = std::abs(a);
        if constexpr (has(RM, kAbs)) sa += v;
        if constexpr (has(CM, kAbs)) cax[i] += v;
      }
      if constexpr (has(W, kSq)) {
        const double v = a * a;
        if constexpr (has(RM, kSq)) sxx += v;
        if constexpr (has(CM, kSq)) cxx[i] += v;
      }
      if constexpr (ry) {
        const double b = yp[i];
        if constexpr (has(W, kYSq)) {
          const double v = b * b;
          if constexpr (has(RM, kYSq)) syy += v;
          if constexpr (has(CM, kYSq)) cyy[i] += v;
        }
        if constexpr (has(W, kDSq)) {
          const double d = static_cast<T>(yp[i] + lam * xp[i]);  // d = g + λθ in the parameter dtype
          if constexpr (has(RM, kDSq)) sdd += d * d;
          if constexpr (has(CM, kDSq)) cdd[i] += d * d;
        }
        if constexpr (has(W, kXY)) {
          const double v = a * b;
          if constexpr (has(RM, kXY)) sxy += v;
          if constexpr (has(CM, kXY)) cxy[i] += v;
        }
        if constexpr (has(W, kYSum)) {
          if constexpr (has(RM, kYSum)) sy += b;
          if constexpr (has(CM, kYSum)) cy[i] += b;
        }
      }
    }
    add_sums<RM>(rs, row.first_set + o, sx, sa, sxx, syy, sdd, sxy, sy);
  }
  for (std::int64_t c = 0; c < col.n; ++c) {
    const std::int64_t at = c * col.inner;
    auto block = [&](const double* a) {  // only called for the accumulators this pass filled
      double t = 0;
      for (std::int64_t i = 0; i < col.inner; ++i) t += a[at + i];
      return t;
    };
    add_sums<CM>(cs, col.first_set + c, has(CM, kSum) ? block(cx) : 0, has(CM, kAbs) ? block(cax) : 0,
                 has(CM, kSq) ? block(cxx) : 0, has(CM, kYSq) ? block(cyy) : 0, has(CM, kDSq) ? block(cdd) : 0,
                 has(CM, kXY) ? block(cxy) : 0, has(CM, kYSum) ? block(cy) : 0);
  }
}

// The mask pairs the tracer uses: before a step (θ, g) for both; after it (θ, v) with the
// columns (and rescale rows) taking only Σv²; the final row θ alone.
template <typename T>
void fused_dispatch(const T* x, const T* y, double lambda, const symmetry::Slice& row, Sums& rs, unsigned rm,
                    const symmetry::Slice& col, Sums& cs, unsigned cm) {
  if (rm == kQuadratic && cm == kQuadratic) return fused<T, kQuadratic, kQuadratic>(x, y, lambda, row, rs, col, cs);
  if (rm == kAfterStep && cm == kYSq) return fused<T, kAfterStep, kYSq>(x, y, lambda, row, rs, col, cs);
  if (rm == kYSq && cm == kYSq) return fused<T, kYSq, kYSq>(x, y, lambda, row, rs, col, cs);
  if (rm == kThetaOnly && cm == kThetaOnly) return fused<T, kThetaOnly, kThetaOnly>(x, y, lambda, row, rs, col, cs);
  throw std::logic_error("tracer: unsupported fused reduction masks");
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
    case kYSq: return pass<T, kYSq>(x, y, lambda, sl, s);
    case kAll: return pass<T, kAll>(x, y, lambda, sl, s);
    default: throw std::logic_error("tracer: unsupported reduction mask");
  }
}

bool reads_y(unsigned want) { return has(want, kYSq | kDSq | kXY | kYSum); }

// What every pass needs of its tensors: x, and y when the pass reads it, contiguous on the CPU
// in one dtype.
void check_tensors(const at::Tensor& x, const at::Tensor& y, bool ry, const std::string& param) {
  if (ry && !y.defined()) throw std::logic_error("tracer pass needs a second tensor (" + param + ")");
  if (!x.is_cpu() || !x.is_contiguous() || (ry && (!y.is_contiguous() || y.scalar_type() != x.scalar_type())))
    throw std::logic_error("tracer needs contiguous CPU tensors of one dtype (" + param + ")");
  if (x.scalar_type() != at::kDouble && x.scalar_type() != at::kFloat)
    throw std::logic_error("tracer supports float32 and float64 parameters");
}

}  // namespace

bool rows_and_columns(const symmetry::Slice& row, const symmetry::Slice& col) {
  return row.param == col.param && row.outer == 1 && row.n == col.outer && row.inner == col.n * col.inner;
}

void accumulate_rows_and_columns(const symmetry::Slice& row, Sums& rs, unsigned row_want, const symmetry::Slice& col,
                                 Sums& cs, unsigned col_want, const at::Tensor& x, const at::Tensor& y, double lambda) {
  if (!rows_and_columns(row, col) || x.numel() != col.outer * col.n * col.inner)
    throw std::logic_error("fused pass: slices of " + row.param + " do not tile its tensor");
  const bool ry = reads_y(row_want | col_want);
  check_tensors(x, y, ry, row.param);
  if (x.scalar_type() == at::kDouble)
    fused_dispatch<double>(x.data_ptr<double>(), ry ? y.data_ptr<double>() : nullptr, lambda, row, rs, row_want, col, cs,
                           col_want);
  else
    fused_dispatch<float>(x.data_ptr<float>(), ry ? y.data_ptr<float>() : nullptr, lambda, row, rs, row_want, col, cs,
                          col_want);
}

void accumulate(const symmetry::Slice& sl, const at::Tensor& x, const at::Tensor& y, double lambda, Sums& s,
                unsigned want) {
  if (x.numel() != sl.outer * sl.n * sl.inner)
    throw std::logic_error("slice " + sl.param + " does not match its tensor's size");
  const bool ry = reads_y(want);
  check_tensors(x, y, ry, sl.param);
  if (x.scalar_type() == at::kDouble)
    dispatch<double>(sl, x.data_ptr<double>(), ry ? y.data_ptr<double>() : nullptr, lambda, s, want);
  else
    dispatch<float>(sl, x.data_ptr<float>(), ry ? y.data_ptr<float>() : nullptr, lambda, s, want);
}

}  // namespace nmech::trace
