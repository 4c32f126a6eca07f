"""jobs/sweep.sbatch and jobs/chain.sh on a real Slurm: a sweep job, a job signalled
before its time limit that checkpoints, requeues itself and finishes with the rows of an
unsignalled sweep, and a chain of jobs that finishes a grid one job could not."""
from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import h5py
import pytest

from conftest import NMECH, REPO

sys.path.insert(0, str(REPO / "tests"))
import store_rows  # noqa: E402

SWEEP = """
model = "mlp_bn"
dataset = "synthetic"
classifier_width = 32
steps = 6000
batch_size = 64
lr = [0.05, 0.1]
momentum = [0.0, 0.9]
weight_decay = 5e-4
checkpoint_every = 250
"""
SBATCH = str(REPO / "jobs" / "sweep.sbatch")
DONE, RUNNING = 2, 1


def reference(tmp: Path, config: Path, env: dict) -> Path:
    """The same sweep, unsignalled, under plain mpirun."""
    ref = tmp / "reference.h5"
    p = subprocess.run(["mpirun", "-np", "2", NMECH, "sweep", str(config), "-o", str(ref), "--progress", "none"],
                       env={k: v for k, v in env.items() if not k.startswith("SLURM_")} | {"SLURM_CONF": env["SLURM_CONF"]},
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    return ref


def rows_equal(a: Path, b: Path) -> int:
    """b's runs all finished, with a's rows bit for bit."""
    with h5py.File(b, "r") as fb:
        for run in fb["runs"]:
            assert fb[f"runs/{run}/progress"][0]["status"] == DONE, run
    return store_rows.rows_equal(a, b)


def mid_run(store: Path) -> bool:
    try:
        with h5py.File(store, "r") as f:
            return any(r["progress"][0]["status"] == RUNNING and r["progress"][0]["rows_committed"] >= 32
                       for r in f["runs"].values())
    except (OSError, KeyError):
        return False


def wait_mid_run(cluster, job: str, store: Path) -> None:
    end = time.monotonic() + 120
    while not mid_run(store):
        assert time.monotonic() < end, cluster.job(job)
        time.sleep(0.05)


def submit(cluster, tmp: Path, *args: str) -> str:
    out = cluster.run("sbatch", "--parsable", f"--chdir={tmp}", *args).stdout.strip()
    return out.split(";")[0]


def log_of(tmp: Path, job: str) -> str:
    (log,) = tmp.glob(f"nmech-*-{job}.log")
    return log.read_text()


def test_sweep_job_with_srun_finishes_every_run(cluster, tmp_path):
    config = tmp_path / "sweep.toml"
    config.write_text(SWEEP.replace("steps = 6000", "steps = 300"))
    store = tmp_path / "sweep.h5"
    job = submit(cluster, tmp_path, "--ntasks=2", SBATCH, str(config), str(store))
    info = cluster.wait_job(job)
    log = log_of(tmp_path, job)
    assert info["JobState"] == "COMPLETED" and info["ExitCode"] == "0:0", log
    assert "launcher srun" in log and "4 runs: done 4" in log, log
    assert "2 groups of 1 rank" in log
    s = subprocess.run([NMECH, "status", str(store)], capture_output=True, text=True, timeout=60)
    assert "4 runs: done 4, running 0" in s.stdout, s.stdout
    assert rows_equal(reference(tmp_path, config, cluster.env), store) > 4 * 20


@pytest.mark.parametrize("launcher", ["srun", "mpirun"])
def test_signal_before_the_limit_checkpoints_requeues_and_resumes_exactly(cluster, tmp_path, launcher):
    config = tmp_path / "sweep.toml"
    config.write_text(SWEEP)
    store = tmp_path / "sweep.h5"
    env_job = [f"--export=ALL,NMECH_LAUNCHER={launcher}"]
    job = submit(cluster, tmp_path, "--ntasks=2", *env_job, SBATCH, str(config), str(store))
    wait_mid_run(cluster, job, store)
    cluster.run("scancel", "--signal=USR2", "--batch", job)  # what --signal=B:USR2@120 sends
    info = cluster.wait_job(job)
    log = log_of(tmp_path, job)
    assert info["JobState"] == "COMPLETED" and info["Restarts"] == "1", (info, log)
    assert "attempt 1 (restart count 0)" in log and "attempt 2 (restart count 1)" in log, log
    assert f"launcher {launcher}" in log and "nmech sweep exited with 3" in log, log
    assert "got USR2" in log and "requeueing (restart 1 of at most 3)" in log, log
    assert "stopped by a signal" in log and "resume at step" in log, log
    assert re.search(r"4 runs: done 4", log), log
    with h5py.File(store, "r") as f:
        attempts = [x for r in f["runs"].values() for x in r["provenance"][()] if x]
    assert any(b'"SLURM_RESTART_COUNT":"1"' in a for a in attempts)
    assert rows_equal(reference(tmp_path, config, cluster.env), store) > 4 * 20


def test_chained_jobs_finish_a_grid_one_job_cannot(cluster, tmp_path):
    config = tmp_path / "sweep.toml"
    config.write_text(SWEEP)
    store = tmp_path / "sweep.h5"
    env = dict(cluster.env, NMECH_MAX_REQUEUES="0")  # the first job's stop is final, as at a time limit
    p = subprocess.run([str(REPO / "jobs" / "chain.sh"), "2", str(config), str(store), "--ntasks=2",
                        f"--chdir={tmp_path}", "--export=ALL,NMECH_LAUNCHER=mpirun"],
                       env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    first, second = p.stdout.split()
    assert cluster.job(second)["Dependency"].startswith(f"afterany:{first}")
    wait_mid_run(cluster, first, store)
    cluster.run("scancel", "--signal=USR2", "--batch", first)
    assert cluster.wait_job(first)["ExitCode"] == "3:0"
    assert cluster.wait_job(second)["JobState"] == "COMPLETED"
    log1, log2 = log_of(tmp_path, first), log_of(tmp_path, second)
    assert "requeue budget of 0 spent" in log1 and "unfinished" in log1, log1
    assert "resume at step" in log2 and "4 runs: done 4" in log2, log2
    assert rows_equal(reference(tmp_path, config, cluster.env), store) > 4 * 20


def test_plan_prints_and_submits_the_exact_sbatch_command(cluster, tmp_path):
    """`nmech plan --slurm` prints an sbatch line that a shell reads back into the exact argument list,
    even for a config path full of shell metacharacters; only `--submit` submits, and without a shell."""
    import shlex
    config = tmp_path / "my $(touch pwned);.toml"
    config.write_text(SWEEP.replace("steps = 6000", "steps = 200"))
    store = tmp_path / "plan store.h5"
    args = [NMECH, "plan", str(config), "-P", "2", "-o", str(store), "--slurm", "--time", "10:00"]
    before = cluster.run("squeue", "-h", "-o", "%i").stdout.split()
    dry = subprocess.run(args, env=cluster.env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert dry.returncode == 0, dry.stderr
    line = dry.stdout.strip().splitlines()[-1].strip()
    assert shlex.split(line) == ["sbatch", "--job-name=nmech-my $(touch pwned);", "--nodes=1", "--ntasks-per-node=2",
                                 "--time=10:00", str(REPO / "jobs" / "sweep.sbatch"), str(config), str(store)]
    assert cluster.run("squeue", "-h", "-o", "%i").stdout.split() == before  # a dry run submits nothing
    sub = subprocess.run(args + ["--submit"], env=cluster.env, cwd=tmp_path, capture_output=True, text=True,
                         timeout=60)
    assert sub.returncode == 0, sub.stderr
    job = re.search(r"Submitted batch job (\d+)", sub.stdout).group(1)
    assert cluster.wait_job(job)["JobState"] == "COMPLETED", log_of(tmp_path, job)
    s = subprocess.run([NMECH, "status", str(store)], capture_output=True, text=True, timeout=60)
    assert "4 runs: done 4" in s.stdout, s.stdout
    assert not list(tmp_path.rglob("pwned")) and not (REPO / "pwned").exists()
