// Two ranks share one store the way a sweep does: both create it collectively, then each rank
// writes and commits its own run while the other makes no HDF5 call (one after the other, then
// at the same time), and both close it collectively. Rank 0 then reads it back serially and
// checks every value. A second store has a run whose set_index scale has 4400 datasets, past the
// size at which parallel HDF5 1.10.8 corrupted a scale's REFERENCE_LIST when attached collectively.
// Exit code 0 when all checks pass, 1 otherwise (a hang is caught by the ctest timeout: a
// collective call from one rank only would block here).
#include <hdf5.h>
#include <hdf5_hl.h>
#include <mpi.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "nmech/store/store.hpp"

using namespace nmech::store;

namespace {

constexpr std::uint64_t kSets = 3;

double value(int run, int dataset, std::uint64_t row, std::uint64_t col) {
  return run * 1000.0 + dataset * 100.0 + static_cast<double>(row) * 10.0 +
         static_cast<double>(col) + 0.5;
}

RunLayout layout(const std::string& name, std::uint64_t rows) {
  RunLayout r;
  r.name = name;
  r.model = "mlp";
  r.rows = rows;
  r.attrs = {{"lr", 0.1}, {"seed", std::int64_t{1}}};
  r.datasets = {{"step", 0, "", "step", "optimizer step"},
                {"loss", 0, "", "nat", "training loss"},
                {"scale/grad_sq", kSets, "scale", "param^-2", "squared gradient norm per set"}};
  return r;
}

std::vector<RunLayout> runs() { return {layout("A", 6), layout("B", 5)}; }

std::map<std::string, std::vector<SetTable>> sets() {
  SetTable t{"scale", {"fc1.col0", "fc1.col1", "fc2.col0"}, {0, 0, 1}, {0, 1, 0}};
  return {{"mlp", {t}}};
}

void write_rows(Store& s, int run_i, std::uint64_t row0, std::uint64_t n) {
  const RunLayout r = runs()[static_cast<std::size_t>(run_i)];
  for (std::size_t d = 0; d < r.datasets.size(); ++d) {
    const std::uint64_t cols = r.datasets[d].cols == 0 ? 1 : r.datasets[d].cols;
    std::vector<double> buf;
    for (std::uint64_t i = row0; i < row0 + n; ++i)
      for (std::uint64_t c = 0; c < cols; ++c)
        buf.push_back(value(run_i, static_cast<int>(d), i, c));
    s.write_rows(r.name, r.datasets[d].path, row0, n, buf.data());
  }
}

int failures = 0;

void expect(bool ok, const std::string& what) {
  if (!ok) {
    ++failures;
    std::fprintf(stderr, "FAIL: %s\n", what.c_str());
  }
}

void check_run(const Store& s, int run_i, std::uint64_t written, const Progress& want) {
  const RunLayout r = runs()[static_cast<std::size_t>(run_i)];
  for (std::size_t d = 0; d < r.datasets.size(); ++d) {
    const std::uint64_t cols = r.datasets[d].cols == 0 ? 1 : r.datasets[d].cols;
    const std::vector<double> got = s.read(r.name, r.datasets[d].path);
    const std::string where = r.name + "/" + r.datasets[d].path;
    expect(got.size() == r.rows * cols, where + ": size " + std::to_string(got.size()));
    if (got.size() != r.rows * cols) continue;
    for (std::uint64_t i = 0; i < r.rows; ++i)
      for (std::uint64_t c = 0; c < cols; ++c) {
        const double v = got[i * cols + c];
        const std::string at = where + "[" + std::to_string(i) + "," + std::to_string(c) + "]";
        if (i < written)
          expect(v == value(run_i, static_cast<int>(d), i, c), at + " = " + std::to_string(v));
        else
          expect(std::isnan(v), at + " should be NaN (never written)");
      }
  }
  const Progress p = s.progress(r.name);
  expect(p.rows_committed == want.rows_committed, r.name + ": rows_committed");
  expect(p.last_step == want.last_step, r.name + ": last_step");
  expect(p.status == want.status, r.name + ": status " + to_string(p.status));
  expect(p.diverged_at == want.diverged_at, r.name + ": diverged_at");
  expect(p.heartbeat_utc == want.heartbeat_utc, r.name + ": heartbeat_utc");
}

const Progress kDoneA{6, 60, Status::done, -1, 3.0};
const Progress kRunningB{3, 30, Status::running, -1, 2.0};
const Progress kDoneB{4, 40, Status::done, -1, 4.0};

// Phase 1: rank 0 alone; phase 2: rank 1 alone; phase 3: both at once, each on its own run.
void write_phases(Store& s, int rank, MPI_Comm comm) {
  if (rank == 0) {
    write_rows(s, 0, 0, 4);
    s.commit("A", Progress{4, 40, Status::running, -1, 1.0});
  }
  MPI_Barrier(comm);
  if (rank == 1) {
    write_rows(s, 1, 0, 3);
    s.commit("B", kRunningB);
    expect(s.progress("B").rows_committed == 3, "rank 1 reads back its own commit");
  }
  MPI_Barrier(comm);
  if (rank == 0) {
    write_rows(s, 0, 4, 2);
    s.commit("A", kDoneA);
  } else {
    expect(s.progress("B").status == Status::running, "rank 1 reads progress independently");
    write_rows(s, 1, 3, 1);
    s.commit("B", kDoneB);
  }
}

// One run with 4400 two-column datasets attached to its set_index (REFERENCE_LIST > 64 KiB, the
// size at which parallel HDF5 1.10.8 corrupted a scale attached collectively) and one with 2:
// each run's scale lists only its own datasets (format 4).
void check_run_scales(const std::string& path, MPI_Comm comm, int rank) {
  const std::vector<std::pair<std::string, int>> per_run = {{"W0", 4400}, {"W1", 2}};
  std::vector<RunLayout> wide;
  for (const auto& [name, n] : per_run) {
    RunLayout r;
    r.name = name;
    r.model = "mlp";
    r.rows = 1;
    r.datasets.push_back({"step", 0, "", "step", "optimizer step"});
    for (int d = 0; d < n; ++d)
      r.datasets.push_back({"q" + std::to_string(d), kSets, "scale", "", "filler"});
    wide.push_back(r);
  }
  if (rank == 0) std::filesystem::remove(path);
  MPI_Barrier(comm);
  Store s = Store::create(path, comm, {}, sets(), wide);
  s.close();
  if (rank != 0) return;
  const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  for (const auto& [name, n] : per_run) {
    const hid_t index = H5Dopen2(f, ("/runs/" + name + "/set_index/scale").c_str(), H5P_DEFAULT);
    const hid_t last = H5Dopen2(f, ("/runs/" + name + "/q" + std::to_string(n - 1)).c_str(), H5P_DEFAULT);
    expect(H5DSis_attached(last, index, 1) > 0, "last wide dataset of " + name + " attached to its set_index");
    const hid_t refs = H5Aopen(index, "REFERENCE_LIST", H5P_DEFAULT);
    const hid_t space = H5Aget_space(refs);
    expect(H5Sget_simple_extent_npoints(space) == n, "REFERENCE_LIST of " + name + " has one entry per dataset of it");
    H5Sclose(space);
    H5Aclose(refs);
    H5Dclose(last);
    H5Dclose(index);
  }
  H5Fclose(f);
  std::filesystem::remove(path);
}

int run(const std::string& path, MPI_Comm comm) {
  int rank = 0, size = 0;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  if (size != 2) {
    if (rank == 0) std::fprintf(stderr, "FAIL: needs exactly 2 ranks, got %d\n", size);
    return 1;
  }
  if (rank == 0) {  // reruns start clean
    std::filesystem::remove(path);
    std::filesystem::remove(path + ".partial");
  }
  MPI_Barrier(comm);

  Store s = Store::create(path, comm, {{"config", std::string("test")}}, sets(), runs());
  write_phases(s, rank, comm);
  s.close();  // collective
  MPI_Barrier(comm);

  if (rank == 0) {
    const Store r = Store::open_read(path);
    expect(r.runs() == std::vector<std::string>{"A", "B"}, "runs() lists A and B");
    expect(r.file_attr("config") == "test", "file attribute config");
    check_run(r, 0, 6, kDoneA);
    check_run(r, 1, 4, kDoneB);
  }
  check_run_scales(path + ".wide.h5", comm, rank);
  int local = failures, total = 0;
  MPI_Allreduce(&local, &total, 1, MPI_INT, MPI_SUM, comm);
  if (rank == 0) std::printf("%s: %d failure(s)\n", total == 0 ? "PASS" : "FAIL", total);
  return total == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s STORE.h5\n", argv[0]);
    MPI_Finalize();
    return 1;
  }
  int rc = 1;
  try {
    rc = run(argv[1], MPI_COMM_WORLD);
  } catch (const std::exception& e) {
    // The other rank may be waiting in a collective: abort rather than hang.
    std::fprintf(stderr, "FAIL: %s\n", e.what());
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  MPI_Finalize();
  return rc;
}
