#pragma once
// Internal helpers of the store: RAII ownership of HDF5 ids, error checks that turn a failed
// HDF5 call into a one-line StoreError, and attribute/string helpers. Not a public header.
#include <hdf5.h>
#include <mpi.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "nmech/store/store.hpp"

namespace nmech::store::detail {

// Owns one hid_t and closes it with the matching H5*close. Handles are closed in reverse order
// of construction, which is what H5Fclose needs (no object of the file may stay open).
class Handle {
 public:
  using Closer = herr_t (*)(hid_t);
  Handle() = default;
  Handle(hid_t id, Closer closer) : id_(id), closer_(closer) {}
  Handle(Handle&& o) noexcept : id_(std::exchange(o.id_, -1)), closer_(o.closer_) {}
  Handle& operator=(Handle&& o) noexcept {
    if (this != &o) {
      reset();
      id_ = std::exchange(o.id_, -1);
      closer_ = o.closer_;
    }
    return *this;
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  ~Handle() { reset(); }

  hid_t get() const { return id_; }
  // Gives up ownership, e.g. to close explicitly and check the result.
  hid_t release() { return std::exchange(id_, -1); }
  operator hid_t() const { return id_; }  // NOLINT: handles are passed straight to H5* calls
  void reset() {
    if (id_ >= 0 && closer_ != nullptr) closer_(id_);
    id_ = -1;
  }

 private:
  hid_t id_ = -1;
  Closer closer_ = nullptr;
};

// Each throws StoreError("<what>") when the id is negative, so a failed call never leaks.
Handle check_file(hid_t id, const std::string& what);
Handle check_group(hid_t id, const std::string& what);
Handle check_dataset(hid_t id, const std::string& what);
Handle check_space(hid_t id, const std::string& what);
Handle check_type(hid_t id, const std::string& what);
Handle check_plist(hid_t id, const std::string& what);
Handle check_attr(hid_t id, const std::string& what);
void check(herr_t status, const std::string& what);
// The same for a write whose failure is the system's (disk full, I/O error): util::IoError.
void check_write(herr_t status, const std::string& what);
// A dataset's dimensions; StoreError("<what>") if its dataspace cannot be read.
std::vector<hsize_t> dims_of(hid_t ds, const std::string& what);

// HDF5 prints its whole error stack to stderr by default; our errors are one line instead.
void quiet_hdf5_errors();

// Scalar UTF-8 variable-length string type (attributes only: VL data in raw datasets would
// allocate global-heap metadata from a single rank, which parallel HDF5 forbids).
Handle vlen_string_type();

void write_attr(hid_t obj, const std::string& name, const AttrValue& value,
                const std::string& where);
void write_string_attr(hid_t obj, const std::string& name, const std::string& value,
                       const std::string& where);
// Reads a scalar attribute as text (strings as they are, numbers formatted).
std::string read_attr_text(hid_t obj, const std::string& name, const std::string& where);

// The progress record as stored: memory and file (packed, little-endian) compound types.
struct ProgressRecord {
  std::int64_t rows_committed;
  std::int64_t last_step;
  std::int32_t status;
  std::int64_t diverged_at;
  double heartbeat_utc;
  double last_loss;
};
Handle progress_mem_type();
Handle progress_file_type();
// Fixed-length, NUL-padded ASCII strings of `length` bytes (the provenance records: raw data, so
// a run's leader may write them alone after setup).
Handle fixed_string_type(std::size_t length);

// "<file name>" of an open file id, for error messages.
std::string file_name(hid_t file);

// fapl for the MPI-IO driver over comm. coll_reads: every metadata read is collective (only
// valid while every rank makes the same calls, i.e. during create()).
Handle mpio_fapl(MPI_Comm comm, bool coll_reads);

// Checks the root "format" attribute; throws "<path>: not an nmech store" otherwise.
void check_format(hid_t file, const std::string& path);

// Problems visible before any HDF5 call, as one line, or "" when there are none.
std::string open_problem(const std::string& path);

// Splits "scale/pred_exact" into {"scale", "pred_exact"}; empty segments are rejected by callers.
std::vector<std::string> split_path(const std::string& path);

}  // namespace nmech::store::detail
