#include "nmech/trace/reduce_device.hpp"

#include <ATen/ATen.h>

#include <stdexcept>
#include <string>

namespace nmech::trace {

namespace {

// The quantities in the order a queued result holds them (a mask's bits, lowest first).
struct Quantity {
  unsigned bit;
  std::vector<double> Sums::*sum;
};
constexpr Quantity kOrder[] = {{kSum, &Sums::sum},   {kAbs, &Sums::abs_sum}, {kSq, &Sums::sq},
                               {kYSq, &Sums::y_sq},  {kDSq, &Sums::d_sq},    {kXY, &Sums::xy},
                               {kYSum, &Sums::y_sum}};

}  // namespace

void DeviceSums::accumulate(const symmetry::Slice& sl, const at::Tensor& x, const at::Tensor& y, double lambda,
                            Sums& s, unsigned want) {
  const bool ry = (want & (kYSq | kDSq | kXY | kYSum)) != 0;
  if (x.numel() != sl.outer * sl.n * sl.inner)
    throw std::logic_error("slice " + sl.param + " does not match its tensor's size");
  if (ry && (!y.defined() || y.numel() != x.numel() || y.device() != x.device() || y.scalar_type() != x.scalar_type()))
    throw std::logic_error("tracer pass needs a second tensor like the first (" + sl.param + ")");
  at::NoGradGuard no_grad;
  const std::vector<std::int64_t> shape{sl.outer, sl.n, sl.inner};
  const at::Tensor xd = x.detach().reshape(shape).to(at::kDouble);
  const at::Tensor yd = ry ? y.detach().reshape(shape).to(at::kDouble) : at::Tensor();
  auto terms = [&](unsigned bit) -> at::Tensor {
    switch (bit) {
      case kSum: return xd;
      case kAbs: return xd.abs();
      case kSq: return xd * xd;
      case kYSq: return yd * yd;
      case kDSq: {
        // d = g + λθ in the parameter dtype, by the operation the optimizer forms it with
        const at::Tensor d = y.detach().add(x.detach(), lambda).reshape(shape).to(at::kDouble);
        return d * d;
      }
      case kXY: return xd * yd;
      default: return yd;
    }
  };
  std::vector<at::Tensor> q;
  for (const Quantity& k : kOrder)
    if ((want & k.bit) != 0) q.push_back(terms(k.bit).sum(at::IntArrayRef{0, 2}));  // per set
  queued_.push_back({at::stack(q), &s, sl.first_set, sl.n, want});
}

void DeviceSums::flush() {
  if (queued_.empty()) return;
  std::vector<at::Tensor> flat;
  for (const auto& qd : queued_) flat.push_back(qd.result.reshape({-1}));
  const at::Tensor host = at::cat(flat).to(at::kCPU).contiguous();
  const double* v = host.data_ptr<double>();
  for (const auto& qd : queued_)
    for (const Quantity& k : kOrder) {
      if ((qd.want & k.bit) == 0) continue;
      std::vector<double>& dst = (*qd.sums).*k.sum;
      for (std::int64_t j = 0; j < qd.n; ++j) dst[static_cast<std::size_t>(qd.first_set + j)] += *v++;
    }
  queued_.clear();
}

}  // namespace nmech::trace
