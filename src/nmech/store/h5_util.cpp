#include "nmech/store/h5_util.hpp"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <type_traits>

#include "nmech/util/io_error.hpp"

namespace nmech::store::detail {
namespace {

herr_t innermost(unsigned, const H5E_error2_t* e, void* out) {
  auto* reason = static_cast<std::string*>(out);
  if (reason->empty() && e->desc != nullptr) *reason = e->desc;
  return 0;
}

// The deepest message of HDF5's error stack ("MPI_File_open failed", "unable to open file"),
// appended to our one-line message so the user sees why, not only what.
std::string with_reason(const std::string& what) {
  std::string reason;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, innermost, &reason);
  return reason.empty() ? what : what + " (" + reason + ")";
}

Handle checked(hid_t id, Handle::Closer closer, const std::string& what) {
  if (id < 0) throw StoreError(with_reason(what));
  return Handle(id, closer);
}

}  // namespace

Handle check_file(hid_t id, const std::string& what) { return checked(id, H5Fclose, what); }
Handle check_group(hid_t id, const std::string& what) { return checked(id, H5Gclose, what); }
Handle check_dataset(hid_t id, const std::string& what) { return checked(id, H5Dclose, what); }
Handle check_space(hid_t id, const std::string& what) { return checked(id, H5Sclose, what); }
Handle check_type(hid_t id, const std::string& what) { return checked(id, H5Tclose, what); }
Handle check_plist(hid_t id, const std::string& what) { return checked(id, H5Pclose, what); }
Handle check_attr(hid_t id, const std::string& what) { return checked(id, H5Aclose, what); }

void check(herr_t status, const std::string& what) {
  if (status < 0) throw StoreError(with_reason(what));
}

void check_write(herr_t status, const std::string& what) {
  if (status < 0) throw util::IoError(with_reason(what));
}

std::vector<hsize_t> dims_of(hid_t ds, const std::string& what) {
  Handle space = check_space(H5Dget_space(ds), what);
  const int rank = H5Sget_simple_extent_ndims(space);
  if (rank < 0) throw StoreError(what);
  std::vector<hsize_t> dims(static_cast<size_t>(rank));
  if (rank > 0) check(H5Sget_simple_extent_dims(space, dims.data(), nullptr), what);
  return dims;
}

void quiet_hdf5_errors() { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }

Handle vlen_string_type() {
  Handle t = check_type(H5Tcopy(H5T_C_S1), "cannot copy the string type");
  check(H5Tset_size(t, H5T_VARIABLE), "cannot make a variable-length string type");
  check(H5Tset_cset(t, H5T_CSET_UTF8), "cannot set UTF-8 on the string type");
  return t;
}

void write_string_attr(hid_t obj, const std::string& name, const std::string& value,
                       const std::string& where) {
  write_attr(obj, name, AttrValue{value}, where);
}

void write_attr(hid_t obj, const std::string& name, const AttrValue& value,
                const std::string& where) {
  const std::string what = where + ": cannot write attribute '" + name + "'";
  Handle space = check_space(H5Screate(H5S_SCALAR), what);
  std::visit(
      [&](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::string>) {
          Handle type = vlen_string_type();
          Handle attr = check_attr(
              H5Acreate2(obj, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT), what);
          const char* p = v.c_str();
          check(H5Awrite(attr, type, &p), what);
        } else if constexpr (std::is_same_v<T, std::int64_t>) {
          Handle attr = check_attr(
              H5Acreate2(obj, name.c_str(), H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT), what);
          check(H5Awrite(attr, H5T_NATIVE_INT64, &v), what);
        } else {
          Handle attr = check_attr(
              H5Acreate2(obj, name.c_str(), H5T_IEEE_F64LE, space, H5P_DEFAULT, H5P_DEFAULT), what);
          check(H5Awrite(attr, H5T_NATIVE_DOUBLE, &v), what);
        }
      },
      value);
}

namespace {

std::string read_string_attr(hid_t attr, hid_t file_type, const std::string& what) {
  // HDF5 does not convert between character sets: read with the attribute's own.
  const H5T_cset_t cset = H5Tget_cset(file_type);
  if (H5Tis_variable_str(file_type) > 0) {
    Handle type = vlen_string_type();
    check(H5Tset_cset(type, cset), what);
    char* p = nullptr;
    check(H5Aread(attr, type, &p), what);
    std::string out = p != nullptr ? p : "";
    H5free_memory(p);
    return out;
  }
  const size_t n = H5Tget_size(file_type);
  Handle type = check_type(H5Tcopy(H5T_C_S1), what);
  check(H5Tset_size(type, n), what);
  check(H5Tset_cset(type, cset), what);
  std::string out(n, '\0');
  check(H5Aread(attr, type, out.data()), what);
  out.resize(out.find('\0') == std::string::npos ? n : out.find('\0'));
  return out;
}

}  // namespace

std::string read_attr_text(hid_t obj, const std::string& name, const std::string& where) {
  const std::string what = where + ": cannot read attribute '" + name + "'";
  if (H5Aexists(obj, name.c_str()) <= 0) throw StoreError(where + ": no attribute '" + name + "'");
  Handle attr = check_attr(H5Aopen(obj, name.c_str(), H5P_DEFAULT), what);
  Handle type = check_type(H5Aget_type(attr), what);
  switch (H5Tget_class(type)) {
    case H5T_STRING:
      return read_string_attr(attr, type, what);
    case H5T_INTEGER: {
      std::int64_t v = 0;
      check(H5Aread(attr, H5T_NATIVE_INT64, &v), what);
      return std::to_string(v);
    }
    case H5T_FLOAT: {
      double v = 0;
      check(H5Aread(attr, H5T_NATIVE_DOUBLE, &v), what);
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.17g", v);
      return buf;
    }
    default:
      throw StoreError(where + ": attribute '" + name + "' is not a string or number");
  }
}

namespace {

Handle status_enum(hid_t base) {
  Handle t = check_type(H5Tenum_create(base), "cannot create the status enum");
  const std::pair<const char*, Status> members[] = {{"pending", Status::pending},
                                                    {"running", Status::running},
                                                    {"done", Status::done},
                                                    {"diverged", Status::diverged},
                                                    {"failed", Status::failed}};
  for (const auto& [label, s] : members) {
    const auto v = static_cast<std::int32_t>(s);
    check(H5Tenum_insert(t, label, &v), "cannot build the status enum");
  }
  return t;
}

}  // namespace

Handle progress_mem_type() {
  const std::string what = "cannot build the progress type";
  Handle t = check_type(H5Tcreate(H5T_COMPOUND, sizeof(ProgressRecord)), what);
  Handle status = status_enum(H5T_NATIVE_INT32);
  check(H5Tinsert(t, "rows_committed", HOFFSET(ProgressRecord, rows_committed), H5T_NATIVE_INT64),
        what);
  check(H5Tinsert(t, "last_step", HOFFSET(ProgressRecord, last_step), H5T_NATIVE_INT64), what);
  check(H5Tinsert(t, "status", HOFFSET(ProgressRecord, status), status), what);
  check(H5Tinsert(t, "diverged_at", HOFFSET(ProgressRecord, diverged_at), H5T_NATIVE_INT64), what);
  check(H5Tinsert(t, "heartbeat_utc", HOFFSET(ProgressRecord, heartbeat_utc), H5T_NATIVE_DOUBLE),
        what);
  check(H5Tinsert(t, "last_loss", HOFFSET(ProgressRecord, last_loss), H5T_NATIVE_DOUBLE), what);
  return t;
}

// Packed and little-endian on disk, so the record reads the same on any machine and h5py
// shows a plain structured dtype without padding fields.
Handle progress_file_type() {
  const std::string what = "cannot build the progress file type";
  Handle t = check_type(H5Tcreate(H5T_COMPOUND, 8 + 8 + 4 + 8 + 8 + 8), what);
  Handle status = status_enum(H5T_STD_I32LE);
  check(H5Tinsert(t, "rows_committed", 0, H5T_STD_I64LE), what);
  check(H5Tinsert(t, "last_step", 8, H5T_STD_I64LE), what);
  check(H5Tinsert(t, "status", 16, status), what);
  check(H5Tinsert(t, "diverged_at", 20, H5T_STD_I64LE), what);
  check(H5Tinsert(t, "heartbeat_utc", 28, H5T_IEEE_F64LE), what);
  check(H5Tinsert(t, "last_loss", 36, H5T_IEEE_F64LE), what);
  return t;
}

Handle fixed_string_type(std::size_t length) {
  const std::string what = "cannot build a fixed-length string type";
  Handle t = check_type(H5Tcopy(H5T_C_S1), what);
  check(H5Tset_size(t, length), what);
  check(H5Tset_strpad(t, H5T_STR_NULLPAD), what);
  return t;
}

std::string file_name(hid_t file) {
  const ssize_t n = H5Fget_name(file, nullptr, 0);
  if (n <= 0) return "<store>";
  std::string name(static_cast<size_t>(n) + 1, '\0');
  H5Fget_name(file, name.data(), name.size());
  name.resize(static_cast<size_t>(n));
  return name;
}

Handle mpio_fapl(MPI_Comm comm, bool coll_reads) {
  const std::string what = "cannot set up MPI-IO file access";
  Handle fapl = check_plist(H5Pcreate(H5P_FILE_ACCESS), what);
  check(H5Pset_fapl_mpio(fapl, comm, MPI_INFO_NULL), what);
  check(H5Pset_all_coll_metadata_ops(fapl, coll_reads), what);
  check(H5Pset_coll_metadata_write(fapl, true), what);
  // 1.8 object formats: an attribute over 64 KiB (the REFERENCE_LIST of a set_index that many
  // runs' datasets attach to) moves to dense storage instead of failing. Superblock v2 has no
  // "open for writing" flag, so a serial reader (nmech status) can open a store in use.
  check(H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_V18), what);
  return fapl;
}

void check_format(hid_t file, const std::string& path) {
  if (H5Aexists(file, "format") <= 0 || read_attr_text(file, "format", path) != "nmech-store")
    throw StoreError(path + ": not an nmech store (no format=\"nmech-store\" attribute)");
  if (H5Aexists(file, "format_version") > 0) {
    const std::string v = read_attr_text(file, "format_version", path);
    if (v != std::to_string(kFormatVersion))
      throw StoreError(path + ": store format_version " + v + " is not supported (this nmech reads " +
                       std::to_string(kFormatVersion) + "; docs/STORE.md says what changed)");
  }
}

std::string open_problem(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (!fs::exists(st)) return path + ": no such file";
  if (fs::is_directory(st)) return path + ": is a directory, not an nmech store";
  if (H5Fis_hdf5(path.c_str()) <= 0) return path + ": not an nmech store (not an HDF5 file)";
  return "";
}

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    const size_t slash = path.find('/', start);
    parts.push_back(path.substr(start, slash - start));
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return parts;
}

}  // namespace nmech::store::detail
