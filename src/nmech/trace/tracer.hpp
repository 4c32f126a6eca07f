#pragma once
// The tracer: every step, per-set reductions for every family, fed to the exact and continuous
// predictors; a row every record_every steps (docs/THEORY.md §4.5). One class per family would split
// a single fused read of θ and g, so the families share this driver and differ in tables.
#include <ATen/Tensor.h>

#include <array>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "nmech/symmetry/sets.hpp"
#include "nmech/theory/continuous.hpp"
#include "nmech/theory/exact.hpp"
#include "nmech/trace/reduce.hpp"
#include "nmech/trace/reduce_device.hpp"

namespace nmech::trace {

// Rows not yet written: data[name] is row-major [nrows, cols].
struct RowBlock {
  std::uint64_t row0 = 0, nrows = 0;
  std::map<std::string, std::vector<double>> data;
};

// Relative error of a prediction at one row, over the sets of a family.
struct ErrorStats {
  double median = 0, worst = 0;
  std::int64_t worst_set = -1;
  std::int64_t sets = 0;
};

class Tracer {
 public:
  // params: the model's named parameters (same order as the optimizer's).
  Tracer(const symmetry::SymmetrySets& sets, const std::vector<std::pair<std::string, at::Tensor>>& params,
         const theory::OptimParams& opt, std::int64_t steps, std::int64_t record_every, bool eval = false);
  ~Tracer();

  // After backward (and gradient reduction), before update k: reads θ_k and g_k.
  void before_step(std::int64_t k, double loss, double accuracy);
  // After update k: reads θ_{k+1}, the momentum buffers and (Nesterov) the update directions.
  void after_step(std::int64_t k, const std::vector<at::Tensor>& buffers, const std::vector<at::Tensor>& updates);
  // After the last update: reads θ_N and records the final row.
  void finish();
  // Validation loss, top-1 and top-5 at θ_k for the next recorded row (datasets val_*; the tracer
  // must have been made with eval).
  void set_eval(double loss, double top1, double top5);
  // Step k found a non-finite value (before_step set non_finite()): records what before_step
  // measured, so the row of the diverging step shows why (update quantities stay NaN).
  void record_diverged(std::int64_t k) { record(k); }

  // True if the last reductions found a non-finite parameter.
  bool non_finite() const { return non_finite_; }
  std::uint64_t buffered_rows() const { return block_.nrows; }
  RowBlock take_rows();

  // Checkpoint at a step boundary (after after_step, rows taken): every predictor's state, so a
  // resumed run predicts exactly what an uninterrupted one does.
  std::vector<double> save_state() const;
  void load_state(const std::vector<double>& state);

  // Relative error of pred_exact / pred_paper against the measurement in the latest recorded row,
  // normalised per set by the family's error scale (theory/family.hpp: Σ|θ|, Q, Q_in + Q_out).
  ErrorStats error(symmetry::Family f, const std::string& prediction) const;
  const theory::Oscillator& oscillator(symmetry::Family f) const;

  // Reduce with ATen on the tensors' device (reduce_device.hpp), as a GPU run always does, even
  // for CPU tensors: how tests hold the GPU's reductions against the host's.
  void use_device_reductions() { on_device_ = true; }

 private:
  struct FamilyTrace;
  void start_row();
  void set(const std::string& name, const std::vector<double>& v);
  void pair_rows_and_columns();
  void reduce(const symmetry::Slice& sl, const at::Tensor& x, const at::Tensor& y, double lambda, Sums& s,
              unsigned want);
  void reduce_rows_and_columns(const symmetry::Slice& row, Sums& rs, unsigned row_want, const symmetry::Slice& col,
                               Sums& cs, unsigned col_want, const at::Tensor& x, const at::Tensor& y, double lambda);
  void measure_all_theta(bool with_grad);
  void bind_sample(const symmetry::ParamSample& sample);
  void read_sample();
  void read_theta(FamilyTrace& fam, bool with_grad);
  void publish_theta(FamilyTrace& fam, bool with_grad);
  void start_predictors(FamilyTrace& fam);
  void write_predictions(FamilyTrace& fam);
  void measure_update(FamilyTrace& fam, const std::vector<at::Tensor>& buffers, const std::vector<at::Tensor>& updates);
  void measure_all_updates(const std::vector<at::Tensor>& buffers, const std::vector<at::Tensor>& updates);
  void record(std::int64_t k);
  std::map<std::string, std::uint64_t> columns_;  // every dataset and its width
  std::vector<std::unique_ptr<FamilyTrace>> families_;
  // A scale family's row slice and a rescale family's column slice of the same tensor.
  struct Fused {
    FamilyTrace* rows;
    std::size_t row;
    FamilyTrace* columns;
    std::size_t column;
  };
  std::vector<Fused> fused_;
  std::map<std::string, std::vector<double>> row_;  // the current step's values
  RowBlock block_;
  std::map<std::string, std::vector<double>> last_row_;
  theory::OptimParams opt_;
  std::int64_t steps_, record_every_;
  double loss_ = 0, accuracy_ = 0;
  bool evaluates_;                // the rows have val_* datasets
  std::array<double, 3> eval_{};  // val_loss, val_top1, val_top5 for the next row (NaN: not evaluated)
  bool non_finite_ = false;
  std::vector<std::pair<std::string, at::Tensor>> params_;
  bool on_device_ = false;  // GPU parameters: ATen reductions queued in device_sums_
  // the parameter sample: per parameter (index into params_) its flat indices, and those indices
  // as a tensor on its device
  std::vector<std::pair<std::size_t, std::vector<std::int64_t>>> sample_;
  std::vector<at::Tensor> sample_index_;
  DeviceSums device_sums_;
};

}  // namespace nmech::trace
