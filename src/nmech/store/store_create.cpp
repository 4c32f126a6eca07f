// Store::create: every group, dataset and attribute of the sweep, made up front (docs/DESIGN.md
// "Guarantees"; docs/STORE.md). After this only raw data is ever written, so a killed writer
// cannot leave the file's metadata half-changed. Rank 0 makes "<path>.partial" alone with serial
// HDF5 (objects, set tables, dimension scales) while the other ranks wait, watching the file grow;
// then rank 0 renames it into place and every rank opens it. Serial, because parallel HDF5 makes
// every object collectively, which cost more per run than the whole serial pass and grows with
// the ranks (docs/BENCHMARKS.md "Store creation at scale").
#include <hdf5_hl.h>
#include <unistd.h>

#include <sys/stat.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <random>
#include <set>
#include <system_error>
#include <thread>

#include "nmech/comm/broadcast.hpp"
#include "nmech/store/h5_util.hpp"
#include "nmech/store/raw_fill.hpp"
#include "nmech/store/store.hpp"
#include "nmech/util/exit_codes.hpp"
#include "nmech/util/io_error.hpp"

namespace nmech::store {
namespace {

using detail::check;
using detail::Fill;
using detail::Handle;
using detail::RawFiller;
using ModelSets = std::map<std::string, std::vector<SetTable>>;

constexpr const char* kProgressDescription =
    "rows_committed: rows a reader may trust; last_step; status; diverged_at (step or -1); "
    "heartbeat_utc (seconds since the epoch); last_loss (NaN before the first step)";
constexpr const char* kProvenanceDescription =
    "one JSON object per attempt at the run (start or resume): nmech version, git commit, "
    "library versions, hosts, ranks, Slurm job id and restart count";

constexpr unsigned kCompactMax = 64;  // links or attributes a group keeps in its header (compact_gcpl)

// ---------------------------------------------------------------------------------------------
// Validation. Pure functions of the arguments, so every rank throws the same error before any
// collective call and no rank is left waiting.

void check_name(const std::string& name, const std::string& what) {
  if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..")
    throw StoreError("invalid " + what + " name '" + name + "' (empty, '.', '..' or contains '/')");
}

void check_unique_attrs(const Attrs& attrs, const std::string& where) {
  std::set<std::string> seen;
  for (const auto& [name, value] : attrs) {
    if (name.empty()) throw StoreError(where + ": empty attribute name");
    if (!seen.insert(name).second)
      throw StoreError(where + ": attribute '" + name + "' given twice");
  }
}

void validate_sets(const ModelSets& model_sets) {
  for (const auto& [model, tables] : model_sets) {
    check_name(model, "model");
    std::set<std::string> families;
    for (const SetTable& t : tables) {
      check_name(t.family, "set family");
      if (!families.insert(t.family).second)
        throw StoreError("model " + model + ": set family '" + t.family + "' given twice");
      if (t.layer.size() != t.names.size() || t.index.size() != t.names.size())
        throw StoreError("model " + model + ", family " + t.family +
                         ": names, layer and index differ in length");
    }
  }
}

const SetTable* find_family(const ModelSets& model_sets, const std::string& model,
                            const std::string& family) {
  const auto it = model_sets.find(model);
  if (it == model_sets.end()) return nullptr;
  for (const SetTable& t : it->second)
    if (t.family == family) return &t;
  return nullptr;
}

void validate_dataset(const RunLayout& run, const DatasetSpec& d, const ModelSets& model_sets) {
  const std::string where = "run " + run.name + ", dataset '" + d.path + "'";
  for (const std::string& part : detail::split_path(d.path))
    check_name(part, where + ": path part");
  if (d.path == "progress" || d.path == "provenance" || d.path == kRunSetIndex ||
      d.path.rfind(std::string(kRunSetIndex) + "/", 0) == 0)
    throw StoreError(where + ": '" + d.path + "' is reserved");
  if (d.cols == 0) {
    if (!d.set_family.empty()) throw StoreError(where + ": set_family given for a 1-D dataset");
    return;
  }
  const SetTable* t = find_family(model_sets, run.model, d.set_family);
  if (t == nullptr)
    throw StoreError(where + ": model " + run.model + " has no set family '" + d.set_family + "'");
  if (d.cols != t->names.size())
    throw StoreError(where + ": " + std::to_string(d.cols) + " columns but family " + d.set_family +
                     " has " + std::to_string(t->names.size()) + " sets");
}

void validate_run(const RunLayout& run, const ModelSets& model_sets) {
  check_name(run.name, "run");
  check_name(run.model, "model (run " + run.name + ")");
  check_unique_attrs(run.attrs, "run " + run.name);
  for (const auto& [name, value] : run.attrs) {
    const auto* s = std::get_if<std::string>(&value);
    if (name == "model" && (s == nullptr || *s != run.model))
      throw StoreError("run " + run.name + ": attribute 'model' differs from the run's model");
  }
  std::set<std::string> paths;
  bool has_step = false;
  for (const DatasetSpec& d : run.datasets) {
    validate_dataset(run, d, model_sets);
    if (!paths.insert(d.path).second)
      throw StoreError("run " + run.name + ": dataset '" + d.path + "' given twice");
    has_step = has_step || (d.path == "step" && d.cols == 0);
  }
  // A dataset path may not also be a group on the way to another one ("a" and "a/b").
  for (const std::string& p : paths) {
    const auto next = paths.upper_bound(p + "/");
    if (next != paths.end() && next->rfind(p + "/", 0) == 0)
      throw StoreError("run " + run.name + ": '" + p + "' is both a dataset and a group");
  }
  if (!has_step) throw StoreError("run " + run.name + ": no 1-D dataset 'step' (the row scale)");
}

// The set families the run's 2-D datasets use, in the order they first appear.
std::vector<std::string> run_families(const RunLayout& run) {
  std::vector<std::string> families;
  for (const DatasetSpec& d : run.datasets)
    if (d.cols > 0 && std::find(families.begin(), families.end(), d.set_family) == families.end())
      families.push_back(d.set_family);
  return families;
}

// Units and description of every dataset path of any run: what /quantities/<path> says, once
// for the store (format 7; each run's datasets carried both before, 80 attributes a run of the
// MLP, a sixth of creating a store). The same path must mean the same in every run.
using Quantities = std::map<std::string, std::pair<std::string, std::string>>;

Quantities quantities(const std::vector<RunLayout>& runs) {
  Quantities q;
  const auto add = [&q](const std::string& run, const std::string& path, const std::string& units,
                        const std::string& description) {
    const auto [it, made] = q.try_emplace(path, units, description);
    if (!made && it->second != std::pair{units, description})
      throw StoreError("run " + run + ", dataset '" + path + "': units or description differ from another run's");
  };
  for (const RunLayout& run : runs) {
    add(run.name, "progress", "", kProgressDescription);
    add(run.name, "provenance", "", kProvenanceDescription);
    for (const std::string& family : run_families(run))
      add(run.name, std::string(kRunSetIndex) + "/" + family, "",
          "column, channel or unit of each set within its layer (the model's " + family +
              " set_index; dimension scale \"set\" of the run's " + family + " datasets)");
    for (const DatasetSpec& d : run.datasets) add(run.name, d.path, d.units, d.description);
  }
  return q;
}

void validate(const Attrs& file_attrs, const ModelSets& model_sets,
              const std::vector<RunLayout>& runs) {
  check_unique_attrs(file_attrs, "file attributes");
  for (const auto& [name, value] : file_attrs)
    if (name == "format" || name == "format_version" || name == "store_id")
      throw StoreError("file attribute '" + name + "' is reserved for the store itself");
  validate_sets(model_sets);
  std::set<std::string> names;
  for (const RunLayout& run : runs) {
    validate_run(run, model_sets);
    if (!names.insert(run.name).second) throw StoreError("run " + run.name + " given twice");
  }
  quantities(runs);
}

// ---------------------------------------------------------------------------------------------
// Decisions taken by rank 0 and shared, so every rank throws or proceeds together.

void throw_if(const std::string& error) {
  if (!error.empty()) throw StoreError(error);
}

// The bytes of the runs' datasets and provenance slots: allocated and filled at creation.
double raw_bytes(const std::vector<RunLayout>& runs) {
  double bytes = 0;
  for (const RunLayout& r : runs) {
    bytes += static_cast<double>(kProvenanceSlots) * kProvenanceBytes;
    for (const DatasetSpec& d : r.datasets) bytes += 8.0 * static_cast<double>(r.rows) * std::max<double>(1, d.cols);
  }
  return bytes;
}

// Free space for the store, judged before anything is written: its raw data exactly and its
// metadata generously. "" when it fits.
std::string space_problem(const std::string& path, const std::vector<RunLayout>& runs) {
  double need = (1 << 20) + raw_bytes(runs);
  for (const RunLayout& r : runs) need += 8192 + kProvenanceSlots * kProvenanceBytes + 1024.0 * r.datasets.size();
  std::filesystem::path parent = std::filesystem::path(path).parent_path();
  struct statvfs fs {};
  // Unknown (or a pseudo file system without blocks, like /proc): the writes will tell.
  if (statvfs(parent.empty() ? "." : parent.c_str(), &fs) != 0 || fs.f_blocks == 0) return "";
  const double free = static_cast<double>(fs.f_bavail) * static_cast<double>(fs.f_frsize);
  if (need <= free) return "";
  char buf[160];
  std::snprintf(buf, sizeof buf, ": the store needs about %.1f MiB and its file system has %.1f MiB free", need / (1 << 20),
                free / (1 << 20));
  return path + buf;
}

std::string create_problem(const std::string& path) {
  namespace fs = std::filesystem;
  if (path.empty()) return "store path is empty";
  std::error_code ec;
  const fs::file_status st = fs::symlink_status(path, ec);
  if (fs::is_directory(st)) return path + ": is a directory";
  if (fs::exists(st))
    return path + ": already exists; create() never overwrites a store (resume opens it)";
  fs::path parent = fs::path(path).parent_path();
  if (parent.empty()) parent = ".";
  const fs::file_status pst = fs::status(parent, ec);
  if (!fs::exists(pst)) return path + ": directory " + parent.string() + " does not exist";
  if (!fs::is_directory(pst)) return path + ": " + parent.string() + " is not a directory";
  if (::access(parent.c_str(), W_OK) != 0)
    return path + ": directory " + parent.string() + " is not writable";
  return "";
}

// Only a regular file we may have made is removed: never a directory or someone's link.
void remove_partial(const std::string& partial) {
  std::error_code ec;
  if (std::filesystem::is_regular_file(std::filesystem::symlink_status(partial, ec)))
    std::filesystem::remove(partial, ec);
}

// ---------------------------------------------------------------------------------------------
// The serial pass, on rank 0.

Handle make_group(hid_t loc, const std::string& name, const std::string& where, hid_t gcpl = H5P_DEFAULT) {
  return detail::check_group(H5Gcreate2(loc, name.c_str(), H5P_DEFAULT, gcpl, H5P_DEFAULT),
                             where + ": cannot create group " + name);
}

// A run's groups keep their links and attributes in their object header (a run has 38
// attributes, a family group up to 14 datasets): past HDF5's default of 8, each would get a
// fractal heap and a B-tree of its own, three more objects to make per group.
Handle compact_gcpl(const std::string& what) {
  Handle gcpl = detail::check_plist(H5Pcreate(H5P_GROUP_CREATE), what);
  check(H5Pset_link_phase_change(gcpl, kCompactMax, kCompactMax - 1), what);
  check(H5Pset_attr_phase_change(gcpl, kCompactMax, kCompactMax - 1), what);
  return gcpl;
}

// Contiguous and allocated at creation: later raw writes never allocate, i.e. never touch
// metadata, which is what makes independent writes from one rank safe during training. Filled
// by HDF5 as it is made (`when` IFSET, where a fill value is given), or, NEVER, by the
// RawFiller's thread (raw_fill.hpp).
Handle early_dcpl(hid_t mem_type, const void* fill, const std::string& what,
                  H5D_fill_time_t when = H5D_FILL_TIME_IFSET) {
  Handle dcpl = detail::check_plist(H5Pcreate(H5P_DATASET_CREATE), what);
  check(H5Pset_layout(dcpl, H5D_CONTIGUOUS), what);
  check(H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_EARLY), what);
  check(H5Pset_fill_time(dcpl, when), what);
  if (fill != nullptr) check(H5Pset_fill_value(dcpl, mem_type, fill), what);
  return dcpl;
}

Handle make_dataset(hid_t loc, const std::string& path, hid_t file_type,
                    const std::vector<hsize_t>& dims, hid_t dcpl, const std::string& what) {
  Handle space = detail::check_space(
      H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), what);
  Handle lcpl = detail::check_plist(H5Pcreate(H5P_LINK_CREATE), what);
  check(H5Pset_create_intermediate_group(lcpl, 1), what);  // "scale/pred_exact" makes "scale"
  return detail::check_dataset(
      H5Dcreate2(loc, path.c_str(), file_type, space, lcpl, dcpl, H5P_DEFAULT), what);
}

void describe(hid_t obj, const std::string& units, const std::string& description,
              const std::string& where) {
  detail::write_string_attr(obj, "units", units, where);
  detail::write_string_attr(obj, "description", description, where);
}

void write_all(hid_t ds, hid_t mem_type, hsize_t n, const void* data, const std::string& what) {
  if (n > 0) check(H5Dwrite(ds, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), what);
}

void write_names(hid_t group, const SetTable& t, const std::string& where) {
  const std::string what = where + ": cannot write set names";
  size_t width = 1;
  for (const std::string& s : t.names) width = std::max(width, s.size());
  // Fixed-length, null-padded: raw variable-length strings would need global-heap metadata
  // written by rank 0 alone. h5py reads these as bytes (numpy 'S').
  Handle type = detail::check_type(H5Tcopy(H5T_C_S1), what);
  check(H5Tset_size(type, width), what);
  check(H5Tset_strpad(type, H5T_STR_NULLPAD), what);
  check(H5Tset_cset(type, H5T_CSET_UTF8), what);
  std::string packed(width * t.names.size(), '\0');
  for (size_t i = 0; i < t.names.size(); ++i)
    packed.replace(i * width, t.names[i].size(), t.names[i]);
  Handle dcpl = early_dcpl(type, nullptr, what);
  Handle ds = make_dataset(group, "name", type, {t.names.size()}, dcpl, what);
  write_all(ds, type, t.names.size(), packed.data(), what);
  describe(ds, "", "name of each symmetry set (one per column of the family's datasets)", where);
}

void write_int_column(hid_t group, const std::string& name, const std::vector<std::int64_t>& v,
                      const std::string& description, const std::string& where) {
  const std::string what = where + ": cannot write " + name;
  Handle dcpl = early_dcpl(H5T_NATIVE_INT64, nullptr, what);
  Handle ds = make_dataset(group, name, H5T_STD_I64LE, {v.size()}, dcpl, what);
  write_all(ds, H5T_NATIVE_INT64, v.size(), v.data(), what);
  describe(ds, "", description, where);
}

void write_set_table(hid_t sets, const SetTable& t, const std::string& where) {
  const std::string here = where + "/" + t.family;
  Handle group = make_group(sets, t.family, where);
  write_names(group, t, here);
  write_int_column(group, "layer", t.layer, "index of the layer that owns each set", here);
  write_int_column(group, "set_index", t.index, "column, channel or unit of each set within its layer", here);
}

void write_models(hid_t file, const ModelSets& model_sets, const std::string& path) {
  Handle models = make_group(file, "models", path);
  for (const auto& [model, tables] : model_sets) {
    const std::string where = path + ": /models/" + model + "/sets";
    Handle group = make_group(models, model, path);
    Handle sets = make_group(group, "sets", where);
    for (const SetTable& t : tables) write_set_table(sets, t, where);
  }
}

void make_progress(hid_t run_group, const std::string& where) {
  const std::string what = where + ": cannot create progress";
  Handle mem = detail::progress_mem_type();
  Handle file_type = detail::progress_file_type();
  // The fill value is the initial record, so no rank has to write it.
  const detail::ProgressRecord pending{0, -1, static_cast<std::int32_t>(Status::pending), -1, 0.0,
                                       std::numeric_limits<double>::quiet_NaN()};
  Handle dcpl = early_dcpl(mem, &pending, what);
  make_dataset(run_group, "progress", file_type, {1}, dcpl, what);
}

// Empty strings until the run's leader writes a record, one per attempt (start or resume). The
// empty strings are written at creation (by the RawFiller; the fill value says what they
// are): without them the slots are holes in the file, and a resume's record then needs new
// disk blocks, which a full disk refuses.
void make_provenance(hid_t run_group, RawFiller& fill, const std::string& where) {
  const std::string what = where + ": cannot create provenance";
  Handle type = detail::fixed_string_type(kProvenanceBytes);
  const std::string empty(kProvenanceBytes, '\0');
  Handle dcpl = early_dcpl(type, empty.data(), what, H5D_FILL_TIME_NEVER);
  Handle ds = make_dataset(run_group, "provenance", type, {kProvenanceSlots}, dcpl, what);
  fill.add(ds, Fill::zero, what);
}

// The run's own copy of each family's set_index: the dimension scale "set" of its datasets'
// columns. Own, not the model's shared one: every attachment rewrites a scale's REFERENCE_LIST,
// so one scale shared by all runs (format 3) made creation quadratic in the runs.
std::map<std::string, Handle> make_run_set_index(hid_t run_group, const RunLayout& run, const ModelSets& model_sets,
                                                 const std::string& where) {
  std::map<std::string, Handle> scales;
  for (const std::string& family : run_families(run)) {
    const std::string what = where + ": cannot create " + kRunSetIndex + "/" + family;
    const SetTable* t = find_family(model_sets, run.model, family);
    Handle dcpl = early_dcpl(H5T_NATIVE_INT64, nullptr, what);
    Handle ds = make_dataset(run_group, std::string(kRunSetIndex) + "/" + family, H5T_STD_I64LE,
                             {t->index.size()}, dcpl, what);
    write_all(ds, H5T_NATIVE_INT64, t->index.size(), t->index.data(), what);
    check(H5DSset_scale(ds, "set"), what + ": cannot make it a dimension scale");
    scales.emplace(family, std::move(ds));
  }
  return scales;
}

// Dimension scales, written as HDF5 1.10's H5DS writes them (what H5DSis_attached, h5py's dims
// and netCDF read), but each attribute once: a dataset's DIMENSION_LIST (one object reference per
// dimension) as it is made, a scale's REFERENCE_LIST (every dataset and
// dimension attached to it) after the run's last dataset. H5DSattach_scale rewrites the scale's
// whole REFERENCE_LIST at each attachment: half of the creation time (docs/BENCHMARKS.md "Store
// creation at scale"). Serial, on rank 0: parallel HDF5 1.10.8 corrupted a REFERENCE_LIST once
// it outgrew 64 KiB (tests/mpi/store_two_ranks.cpp).
struct ScaleEntry {  // H5DS's ds_list_t (HDF5 1.10): the compound of REFERENCE_LIST
  hobj_ref_t dataset;
  int dimension;
};

hobj_ref_t reference_to(hid_t obj, const std::string& what) {
  hobj_ref_t ref{};
  check(H5Rcreate(&ref, obj, ".", H5R_OBJECT, -1), what);
  return ref;
}

Handle vector_space(hsize_t n, const std::string& what) {
  return detail::check_space(H5Screate_simple(1, &n, nullptr), what);
}

// DIMENSION_LIST of a dataset whose dimension i has scales[i]. No DIMENSION_LABELS (format 7),
// as H5DSattach_scale writes none: the scale's NAME names the axis, and labels were 12% of the
// time to create a store.
void write_dimensions(hid_t ds, const std::vector<hobj_ref_t>& scales, const std::string& what) {
  std::vector<hvl_t> lists(scales.size());
  for (std::size_t i = 0; i < scales.size(); ++i) lists[i] = {1, const_cast<hobj_ref_t*>(&scales[i])};
  Handle space = vector_space(scales.size(), what);
  Handle vlen = detail::check_type(H5Tvlen_create(H5T_STD_REF_OBJ), what);
  Handle list = detail::check_attr(H5Acreate2(ds, DIMENSION_LIST, vlen, space, H5P_DEFAULT, H5P_DEFAULT), what);
  check(H5Awrite(list, vlen, lists.data()), what);
}

void write_reference_list(hid_t scale, const std::vector<ScaleEntry>& entries, const std::string& what) {
  Handle type = detail::check_type(H5Tcreate(H5T_COMPOUND, sizeof(ScaleEntry)), what);
  check(H5Tinsert(type, "dataset", HOFFSET(ScaleEntry, dataset), H5T_STD_REF_OBJ), what);
  check(H5Tinsert(type, "dimension", HOFFSET(ScaleEntry, dimension), H5T_NATIVE_INT), what);
  Handle space = vector_space(entries.size(), what);
  Handle attr = detail::check_attr(H5Acreate2(scale, REFERENCE_LIST, type, space, H5P_DEFAULT, H5P_DEFAULT), what);
  check(H5Awrite(attr, type, entries.data()), what);
}

// The run's group and the groups its datasets' paths name ("scale/pred_exact": "scale"), in the
// order they first appear, each with its links and attributes in its header.
Handle make_run_groups(hid_t runs_group, const RunLayout& run, const std::string& path, const std::string& where) {
  Handle gcpl = compact_gcpl(where);
  Handle group = make_group(runs_group, run.name, path, gcpl);
  std::set<std::string> made{kRunSetIndex};
  make_group(group, kRunSetIndex, where, gcpl);
  for (const DatasetSpec& d : run.datasets) {
    const std::vector<std::string> parts = detail::split_path(d.path);
    std::string at;
    for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
      at += (i == 0 ? "" : "/") + parts[i];
      if (made.insert(at).second) make_group(group, at, where, gcpl);
    }
  }
  return group;
}

void write_run(hid_t runs_group, const RunLayout& run, const ModelSets& model_sets, RawFiller& fill,
               const std::string& path) {
  const std::string where = path + ": /runs/" + run.name;
  Handle group = make_run_groups(runs_group, run, path, where);
  for (const auto& [name, value] : run.attrs)
    if (name != "model") detail::write_attr(group, name, value, where);
  detail::write_string_attr(group, "model", run.model, where);

  const std::map<std::string, Handle> set_scales = make_run_set_index(group, run, model_sets, where);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  auto make = [&](const DatasetSpec& d) {
    const std::string what = where + ": cannot create dataset " + d.path;
    std::vector<hsize_t> dims{run.rows};
    if (d.cols > 0) dims.push_back(d.cols);
    Handle dcpl = early_dcpl(H5T_NATIVE_DOUBLE, &nan, what, H5D_FILL_TIME_NEVER);  // NaN marks rows never written
    Handle ds = make_dataset(group, d.path, H5T_IEEE_F64LE, dims, dcpl, what);
    fill.add(ds, Fill::nan, what);
    return ds;
  };
  // "step" first (validate() put it in every run): the scale every other dataset attaches to.
  const auto is_step = [](const DatasetSpec& d) { return d.path == "step" && d.cols == 0; };
  Handle step = make(*std::find_if(run.datasets.begin(), run.datasets.end(), is_step));
  check(H5DSset_scale(step, "step"), where + "/step: cannot make it a dimension scale");
  const std::string attaching = where + ": cannot attach dimension scales";
  const hobj_ref_t step_ref = reference_to(step, attaching);
  std::map<std::string, hobj_ref_t> set_refs;
  for (const auto& [family, scale] : set_scales) set_refs[family] = reference_to(scale, attaching);
  std::vector<ScaleEntry> on_step;
  std::map<std::string, std::vector<ScaleEntry>> on_sets;
  for (const DatasetSpec& d : run.datasets) {
    if (is_step(d)) continue;
    Handle ds = make(d);
    const std::string what = where + "/" + d.path + ": cannot attach dimension scales";
    const hobj_ref_t ref = reference_to(ds, what);
    on_step.push_back({ref, 0});
    if (d.cols > 0) {
      on_sets[d.set_family].push_back({ref, 1});
      write_dimensions(ds, {step_ref, set_refs.at(d.set_family)}, what);
    } else {
      write_dimensions(ds, {step_ref}, what);
    }
  }
  if (!on_step.empty()) write_reference_list(step, on_step, attaching);
  for (const auto& [family, entries] : on_sets) write_reference_list(set_scales.at(family), entries, attaching);
  make_progress(group, where);
  make_provenance(group, fill, where);
}

// /quantities/<path>: a group per dataset path of the runs, whose attributes say what
// /runs/<run>/<path> holds.
void write_quantities(hid_t file, const Quantities& q, const std::string& path) {
  Handle group = make_group(file, kQuantities, path);
  const std::string what = path + ": cannot create /" + kQuantities;
  Handle lcpl = detail::check_plist(H5Pcreate(H5P_LINK_CREATE), what);
  check(H5Pset_create_intermediate_group(lcpl, 1), what);  // "scale/grad_sq" makes "scale"
  for (const auto& [name, meaning] : q) {
    const std::string where = path + ": /" + kQuantities + "/" + name;
    Handle entry = detail::check_group(H5Gcreate2(group, name.c_str(), lcpl, H5P_DEFAULT, H5P_DEFAULT),
                                       where + ": cannot create it");
    describe(entry, meaning.first, meaning.second, where);
  }
}

void build(hid_t file, const std::string& path, const Attrs& file_attrs, const ModelSets& model_sets,
           const std::vector<RunLayout>& runs, RawFiller& fill) {
  detail::write_string_attr(file, "format", "nmech-store", path);
  detail::write_attr(file, "format_version", AttrValue{kFormatVersion}, path);
  for (const auto& [name, value] : file_attrs) detail::write_attr(file, name, value, path);
  write_models(file, model_sets, path);
  write_quantities(file, quantities(runs), path);
  Handle runs_group = make_group(file, "runs", path);
  for (const RunLayout& run : runs) write_run(runs_group, run, model_sets, fill, path);
}

bool unclosed_file = false;

// Rank 0's part: makes and fills "<path>.partial" (the run datasets' initial bytes on the
// RawFiller's thread) and closes it. Returns "" or the error: a
// file that cannot be made at all (a path we may not write) is bad input, "B" + the reason; any
// later failure (disk full, quota, an I/O error: the arguments were validated before) is "I" +
// the reason. A file HDF5 could not close is removed; HDF5 1.10 then cannot finalize
// (hdf5_cannot_finalize).
std::string build_partial(const std::string& path, const std::string& partial, const Attrs& file_attrs,
                          const ModelSets& model_sets, const std::vector<RunLayout>& runs) {
  const std::string what = path + ": cannot set up file access";
  Handle file;
  try {
    Handle fapl = detail::check_plist(H5Pcreate(H5P_FILE_ACCESS), what);
    // 1.8 object formats, as the MPI-IO opens use (detail::mpio_fapl).
    check(H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_V18), what);
    // Metadata in blocks of 4 MiB, not 2 KiB: the datasets' storage, allocated between them, then
    // lies in long stretches that the RawFiller writes in few calls, and seldom shares a page with
    // metadata (a page the kernel zeroes for HDF5's write and drops for the filler's, 5% at 10^4
    // runs). The unused end of the last block stays a hole, where no dataset lies.
    check(H5Pset_meta_block_size(fapl, 4 << 20), what);
    file = detail::check_file(H5Fcreate(partial.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl),
                              path + ": cannot create " + partial);
  } catch (const std::exception& e) {
    remove_partial(partial);
    return std::string("B") + e.what();
  }
  // Test hook: NMECH_TEST_STALL_BUILD=1 stops rank 0 once the partial file exists, as a rank 0
  // stopped or hung in the file system mid-build would (tests/sweep/test_faults.py).
  if (std::getenv("NMECH_TEST_STALL_BUILD") != nullptr)
    for (;;) ::pause();
  try {
    // Past the page cache when the store's data is more than a quarter of this node's memory.
    // Test hook: NMECH_TEST_DIRECT_FILL=1 takes that path for a small store too.
    const double memory = static_cast<double>(::sysconf(_SC_PHYS_PAGES)) * static_cast<double>(::sysconf(_SC_PAGESIZE));
    RawFiller fill(partial, raw_bytes(runs) > memory / 4 || std::getenv("NMECH_TEST_DIRECT_FILL") != nullptr);
    try {
      build(file, path, file_attrs, model_sets, runs, fill);
    } catch (...) {
      if (H5Fclose(file.release()) < 0) unclosed_file = true;
      throw;
    }
    // The datasets' storage is not written by HDF5, so a full disk may first show here.
    const herr_t closed = H5Fclose(file.release());
    if (closed < 0) unclosed_file = true;
    check(closed, path + ": cannot close " + partial);
    const std::string unfilled = fill.finish();
    if (!unfilled.empty()) throw util::IoError(unfilled);
    return "";
  } catch (const std::exception& e) {
    remove_partial(partial);
    return std::string("I") + e.what();
  }
}

// The partial file as last seen: while rank 0 builds, it grows and its time changes.
struct FileMark {
  std::uintmax_t size = 0;
  std::int64_t mtime_ns = -1;
  bool operator!=(const FileMark& o) const { return size != o.size || mtime_ns != o.mtime_ns; }
};

FileMark mark(const std::string& file) {
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) return {};
  return {static_cast<std::uintmax_t>(st.st_size),
          static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec};
}

[[noreturn]] void end_stalled_creation(const std::string& partial, double timeout_s, const char* why) {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  std::fprintf(stderr, "nmech: store creation made no progress for %.0f s on world rank %d (%s): ending the job\n",
               timeout_s, rank, why);
  std::fflush(stderr);
  remove_partial(partial);  // the store is never half there, whichever rank gives up
  MPI_Abort(MPI_COMM_WORLD, util::kFailed);
  std::abort();
}

// Every rank meets the others here, without hanging. Creation cannot be watched like the sweep's
// collectives (comm/watchdog.hpp): rank 0 is inside HDF5 calls we do not make. So a rank waits at
// most timeout_s, or with `watch` for as long as the partial file keeps changing (rank 0 builds it
// while the others wait); then it removes the partial file and ends the job saying `why`.
void meet(MPI_Comm comm, double timeout_s, const std::string& partial, bool watch, const char* why) {
  MPI_Request req = MPI_REQUEST_NULL;
  MPI_Ibarrier(comm, &req);
  using clock = std::chrono::steady_clock;
  auto since = clock::now();
  FileMark last = watch ? mark(partial) : FileMark{};
  for (int done = 0;;) {
    MPI_Test(&req, &done, MPI_STATUS_IGNORE);
    if (done) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (watch) {
      const FileMark now = mark(partial);
      if (now != last) {
        last = now;
        since = clock::now();
      }
    }
    if (timeout_s > 0 && std::chrono::duration<double>(clock::now() - since).count() > timeout_s)
      end_stalled_creation(partial, timeout_s, why);
  }
}

// 128 random bits as hex: a store's identity (Store::id).
std::string new_store_id() {
  std::random_device rd;
  std::string id;
  static const char* digits = "0123456789abcdef";
  for (int i = 0; i < 4; ++i) {
    const std::uint32_t w = rd();
    for (int s = 28; s >= 0; s -= 4) id += digits[(w >> s) & 0xf];
  }
  return id;
}

std::string rename_on_root(const std::string& partial, const std::string& path, int rank) {
  if (rank != 0) return "";
  std::error_code ec;
  std::filesystem::rename(partial, path, ec);
  if (!ec) return "";
  remove_partial(partial);
  return path + ": cannot rename " + partial + " into place: " + ec.message();
}

}  // namespace

bool hdf5_cannot_finalize() { return unclosed_file; }

Store Store::create(const std::string& path, MPI_Comm comm, const Attrs& file_attrs,
                    const ModelSets& model_sets, const std::vector<RunLayout>& runs, double stall_timeout_s) {
  detail::quiet_hdf5_errors();
  validate(file_attrs, model_sets, runs);
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  const std::string partial = path + ".partial";
  meet(comm, stall_timeout_s, partial, false, "another rank did not arrive");
  throw_if(comm::broadcast_text(comm, rank == 0 ? create_problem(path) : ""));
  // Test hook: NMECH_TEST_SKIP_SPACE_CHECK=1 lets a store start on a file system too small for
  // it, so the tests can show what a disk that fills during creation does.
  const bool judge = rank == 0 && std::getenv("NMECH_TEST_SKIP_SPACE_CHECK") == nullptr;
  const std::string no_room = comm::broadcast_text(comm, judge ? space_problem(path, runs) : "");
  if (!no_room.empty()) throw util::IoError(no_room);

  Attrs attrs = file_attrs;
  attrs.emplace_back("store_id", comm::broadcast_text(comm, rank == 0 ? new_store_id() : ""));
  const std::string built = rank == 0 ? build_partial(path, partial, attrs, model_sets, runs) : "";
  meet(comm, stall_timeout_s, partial, rank != 0,
       rank == 0 ? "another rank stopped before joining" : "rank 0, which builds it, stopped, or the file system hangs");
  const std::string error = comm::broadcast_text(comm, built);
  if (!error.empty() && error[0] == 'B') throw StoreError(error.substr(1));
  if (!error.empty()) throw util::IoError(error.substr(1));
  const std::string renamed = comm::broadcast_text(comm, rename_on_root(partial, path, rank));
  MPI_Barrier(comm);  // the final name exists for every rank before anyone opens it
  throw_if(renamed);
  return open(path, comm);
}

}  // namespace nmech::store
