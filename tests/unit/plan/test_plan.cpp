// sweep plan: runs, rows, bytes, groups, launch lines and their quoting.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "nmech/config/sweep_config.hpp"
#include "nmech/plan/plan.hpp"

namespace nmech::plan {
namespace {

using config::ConfigError;
using config::SweepConfig;

const std::string kSource = NMECH_SOURCE_DIR;

SweepConfig test_sweep() { return config::load_sweep_config(kSource + "/configs/test-sweep.toml"); }

std::string plan_error(const SweepConfig& s, std::int64_t world) {
  try {
    make_plan(s, world, "sweep.toml", "out.h5");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "no error";
}

// ------------------------------------------------------------------ runs and sizes

TEST(Plan, RunsRowsAndGroups) {
  Plan p = make_plan(test_sweep(), 2, "configs/test-sweep.toml", "out.h5");
  ASSERT_EQ(p.runs.size(), 4u);
  EXPECT_EQ(p.world_size, 2);
  EXPECT_EQ(p.ranks_per_run, 1);
  EXPECT_EQ(p.groups, 2);
  for (const auto& r : p.runs) {
    EXPECT_EQ(r.cfg.steps, 20);
    EXPECT_EQ(r.rows, 20u / 1 + 1);  // steps / record_every + 1: steps 0 … 20
    EXPECT_EQ(r.datasets, 35u);
  }
  EXPECT_EQ(p.runs[0].name, "lr0.05-m0");
  EXPECT_EQ(p.runs[3].name, "lr0.1-m0.9");
  EXPECT_TRUE(p.notes.empty());
}

TEST(Plan, RowsFollowRecordEvery) {
  SweepConfig s = config::parse_sweep_config(
      "model = \"mlp\"\ndataset = \"synthetic\"\nsteps = 20\nrecord_every = 5\nlr = [0.1, 0.2]\n", "s.toml");
  EXPECT_EQ(make_plan(s, 1).runs[0].rows, 20u / 5 + 1);
  s.base.record_every = 3;  // 0, 3, …, 18 and the last step 20
  EXPECT_EQ(make_plan(s, 1).runs[0].rows, 20u / 3 + 1 + 1);
}

// The bytes of one run, counted from the store's documented layout (docs/STORE.md, "Datasets per
// family") rather than from layout::run_datasets. The test sweep's model is an MLP with BatchNorm,
// 1024 → 32 → 32 → 10: softmax translation sets are fc3's 32 weight columns and its bias (33);
// each BatchNorm'd unit is a scale set (its fc row and bias: 2 × 32), and so is bn1's affine group
// (bn2 is the last BatchNorm before the classifier: no group), each BatchNorm → ReLU unit a
// rescale set (2 × 32); the parameter sample holds 4 weights of each of the 3 Linear layers.
TEST(Plan, BytesOfOneRunMatchTheStoreLayout) {
  Plan p = make_plan(test_sweep(), 4);
  const std::uint64_t T = 33, S = 65, R = 64, sample = 12;
  EXPECT_EQ(p.model.sets[theory::index(theory::Family::translation)], 33);
  EXPECT_EQ(p.model.sets[theory::index(theory::Family::scale)], 65);
  EXPECT_EQ(p.model.sets[theory::index(theory::Family::rescale)], 64);
  // with momentum: forcings grad_sq, step_sq, theta_dot_grad, velocity_sq; no pred_modloss
  const std::uint64_t translation = 4 + 3;      // sum, abs_sum, grad_sum, grad_sq; pred_exact, _aux, _paper
  const std::uint64_t scale = 1 + 4 + 1 + 3;    // sq_norm; forcings; angle_step; predictions
  const std::uint64_t rescale = 3 + 2 * 4 + 3;  // diff, sq_norm_in/out; forcings in/out; predictions
  // + step, time, loss, accuracy; + sample/value
  const std::uint64_t per_row = 4 + translation * T + scale * S + rescale * R + sample;
  const std::uint64_t datasets = 4 + translation + scale + rescale + 1;
  const PlannedRun& r = p.runs[1];
  ASSERT_EQ(r.name, "lr0.05-m0.9");
  EXPECT_EQ(r.values_per_row, per_row);
  EXPECT_EQ(r.datasets, datasets);
  EXPECT_EQ(r.bytes, 21 * per_row * 8 + datasets * kDatasetOverheadBytes + kRunOverheadBytes);
  // without momentum: velocity_sq goes, pred_modloss comes
  const PlannedRun& r0 = p.runs[0];
  ASSERT_EQ(r0.name, "lr0.05-m0");
  EXPECT_EQ(r0.values_per_row, 4 + (translation + 1) * T + scale * S + (rescale - 2 + 1) * R + sample);
}

TEST(Plan, TotalIsSharedPlusRuns) {
  Plan p = make_plan(test_sweep(), 4);
  std::uint64_t runs = 0;
  for (const auto& r : p.runs) runs += r.bytes;
  EXPECT_GT(p.shared_bytes, kFileOverheadBytes);  // plus the set tables
  EXPECT_EQ(p.total_bytes, p.shared_bytes + runs);
}

TEST(Plan, CreationTimeFollowsDatasetsAndBytes) {
  Plan p = make_plan(test_sweep(), 2);
  std::uint64_t datasets = 0;
  for (const auto& r : p.runs) datasets += r.datasets;
  EXPECT_DOUBLE_EQ(p.create_seconds, static_cast<double>(datasets) * kCreateSecondsPerDataset +
                                         static_cast<double>(p.total_bytes) / kCreateBytesPerSecond);
}

TEST(Plan, WallTimeHandsOutLongestFirstToTheGroups) {
  // 4 runs of 20 steps: with 2 groups each takes two runs; with 4 groups, one.
  for (const std::int64_t world : {2, 4}) {
    Plan p = make_plan(test_sweep(), world);
    estimate_wall(p, 50.0);
    const double per_run = 20 * 0.050 + kRunOverheadSeconds;
    EXPECT_NEAR(p.wall_seconds, p.create_seconds + per_run * static_cast<double>(4 / world), 1e-9) << world;
    EXPECT_EQ(p.resource, "core-hours");
    EXPECT_NEAR(p.resource_hours, p.wall_seconds / 3600 * static_cast<double>(world), 1e-12);
  }
}

TEST(Plan, DemoSweep) {
  SweepConfig s = config::load_sweep_config(kSource + "/configs/sweep-demo.toml");
  Plan p = make_plan(s, 2, "configs/sweep-demo.toml");
  ASSERT_EQ(p.runs.size(), 4u);
  EXPECT_EQ(p.groups, 2);
  EXPECT_EQ(p.model.model, "vgg16_bn");
  EXPECT_GT(p.model.sets[theory::index(theory::Family::scale)], 0);
  for (const auto& r : p.runs) EXPECT_EQ(r.rows, 801u);
  EXPECT_EQ(p.store_path, "sweep-demo.h5");
  EXPECT_EQ(p.config_sha256, config::sweep_hash(s));
}

// ------------------------------------------------------------------ groups and world size

TEST(Plan, GroupsAreWorldOverRanksPerRun) {
  SweepConfig s = test_sweep();
  s.ranks_per_run = 2;
  EXPECT_EQ(make_plan(s, 2).groups, 1);
  EXPECT_EQ(make_plan(s, 8).groups, 4);
  EXPECT_TRUE(make_plan(s, 8).notes.empty());
  Plan idle = make_plan(s, 12);
  EXPECT_EQ(idle.groups, 6);
  ASSERT_EQ(idle.notes.size(), 1u);
  EXPECT_EQ(idle.notes[0], "2 of 6 groups will have no run: a world size of 8 is enough");
}

TEST(Plan, WorldSizeErrors) {
  SweepConfig s = config::parse_sweep_config("model = \"mlp\"\nranks_per_run = 2\n", "s.toml");
  EXPECT_EQ(plan_error(s, 3), "world size 3 is not a multiple of 2 (ranks_per_run = 2, s.toml:2)");
  EXPECT_EQ(plan_error(s, 1), "world size 1 is smaller than one group of 2 ranks (ranks_per_run = 2, s.toml:2)");
  EXPECT_EQ(plan_error(s, 0), "world size must be >= 1, got 0");
}

TEST(Plan, ModelThatCannotTakeTheInputNamesTheKey) {
  SweepConfig s = config::parse_sweep_config("model = \"vgg11\"\ninput_size = 28\n", "s.toml");
  EXPECT_EQ(plan_error(s, 1),
            "s.toml:2: key 'input_size': input_size too small for five 2x2 max-pools (model vgg11, input_size 28)");
}

TEST(Plan, DefaultWorldSize) {
  SweepConfig s = test_sweep();
  EXPECT_EQ(default_world_size(s, ""), 4);  // one group per run
  s.ranks_per_run = 2;
  EXPECT_EQ(default_world_size(s, ""), 8);
  EXPECT_EQ(default_world_size(s, "6"), 6);  // inside an allocation
  EXPECT_EQ(default_world_size(s, "x"), 8);
  EXPECT_EQ(default_world_size(s, "0"), 8);
  Plan p = make_plan(s, 4, "c.toml", "", "6");
  ASSERT_EQ(p.notes.size(), 1u);
  EXPECT_EQ(p.notes[0], "SLURM_NTASKS is 6, not 4: nmech sweep refuses a world that differs from SLURM_NTASKS");
}

TEST(Plan, DefaultStorePath) {
  EXPECT_EQ(default_store_path("configs/sweep-demo.toml"), "sweep-demo.h5");
  EXPECT_EQ(default_store_path("sweep.toml"), "sweep.h5");
  EXPECT_EQ(default_store_path("/a.b/grid"), "grid.h5");
  EXPECT_EQ(default_store_path("/x/.toml"), ".toml.h5");
}

// ------------------------------------------------------------------ launch lines and quoting

TEST(Plan, LaunchLines) {
  Plan p = make_plan(test_sweep(), 4, "configs/test-sweep.toml", "out/s.h5");
  EXPECT_EQ(p.mpirun_args, (std::vector<std::string>{"mpirun", "-np", "4", "nmech", "sweep",
                                                      "configs/test-sweep.toml", "-o", "out/s.h5"}));
  EXPECT_EQ(command_line(p.mpirun_args), "mpirun -np 4 nmech sweep configs/test-sweep.toml -o out/s.h5");
  EXPECT_EQ(command_line(p.srun_args),
            "srun --mpi=pmix -n 4 nmech sweep configs/test-sweep.toml -o out/s.h5");
  Plan q = make_plan(test_sweep(), 4, "my sweep.toml", "$(rm -rf /).h5");
  EXPECT_EQ(command_line(q.mpirun_args), "mpirun -np 4 nmech sweep 'my sweep.toml' -o '$(rm -rf /).h5'");
}

TEST(Plan, SbatchLineSpreadsTheWorldOverNodes) {
  Plan p = make_plan(test_sweep(), 4, "configs/test-sweep.toml", "out/s.h5");
  SlurmOptions o;
  o.script = "jobs/sweep.sbatch";
  EXPECT_EQ(command_line(sbatch_args(p, o)),
            "sbatch --job-name=nmech-test-sweep --nodes=1 --ntasks-per-node=4 jobs/sweep.sbatch "
            "configs/test-sweep.toml out/s.h5");
  o.nodes = 2;
  o.gpus_per_node = 2;
  o.time = "1-02:00:00";
  o.partition = "gpu";
  EXPECT_EQ(command_line(sbatch_args(p, o)),
            "sbatch --job-name=nmech-test-sweep --nodes=2 --ntasks-per-node=2 --gpus-per-node=2 "
            "--time=1-02:00:00 --partition=gpu jobs/sweep.sbatch configs/test-sweep.toml out/s.h5");
  // A path with shell metacharacters stays one argument, quoted when printed.
  Plan q = make_plan(test_sweep(), 4, "my $(touch pwned);.toml", "a b.h5");
  const auto a = sbatch_args(q, SlurmOptions{});
  EXPECT_EQ(a[a.size() - 2], "my $(touch pwned);.toml");
  EXPECT_NE(command_line(a).find("'my $(touch pwned);.toml' 'a b.h5'"), std::string::npos) << command_line(a);
  EXPECT_NE(command_line(a).find("'--job-name=nmech-my $(touch pwned);'"), std::string::npos) << command_line(a);
}

TEST(Plan, SbatchRefusesWhatSlurmWouldMisread) {
  Plan p = make_plan(test_sweep(), 4, "c.toml", "s.h5");
  SlurmOptions o;
  o.nodes = 3;  // 4 ranks do not spread over 3 nodes
  EXPECT_THROW(sbatch_args(p, o), config::ConfigError);
  o.nodes = 2;
  o.gpus_per_node = 4;  // 2 ranks per node, 4 GPUs each
  EXPECT_THROW(sbatch_args(p, o), config::ConfigError);
  o.gpus_per_node = 0;
  for (const char* t : {"2h", "1:00:00;id", "-5", "1::00", "01:00:00:00", "$(id)"}) {
    o.time = t;
    EXPECT_THROW(sbatch_args(p, o), config::ConfigError) << t;
  }
  for (const char* t : {"90", "30:00", "02:00:00", "1-00", "1-02:00:00"}) {
    o.time = t;
    EXPECT_NO_THROW(sbatch_args(p, o)) << t;
  }
}

TEST(Quote, SafeArgumentsStayBare) {
  for (const char* s : {"nmech", "--mpi=pmix", "-np", "a/b.c_d:e=f@g%h+i,j-k", "0"}) EXPECT_EQ(quote_arg(s), s);
}

TEST(Quote, EverythingElseIsSingleQuoted) {
  EXPECT_EQ(quote_arg(""), "''");
  EXPECT_EQ(quote_arg("a b"), "'a b'");
  EXPECT_EQ(quote_arg("$(rm -rf /)"), "'$(rm -rf /)'");
  EXPECT_EQ(quote_arg(";"), "';'");
  EXPECT_EQ(quote_arg("'"), "''\\'''");
  EXPECT_EQ(quote_arg("it's"), "'it'\\''s'");
  EXPECT_EQ(quote_arg("a\nb"), "'a\nb'");
  EXPECT_EQ(quote_arg("`id`|&<>*?~#!\"\\"), "'`id`|&<>*?~#!\"\\'");
}

// The real proof: a shell given the quoted line hands back each argument unchanged. The hostile
// arguments only echo a marker if the quoting failed, so a failure is harmless and visible.
TEST(Quote, ShellReadsBackTheExactArguments) {
  const std::vector<std::string> args = {"a b", "$(echo INJECTED)", "`echo INJECTED`", "'", "it's", ";echo INJECTED",
                                         "x\ny", "", "$HOME", "*", "a\\b", "\"q\"", "&& echo INJECTED", "%s"};
  std::vector<std::string> argv = {"printf", "[%s]"};
  argv.insert(argv.end(), args.begin(), args.end());
  std::unique_ptr<FILE, int (*)(FILE*)> sh(popen(("exec /bin/sh -c " + quote_arg(command_line(argv))).c_str(), "r"),
                                           &pclose);
  ASSERT_TRUE(sh);
  std::string out;
  char buf[256];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, sh.get())) > 0) out.append(buf, n);
  std::string expected;
  for (const auto& a : args) expected += "[" + a + "]";
  EXPECT_EQ(out, expected);
}

// ------------------------------------------------------------------ output

TEST(Plan, TableNamesEveryRunAndBothLaunches) {
  Plan p = make_plan(test_sweep(), 2, "configs/test-sweep.toml", "s.h5");
  const std::string t = format_plan(p);
  for (const auto& r : p.runs) EXPECT_NE(t.find(r.name), std::string::npos) << t;
  EXPECT_NE(t.find("4 runs, handed out longest first to 2 groups of 1 rank (world size 2)"), std::string::npos) << t;
  EXPECT_NE(t.find("  mpirun -np 2 nmech sweep configs/test-sweep.toml -o s.h5\n"), std::string::npos) << t;
  EXPECT_NE(t.find("  srun --mpi=pmix -n 2 nmech sweep configs/test-sweep.toml -o s.h5\n"), std::string::npos) << t;
}

TEST(Plan, JsonHasEveryNumber) {
  Plan p = make_plan(test_sweep(), 2, "configs/test-sweep.toml", "s.h5");
  auto j = nlohmann::json::parse(plan_json(p));
  EXPECT_EQ(j["groups"], 2);
  EXPECT_EQ(j["world_size"], 2);
  EXPECT_EQ(j["total_bytes"], p.total_bytes);
  EXPECT_EQ(j["config_sha256"], p.config_sha256);
  ASSERT_EQ(j["runs"].size(), 4u);
  EXPECT_EQ(j["runs"][1]["name"], "lr0.05-m0.9");
  EXPECT_EQ(j["runs"][1]["lr"], 0.05);
  EXPECT_EQ(j["runs"][1]["momentum"], 0.9);
  EXPECT_EQ(j["runs"][1]["rows"], 21);
  EXPECT_EQ(j["runs"][1]["bytes"], p.runs[1].bytes);
  EXPECT_EQ(j["launch"]["mpirun"], nlohmann::json(p.mpirun_args));
  EXPECT_EQ(j["launch"]["srun_line"], command_line(p.srun_args));
}

}  // namespace
}  // namespace nmech::plan
