#include "nmech/train/trainer.hpp"

#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <sstream>

#include "nmech/config/run_mapping.hpp"
#include "nmech/data/loader.hpp"
#include "nmech/models/net.hpp"
#include "nmech/trace/layout.hpp"
#include "nmech/train/sgd.hpp"
#include "nmech/train/trainer_state.hpp"

namespace nmech::train {

namespace {
constexpr std::uint64_t kFlushRows = 16;  // rows buffered before a store write

double now_utc() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}
}  // namespace

models::ModelSpec model_spec(const config::RunConfig& cfg, const data::Dataset& d) {
  return config::model_spec(cfg, d.channels, d.classes);
}

std::string model_key(const config::RunConfig& cfg) {
  std::ostringstream k;
  k << cfg.model << "-w" << cfg.width << "-c" << cfg.classifier_width << "-in" << cfg.input_size;
  if (cfg.model.rfind("mlp", 0) == 0) k << "-d" << cfg.mlp_depth;
  return k.str();
}

data::Dataset load_dataset(const config::RunConfig& cfg, const std::string& origin) {
  data::Dataset d = cfg.dataset == "synthetic" ? data::make_synthetic(1024, 1, 28, 10, 12345)
                                               : data::load_fashion_mnist(cfg.data_dir, true);
  if (cfg.batch_size > d.count)
    throw config::ConfigError(origin + ": key 'batch_size': " + std::to_string(cfg.batch_size) +
                              " exceeds the " + std::to_string(d.count) + " images of " + d.name);
  if (cfg.input_size < d.height)
    throw config::ConfigError(origin + ": key 'input_size': " + std::to_string(cfg.input_size) +
                              " is smaller than the " + std::to_string(d.height) + "-pixel images");
  return d;
}

Trainer::Trainer(const config::RunConfig& cfg, const data::Dataset& data) : s_(std::make_unique<State>()) {
  State& s = *s_;
  s.cfg = cfg;
  s.data = &data;
  s.dtype = cfg.dtype == "float64" ? torch::kDouble : torch::kFloat;
  s.opt = config::optim_params(cfg);
  torch::set_num_threads(static_cast<int>(cfg.threads));
  torch::manual_seed(cfg.seed);
  s.wiring = models::make_wiring(model_spec(cfg, data));
  s.sets = symmetry::derive_sets(s.wiring);
  s.net = models::Net(s.wiring, cfg.bn_eps);
  if (cfg.init == "paper") s.net->init_paper();  // else LibTorch's defaults, from the same seed
  s.net->to(s.dtype);
  s.net->train();
  std::vector<at::Tensor> params;
  for (const auto& p : s.net->named_parameters(true)) {
    s.named.emplace_back(p.key(), p.value());
    params.push_back(p.value());
  }
  s.sgd = std::make_unique<Sgd>(params, s.opt);
  s.tracer = std::make_unique<trace::Tracer>(s.sets, s.named, s.opt, cfg.steps, cfg.record_every);
  s.loader = std::make_unique<data::Loader>(data.count, cfg.seed);
}

Trainer::~Trainer() = default;
Trainer::State& Trainer::state() { return *s_; }
const symmetry::SymmetrySets& Trainer::sets() const { return s_->sets; }
std::vector<store::SetTable> Trainer::set_tables() const { return trace::set_tables(s_->sets); }

store::RunLayout Trainer::layout(const std::string& run_name) const {
  const auto& c = s_->cfg;
  store::RunLayout l;
  l.name = run_name;
  l.model = model_key(c);
  l.rows = trace::row_count(c.steps, c.record_every);
  l.datasets = trace::run_datasets(s_->sets, s_->opt);
  l.attrs = {{"model_name", c.model}, {"width", c.width}, {"dataset", c.dataset},
             {"lr", c.lr}, {"weight_decay", c.weight_decay}, {"momentum", c.momentum},
             {"dampening", c.dampening}, {"nesterov", std::int64_t{c.nesterov}},
             {"decoupled_weight_decay", std::int64_t{c.decoupled_weight_decay}},
             {"batch_size", c.batch_size}, {"steps", c.steps}, {"record_every", c.record_every},
             {"seed", static_cast<std::int64_t>(c.seed)}, {"dtype", c.dtype}, {"bn_eps", c.bn_eps},
             {"dropout", c.dropout}, {"init", c.init}, {"threads", c.threads},
             {"angle_eq", theory::angle_eq(s_->opt)}, {"relax_steps", theory::relax_steps(s_->opt)},
             {"config", config::to_toml(c)}};
  for (auto f : {symmetry::Family::translation, symmetry::Family::scale, symmetry::Family::rescale}) {
    const auto osc = theory::Oscillator::make(static_cast<theory::Family>(f), s_->opt);
    const std::string fam = symmetry::to_string(f);
    l.attrs.push_back({fam + "_gamma", osc.gamma});
    l.attrs.push_back({fam + "_omega", osc.omega});
    l.attrs.push_back({fam + "_damping_regime", theory::to_string(osc.regime)});
  }
  return l;
}

namespace {

void flush(trace::Tracer& tracer, store::Store& st, const std::string& run, store::Progress& prog) {
  auto block = tracer.take_rows();
  if (block.nrows == 0) return;
  for (const auto& [name, values] : block.data) st.write_rows(run, name, block.row0, block.nrows, values.data());
  prog.rows_committed = static_cast<std::int64_t>(block.row0 + block.nrows);
  prog.heartbeat_utc = now_utc();
  st.commit(run, prog);  // rows first, then the progress record that makes them visible
}

}  // namespace

double Trainer::step(std::int64_t k, bool trace) {
  State& s = *s_;
  auto batch = data::make_batch(*s.data, s.loader->next(s.cfg.batch_size), s.cfg.input_size, s.dtype);
  s.sgd->zero_grad();
  auto logits = s.net->forward(batch.images);
  auto loss = s.net->loss(logits, batch.labels);
  loss.backward();
  const double loss_v = loss.item<double>();
  if (!trace) {
    s.sgd->step();
    return loss_v;
  }
  const double acc = logits.argmax(1).eq(batch.labels).to(torch::kDouble).mean().item<double>();
  s.tracer->before_step(k, loss_v, acc);
  if (s.tracer->non_finite()) return loss_v;  // diverged: the update is not taken
  s.sgd->step();
  s.tracer->after_step(k, s.sgd->buffers(), s.sgd->updates());
  return loss_v;
}

RunOutcome Trainer::run(store::Store& st, const std::string& run_name) {
  State& s = *s_;
  RunOutcome out;
  store::Progress prog;
  prog.status = store::Status::running;
  prog.heartbeat_utc = now_utc();
  st.commit(run_name, prog);
  for (std::int64_t k = 0; k < s.cfg.steps; ++k) {
    out.last_loss = step(k);
    if (s.tracer->non_finite()) {
      out.status = store::Status::diverged;
      out.diverged_at = k;
      break;
    }
    out.steps_done = k + 1;
    prog.last_step = k;
    if (s.tracer->buffered_rows() >= kFlushRows) flush(*s.tracer, st, run_name, prog);
  }
  if (out.status != store::Status::diverged) {
    s.tracer->finish();
    out.status = store::Status::done;
    prog.last_step = s.cfg.steps;
  }
  for (auto f : {symmetry::Family::translation, symmetry::Family::scale, symmetry::Family::rescale})
    if (s.sets.get(f).count() > 0)
      out.errors[f] = {s.tracer->error(f, "pred_exact"), s.tracer->error(f, "pred_paper")};
  flush(*s.tracer, st, run_name, prog);
  prog.status = out.status;
  prog.diverged_at = out.diverged_at;
  prog.heartbeat_utc = now_utc();
  st.commit(run_name, prog);
  return out;
}

}  // namespace nmech::train
