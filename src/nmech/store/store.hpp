#pragma once
// The shared trace store: one parallel HDF5 file (docs/DESIGN.md "The store"; docs/STORE.md).
// Every group, dataset and attribute is made up front by create(); afterwards only raw
// data is written, independently, by each run's leader: rows first, then the progress record.
// A reader trusts only committed rows. Torch-free.
#include <hdf5.h>
#include <mpi.h>

#include <cstdint>
#include <cstddef>
#include <limits>
#include <map>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

namespace nmech::store {

// Bad input (unwritable path, not a store, mismatched layout): the CLI exits with code 2.
class StoreError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

using AttrValue = std::variant<double, std::int64_t, std::string>;
using Attrs = std::vector<std::pair<std::string, AttrValue>>;

// One dataset of a run, at path relative to /runs/<run>/ ("loss", "scale/pred_exact").
// cols == 0: shape [rows]; otherwise [rows, cols] and the column dimension scale is the
// set_index of family `set_family` under /models/<model>/sets/<set_family>.
struct DatasetSpec {
  std::string path;
  std::uint64_t cols = 0;
  std::string set_family;
  std::string units;
  std::string description;
};

// The symmetry sets of one family of a model: one entry per set (column).
struct SetTable {
  std::string family;               // translation | scale | rescale
  std::vector<std::string> names;   // e.g. "fc3.col17", "conv3.ch5"
  std::vector<std::int64_t> layer;  // owning layer index
  std::vector<std::int64_t> index;  // column, channel or unit within the layer
};

struct RunLayout {
  std::string name;
  std::string model;
  std::uint64_t rows = 0;
  Attrs attrs;                        // every hyperparameter, seed, steps, record_every, ...
  std::vector<DatasetSpec> datasets;  // must include "step" (cols 0): the row dimension scale
};

// The version of the layout create() writes (file attribute format_version); bumped on any
// change an older reader or writer would misread. 3: store_id and data_sha256. 4: each run has
// its own set_index per family (kRunSetIndex), the dimension scale of its datasets' columns.
// 5: the families and the hyperparameters described by file attributes (families,
// <f>_measured, <f>_error_scale, hyperparameters), which readers use instead of lists of their own.
// 6: each run's closed forms (theory/closed_forms.hpp) as run attributes, which readers use
// instead of formulas of their own. 7: a run's datasets carry no units and description
// attributes; /quantities/<path> says them once for every run (kQuantities); and no dimension
// labels.
constexpr std::int64_t kFormatVersion = 7;
// /quantities/<path>: a group whose attributes units and description say what every run's
// /runs/<run>/<path> holds.
constexpr const char* kQuantities = "quantities";
// /runs/<run>/set_index/<family>: reserved in every run.
constexpr const char* kRunSetIndex = "set_index";

// failed: the run raised an error (logged by the sweep); its group moved on.
enum class Status : std::int32_t { pending = 0, running = 1, done = 2, diverged = 3, failed = 4 };
constexpr int kStatusCount = 5;  // the codes are 0 .. kStatusCount - 1
std::string to_string(Status s);

struct Progress {
  std::int64_t rows_committed = 0;
  std::int64_t last_step = -1;
  Status status = Status::pending;
  std::int64_t diverged_at = -1;
  double heartbeat_utc = 0.0;  // seconds since the epoch
  double last_loss = std::numeric_limits<double>::quiet_NaN();  // NaN before the first step
};

// Every run has `provenance`: kProvenanceSlots fixed-length strings of kProvenanceBytes, one
// JSON object per attempt (start or resume) at the run (who, where, which libraries).
constexpr std::size_t kProvenanceSlots = 16;
constexpr std::size_t kProvenanceBytes = 2048;

// True once a create failed inside HDF5 (disk full while it wrote metadata): HDF5 1.10 keeps a
// file it could not close and crashes closing it again inside MPI_Finalize, so the process must
// end without finalizing (apps/nmech.cpp), its message already printed.
bool hdf5_cannot_finalize();

class Store {
 public:
  // Collective over comm; rank 0 builds "<path>.partial" alone with serial HDF5 and renames it to
  // path once every object exists, so an interrupted create never leaves a file that looks like a
  // store. Refuses with util::IoError, before writing, a store its file system has no room for; a
  // write that fails is util::IoError on every rank. Where comm has several ranks, a creation
  // that makes no progress for stall_timeout_s ends the job (exit 1).
  static Store create(const std::string& path, MPI_Comm comm, const Attrs& file_attrs,
                      const std::map<std::string, std::vector<SetTable>>& model_sets,
                      const std::vector<RunLayout>& runs, double stall_timeout_s = 300);
  // Collective over comm; read-write, for resume and for writing rows.
  static Store open(const std::string& path, MPI_Comm comm);
  // Serial, read-only (status, tests); no MPI needed beyond MPI_Init having been called.
  static Store open_read(const std::string& path);

  Store(Store&&) noexcept;
  Store& operator=(Store&&) noexcept;
  Store(const Store&) = delete;
  ~Store();

  // Independent raw writes. data is row-major [nrows, cols] (cols = 1 for 1-D datasets).
  void write_rows(const std::string& run, const std::string& dataset, std::uint64_t row0,
                  std::uint64_t nrows, const double* data);
  // Independent: writes the run's progress record (after its rows), then flushes the data.
  void commit(const std::string& run, const Progress& p);
  // Independent: provenance slot `slot` of a run (text longer than kProvenanceBytes is cut).
  void write_provenance(const std::string& run, std::size_t slot, const std::string& json);
  // The run's non-empty provenance records, in slot order.
  std::vector<std::string> provenance(const std::string& run) const;

  // A record that cannot be (status unknown, rows_committed outside the run's rows, ...) is a
  // damaged store: StoreError naming the file, the run and the field.
  Progress progress(const std::string& run) const;
  std::vector<std::string> runs() const;
  std::string file_attr(const std::string& name) const;  // string attributes of "/"
  // The identity create() gave this store (32 hex digits, random): what a checkpoint belongs to,
  // so a store made anew at the same path never adopts the old one's checkpoints.
  std::string id() const { return file_attr("store_id"); }
  // Reads rows [0, nrows) of a dataset, row-major.
  std::vector<double> read(const std::string& run, const std::string& dataset) const;
  std::vector<std::uint64_t> shape(const std::string& run, const std::string& dataset) const;

  void close();  // collective when opened collectively

 private:
  Store() = default;
  hid_t file_ = -1;
};

}  // namespace nmech::store
