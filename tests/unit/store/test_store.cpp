// Store round trips: create, write, commit, reopen; the file layout that docs/STORE.md promises
// (attributes, NaN fill, dimension scales, progress); refusals that leave nothing behind; and a
// reader that is not ours (h5py).
#include <gtest/gtest.h>
#include <hdf5.h>
#include <hdf5_hl.h>
#include <mpi.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "nmech/store/store.hpp"

namespace fs = std::filesystem;
using namespace nmech::store;

namespace {

// gtest_main owns main(), so MPI is brought up by a global environment registered statically.
class MpiEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (!initialized) MPI_Init(nullptr, nullptr);
  }
  void TearDown() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Finalize();
  }
};
[[maybe_unused]] ::testing::Environment* const mpi_env =
    ::testing::AddGlobalTestEnvironment(new MpiEnvironment);

// A fresh directory per test under the build tree.
fs::path test_dir() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  fs::path dir = fs::path(NMECH_BINARY_DIR) / "store_test" /
                 (std::string(info->test_suite_name()) + "." + info->name());
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

// Deterministic, exactly representable values, distinct per run, dataset, row and column.
double value(int run, int dataset, std::uint64_t row, std::uint64_t col) {
  return run * 1000.0 + dataset * 100.0 + static_cast<double>(row) * 10.0 +
         static_cast<double>(col) + 0.25;
}

SetTable table(const std::string& family, std::size_t n, std::int64_t layer0) {
  SetTable t;
  t.family = family;
  for (std::size_t i = 0; i < n; ++i) {
    t.names.push_back(family + ".set" + std::to_string(i));
    t.layer.push_back(layer0 + static_cast<std::int64_t>(i / 2));
    t.index.push_back(static_cast<std::int64_t>(i % 2));
  }
  return t;
}

std::map<std::string, std::vector<SetTable>> model_sets() {
  return {{"mlp", {table("translation", 3, 0), table("scale", 2, 1)}},
          {"vgg", {table("translation", 4, 0), table("scale", 5, 2)}}};
}

RunLayout run_layout(const std::string& name, const std::string& model, std::uint64_t rows) {
  const auto sets = model_sets().at(model);
  RunLayout r;
  r.name = name;
  r.model = model;
  r.rows = rows;
  r.attrs = {{"lr", 0.125}, {"seed", std::int64_t{7}}, {"optimizer", std::string("sgd")}};
  r.datasets = {{"step", 0, "", "step", "optimizer step of the row"},
                {"loss", 0, "", "nat", "training loss"},
                {"translation/translation_sum", sets[0].names.size(), "translation", "param",
                 "sum of the parameters of each translation set"},
                {"scale/pred_exact", sets[1].names.size(), "scale", "param^2",
                 "exact prediction of the squared norm"}};
  return r;
}

std::vector<RunLayout> two_runs() { return {run_layout("a", "mlp", 5), run_layout("b", "vgg", 4)}; }

Attrs file_attrs() {
  return {{"nmech_version", std::string("0.1.0")},
          {"config", std::string("[sweep]\nlr = [0.125]\n")},
          {"created_utc", 1.7e9}};
}

std::uint64_t cols_of(const RunLayout& r, std::size_t d) {
  return r.datasets[d].cols == 0 ? 1 : r.datasets[d].cols;
}

// Writes rows [row0, row0 + n) of every dataset of runs[run_i] with value().
void write_run_rows(Store& s, const RunLayout& r, int run_i, std::uint64_t row0, std::uint64_t n) {
  for (std::size_t d = 0; d < r.datasets.size(); ++d) {
    const std::uint64_t cols = cols_of(r, d);
    std::vector<double> rows;
    for (std::uint64_t i = row0; i < row0 + n; ++i)
      for (std::uint64_t c = 0; c < cols; ++c)
        rows.push_back(value(run_i, static_cast<int>(d), i, c));
    s.write_rows(r.name, r.datasets[d].path, row0, n, rows.data());
  }
}

// The first `written` rows hold value(); the rest are NaN.
void expect_rows(const Store& s, const RunLayout& r, int run_i, std::uint64_t written) {
  for (std::size_t d = 0; d < r.datasets.size(); ++d) {
    const std::uint64_t cols = cols_of(r, d);
    const std::vector<double> got = s.read(r.name, r.datasets[d].path);
    ASSERT_EQ(got.size(), r.rows * cols) << r.datasets[d].path;
    for (std::uint64_t i = 0; i < r.rows; ++i)
      for (std::uint64_t c = 0; c < cols; ++c) {
        const double v = got[i * cols + c];
        if (i < written)
          EXPECT_EQ(v, value(run_i, static_cast<int>(d), i, c))
              << r.name << "/" << r.datasets[d].path;
        else
          EXPECT_TRUE(std::isnan(v)) << r.name << "/" << r.datasets[d].path << " row " << i;
      }
  }
}

// Writes 3 rows of run a and commits them; run b stays untouched.
fs::path make_store(const fs::path& dir) {
  const fs::path path = dir / "store.h5";
  Store s = Store::create(path.string(), MPI_COMM_WORLD, file_attrs(), model_sets(), two_runs());
  write_run_rows(s, two_runs()[0], 0, 0, 3);
  s.commit("a", Progress{3, 20, Status::running, -1, 1.7e9 + 0.5, 2.25});
  s.close();
  return path;
}

// Raw HDF5 readers for the checks the Store API does not expose.
struct H5File {
  hid_t id;
  explicit H5File(const fs::path& p) : id(H5Fopen(p.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT)) {}
  ~H5File() {
    if (id >= 0) H5Fclose(id);
  }
};

std::string string_attr(hid_t file, const std::string& obj, const std::string& name) {
  hid_t attr = H5Aopen_by_name(file, obj.c_str(), name.c_str(), H5P_DEFAULT, H5P_DEFAULT);
  EXPECT_GE(attr, 0) << obj << "@" << name;
  if (attr < 0) return "";
  hid_t type = H5Tcopy(H5T_C_S1);
  H5Tset_size(type, H5T_VARIABLE);
  H5Tset_cset(type, H5T_CSET_UTF8);  // the store writes UTF-8; HDF5 never converts charsets
  char* p = nullptr;
  H5Aread(attr, type, &p);
  std::string out = p != nullptr ? p : "";
  H5free_memory(p);
  H5Tclose(type);
  H5Aclose(attr);
  return out;
}

template <class T>
T number_attr(hid_t file, const std::string& obj, const std::string& name, hid_t mem_type) {
  T v{};
  hid_t attr = H5Aopen_by_name(file, obj.c_str(), name.c_str(), H5P_DEFAULT, H5P_DEFAULT);
  EXPECT_GE(attr, 0) << obj << "@" << name;
  if (attr < 0) return v;
  H5Aread(attr, mem_type, &v);
  H5Aclose(attr);
  return v;
}

bool attached(hid_t file, const std::string& dataset, const std::string& scale, unsigned dim) {
  hid_t d = H5Dopen2(file, dataset.c_str(), H5P_DEFAULT);
  hid_t s = H5Dopen2(file, scale.c_str(), H5P_DEFAULT);
  const bool yes = d >= 0 && s >= 0 && H5DSis_attached(d, s, dim) > 0;
  if (s >= 0) H5Dclose(s);
  if (d >= 0) H5Dclose(d);
  return yes;
}

std::vector<std::int64_t> int_column(hid_t file, const std::string& path) {
  hid_t d = H5Dopen2(file, path.c_str(), H5P_DEFAULT);
  hid_t space = H5Dget_space(d);
  std::vector<std::int64_t> v(static_cast<std::size_t>(H5Sget_simple_extent_npoints(space)));
  H5Dread(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data());
  H5Sclose(space);
  H5Dclose(d);
  return v;
}

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const StoreError& e) {
    return e.what();
  }
  return "";
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

}  // namespace

TEST(Store, RoundTripShapesValuesNaNAndProgress) {
  const fs::path path = make_store(test_dir());
  EXPECT_FALSE(fs::exists(path.string() + ".partial"));
  const Store s = Store::open_read(path.string());
  EXPECT_EQ(s.runs(), (std::vector<std::string>{"a", "b"}));
  const auto runs = two_runs();
  EXPECT_EQ(s.shape("a", "step"), (std::vector<std::uint64_t>{5}));
  EXPECT_EQ(s.shape("a", "translation/translation_sum"), (std::vector<std::uint64_t>{5, 3}));
  EXPECT_EQ(s.shape("b", "scale/pred_exact"), (std::vector<std::uint64_t>{4, 5}));
  expect_rows(s, runs[0], 0, 3);
  expect_rows(s, runs[1], 1, 0);

  const Progress a = s.progress("a");
  EXPECT_EQ(a.rows_committed, 3);
  EXPECT_EQ(a.last_step, 20);
  EXPECT_EQ(a.status, Status::running);
  EXPECT_EQ(a.diverged_at, -1);
  EXPECT_EQ(a.heartbeat_utc, 1.7e9 + 0.5);
  EXPECT_EQ(a.last_loss, 2.25);
  const Progress b = s.progress("b");
  EXPECT_EQ(b.rows_committed, 0);
  EXPECT_EQ(b.last_step, -1);
  EXPECT_EQ(b.status, Status::pending);
  EXPECT_EQ(b.diverged_at, -1);
  EXPECT_EQ(b.heartbeat_utc, 0.0);
  EXPECT_TRUE(std::isnan(b.last_loss));  // no step yet
}

// One provenance record per attempt, written as raw data by a run's leader after setup.
// Every byte a later write lands on is on disk from creation (no holes in the file), so a full
// disk fails a run only where new bytes are needed (its checkpoint), never at a store write.
// The datasets' initial bytes are written by the ranks after rank 0 has made the metadata
// (src/nmech/store/raw_fill.hpp): checked here byte range by byte range, since the file may keep
// holes where no dataset lies (the unused end of a block of metadata).
void expect_no_holes(const fs::path& path, const std::vector<RunLayout>& runs = two_runs()) {
  const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  ASSERT_GE(file, 0);
  const int fd = ::open(path.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  int checked = 0;
  for (const auto& run : runs)
    for (const std::string& name : [&] {
           std::vector<std::string> names{"progress", "provenance"};
           for (const DatasetSpec& d : run.datasets) names.push_back(d.path);
           return names;
         }()) {
      const std::string ds_path = "/runs/" + run.name + "/" + name;
      const hid_t ds = H5Dopen2(file, ds_path.c_str(), H5P_DEFAULT);
      ASSERT_GE(ds, 0) << ds_path;
      const auto offset = static_cast<off_t>(H5Dget_offset(ds));
      const auto bytes = static_cast<off_t>(H5Dget_storage_size(ds));
      H5Dclose(ds);
      // The first hole at or after the dataset's first byte lies past its last byte.
      EXPECT_GE(::lseek(fd, offset, SEEK_HOLE), offset + bytes) << ds_path << ": a hole in its storage";
      ++checked;
    }
  ::close(fd);
  H5Fclose(file);
  EXPECT_GT(checked, 10);
}

TEST(Store, CreationLeavesNoHolesForLaterWrites) {
  const fs::path path = test_dir() / "holes.h5";
  Store::create(path.string(), MPI_COMM_WORLD, file_attrs(), model_sets(), two_runs()).close();
  expect_no_holes(path);
}

// A store larger than a quarter of the node's memory is filled past the page cache (O_DIRECT,
// whole pages; the ends through the page cache): the same NaN and empty slots, no holes. Runs of
// 2,000 rows, so that each stretch of datasets has whole pages.
TEST(Store, DirectFillWritesTheSameBytes) {
  const fs::path path = test_dir() / "direct.h5";
  const std::vector<RunLayout> runs{run_layout("a", "mlp", 2000), run_layout("b", "vgg", 1999)};
  ::setenv("NMECH_TEST_DIRECT_FILL", "1", 1);
  Store::create(path.string(), MPI_COMM_WORLD, file_attrs(), model_sets(), runs).close();
  ::unsetenv("NMECH_TEST_DIRECT_FILL");
  expect_no_holes(path, runs);
  const Store s = Store::open_read(path.string());
  expect_rows(s, runs[0], 0, 0);
  expect_rows(s, runs[1], 1, 0);
  EXPECT_TRUE(s.provenance("a").empty());
}

TEST(Store, ProvenanceSlotsAndFailedStatus) {
  const fs::path path = make_store(test_dir());
  {
    Store s = Store::open(path.string(), MPI_COMM_WORLD);
    EXPECT_TRUE(s.provenance("a").empty());
    s.write_provenance("a", 0, R"({"attempt":0})");
    s.write_provenance("a", 1, std::string(kProvenanceBytes + 10, 'x'));  // cut to the slot
    EXPECT_THROW(s.write_provenance("a", kProvenanceSlots, "{}"), StoreError);
    s.commit("b", Progress{0, -1, Status::failed, -1, 1.0, 0.5});
    s.close();
  }
  const Store s = Store::open_read(path.string());
  const auto p = s.provenance("a");
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p[0], R"({"attempt":0})");
  EXPECT_EQ(p[1], std::string(kProvenanceBytes, 'x'));
  EXPECT_TRUE(s.provenance("b").empty());
  EXPECT_EQ(s.progress("b").status, Status::failed);
  EXPECT_EQ(to_string(Status::failed), "failed");
}

TEST(Store, FileAndRunAttributes) {
  const fs::path path = make_store(test_dir());
  const Store s = Store::open_read(path.string());
  EXPECT_EQ(s.file_attr("format"), "nmech-store");
  EXPECT_EQ(s.file_attr("format_version"), std::to_string(kFormatVersion));
  EXPECT_EQ(s.file_attr("nmech_version"), "0.1.0");
  EXPECT_EQ(s.file_attr("config"), "[sweep]\nlr = [0.125]\n");
  EXPECT_TRUE(contains(error_of([&] { s.file_attr("nope"); }), "nope"));

  H5File f(path);
  ASSERT_GE(f.id, 0);
  EXPECT_EQ(number_attr<std::int64_t>(f.id, "/", "format_version", H5T_NATIVE_INT64), kFormatVersion);
  EXPECT_EQ(number_attr<double>(f.id, "/", "created_utc", H5T_NATIVE_DOUBLE), 1.7e9);
  EXPECT_EQ(number_attr<double>(f.id, "/runs/a", "lr", H5T_NATIVE_DOUBLE), 0.125);
  EXPECT_EQ(number_attr<std::int64_t>(f.id, "/runs/b", "seed", H5T_NATIVE_INT64), 7);
  EXPECT_EQ(string_attr(f.id, "/runs/a", "optimizer"), "sgd");
  EXPECT_EQ(string_attr(f.id, "/runs/a", "model"), "mlp");
  EXPECT_EQ(string_attr(f.id, "/runs/b", "model"), "vgg");
  // What a dataset holds is said once, under /quantities (format 7), not by each run's dataset.
  EXPECT_EQ(string_attr(f.id, "/quantities/loss", "units"), "nat");
  EXPECT_EQ(string_attr(f.id, "/quantities/loss", "description"), "training loss");
  EXPECT_EQ(string_attr(f.id, "/quantities/scale/pred_exact", "units"), "param^2");
  EXPECT_FALSE(string_attr(f.id, "/quantities/progress", "description").empty());
  EXPECT_FALSE(string_attr(f.id, "/quantities/provenance", "description").empty());
  EXPECT_FALSE(string_attr(f.id, "/quantities/set_index/scale", "description").empty());
  EXPECT_EQ(H5Aexists_by_name(f.id, "/runs/a/loss", "units", H5P_DEFAULT), 0);
  // One entry per dataset path of any run: the union of both runs' paths, and nothing else.
  std::set<std::string> want{"progress", "provenance"}, got;
  for (const auto& run : two_runs()) {
    for (const DatasetSpec& d : run.datasets) want.insert(d.path);
    for (const DatasetSpec& d : run.datasets)
      if (d.cols > 0) want.insert("set_index/" + d.set_family);
  }
  const hid_t quantities = H5Gopen2(f.id, "/quantities", H5P_DEFAULT);
  H5Ovisit(
      quantities, H5_INDEX_NAME, H5_ITER_INC,
      [](hid_t g, const char* name, const H5O_info_t*, void* out) {
        if (H5Aexists_by_name(g, name, "units", H5P_DEFAULT) > 0) static_cast<std::set<std::string>*>(out)->insert(name);
        return 0;
      },
      &got);
  H5Gclose(quantities);
  EXPECT_EQ(got, want);
}

TEST(Store, DimensionScalesAndSetTables) {
  const fs::path path = make_store(test_dir());
  H5File f(path);
  ASSERT_GE(f.id, 0);
  for (const std::string run : {"a", "b"}) {
    const std::string model = run == "a" ? "mlp" : "vgg";
    const std::string step = "/runs/" + run + "/step";
    for (const std::string d : {"loss", "translation/translation_sum", "scale/pred_exact"})
      EXPECT_TRUE(attached(f.id, "/runs/" + run + "/" + d, step, 0)) << run << "/" << d;
    // Each run's own set_index per family (format 4), with the model's values.
    EXPECT_TRUE(attached(f.id, "/runs/" + run + "/translation/translation_sum",
                         "/runs/" + run + "/set_index/translation", 1));
    EXPECT_TRUE(attached(f.id, "/runs/" + run + "/scale/pred_exact", "/runs/" + run + "/set_index/scale", 1));
    EXPECT_FALSE(attached(f.id, "/runs/" + run + "/scale/pred_exact",
                          "/runs/" + run + "/set_index/translation", 1));
    EXPECT_EQ(int_column(f.id, "/runs/" + run + "/set_index/scale"),
              int_column(f.id, "/models/" + model + "/sets/scale/set_index"));
  }
  hid_t step = H5Dopen2(f.id, "/runs/a/step", H5P_DEFAULT);
  EXPECT_GT(H5DSis_scale(step), 0);
  char name[16] = {};
  EXPECT_EQ(H5DSget_scale_name(step, name, sizeof name), 4);
  EXPECT_STREQ(name, "step");
  H5Dclose(step);

  const SetTable want = model_sets().at("vgg")[1];
  EXPECT_EQ(int_column(f.id, "/models/vgg/sets/scale/layer"), want.layer);
  EXPECT_EQ(int_column(f.id, "/models/vgg/sets/scale/set_index"), want.index);
  hid_t names = H5Dopen2(f.id, "/models/vgg/sets/scale/name", H5P_DEFAULT);
  hid_t type = H5Dget_type(names);
  const std::size_t width = H5Tget_size(type);
  std::string buf(width * want.names.size(), '\0');
  H5Dread(names, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data());
  for (std::size_t i = 0; i < want.names.size(); ++i)
    EXPECT_EQ(std::string(buf, i * width, width).c_str(), want.names[i]);  // null-padded
  H5Tclose(type);
  H5Dclose(names);
}

TEST(Store, ReopenForWritingResumes) {
  const fs::path path = make_store(test_dir());
  const auto runs = two_runs();
  {
    Store s = Store::open(path.string(), MPI_COMM_WORLD);
    write_run_rows(s, runs[0], 0, 3, 2);
    s.commit("a", Progress{5, 40, Status::done, -1, 2.0e9});
    write_run_rows(s, runs[1], 1, 0, 2);
    s.commit("b", Progress{2, 10, Status::diverged, 12, 2.0e9});
    Store moved = std::move(s);  // the moved-from store must not close the file twice
    EXPECT_EQ(moved.progress("a").status, Status::done);
    moved.close();
  }
  const Store s = Store::open_read(path.string());
  expect_rows(s, runs[0], 0, 5);
  expect_rows(s, runs[1], 1, 2);
  EXPECT_EQ(s.progress("a").rows_committed, 5);
  EXPECT_EQ(s.progress("b").status, Status::diverged);
  EXPECT_EQ(s.progress("b").diverged_at, 12);
  EXPECT_EQ(to_string(s.progress("b").status), "diverged");
}

TEST(Store, BadWritesAreRefused) {
  const fs::path path = make_store(test_dir());
  const double row[3] = {1, 2, 3};
  {
    Store s = Store::open(path.string(), MPI_COMM_WORLD);
    EXPECT_TRUE(
        contains(error_of([&] { s.write_rows("a", "loss", 4, 2, row); }), "outside [0, 5)"));
    EXPECT_TRUE(contains(error_of([&] { s.write_rows("zz", "loss", 0, 1, row); }), "no run 'zz'"));
    EXPECT_TRUE(
        contains(error_of([&] { s.write_rows("a", "nope", 0, 1, row); }), "no dataset 'nope'"));
    EXPECT_TRUE(contains(error_of([&] { s.commit("zz", Progress{}); }), "no run 'zz'"));
    s.close();
  }
  Store r = Store::open_read(path.string());
  EXPECT_TRUE(contains(error_of([&] { r.write_rows("a", "loss", 0, 1, row); }), "read-only"));
  EXPECT_TRUE(contains(error_of([&] { r.commit("a", Progress{}); }), "read-only"));
}

TEST(Store, CreateRefusesAnExistingFileOrDirectory) {
  const fs::path dir = test_dir();
  const fs::path path = make_store(dir);
  const auto before = fs::file_size(path);
  const std::string err = error_of([&] {
    Store::create(path.string(), MPI_COMM_WORLD, file_attrs(), model_sets(), two_runs());
  });
  EXPECT_TRUE(contains(err, path.string())) << err;
  EXPECT_TRUE(contains(err, "already exists")) << err;
  EXPECT_EQ(fs::file_size(path), before);
  EXPECT_EQ(Store::open_read(path.string()).progress("a").rows_committed, 3);

  const std::string dir_err = error_of(
      [&] { Store::create(dir.string(), MPI_COMM_WORLD, file_attrs(), model_sets(), two_runs()); });
  EXPECT_TRUE(contains(dir_err, "is a directory")) << dir_err;
  EXPECT_FALSE(fs::exists(dir.string() + ".partial"));
}

TEST(Store, CreateOnUnwritablePathThrowsAndLeavesNothing) {
  const fs::path dir = test_dir();
  std::ofstream(dir / "plain.txt") << "not a directory\n";
  const std::vector<std::string> bad = {"/proc/nmech_store_test.h5",
                                        (dir / "plain.txt" / "store.h5").string(),
                                        (dir / "missing" / "store.h5").string()};
  for (const std::string& path : bad) {
    const std::string err = error_of(
        [&] { Store::create(path, MPI_COMM_WORLD, file_attrs(), model_sets(), two_runs()); });
    EXPECT_TRUE(contains(err, path)) << err;
    EXPECT_EQ(err.find('\n'), std::string::npos) << err;
    EXPECT_FALSE(fs::exists(path));
    EXPECT_FALSE(fs::exists(path + ".partial"));
  }
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 1);
}

TEST(Store, InvalidLayoutsAreRefusedBeforeAnyFileExists) {
  const fs::path dir = test_dir();
  const std::string path = (dir / "store.h5").string();
  auto create = [&](std::vector<RunLayout> runs) {
    return error_of([&] { Store::create(path, MPI_COMM_WORLD, file_attrs(), model_sets(), runs); });
  };
  auto runs = two_runs();
  runs[0].datasets[2].cols = 4;  // mlp has 3 translation sets
  EXPECT_TRUE(contains(create(runs), "4 columns but family translation has 3 sets"));
  runs = two_runs();
  runs[1].datasets.erase(runs[1].datasets.begin());
  EXPECT_TRUE(contains(create(runs), "no 1-D dataset 'step'"));
  runs = two_runs();
  runs[1].datasets[3].set_family = "rescale";
  EXPECT_TRUE(contains(create(runs), "no set family 'rescale'"));
  runs = two_runs();
  runs[1].datasets[0].units = "s";  // "step" means one thing in every run (/quantities/step)
  EXPECT_TRUE(contains(create(runs), "run b, dataset 'step': units or description differ from another run's"))
      << create(runs);
  runs = two_runs();
  runs[1].name = "a";
  EXPECT_TRUE(contains(create(runs), "given twice"));
  EXPECT_TRUE(fs::is_empty(dir));
}

TEST(Store, OpeningSomethingElseThrows) {
  const fs::path dir = test_dir();
  const fs::path text = dir / "notes.txt";
  std::ofstream(text) << "hello\n";
  EXPECT_TRUE(contains(error_of([&] { Store::open_read(text.string()); }), "not an nmech store"));
  EXPECT_TRUE(contains(error_of([&] { Store::open(text.string(), MPI_COMM_WORLD); }),
                       "not an nmech store"));
  const std::string missing = (dir / "missing.h5").string();
  const std::string err = error_of([&] { Store::open_read(missing); });
  EXPECT_TRUE(contains(err, missing) && contains(err, "no such file")) << err;

  const fs::path other = dir / "other.h5";  // HDF5, but not ours
  H5Fclose(H5Fcreate(other.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT));
  const std::string other_err = error_of([&] { Store::open_read(other.string()); });
  EXPECT_TRUE(contains(other_err, other.string()) && contains(other_err, "not an nmech store"))
      << other_err;
}

TEST(Store, AnOlderFormatIsRefusedNamingItsVersion) {
  const fs::path path = make_store(test_dir());
  {  // what a format-3 store says of itself
    const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    ASSERT_GE(H5Adelete(f, "format_version"), 0);
    const hid_t space = H5Screate(H5S_SCALAR);
    const hid_t a = H5Acreate2(f, "format_version", H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT);
    const std::int64_t three = 3;
    H5Awrite(a, H5T_NATIVE_INT64, &three);
    H5Aclose(a);
    H5Sclose(space);
    H5Fclose(f);
  }
  for (const std::string& err : {error_of([&] { Store::open_read(path.string()); }),
                                 error_of([&] { Store::open(path.string(), MPI_COMM_WORLD); })})
    EXPECT_TRUE(contains(err, path.string()) && contains(err, "format_version 3 is not supported") &&
                contains(err, "reads " + std::to_string(kFormatVersion)))
        << err;
}

TEST(Store, H5pyReadsTheStore) {
  const fs::path dir = test_dir();
  const fs::path path = make_store(dir);
  const fs::path script = dir / "read.py";
  std::ofstream(script) << R"PY(
import sys
import h5py
import numpy as np
f = h5py.File(sys.argv[1], "r")
assert f.attrs["format"] == "nmech-store", f.attrs["format"]
assert f.attrs["format_version"] == int(sys.argv[2])
d = f["runs/a/translation/translation_sum"]
assert d.shape == (5, 3), d.shape
assert d.dtype == np.float64
assert f["quantities/translation/translation_sum"].attrs["units"] == "param"
assert d[1, 2] == 1000 * 0 + 200 + 10 + 2 + 0.25, d[1, 2]
assert np.isnan(d[3:]).all()
assert d.dims[0][0].name == "/runs/a/step", d.dims[0][0].name
assert d.dims[1][0].name == "/runs/a/set_index/translation", d.dims[1][0].name
assert list(d.dims[0].keys()) == ["step"] and list(d.dims[1].keys()) == ["set"], d.dims[1].keys()
assert f["runs/b/loss"].shape == (4,)
assert f["runs/a"].attrs["model"] == "mlp"
p = f["runs/a/progress"][0]
assert p["rows_committed"] == 3 and p["last_step"] == 20, p
assert h5py.check_enum_dtype(f["runs/a/progress"].dtype["status"])["running"] == 1
names = f["models/vgg/sets/scale/name"][:]
assert list(names) == [b"scale.set%d" % i for i in range(5)], names
print("h5py ok")
)PY";
  // Unset the variables that make Debian's h5py pick its MPI build; the serial one reads this.
  const std::string cmd =
      "env -u H5PY_ALWAYS_USE_MPI -u OMPI_COMM_WORLD_SIZE -u MPI_LOCALNRANKS "
      "/usr/bin/python3 " +
      script.string() + " " + path.string() + " " + std::to_string(kFormatVersion) + " > " +
      (dir / "read.log").string() + " 2>&1";
  const int rc = std::system(cmd.c_str());
  std::ifstream log(dir / "read.log");
  const std::string out((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
  EXPECT_EQ(rc, 0) << out;
  EXPECT_TRUE(contains(out, "h5py ok")) << out;
}
