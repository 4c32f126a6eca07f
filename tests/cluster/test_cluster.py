"""Sweeps across nodes on a virtual Slurm cluster of two nodes (tests/cluster/cluster.sh): network
and UTS namespaces on a bridge inside this machine, one slurmd each, the file system shared.

A rank group spanning the nodes reduces its gradients over TCP; groups inside nodes use shared
memory. Either way the rows are bitwise those of the same sweep on one node. A node lost mid-sweep
ends the job in bounded time, naming it, and the node that is left resumes to the same rows; a chain
of jobs across both nodes does too."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import h5py
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))
from store_rows import rows_equal, rows_of  # noqa: E402

# Absolute: job steps run in their own working directories (sbatch --chdir).
NMECH = os.path.abspath(os.environ.get("NMECH_BIN", str(REPO / "build" / "src" / "apps" / "nmech")))
CLUSTER = REPO / "tests" / "cluster" / "cluster.sh"
SBATCH = REPO / "jobs" / "sweep.sbatch"

SWEEP = """
model = "mlp_bn"
classifier_width = 32
dataset = "synthetic"
steps = 200
batch_size = 16
lr = [0.05, 0.1]
momentum = 0.9
weight_decay = 5e-4
ranks_per_run = 2
"""


@pytest.fixture(scope="module")
def cluster():
    """Two nodes, started and stopped by the script; its state outside /tmp (private per node)."""
    d = Path(f"/var/tmp/nmech-cluster-test-{os.getpid()}")
    env = dict(os.environ, CLUSTER_DIR=str(d))
    for k in [k for k in env if k.startswith("SLURM_")]:
        del env[k]
    up = subprocess.run([str(CLUSTER), "up", "2"], env=env, capture_output=True, text=True, timeout=120)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        env.update(SLURM_CONF=str(d / "slurm.conf"), NMECH_BIN=NMECH, OMPI_ALLOW_RUN_AS_ROOT="1",
                   OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
        yield env, d
    finally:
        subprocess.run([str(CLUSTER), "down"], env=env, capture_output=True, text=True, timeout=120)
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def work(cluster):
    """A folder every node sees (not under /tmp)."""
    _, d = cluster
    w = d / f"work-{time.monotonic_ns()}"
    w.mkdir()
    return w


def wait_job(env: dict, job: str, timeout: float = 300) -> dict[str, str]:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        out = subprocess.run(["scontrol", "show", "job", "-o", job], env=env, capture_output=True, text=True).stdout
        info = dict(kv.split("=", 1) for kv in out.split() if "=" in kv)
        if info.get("JobState") in ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY"):
            return info
        time.sleep(0.5)
    raise AssertionError(f"job {job} did not end in {timeout} s")


def submit(env: dict, work: Path, *args: str) -> str:
    return subprocess.run(["sbatch", "--parsable", f"--chdir={work}", *args], env=env, capture_output=True,
                          text=True, check=True, timeout=60).stdout.strip().split(";")[0]


def sweep_job(env: dict, work: Path, tasks_per_node: int, extra_env: str = "") -> tuple[Path, str]:
    config = work / "sweep.toml"
    config.write_text(SWEEP)
    store = work / "sweep.h5"
    job = submit(env, work, "--nodes=2", f"--ntasks-per-node={tasks_per_node}", f"--export=ALL{extra_env}",
                 str(SBATCH), str(config), str(store))
    info = wait_job(env, job)
    (log,) = work.glob(f"nmech-*-{job}.log")
    text = log.read_text()
    assert info["JobState"] == "COMPLETED" and info["ExitCode"] == "0:0", text
    return store, text


def one_node(env: dict, work: Path, ranks: int) -> Path:
    """The same sweep on this machine outside the cluster: the reference rows."""
    store = work / "one-node.h5"
    subprocess.run(["mpirun", "-n", str(ranks), "--oversubscribe", NMECH, "sweep", str(work / "sweep.toml"), "-o",
                    str(store), "--progress", "none"], env={k: v for k, v in env.items() if k != "SLURM_CONF"},
                   check=True, capture_output=True, timeout=300)
    return store


def attempts(store: Path, key: str) -> dict[str, list]:
    """Each run's provenance field `key`, one entry per attempt (a resume adds an attempt)."""
    with h5py.File(store, "r") as f:
        return {name: [json.loads(a.decode().rstrip("\0"))[key] for a in r["provenance"][()] if a]
                for name, r in f["runs"].items()}


def provenance(store: Path, key: str) -> list:
    """The field of each run's first attempt."""
    return [a[0] for a in attempts(store, key).values()]


def hosts(store: Path) -> list[list[str]]:
    return provenance(store, "hosts")


def progress(store: Path) -> dict[str, tuple[int, str]]:
    """Each run's rows committed and status name from its progress record (docs/STORE.md), read
    while a sweep writes."""
    out = {}
    with h5py.File(store, "r") as f:
        for name, run in f["runs"].items():
            names = {v: k for k, v in h5py.check_enum_dtype(run["progress"].dtype["status"]).items()}
            p = run["progress"][0]
            out[name] = (int(p["rows_committed"]), names[p["status"]])
    return out


def wait_mid_run(store: Path, rows: int, timeout: float = 120) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if any(p == (p[0], "running") and p[0] >= rows for p in progress(store).values()):
                return
        except (OSError, KeyError):
            pass  # not created yet
        time.sleep(0.2)
    raise AssertionError(f"no run reached {rows} committed rows in {timeout} s")


def test_a_group_spanning_two_nodes_reduces_over_tcp_to_the_one_node_rows(cluster, work):
    env, _ = cluster
    # One rank per node: every gradient all-reduce of the group crosses the bridge. Open MPI's
    # verbose transport log says how the ranks were connected.
    store, log = sweep_job(env, work, 1, ",OMPI_MCA_btl_base_verbose=100")
    assert "2 runs: done 2" in log, log
    assert "btl:tcp: now connected to " in log, log  # TCP between the nodes (no shared memory there)
    assert hosts(store) == [["node1", "node2"]] * 2
    assert provenance(store, "local_ranks") == [[0, 0]] * 2  # each alone on its node
    assert rows_equal(one_node(env, work, 2), store) > 2 * 20


def test_groups_inside_nodes_match_the_one_node_rows(cluster, work):
    env, _ = cluster
    store, log = sweep_job(env, work, 2)
    assert "2 runs: done 2" in log and "2 groups of 2 ranks" in log, log
    assert sorted(map(tuple, hosts(store))) == [("node1", "node1"), ("node2", "node2")]
    # 2 x 2: the first rank of each node is its local rank 0 (the one that takes GPU 0 there).
    assert provenance(store, "local_ranks") == [[0, 1], [0, 1]]
    assert rows_equal(one_node(env, work, 4), store) > 2 * 20


def test_plan_submits_a_sweep_that_runs_on_both_nodes(cluster, work):
    env, _ = cluster
    config = work / "sweep.toml"
    config.write_text(SWEEP)
    store = work / "planned.h5"
    sub = subprocess.run([NMECH, "plan", str(config), "-P", "4", "--nodes", "2", "-o", str(store), "--slurm",
                          "--submit"], env=env, cwd=work, capture_output=True, text=True, timeout=60)
    assert sub.returncode == 0, sub.stdout + sub.stderr
    assert "--nodes=2 --ntasks-per-node=2" in sub.stdout, sub.stdout
    job = re.search(r"Submitted batch job (\d+)", sub.stdout).group(1)
    info = wait_job(env, job)
    (log,) = work.glob(f"nmech-*-{job}.log")
    assert info["JobState"] == "COMPLETED" and info["NodeList"] == "node[1-2]", log.read_text()
    assert sorted(map(tuple, hosts(store))) == [("node1", "node1"), ("node2", "node2")]


# Long enough (about 10 s a run over the bridge) that a node is lost mid-run; checkpoints every 500
# steps, so the resume repeats rows the lost job had already committed.
LONG = SWEEP.replace("steps = 200", "steps = 12000\nrecord_every = 10\ncheckpoint_every = 500")
TIMEOUT_S = 5


def test_a_lost_node_ends_the_job_naming_it_and_the_rest_resume_exactly(cluster, work):
    env, d = cluster
    config = work / "sweep.toml"
    config.write_text(LONG)
    store = work / "sweep.h5"
    job = submit(env, work, "--nodes=2", "--ntasks-per-node=1",
                 f"--export=ALL,NMECH_SWEEP_ARGS=--collective-timeout {TIMEOUT_S}", str(SBATCH), str(config),
                 str(store))
    try:
        wait_mid_run(store, 200)
        subprocess.run([str(CLUSTER), "cut", "2"], env=env, check=True, capture_output=True, timeout=30)
        cut_at = time.time()
        info = wait_job(env, job, 120)
        (log,) = work.glob(f"nmech-*-{job}.log")
        text = log.read_text()
        # The job ends in bounded time: the collective timeout, then Slurm's wait for the step on the
        # lost node (KillWait = 10 s in cluster.sh's slurm.conf, plus srun's 2 s).
        assert info["JobState"] == "FAILED" and info["ExitCode"] == "1:0", text
        ended = time.mktime(time.strptime(info["EndTime"], "%Y-%m-%dT%H:%M:%S"))
        print(f"job ended {ended - cut_at:.0f} s after the cut:", *[l for l in text.splitlines() if "nmech:" in l])
        assert ended - cut_at <= TIMEOUT_S + 12 + 8, (ended - cut_at, text)
        assert re.search(r"nmech: collective '.*' timed out: no progress for 5 s; rank 1 \(node2[,)].*"
                         r"(did not arrive|stopped answering)", text), text
        # Nothing committed is lost: every committed row is the uninterrupted sweep's row.
        before = progress(store)
        assert any(p[1] != "done" for p in before.values()), "the node was lost too late to test a resume"
        # Resubmitted on the node that is left (named: Slurm marks node2 down only after SlurmdTimeout).
        again = submit(env, work, "--nodes=1", "--ntasks-per-node=2", "--exclude=node2", str(SBATCH),
                       str(config), str(store))
        info2 = wait_job(env, again, 300)
        (log2,) = work.glob(f"nmech-*-{again}.log")
        text2 = log2.read_text()
        assert info2["JobState"] == "COMPLETED" and info2["NodeList"] == "node1", text2
        assert "resume at step" in text2 and "2 runs: done 2" in text2, text2
    finally:
        subprocess.run([str(CLUSTER), "mend", "2"], env=env, capture_output=True, timeout=90)
    reference = one_node(env, work, 2)
    assert max(p[0] for p in before.values()) >= 200
    for run, p in before.items():
        assert rows_of(store, run, p[0]) == rows_of(reference, run, p[0]), run
    assert rows_equal(reference, store) > 2 * 20
    # The interrupted run's attempts: across both nodes, then both ranks on node1.
    assert [["node1", "node2"], ["node1", "node1"]] in attempts(store, "hosts").values()


def test_chained_jobs_across_nodes_resume_exactly(cluster, work):
    env, _ = cluster
    config = work / "sweep.toml"
    config.write_text(LONG)
    store = work / "sweep.h5"
    chain = subprocess.run([str(REPO / "jobs" / "chain.sh"), "2", str(config), str(store), "--nodes=2",
                            "--ntasks-per-node=1", f"--chdir={work}"], env=dict(env, NMECH_MAX_REQUEUES="0"),
                           capture_output=True, text=True, timeout=60)
    assert chain.returncode == 0, chain.stderr
    first, second = chain.stdout.split()
    wait_mid_run(store, 200)
    subprocess.run(["scancel", "--signal=USR2", "--batch", first], env=env, check=True, timeout=30)
    assert wait_job(env, first)["ExitCode"] == "3:0"
    info = wait_job(env, second, 300)
    log1, log2 = (next(work.glob(f"nmech-*-{j}.log")).read_text() for j in (first, second))
    assert info["JobState"] == "COMPLETED" and info["NodeList"] == "node[1-2]", log2
    assert "requeue budget of 0 spent" in log1, log1
    assert "resume at step" in log2 and "2 runs: done 2" in log2, log2
    assert hosts(store) == [["node1", "node2"]] * 2
    assert rows_equal(one_node(env, work, 2), store) > 2 * 20
