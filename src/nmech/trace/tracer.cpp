#include "nmech/trace/tracer.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "nmech/layout/layout.hpp"

namespace nmech::trace {

using symmetry::Family;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

namespace {

struct Bound {
  const symmetry::Slice* slice;
  std::size_t param;
};

std::vector<Bound> bind(const std::vector<symmetry::Slice>& slices,
                        const std::vector<std::pair<std::string, at::Tensor>>& params) {
  std::vector<Bound> out;
  for (const auto& sl : slices) {
    auto it = std::find_if(params.begin(), params.end(), [&](const auto& p) { return p.first == sl.param; });
    if (it == params.end()) throw std::logic_error("symmetry set names unknown parameter " + sl.param);
    out.push_back({&sl, static_cast<std::size_t>(it - params.begin())});
  }
  return out;
}

std::vector<double> minus(const std::vector<double>& a, const std::vector<double>& b) {
  std::vector<double> d(a.size());
  for (std::size_t i = 0; i < a.size(); ++i) d[i] = a[i] - b[i];
  return d;
}

}  // namespace

struct Tracer::FamilyTrace {
  symmetry::Family kind;
  std::string prefix;  // "scale/"
  std::int64_t count;
  std::vector<Bound> in, out;
  std::vector<char> in_fused, out_fused;  // read by a fused row-and-column pass instead
  Sums pre_in, pre_out, post_in, post_out, upd_in, upd_out;
  std::unique_ptr<theory::ExactTranslation> exact_t;
  std::unique_ptr<theory::ExactQuadratic> exact_q;
  std::unique_ptr<theory::ContinuousPredictor> paper, modloss;
  std::vector<double> measured;  // S_k, Q_k or R_k
  // the forcing of update k (rescale: in − out), kept alive for theory::Forcing's pointers; the
  // names of theory::Forcing and of the store's datasets
  std::vector<double> grad_sq, step_sq, velocity_sq, update_sq, update_dot_velocity;
};

Tracer::Tracer(const symmetry::SymmetrySets& sets, const std::vector<std::pair<std::string, at::Tensor>>& params,
               const theory::OptimParams& opt, std::int64_t steps, std::int64_t record_every, bool eval)
    : opt_(opt), steps_(steps), record_every_(record_every), evaluates_(eval), params_(params) {
  eval_.fill(kNaN);
  for (Family f : theory::kFamilies) {
    const auto& fs = sets.get(f);
    if (fs.count() == 0) continue;
    auto fam = std::make_unique<Tracer::FamilyTrace>();
    fam->kind = f;
    fam->prefix = std::string(symmetry::to_string(f)) + "/";
    fam->count = fs.count();
    fam->in = bind(fs.in, params);
    fam->out = bind(fs.out, params);
    fam->in_fused.assign(fam->in.size(), 0);
    fam->out_fused.assign(fam->out.size(), 0);
    families_.push_back(std::move(fam));
  }
  pair_rows_and_columns();
  on_device_ = !params.empty() && !params.front().second.is_cpu();
  bind_sample(sets.sample);
  for (const auto& ds : layout::run_datasets(sets, opt, eval)) columns_[ds.path] = ds.cols == 0 ? 1 : ds.cols;
}

Tracer::~Tracer() = default;

void Tracer::start_row() {
  row_.clear();
  for (const auto& [name, cols] : columns_) row_[name].assign(cols, kNaN);
}

void Tracer::set(const std::string& name, const std::vector<double>& v) {
  auto it = row_.find(name);
  if (it == row_.end()) throw std::logic_error("tracer writes unknown dataset " + name);
  it->second = v;
}

// A conv weight is a set per output channel (rows: scale sets with BatchNorm, the incoming side
// of rescale sets without) and the outgoing side of a rescale set per input channel (columns):
// one fused pass reads it once for both (reduce.hpp).
void Tracer::pair_rows_and_columns() {
  FamilyTrace* rescale = nullptr;
  for (auto& f : families_)
    if (f->kind == Family::rescale) rescale = f.get();
  if (!rescale) return;
  for (auto& rows : families_) {
    if (rows->kind == Family::translation) continue;
    for (std::size_t i = 0; i < rows->in.size(); ++i)
      for (std::size_t j = 0; j < rescale->out.size() && !rows->in_fused[i]; ++j)
        if (!rescale->out_fused[j] && rows->in[i].param == rescale->out[j].param &&
            rows_and_columns(*rows->in[i].slice, *rescale->out[j].slice)) {
          fused_.push_back({rows.get(), i, rescale, j});
          rows->in_fused[i] = rescale->out_fused[j] = 1;
        }
  }
}

void Tracer::reduce(const symmetry::Slice& sl, const at::Tensor& x, const at::Tensor& y, double lambda, Sums& s,
                    unsigned want) {
  if (on_device_) device_sums_.accumulate(sl, x, y, lambda, s, want);
  else accumulate(sl, x, y, lambda, s, want);
}

// On a device the two groupings are two reductions of the same tensor (no host pass to fuse).
void Tracer::reduce_rows_and_columns(const symmetry::Slice& row, Sums& rs, unsigned row_want,
                                     const symmetry::Slice& col, Sums& cs, unsigned col_want, const at::Tensor& x,
                                     const at::Tensor& y, double lambda) {
  if (!on_device_) return accumulate_rows_and_columns(row, rs, row_want, col, cs, col_want, x, y, lambda);
  device_sums_.accumulate(row, x, y, lambda, rs, row_want);
  device_sums_.accumulate(col, x, y, lambda, cs, col_want);
}

void Tracer::measure_all_theta(bool with_grad) {
  for (auto& fam : families_) {
    fam->pre_in.reset(fam->count);
    fam->pre_out.reset(fam->count);
  }
  const double lambda = opt_.decoupled ? 0.0 : opt_.weight_decay;
  const unsigned want = with_grad ? kQuadratic : kThetaOnly;
  for (const auto& f : fused_) {
    const Bound& r = f.rows->in[f.row];
    const auto& p = params_[r.param].second;
    reduce_rows_and_columns(*r.slice, f.rows->pre_in, want, *f.columns->out[f.column].slice, f.columns->pre_out, want,
                            p, with_grad ? p.grad() : at::Tensor(), lambda);
  }
  for (auto& fam : families_) read_theta(*fam, with_grad);
  device_sums_.flush();
  for (auto& fam : families_) publish_theta(*fam, with_grad);
}

// The sample's elements grouped per parameter, as index tensors on the parameter's device.
void Tracer::bind_sample(const symmetry::ParamSample& sample) {
  for (std::int64_t j = 0; j < sample.count(); ++j) {
    auto it = std::find_if(params_.begin(), params_.end(), [&](const auto& p) { return p.first == sample.param[j]; });
    if (it == params_.end()) throw std::logic_error("parameter sample names unknown parameter " + sample.param[j]);
    const auto p = static_cast<std::size_t>(it - params_.begin());
    if (sample_.empty() || sample_.back().first != p) sample_.push_back({p, {}});
    sample_.back().second.push_back(sample.index[j]);
  }
  for (auto& [p, idx] : sample_)
    sample_index_.push_back(at::tensor(idx, at::kLong).to(params_[p].second.device()));
}

// One gather and one copy to the host per row, on any device.
void Tracer::read_sample() {
  if (sample_.empty()) return;
  std::vector<at::Tensor> parts;
  for (std::size_t i = 0; i < sample_.size(); ++i)
    parts.push_back(params_[sample_[i].first].second.detach().reshape({-1}).index_select(0, sample_index_[i]));
  const at::Tensor v = at::cat(parts).to(at::kDouble).cpu().contiguous();
  set("sample/value", std::vector<double>(v.data_ptr<double>(), v.data_ptr<double>() + v.numel()));
}

void Tracer::read_theta(Tracer::FamilyTrace& fam, bool with_grad) {
  const double lambda = opt_.decoupled ? 0.0 : opt_.weight_decay;
  const unsigned want = !with_grad ? kThetaOnly : fam.kind == Family::translation ? kTranslation : kQuadratic;
  for (std::size_t i = 0; i < fam.in.size(); ++i) {
    if (fam.in_fused[i]) continue;
    const auto& p = params_[fam.in[i].param].second;
    reduce(*fam.in[i].slice, p, with_grad ? p.grad() : at::Tensor(), lambda, fam.pre_in, want);
  }
  for (std::size_t i = 0; i < fam.out.size(); ++i) {
    if (fam.out_fused[i]) continue;
    const auto& p = params_[fam.out[i].param].second;
    reduce(*fam.out[i].slice, p, with_grad ? p.grad() : at::Tensor(), lambda, fam.pre_out, want);
  }
}

void Tracer::publish_theta(Tracer::FamilyTrace& fam, bool with_grad) {
  const std::string& px = fam.prefix;
  switch (fam.kind) {
    case Family::translation:
      fam.measured = fam.pre_in.sum;
      set(px + "translation_sum", fam.pre_in.sum);
      set(px + "translation_abs_sum", fam.pre_in.abs_sum);
      if (with_grad) {
        set(px + "grad_sum", fam.pre_in.y_sum);
        set(px + "grad_sq", fam.pre_in.y_sq);  // |Σg|/√(|A|G) is the normalised constraint (docs/THEORY.md §2a)
      }
      break;
    case Family::scale:
      fam.measured = fam.pre_in.sq;
      set(px + "scale_sq_norm", fam.pre_in.sq);
      if (with_grad) {
        set(px + "grad_sq", fam.pre_in.y_sq);
        set(px + "step_sq", fam.pre_in.d_sq);
        set(px + "theta_dot_grad", fam.pre_in.xy);
      }
      break;
    case Family::rescale:
      fam.measured = minus(fam.pre_in.sq, fam.pre_out.sq);
      set(px + "rescale_diff", fam.measured);
      set(px + "sq_norm_in", fam.pre_in.sq);
      set(px + "sq_norm_out", fam.pre_out.sq);
      if (with_grad) {
        set(px + "grad_sq_in", fam.pre_in.y_sq);
        set(px + "grad_sq_out", fam.pre_out.y_sq);
        set(px + "step_sq_in", fam.pre_in.d_sq);
        set(px + "step_sq_out", fam.pre_out.d_sq);
        set(px + "theta_dot_grad_in", fam.pre_in.xy);
        set(px + "theta_dot_grad_out", fam.pre_out.xy);
      }
      break;
  }
  for (double m : fam.measured)
    if (!std::isfinite(m)) non_finite_ = true;
}

void Tracer::start_predictors(Tracer::FamilyTrace& fam) {
  using theory::ContinuousPredictor;
  using theory::KappaMode;
  if (fam.kind == Family::translation)
    fam.exact_t = std::make_unique<theory::ExactTranslation>(opt_, fam.measured);
  else
    fam.exact_q = std::make_unique<theory::ExactQuadratic>(opt_, fam.measured);
  fam.paper = std::make_unique<ContinuousPredictor>(fam.kind, opt_, fam.measured, KappaMode::paper);
  if (!opt_.heavy_ball())
    fam.modloss = std::make_unique<ContinuousPredictor>(fam.kind, opt_, fam.measured, KappaMode::modloss);
}

void Tracer::write_predictions(Tracer::FamilyTrace& fam) {
  const std::string& px = fam.prefix;
  set(px + "pred_exact", fam.exact_t ? fam.exact_t->value() : fam.exact_q->value());
  set(px + "pred_exact_aux", fam.exact_t ? fam.exact_t->aux() : fam.exact_q->aux());
  set(px + "pred_paper", fam.paper->value());
  if (fam.modloss) set(px + "pred_modloss", fam.modloss->value());
}

void Tracer::before_step(std::int64_t k, double loss, double accuracy) {
  start_row();
  loss_ = loss;
  accuracy_ = accuracy;
  measure_all_theta(true);
  if (layout::row_of_step(k, steps_, record_every_) >= 0) read_sample();  // only rows that are kept: a host copy
  for (auto& fam : families_) {
    if (k == 0) start_predictors(*fam);
    write_predictions(*fam);
  }
  if (!std::isfinite(loss)) non_finite_ = true;
}

void Tracer::measure_update(Tracer::FamilyTrace& fam, const std::vector<at::Tensor>& buffers,
                            const std::vector<at::Tensor>& updates) {
  const bool hb = opt_.heavy_ball(), nesterov = hb && opt_.nesterov;
  // Scale needs Q_{k+1} (for the angle) and V; rescale needs only V, so it reads only v, and
  // nothing at all without momentum.
  // V lives in y_sq for both families. A fused pass (momentum only) has done its bounds' V and Q.
  const bool scale = fam.kind == Family::scale;
  auto pass = [&](const std::vector<Bound>& side, const std::vector<char>& fused, Sums& post, Sums& upd) {
    for (std::size_t i = 0; i < side.size(); ++i) {
      const Bound& b = side[i];
      const auto& p = params_[b.param].second;
      if (!(hb && fused[i])) {
        if (scale)
          reduce(*b.slice, p, hb ? buffers[b.param] : at::Tensor(), 0.0, post, hb ? kAfterStep : kSq);
        else if (hb)
          reduce(*b.slice, p, buffers[b.param], 0.0, post, kYSq);
      }
      if (nesterov) reduce(*b.slice, updates[b.param], buffers[b.param], 0.0, upd, kUpdate);
    }
  };
  pass(fam.in, fam.in_fused, fam.post_in, fam.upd_in);
  if (fam.kind == Family::rescale) pass(fam.out, fam.out_fused, fam.post_out, fam.upd_out);
}

void Tracer::measure_all_updates(const std::vector<at::Tensor>& buffers, const std::vector<at::Tensor>& updates) {
  for (auto& fam : families_)
    for (Sums* s : {&fam->post_in, &fam->post_out, &fam->upd_in, &fam->upd_out}) s->reset(fam->count);
  if (opt_.heavy_ball())
    for (const auto& f : fused_) {
      const Bound& r = f.rows->in[f.row];
      const unsigned row_want = f.rows->kind == Family::scale ? kAfterStep : kYSq;  // Q_{k+1} only for scale
      reduce_rows_and_columns(*r.slice, f.rows->post_in, row_want, *f.columns->out[f.column].slice,
                              f.columns->post_out, kYSq, params_[r.param].second, buffers[r.param], 0.0);
    }
  for (auto& fam : families_)
    if (fam->kind != Family::translation) measure_update(*fam, buffers, updates);
  device_sums_.flush();
}

void Tracer::after_step(std::int64_t k, const std::vector<at::Tensor>& buffers,
                        const std::vector<at::Tensor>& updates) {
  const bool hb = opt_.heavy_ball(), nesterov = hb && opt_.nesterov;
  measure_all_updates(buffers, updates);
  for (auto& famp : families_) {
    auto& fam = *famp;
    const std::string& px = fam.prefix;
    if (fam.kind == Family::translation) {
      fam.exact_t->advance();
      fam.paper->advance({});
      if (fam.modloss) fam.modloss->advance({});
      continue;
    }
    const bool rescale = fam.kind == Family::rescale;
    auto side = [&](const std::string& name, const std::vector<double>& a, const std::vector<double>& b) {
      if (rescale) {
        set(px + name + "_in", a);
        set(px + name + "_out", b);
        return minus(a, b);
      }
      set(px + name, a);
      return a;
    };
    fam.grad_sq = rescale ? minus(fam.pre_in.y_sq, fam.pre_out.y_sq) : fam.pre_in.y_sq;
    fam.step_sq = rescale ? minus(fam.pre_in.d_sq, fam.pre_out.d_sq) : fam.pre_in.d_sq;
    theory::Forcing f;
    f.grad_sq = fam.grad_sq.data();
    f.step_sq = fam.step_sq.data();
    if (hb) {
      fam.velocity_sq = side("velocity_sq", fam.post_in.y_sq, fam.post_out.y_sq);
      f.velocity_sq = fam.velocity_sq.data();
    }
    if (nesterov) {
      fam.update_sq = side("update_sq", fam.upd_in.sq, fam.upd_out.sq);
      fam.update_dot_velocity = side("update_dot_velocity", fam.upd_in.xy, fam.upd_out.xy);
      f.update_sq = fam.update_sq.data();
      f.update_dot_velocity = fam.update_dot_velocity.data();
    }
    if (fam.kind == Family::scale && !opt_.decoupled) {
      // |θ_{k+1} − θ_k|²/η² is |u_k|²: V (heavy ball), |u|² (Nesterov), D (SGD)
      const std::vector<double>& u = nesterov ? fam.upd_in.sq : hb ? fam.post_in.y_sq : fam.pre_in.d_sq;
      std::vector<double> angle(fam.count);
      for (std::int64_t i = 0; i < fam.count; ++i)
        angle[i] = theory::angle_step(fam.pre_in.sq[i], fam.post_in.sq[i], u[i], opt_.lr);
      set(px + "angle_step", angle);
    }
    fam.exact_q->advance(f);
    fam.paper->advance(f);
    if (fam.modloss) fam.modloss->advance(f);
  }
  record(k);
}

void Tracer::finish() {
  start_row();
  loss_ = accuracy_ = kNaN;
  measure_all_theta(false);
  read_sample();
  for (auto& fam : families_) write_predictions(*fam);
  record(steps_);
}

void Tracer::set_eval(double loss, double top1, double top5) {
  if (!evaluates_) throw std::logic_error("tracer made without evaluation datasets");
  eval_ = {loss, top1, top5};
}

void Tracer::record(std::int64_t k) {
  const std::int64_t r = layout::row_of_step(k, steps_, record_every_);
  if (r < 0) return;
  set("step", {static_cast<double>(k)});
  set("time", {opt_.lr * static_cast<double>(k)});
  set("loss", {loss_});
  set("accuracy", {accuracy_});
  if (evaluates_) {
    set("val_loss", {eval_[0]});
    set("val_top1", {eval_[1]});
    set("val_top5", {eval_[2]});
  }
  eval_.fill(kNaN);
  if (block_.nrows == 0) block_.row0 = static_cast<std::uint64_t>(r);
  for (const auto& [name, values] : row_) {
    auto& dst = block_.data[name];
    dst.insert(dst.end(), values.begin(), values.end());
  }
  ++block_.nrows;
  last_row_ = row_;
}

RowBlock Tracer::take_rows() {
  RowBlock out = std::move(block_);
  block_ = RowBlock{};
  return out;
}

std::vector<double> Tracer::save_state() const {
  if (block_.nrows != 0) throw std::logic_error("tracer checkpoint with rows not taken");
  theory::StateWriter w;
  for (const auto& fam : families_) {
    if (!fam->paper) throw std::logic_error("tracer checkpoint before the first step");
    if (fam->exact_t) fam->exact_t->save(w);
    if (fam->exact_q) fam->exact_q->save(w);
    fam->paper->save(w);
    if (fam->modloss) fam->modloss->save(w);
  }
  return w.values();
}

void Tracer::load_state(const std::vector<double>& state) {
  theory::StateReader r(state);
  for (auto& fam : families_) {
    fam->measured.assign(static_cast<std::size_t>(fam->count), 0.0);
    start_predictors(*fam);  // the right kinds of predictor, then their saved state
    if (fam->exact_t) fam->exact_t->load(r);
    if (fam->exact_q) fam->exact_q->load(r);
    fam->paper->load(r);
    if (fam->modloss) fam->modloss->load(r);
  }
  if (!r.done()) throw std::runtime_error("checkpoint: tracer state has values left over");
  block_ = RowBlock{};
  non_finite_ = false;
}

ErrorStats Tracer::error(symmetry::Family f, const std::string& prediction) const {
  ErrorStats st;
  const std::string px = std::string(symmetry::to_string(f)) + "/";
  if (last_row_.count(px + prediction) == 0) return st;
  const auto& pred = last_row_.at(px + prediction);
  const auto& t = theory::traits(f);
  const std::vector<double>& meas = last_row_.at(px + t.measured);
  std::vector<double> norm(meas.size(), 0.0);
  for (const auto& d : t.error_scale) {
    const auto& part = last_row_.at(px + d);
    for (std::size_t i = 0; i < norm.size(); ++i) norm[i] += part[i];
  }
  std::vector<double> err(pred.size());
  for (std::size_t i = 0; i < pred.size(); ++i) {
    err[i] = std::abs(pred[i] - meas[i]) / (norm[i] > 0 ? norm[i] : 1.0);
    if (!(err[i] <= st.worst)) {  // NaN counts as worst
      st.worst = err[i];
      st.worst_set = static_cast<std::int64_t>(i);
    }
  }
  st.sets = static_cast<std::int64_t>(err.size());
  if (!err.empty()) {
    std::nth_element(err.begin(), err.begin() + err.size() / 2, err.end());
    st.median = err[err.size() / 2];
  }
  return st;
}

const theory::Oscillator& Tracer::oscillator(symmetry::Family f) const {
  for (const auto& fam : families_)
    if (fam->kind == f) return fam->paper->oscillator();
  throw std::logic_error("no sets of that family");
}

}  // namespace nmech::trace
