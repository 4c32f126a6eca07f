#include "nmech/trace/reduce_device.hpp"

#include <ATen/ATen.h>

#include <stdexcept>
#include <string>

namespace nmech::trace {

namespace {

// The order of the quantities in a queued result (a mask's bits, lowest first).
constexpr unsigned kOrder[] = {kSum, kAbs, kSq, kYSq, kDSq, kXY, kYSum};

std::vector<double>& member(Sums& s, unsigned bit) {
  switch (bit) {
    case kSum: return s.x;
    case kAbs: return s.ax;
    case kSq: return s.xx;
    case kYSq: return s.yy;
    case kDSq: return s.dd;
    case kXY: return s.xy;
    default: return s.y;
  }
}

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
  auto per_set = [](const at::Tensor& t) { return t.sum(at::IntArrayRef{0, 2}); };
  std::vector<at::Tensor> q;
  for (unsigned bit : kOrder) {
    if ((want & bit) == 0) continue;
    switch (bit) {
      case kSum: q.push_back(per_set(xd)); break;
      case kAbs: q.push_back(per_set(xd.abs())); break;
      case kSq: q.push_back(per_set(xd * xd)); break;
      case kYSq: q.push_back(per_set(yd * yd)); break;
      case kDSq: {
        // d = g + λθ in the parameter dtype, by the operation the optimizer forms it with
        const at::Tensor d = y.detach().add(x.detach(), lambda).reshape(shape).to(at::kDouble);
        q.push_back(per_set(d * d));
        break;
      }
      case kXY: q.push_back(per_set(xd * yd)); break;
      default: q.push_back(per_set(yd)); break;
    }
  }
  results_.push_back(at::stack(q));
  queued_.push_back({&s, sl.first_set, sl.n, want});
}

void DeviceSums::flush() {
  if (queued_.empty()) return;
  std::vector<at::Tensor> flat;
  for (const auto& r : results_) flat.push_back(r.reshape({-1}));
  const at::Tensor host = at::cat(flat).to(at::kCPU).contiguous();
  const double* v = host.data_ptr<double>();
  for (const auto& qd : queued_)
    for (unsigned bit : kOrder) {
      if ((qd.want & bit) == 0) continue;
      std::vector<double>& dst = member(*qd.sums, bit);
      for (std::int64_t j = 0; j < qd.n; ++j) dst[static_cast<std::size_t>(qd.first_set + j)] += *v++;
    }
  results_.clear();
  queued_.clear();
}

}  // namespace nmech::trace
