#include "nmech/train/trainer.hpp"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <numeric>
#include <sstream>

#include "nmech/config/run_mapping.hpp"
#include "nmech/data/loader.hpp"
#include "nmech/data/packed.hpp"
#include "nmech/reduce/reducer.hpp"
#include "nmech/net/net.hpp"
#include "nmech/layout/layout.hpp"
#include "nmech/train/device.hpp"
#include "nmech/train/initial_nets.hpp"
#include "nmech/train/sgd.hpp"
#include "nmech/train/trainer_state.hpp"
#include "nmech/util/utc.hpp"

namespace nmech::train {

namespace {
// Rows are written in blocks: at least kFlushRows rows and kFlushSeconds apart, so a fast run
// (an MLP at 2000 steps/s) makes a few writes per second, not one per 16 steps (each write
// call has a fixed cost); a block never holds more than kFlushBytes.
constexpr std::uint64_t kFlushRows = 16;
constexpr double kFlushSeconds = 1.0;
constexpr std::uint64_t kFlushBytes = 64ull << 20;
}  // namespace

namespace {

// A batch made on the host, on the training device (a copy only where that is a GPU).
data::Batch to_device(data::Batch b, const torch::Device& device) {
  if (device.is_cpu()) return b;
  return {b.images.to(device), b.labels.to(device)};
}

}  // namespace

models::ModelSpec model_spec(const config::RunConfig& cfg, const data::Dataset& d) {
  return config::model_spec(cfg, d.channels, d.classes);
}

namespace {
// Everything a run's initial net depends on (initial_nets.hpp): what net::Net is built from
// (the wiring, bn_eps), how it is initialised and where it lives.
std::string net_key(const config::RunConfig& cfg, const models::Wiring& w, const std::string& device) {
  std::ostringstream k;
  k.precision(17);
  k << w.model << ' ' << static_cast<int>(w.loss) << ' ' << w.input_channels << ' ' << w.input_size << ' ' << w.classes;
  for (const models::Layer& l : w.layers)
    k << " | " << static_cast<int>(l.kind) << ' ' << l.name << ' ' << l.in << ' ' << l.out << ' ' << l.kernel << ' '
      << l.h << ' ' << l.w << ' ' << l.bias << ' ' << l.p;
  k << " | " << cfg.bn_eps << ' ' << cfg.init << ' ' << cfg.seed << ' ' << cfg.dtype << ' ' << device;
  return k.str();
}
}  // namespace

Trainer::Trainer(const config::RunConfig& cfg, const data::Dataset& data, const std::string& device)
    : s_(std::make_unique<State>()) {
  State& s = *s_;
  s.cfg = cfg;
  s.data = &data;
  s.device = torch::Device(device);
  if (s.device.is_cuda()) use_exact_gpu_kernels();
  s.prefetch = s.device.is_cuda();
  s.dtype = cfg.dtype == "float64" ? torch::kDouble : torch::kFloat;
  s.opt = config::optim_params(cfg);
  torch::set_num_threads(static_cast<int>(cfg.threads));
  torch::manual_seed(cfg.seed);
  s.wiring = models::make_wiring(model_spec(cfg, data));
  s.sets = symmetry::derive_sets(s.wiring);
  s.net = initial_net(net_key(cfg, s.wiring, device), [&] {
    net::Net n(s.wiring, cfg.bn_eps);
    if (cfg.init == "paper") n->init_paper();  // else LibTorch's defaults, from the same seed
    n->to(s.device, s.dtype);
    return n;
  });
  s.net->train();
  std::vector<at::Tensor> params;
  for (const auto& p : s.net->named_parameters(true)) {
    s.named.emplace_back(p.key(), p.value());
    params.push_back(p.value());
  }
  s.sgd = std::make_unique<Sgd>(params, s.opt);
  s.tracer = std::make_unique<trace::Tracer>(s.sets, s.named, s.opt, cfg.steps, cfg.record_every, cfg.eval_every > 0);
  s.loader = std::make_unique<data::Loader>(data.count, cfg.seed);
}

Trainer::~Trainer() = default;
Trainer::State& Trainer::state() { return *s_; }
std::vector<store::SetTable> Trainer::set_tables() const { return layout::set_tables(s_->sets); }

store::RunLayout Trainer::layout(const std::string& run_name) const {
  return layout::run_layout(s_->cfg, s_->sets, run_name, s_->wiring.classes);
}

void Trainer::set_eval_data(const data::Dataset* eval_data) { s_->eval_data = eval_data; }

Trainer::Evaluation Trainer::evaluate() {
  State& s = *s_;
  if (s.eval_data == nullptr || s.eval_data->count == 0) throw std::logic_error("evaluation without validation data");
  constexpr std::int64_t kChunk = 500;
  const std::int64_t n = s.eval_data->count, k = std::min<std::int64_t>(5, s.eval_data->classes);
  torch::NoGradGuard no_grad;
  s.net->eval();
  Evaluation e;
  for (std::int64_t first = 0; first < n; first += kChunk) {
    std::vector<std::int64_t> idx(static_cast<size_t>(std::min(kChunk, n - first)));
    std::iota(idx.begin(), idx.end(), first);
    auto batch = to_device(data::make_batch(*s.eval_data, idx, s.cfg.input_size, s.dtype), s.device);
    auto logits = s.net->forward(batch.images);
    e.loss += s.net->loss(logits, batch.labels).item<double>() * static_cast<double>(idx.size());
    auto top = std::get<1>(logits.topk(k, 1));
    auto hit = top.eq(batch.labels.unsqueeze(1));
    e.top1 += hit.narrow(1, 0, 1).sum().item<double>();
    e.top5 += hit.sum().item<double>();
  }
  s.net->train();
  e.loss /= static_cast<double>(n), e.top1 /= static_cast<double>(n), e.top5 /= static_cast<double>(n);
  return e;
}

void Trainer::set_reducer(reduce::Reducer* reducer) {
  s_->reducer = reducer;
  if (reducer == nullptr || reducer->size() < 2) return;
  std::vector<at::Tensor> params;
  for (auto& [name, p] : s_->named) params.push_back(p);
  reducer->attach(params);
}

namespace {

// Writes the tracer's buffered rows and then the progress record that makes them visible; a
// rank that does not write (a group member other than the leader) drops its identical copy.
void flush(trace::Tracer& tracer, store::Store& st, const std::string& run, store::Progress& prog,
           bool write, double& seconds) {
  auto block = tracer.take_rows();
  if (block.nrows > 0) prog.rows_committed = static_cast<std::int64_t>(block.row0 + block.nrows);
  if (!write) return;
  const auto t0 = std::chrono::steady_clock::now();
  for (const auto& [name, values] : block.data) st.write_rows(run, name, block.row0, block.nrows, values.data());
  prog.heartbeat_utc = util::utc_now_seconds();
  st.commit(run, prog);  // rows first, then the progress record that makes them visible
  seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// This rank's contiguous share [lo, hi) of a global batch of n, balanced to within one.
std::pair<std::int64_t, std::int64_t> shard(std::int64_t n, int rank, int size) {
  return {n * rank / size, n * (rank + 1) / size};
}

}  // namespace

namespace {

// Draws step k's global batch and makes this rank's shard of it on the host.
HostBatch assemble(Trainer::State& s, std::int64_t k) {
  HostBatch h;
  h.step = k;
  h.before = s.loader->position();
  const auto global = s.loader->next(s.cfg.batch_size);
  const int rank = s.reducer ? s.reducer->rank() : 0, size = s.reducer ? s.reducer->size() : 1;
  h.global = static_cast<std::int64_t>(global.size());
  std::tie(h.lo, h.hi) = shard(h.global, rank, size);
  if (h.hi == h.lo) return h;
  const std::vector<std::int64_t> mine(global.begin() + h.lo, global.begin() + h.hi);
  const data::Augment aug{s.cfg.seed, k, h.lo};
  h.batch = data::make_batch(*s.data, mine, s.cfg.input_size, s.dtype, s.cfg.augment ? &aug : nullptr);
  return h;
}

}  // namespace

double Trainer::step(std::int64_t k, bool trace) {
  State& s = *s_;
  if (s.next && s.next->step != k)  // its batch is drawn: training another step would skip it
    throw std::logic_error("trainer: step " + std::to_string(k) + " after step " + std::to_string(s.next->step) +
                           "'s batch was made");
  const HostBatch h = s.next ? std::move(*s.next) : assemble(s, k);
  s.next.reset();
  const int rank = s.reducer ? s.reducer->rank() : 0, size = s.reducer ? s.reducer->size() : 1;
  // Dropout masks from a generator seeded by (seed, step, rank): every rank of a group draws its
  // own, and a resumed run draws what an uninterrupted one does, whichever rank saved it.
  if (s.cfg.dropout > 0)
    torch::manual_seed(s.cfg.seed * 0x9E3779B97F4A7C15ULL + static_cast<std::uint64_t>(k) * 1024 +
                       static_cast<std::uint64_t>(rank));
  const bool group = size > 1;
  // Clears the gradients and arms the bucket hooks; sums will be divided by the global batch.
  if (group) s.reducer->prepare(static_cast<double>(h.global));
  else s.sgd->zero_grad();
  // The next batch is made while the GPU works through what this step queued (GPU runs only).
  auto make_next = [&] {
    if (s.prefetch && k + 1 < s.cfg.steps) s.next = assemble(s, k + 1);
  };
  double loss_v = 0, correct = 0;
  if (h.hi > h.lo) {
    const data::Batch batch = to_device(h.batch, s.device);
    auto logits = s.net->forward(batch.images);
    auto loss = s.net->loss(logits, batch.labels);
    // In a group each rank back-propagates its shard's summed loss (the mean times the shard's
    // size); the reducer sums over the group and divides by the global batch (reducer.hpp).
    if (group) loss = loss * static_cast<double>(h.hi - h.lo);
    loss.backward();
    make_next();  // before the loss is waited for
    loss_v = loss.item<double>();
    if (trace) correct = logits.argmax(1).eq(batch.labels).sum().item<double>();
  } else {
    make_next();
  }
  if (group) {
    std::vector<double> scalars{loss_v, correct};
    s.reducer->finish(scalars);
    loss_v = scalars[0] / static_cast<double>(h.global);
    correct = scalars[1];
  }
  if (!trace) {
    s.sgd->step();
    return loss_v;
  }
  const double acc = correct / static_cast<double>(h.global);
  s.tracer->before_step(k, loss_v, acc);
  if (s.tracer->non_finite()) return loss_v;  // diverged: the update is not taken
  s.sgd->step();
  s.tracer->after_step(k, s.sgd->buffers(), s.sgd->updates());
  return loss_v;
}

std::string Trainer::trusted_checkpoint(const RunHooks& hooks, const CheckpointOwner& owner) const {
  std::string payload, refused;
  if (!hooks.checkpoint.empty() && std::filesystem::exists(hooks.checkpoint)) {
    try {
      payload = verify_checkpoint(hooks.checkpoint, owner);
    } catch (const CheckpointRefused& e) {
      refused = e.what();
    }
  }
  // The ranks of a group must resume from one state: unless every one of them holds the run's
  // checkpoint (on a shared file system one node may not see it, or may read it damaged), all
  // start over, and the rows are written again from step 0, identically.
  const bool someone_lacks = s_->reducer ? s_->reducer->any(payload.empty()) : payload.empty();
  if (!someone_lacks) return payload;
  if (hooks.leader && (!refused.empty() || !payload.empty()))
    std::fprintf(stderr, "nmech: checkpoint refused: %s; run %s starts again from step 0\n",
                 refused.empty() ? (hooks.checkpoint + ": another rank of the group cannot use it").c_str()
                                 : refused.c_str(),
                 owner.run.c_str());
  return "";
}

RunOutcome Trainer::run(store::Store& st, const std::string& run_name, const RunHooks& hooks) {
  State& s = *s_;
  RunOutcome out;
  store::Progress prog;
  prog.last_loss = std::numeric_limits<double>::quiet_NaN();
  const CheckpointOwner owner{st.id(), run_name, st.progress(run_name).rows_committed};
  std::int64_t k0 = 0;
  if (const std::string payload = trusted_checkpoint(hooks, owner); !payload.empty()) {
    k0 = load_checkpoint(payload, prog);
  } else if (s.reducer && s.reducer->size() > 1) {
    // Parameters and buffers (BatchNorm's running statistics) from the leader; same seed, same
    // code: replicas must already agree.
    std::vector<at::Tensor> state;
    for (auto& [name, p] : s.named) state.push_back(p);
    for (auto& b : s.net->buffers(true))
      if (b.is_floating_point()) state.push_back(b);
    if (s.reducer->broadcast(state) != 0)
      throw std::runtime_error(run_name + ": initial parameters differ from the group leader's");
  }
  out.resumed_from = k0;
  out.steps_done = k0;
  auto last_flush = std::chrono::steady_clock::now();
  std::uint64_t row_bytes = 0;
  for (const auto& d : layout::run_datasets(s.sets, s.opt, s.cfg.eval_every > 0)) row_bytes += 8 * std::max<std::uint64_t>(d.cols, 1);
  out.last_loss = prog.last_loss;
  prog.status = store::Status::running;
  prog.heartbeat_utc = util::utc_now_seconds();
  if (hooks.leader) st.commit(run_name, prog);
  // Evaluations land in the row of their step; only a writing rank needs them.
  const bool eval = s.cfg.eval_every > 0 && hooks.leader;
  if (s.cfg.eval_every > 0 && s.eval_data == nullptr) throw std::logic_error(run_name + ": eval_every without validation data");
  auto evaluate_into_row = [&] {
    const Evaluation e = evaluate();
    s.tracer->set_eval(e.loss, e.top1, e.top5);
  };
  for (std::int64_t k = k0; k < s.cfg.steps; ++k) {
    if (eval && k % s.cfg.eval_every == 0) evaluate_into_row();
    const auto step_start = std::chrono::steady_clock::now();
    out.last_loss = step(k);
    out.step_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - step_start).count();
    if (s.tracer->non_finite()) {
      out.status = store::Status::diverged;
      out.diverged_at = k;
      prog.last_step = k;
      prog.last_loss = out.last_loss;
      s.tracer->record_diverged(k);
      break;
    }
    out.steps_done = k + 1;
    prog.last_step = k;
    prog.last_loss = out.last_loss;
    const std::uint64_t rows = s.tracer->buffered_rows();
    const double since = std::chrono::duration<double>(std::chrono::steady_clock::now() - last_flush).count();
    if ((rows >= kFlushRows && since >= kFlushSeconds) || rows * row_bytes >= kFlushBytes) {
      flush(*s.tracer, st, run_name, prog, hooks.leader, out.store_seconds);
      last_flush = std::chrono::steady_clock::now();
    }
    if (hooks.on_step) hooks.on_step(k, out.last_loss);
    if (k + 1 == s.cfg.steps) break;
    const bool stop = hooks.stop && hooks.stop();
    const bool due = hooks.checkpoint_every > 0 && (k + 1) % hooks.checkpoint_every == 0;
    if ((stop || due) && !hooks.checkpoint.empty()) {
      flush(*s.tracer, st, run_name, prog, hooks.leader, out.store_seconds);
      if (hooks.leader) save_checkpoint(hooks.checkpoint, k + 1, prog, owner);
    }
    if (stop) {
      out.stopped = true;
      return out;
    }
  }
  if (out.status != store::Status::diverged) {
    if (eval) evaluate_into_row();
    s.tracer->finish();
    out.status = store::Status::done;
    prog.last_step = s.cfg.steps;
  }
  for (auto f : theory::kFamilies)
    if (s.sets.get(f).count() > 0)
      out.errors[f] = {s.tracer->error(f, "pred_exact"), s.tracer->error(f, "pred_paper")};
  flush(*s.tracer, st, run_name, prog, hooks.leader, out.store_seconds);
  prog.status = out.status;
  prog.diverged_at = out.diverged_at;
  prog.heartbeat_utc = util::utc_now_seconds();
  if (hooks.leader) {
    st.commit(run_name, prog);
    if (!hooks.checkpoint.empty()) std::filesystem::remove(hooks.checkpoint);  // finished for good
  }
  return out;
}

}  // namespace nmech::train
