// Store: opening, raw writes, progress commits and reads. Creation is in store_create.cpp.
#include "nmech/store/store.hpp"

#include <algorithm>

#include "nmech/comm/broadcast.hpp"
#include "nmech/store/h5_util.hpp"

namespace nmech::store {
namespace {

using detail::check;
using detail::dims_of;
using detail::Handle;

// True when every prefix of path ("runs", "runs/a", "runs/a/loss") is a link: H5Lexists
// fails rather than answers when a middle part is missing.
bool object_exists(hid_t file, const std::string& path) {
  std::string prefix;
  for (const std::string& part : detail::split_path(path)) {
    if (part.empty()) return false;
    prefix += (prefix.empty() ? "" : "/") + part;
    if (H5Lexists(file, prefix.c_str(), H5P_DEFAULT) <= 0) return false;
  }
  return true;
}

// Opens first and asks why only when that fails: a sweep opens some 40 datasets a run, and
// checking each prefix before every open cost about as much as the open itself.
Handle open_run_dataset(hid_t file, const std::string& run, const std::string& dataset) {
  const std::string path = "runs/" + run + "/" + dataset;
  const hid_t id = H5Dopen2(file, path.c_str(), H5P_DEFAULT);
  if (id >= 0) return Handle(id, H5Dclose);
  const std::string where = detail::file_name(file);
  if (!object_exists(file, "runs/" + run)) throw StoreError(where + ": no run '" + run + "'");
  if (!object_exists(file, path)) throw StoreError(where + ": run " + run + " has no dataset '" + dataset + "'");
  return detail::check_dataset(H5Dopen2(file, path.c_str(), H5P_DEFAULT), where + ": cannot open /" + path);
}

// Ranks in the file's communicator, 0 for a file not opened with MPI-IO. Read from the MPI file
// handle because H5Fget_access_plist would duplicate the communicator, a collective call.
int comm_size(hid_t file) {
  unsigned intent = 0;
  if (H5Fget_intent(file, &intent) < 0 || (intent & H5F_ACC_RDWR) == 0) return 0;
  void* handle = nullptr;
  if (H5Fget_vfd_handle(file, H5P_DEFAULT, &handle) < 0 || handle == nullptr) return 0;
  MPI_Group group;
  MPI_File_get_group(*static_cast<MPI_File*>(handle), &group);
  int size = 0;
  MPI_Group_size(group, &size);
  MPI_Group_free(&group);
  return size;
}

}  // namespace

std::string to_string(Status s) {
  switch (s) {
    case Status::pending:
      return "pending";
    case Status::running:
      return "running";
    case Status::done:
      return "done";
    case Status::diverged:
      return "diverged";
    case Status::failed:
      return "failed";
  }
  return "unknown";
}

// Collective. The file-wide "all metadata reads collective" property is deliberately off here
// (it is on in create()): after opening, each run's leader opens datasets and reads progress on
// its own, and with that property set an independent metadata read corrupts the metadata cache
// (H5Pset_all_coll_metadata_ops, HDF5 reference). Metadata writes stay collective.
Store Store::open(const std::string& path, MPI_Comm comm) {
  detail::quiet_hdf5_errors();
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  // Rank 0 looks at the path; every rank gets its verdict, so all throw or none does.
  const std::string problem = comm::broadcast_text(comm, rank == 0 ? detail::open_problem(path) : "");
  if (!problem.empty()) throw StoreError(problem);

  Handle fapl = detail::mpio_fapl(comm, /*coll_reads=*/false);
  Handle file = detail::check_file(H5Fopen(path.c_str(), H5F_ACC_RDWR, fapl),
                                   path + ": cannot open for writing");
  detail::check_format(file, path);  // same answer on every rank, so a throw is collective too
  Store s;
  s.file_ = file.release();
  return s;
}

Store Store::open_read(const std::string& path) {
  detail::quiet_hdf5_errors();
  const std::string problem = detail::open_problem(path);
  if (!problem.empty()) throw StoreError(problem);
  Handle file = detail::check_file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT),
                                   path + ": cannot open for reading");
  detail::check_format(file, path);
  Store s;
  s.file_ = file.release();
  return s;
}

Store::Store(Store&& o) noexcept : file_(std::exchange(o.file_, -1)) {}

Store& Store::operator=(Store&& o) noexcept {
  if (this != &o) {
    if (file_ >= 0) H5Fclose(file_);
    file_ = std::exchange(o.file_, -1);
  }
  return *this;
}

// Closing an MPI-IO file is collective: users call close() on every rank. This is the fallback
// for a store that goes out of scope still open (serial stores, or unwinding on every rank).
Store::~Store() {
  if (file_ >= 0) H5Fclose(file_);
}

void Store::close() {
  if (file_ < 0) return;
  const std::string name = detail::file_name(file_);
  const hid_t f = std::exchange(file_, -1);
  detail::check_write(H5Fclose(f), name + ": cannot close the store");
}

void Store::write_rows(const std::string& run, const std::string& dataset, std::uint64_t row0,
                       std::uint64_t nrows, const double* data) {
  if (file_ < 0) throw StoreError("write_rows on a closed store");
  const std::string where = detail::file_name(file_) + ": /runs/" + run + "/" + dataset;
  if (comm_size(file_) == 0) throw StoreError(where + ": store is open read-only");
  Handle ds = open_run_dataset(file_, run, dataset);
  std::vector<hsize_t> dims = dims_of(ds, where);
  if (row0 > dims[0] || nrows > dims[0] - row0)
    throw StoreError(where + ": rows [" + std::to_string(row0) + ", " +
                     std::to_string(row0 + nrows) + ") outside [0, " + std::to_string(dims[0]) +
                     ")");
  if (nrows == 0) return;
  if (data == nullptr) throw StoreError(where + ": no data");
  std::vector<hsize_t> start(dims.size(), 0), count = dims;
  start[0] = row0;
  count[0] = nrows;
  const std::string what = where + ": cannot write rows";
  Handle fspace = detail::check_space(H5Dget_space(ds), what);
  check(H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr),
        what);
  Handle mspace = detail::check_space(
      H5Screate_simple(static_cast<int>(count.size()), count.data(), nullptr), what);
  // H5P_DEFAULT transfer = independent: only this run's leader makes the call.
  detail::check_write(H5Dwrite(ds, H5T_NATIVE_DOUBLE, mspace, fspace, H5P_DEFAULT, data), what);
}

// Rows are written before this record, so a reader that trusts rows_committed never sees a row
// that is not on disk yet. With MPI-IO each independent write goes straight to the file
// (the mpio driver keeps no raw-data cache), so a killed process loses nothing it wrote.
// H5Fflush (MPI_File_sync) is collective, so it is used only when this rank is the whole
// communicator (a single run); a multi-rank sweep syncs when it closes the store.
void Store::commit(const std::string& run, const Progress& p) {
  if (file_ < 0) throw StoreError("commit on a closed store");
  const std::string where = detail::file_name(file_) + ": /runs/" + run + "/progress";
  const int size = comm_size(file_);
  if (size == 0) throw StoreError(where + ": store is open read-only");
  Handle ds = open_run_dataset(file_, run, "progress");
  const detail::ProgressRecord rec{p.rows_committed, p.last_step,
                                   static_cast<std::int32_t>(p.status), p.diverged_at,
                                   p.heartbeat_utc, p.last_loss};
  Handle mem = detail::progress_mem_type();
  detail::check_write(H5Dwrite(ds, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, &rec), where + ": cannot write progress");
  if (size == 1) detail::check_write(H5Fflush(file_, H5F_SCOPE_GLOBAL), where + ": cannot flush");
}

namespace {

// What no writer can have left in a progress record ("" when it is plausible).
std::string record_problem(const detail::ProgressRecord& r, std::uint64_t rows) {
  if (r.status < 0 || r.status >= kStatusCount) return "status code " + std::to_string(r.status) + " is unknown";
  if (r.rows_committed < 0 || static_cast<std::uint64_t>(r.rows_committed) > rows)
    return "rows_committed " + std::to_string(r.rows_committed) + " outside [0, " + std::to_string(rows) + "]";
  if (r.last_step < -1) return "last_step " + std::to_string(r.last_step) + " < -1";
  if (r.diverged_at < -1) return "diverged_at " + std::to_string(r.diverged_at) + " < -1";
  if (static_cast<Status>(r.status) == Status::diverged && r.diverged_at < 0) return "diverged without a step";
  return "";
}

}  // namespace

Progress Store::progress(const std::string& run) const {
  if (file_ < 0) throw StoreError("progress on a closed store");
  Handle ds = open_run_dataset(file_, run, "progress");
  Handle mem = detail::progress_mem_type();
  detail::ProgressRecord rec{};
  const std::string where = detail::file_name(file_) + ": /runs/" + run + "/progress";
  check(H5Dread(ds, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, &rec), where + ": cannot read");
  Handle step = open_run_dataset(file_, run, "step");
  const std::string problem = record_problem(rec, dims_of(step, where).at(0));
  if (!problem.empty()) throw StoreError(where + ": damaged record (" + problem + ")");
  Progress p;
  p.rows_committed = rec.rows_committed;
  p.last_step = rec.last_step;
  p.status = static_cast<Status>(rec.status);
  p.diverged_at = rec.diverged_at;
  p.heartbeat_utc = rec.heartbeat_utc;
  p.last_loss = rec.last_loss;
  return p;
}

void Store::write_provenance(const std::string& run, std::size_t slot, const std::string& json) {
  if (file_ < 0) throw StoreError("write_provenance on a closed store");
  const std::string where = detail::file_name(file_) + ": /runs/" + run + "/provenance";
  if (comm_size(file_) == 0) throw StoreError(where + ": store is open read-only");
  if (slot >= kProvenanceSlots) throw StoreError(where + ": no slot " + std::to_string(slot));
  Handle ds = open_run_dataset(file_, run, "provenance");
  std::string text = json.substr(0, kProvenanceBytes);
  text.resize(kProvenanceBytes, '\0');
  Handle type = detail::fixed_string_type(kProvenanceBytes);
  const hsize_t start = slot, count = 1;
  Handle fspace = detail::check_space(H5Dget_space(ds), where);
  check(H5Sselect_hyperslab(fspace, H5S_SELECT_SET, &start, nullptr, &count, nullptr), where);
  Handle mspace = detail::check_space(H5Screate_simple(1, &count, nullptr), where);
  detail::check_write(H5Dwrite(ds, type, mspace, fspace, H5P_DEFAULT, text.data()), where + ": cannot write");
}

std::vector<std::string> Store::provenance(const std::string& run) const {
  if (file_ < 0) throw StoreError("provenance on a closed store");
  Handle ds = open_run_dataset(file_, run, "provenance");
  Handle type = detail::fixed_string_type(kProvenanceBytes);
  std::string all(kProvenanceSlots * kProvenanceBytes, '\0');
  check(H5Dread(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, all.data()),
        detail::file_name(file_) + ": cannot read /runs/" + run + "/provenance");
  std::vector<std::string> out;
  for (std::size_t i = 0; i < kProvenanceSlots; ++i) {
    std::string one = all.substr(i * kProvenanceBytes, kProvenanceBytes);
    one.resize(one.find('\0') == std::string::npos ? one.size() : one.find('\0'));
    if (!one.empty()) out.push_back(one);
  }
  return out;
}

namespace {

herr_t collect_name(hid_t, const char* name, const H5L_info_t*, void* out) {
  static_cast<std::vector<std::string>*>(out)->emplace_back(name);
  return 0;
}

}  // namespace

std::vector<std::string> Store::runs() const {
  if (file_ < 0) throw StoreError("runs on a closed store");
  std::vector<std::string> names;
  if (!object_exists(file_, "runs")) return names;
  Handle group = detail::check_group(H5Gopen2(file_, "runs", H5P_DEFAULT),
                                     detail::file_name(file_) + ": cannot open /runs");
  check(H5Literate(group, H5_INDEX_NAME, H5_ITER_INC, nullptr, collect_name, &names),
        detail::file_name(file_) + ": cannot list /runs");
  std::sort(names.begin(), names.end());
  return names;
}

std::string Store::file_attr(const std::string& name) const {
  if (file_ < 0) throw StoreError("file_attr on a closed store");
  return detail::read_attr_text(file_, name, detail::file_name(file_));
}

std::vector<double> Store::read(const std::string& run, const std::string& dataset) const {
  if (file_ < 0) throw StoreError("read on a closed store");
  Handle ds = open_run_dataset(file_, run, dataset);
  const std::string what = detail::file_name(file_) + ": cannot read /runs/" + run + "/" + dataset;
  size_t n = 1;
  for (hsize_t d : dims_of(ds, what)) n *= static_cast<size_t>(d);
  std::vector<double> out(n);
  if (n > 0) check(H5Dread(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()), what);
  return out;
}

std::vector<std::uint64_t> Store::shape(const std::string& run, const std::string& dataset) const {
  if (file_ < 0) throw StoreError("shape on a closed store");
  Handle ds = open_run_dataset(file_, run, dataset);
  const std::vector<hsize_t> dims =
      dims_of(ds, detail::file_name(file_) + ": /runs/" + run + "/" + dataset);
  return {dims.begin(), dims.end()};
}

}  // namespace nmech::store
