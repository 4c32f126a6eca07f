#include "nmech/reduce/bucket_reducer.hpp"

#include <torch/csrc/autograd/utils/lambda_post_hook.h>
#include <torch/csrc/autograd/variable.h>
#include <torch/torch.h>

#include <chrono>
#include <stdexcept>
#include <utility>

#include "nmech/reduce/group_ops.hpp"

namespace nmech::reduce {

namespace {
comm::ElementType element_type(const at::Tensor& t) {
  if (t.scalar_type() == at::kDouble) return comm::ElementType::f64;
  if (t.scalar_type() == at::kFloat) return comm::ElementType::f32;
  throw std::logic_error("bucket reducer: only float32 and float64 parameters");
}
}  // namespace

BucketReducer::BucketReducer(comm::Comm& group, std::unique_ptr<comm::BucketBackend> backend, BucketOptions options)
    : GroupReducer(group), backend_(std::move(backend)), opt_(options) {}

BucketReducer::~BucketReducer() { detach_hooks(); }

void BucketReducer::detach_hooks() {
  for (size_t i = 0; i < hook_keys_.size(); ++i) accumulators_[i]->del_post_hook(hook_keys_[i]);
  hook_keys_.clear();
  accumulators_.clear();
}

void BucketReducer::attach(const std::vector<at::Tensor>& params) {
  detach_hooks();
  params_ = params;
  check_same(group_, shape_digest(params_), "parameter shapes");
  for (const auto& p : params_)
    if (p.scalar_type() != params_.front().scalar_type() || p.device() != params_.front().device())
      throw std::logic_error("bucket reducer: parameters of mixed dtypes or devices");
  // The transport reads the buckets where they live: device or host memory, as it says.
  if (!params_.empty() && params_.front().is_cuda() != backend_->device_memory())
    throw std::logic_error(std::string("bucket reducer: the ") + backend_->name() + " transport cannot sum " +
                           (params_.front().is_cuda() ? "GPU" : "host") + " gradients");
  std::vector<std::size_t> numels;
  for (const auto& p : params_) numels.push_back(static_cast<std::size_t>(p.numel()));
  const std::size_t elem = params_.empty() ? 4 : params_.front().element_size();
  plan_ = comm::plan_buckets(numels, elem, opt_.first_bytes, opt_.bucket_bytes, opt_.in_place_bytes);
  check_same(group_, plan_.digest(), "gradient bucket layouts");
  backend_->reserve(static_cast<int>(plan_.buckets.size()));
  // Every rank knows the names of this reducer's collectives from the start, so a stall report
  // can say where another rank waits even in the first step.
  group_.watchdog().remember("scalars");
  names_.clear();
  for (size_t b = 0; b < plan_.buckets.size(); ++b) {
    names_.push_back("grad bucket " + std::to_string(b + 1) + "/" + std::to_string(plan_.buckets.size()));
    group_.watchdog().remember(names_.back());
  }
  flat_.clear();
  for (const auto& b : plan_.buckets)
    flat_.push_back(torch::zeros({static_cast<std::int64_t>(b.count)}, params_.front().options()));
  own_.assign(params_.size(), at::Tensor());
  pending_.assign(plan_.buckets.size(), 0);
  arrived_.assign(params_.size(), 0);
  if (!opt_.overlap) return;
  // After AccumulateGrad, .grad is the parameter's own tensor (autograd hands over the one
  // backward made, or a copy when anything else holds it), so it may be summed in place.
  using torch::autograd::variable_list;
  for (size_t i = 0; i < params_.size(); ++i) {
    accumulators_.push_back(torch::autograd::impl::grad_accumulator(params_[i]));
    hook_keys_.push_back(accumulators_.back()->add_post_hook(std::make_unique<torch::autograd::utils::LambdaPostHook>(
        [this, i](const variable_list& outputs, const variable_list&) {
          ready(static_cast<int>(i));
          return outputs;
        })));
  }
}

void BucketReducer::prepare(double divisor) {
  divisor_ = divisor;
  // A tensor on the buckets' device: ATen's CUDA division by a plain number multiplies by its
  // float reciprocal instead. Made once a step, not per bucket (on a GPU it is a copy).
  if (!backend_->divides() && !params_.empty()) divisor_t_ = at::scalar_tensor(divisor, params_.front().options());
  for (auto& p : params_) p.mutable_grad() = at::Tensor();  // autograd then hands us fresh tensors
  std::fill(own_.begin(), own_.end(), at::Tensor());     // and last step's in-place ones go
  for (size_t b = 0; b < plan_.buckets.size(); ++b) pending_[b] = static_cast<int>(plan_.buckets[b].slots.size());
  std::fill(arrived_.begin(), arrived_.end(), 0);
  next_ = 0;
  armed_ = true;
}

const comm::BucketPlan::Slot& BucketReducer::slot_plan(std::size_t p) const {
  return plan_.buckets[static_cast<size_t>(plan_.bucket_of[p])].slots[static_cast<size_t>(plan_.slot_of[p])];
}

at::Tensor BucketReducer::slot(int param) {
  const auto p = static_cast<size_t>(param);
  const int b = plan_.bucket_of[p];
  const auto& s = slot_plan(p);
  return flat_[static_cast<size_t>(b)].narrow(0, static_cast<std::int64_t>(s.offset), static_cast<std::int64_t>(s.count));
}

// Called by autograd after parameter `param`'s gradient was accumulated into .grad for this
// backward (once, with the sum over every use).
void BucketReducer::ready(int param) {
  if (!armed_ || arrived_[static_cast<size_t>(param)]) return;
  hand_over(static_cast<size_t>(param));
  backend_->progress();
}

// Puts parameter p's gradient in its bucket: a copy into its slot, or, summed in place, the
// gradient itself (made contiguous if autograd left it otherwise; zeros where it has none).
void BucketReducer::hand_over(std::size_t p) {
  at::NoGradGuard no_grad;
  const int b = plan_.bucket_of[p];
  const at::Tensor& g = params_[p].grad();
  if (slot_plan(p).in_place) {
    own_[p] = g.defined() ? g.contiguous() : torch::zeros_like(params_[p], at::MemoryFormat::Contiguous);
    params_[p].mutable_grad() = own_[p];
  } else if (g.defined()) {
    slot(static_cast<int>(p)).copy_(g.reshape({-1}));
  } else {
    slot(static_cast<int>(p)).zero_();
  }
  arrived_[p] = 1;
  --pending_[static_cast<size_t>(b)];
  start_in_order();
}

// Starts every complete bucket whose predecessors have all started: the fixed order.
void BucketReducer::start_in_order() {
  while (next_ < static_cast<int>(plan_.buckets.size()) && pending_[static_cast<size_t>(next_)] == 0) {
    const auto b = static_cast<size_t>(next_);
    backend_->start(next_, spans(b), element_type(params_.front()), divisor_, names_[b]);
    ++next_;
  }
}

// Bucket b's memory: its buffer (if any gradient is copied), then its in-place gradients.
std::vector<comm::Span> BucketReducer::spans(std::size_t b) {
  std::vector<comm::Span> out;
  if (flat_[b].numel() > 0) out.push_back({flat_[b].data_ptr(), static_cast<std::size_t>(flat_[b].numel())});
  for (const auto& s : plan_.buckets[b].slots)
    if (s.in_place && s.count > 0) out.push_back({own_[static_cast<size_t>(s.param)].data_ptr(), s.count});
  return out;
}

void BucketReducer::finish(std::vector<double>& scalars) {
  armed_ = false;
  started_in_backward_ = next_;
  at::NoGradGuard no_grad;
  // Gradients no hook delivered: computed without hooks (no overlap), or absent (an empty shard,
  // an unused parameter), which count as zeros.
  for (size_t i = 0; i < params_.size(); ++i)
    if (!arrived_[i]) hand_over(i);
  for (int b = 0; b < static_cast<int>(plan_.buckets.size()); ++b) {
    const auto t0 = std::chrono::steady_clock::now();
    backend_->wait(b);
    wait_s_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (backend_->divides()) continue;
    flat_[static_cast<size_t>(b)].div_(divisor_t_);  // sum then scale, in the parameter dtype
    for (const auto& s : plan_.buckets[static_cast<size_t>(b)].slots)
      if (s.in_place) own_[static_cast<size_t>(s.param)].div_(divisor_t_);
  }
  for (size_t i = 0; i < params_.size(); ++i)  // an in-place gradient already is the .grad
    if (!slot_plan(i).in_place) params_[i].mutable_grad() = slot(static_cast<int>(i)).view(params_[i].sizes());
  if (!scalars.empty())
    group_.allreduce(scalars.data(), static_cast<int>(scalars.size()), MPI_DOUBLE, MPI_SUM, "scalars");
}


double BucketReducer::take_wait_seconds() { return std::exchange(wait_s_, 0.0); }

}  // namespace nmech::reduce
