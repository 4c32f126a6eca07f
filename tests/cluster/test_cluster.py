"""Sweeps across nodes on a virtual Slurm cluster of two nodes (tests/cluster/cluster.sh): network
and UTS namespaces on a bridge inside this machine, one slurmd each, the file system shared.

A rank group spanning the nodes reduces its gradients over TCP; groups inside nodes use shared
memory. Either way the rows are bitwise those of the same sweep on one node."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import h5py
import pytest

REPO = Path(__file__).resolve().parents[2]
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


def sweep_job(env: dict, work: Path, tasks_per_node: int, extra_env: str = "") -> tuple[Path, str]:
    config = work / "sweep.toml"
    config.write_text(SWEEP)
    store = work / "sweep.h5"
    job = subprocess.run(["sbatch", "--parsable", f"--chdir={work}", "--nodes=2",
                          f"--ntasks-per-node={tasks_per_node}", f"--export=ALL{extra_env}", str(SBATCH),
                          str(config), str(store)], env=env, capture_output=True, text=True, check=True,
                         timeout=60).stdout.strip().split(";")[0]
    info = wait_job(env, job)
    (log,) = work.glob(f"nmech-*-{job}.log")
    text = log.read_text()
    assert info["JobState"] == "COMPLETED" and info["ExitCode"] == "0:0", text
    return store, text


def one_node(env: dict, work: Path, ranks: int) -> Path:
    store = work / "one-node.h5"
    subprocess.run(["mpirun", "-n", str(ranks), "--oversubscribe", NMECH, "sweep", str(work / "sweep.toml"), "-o",
                    str(store), "--progress", "none"], env={k: v for k, v in env.items() if k != "SLURM_CONF"},
                   check=True, capture_output=True, timeout=300)
    return store


def rows_equal(a: Path, b: Path) -> int:
    n = 0
    with h5py.File(a, "r") as f, h5py.File(b, "r") as g:
        assert sorted(f["runs"]) == sorted(g["runs"])
        for run in f["runs"]:
            names: list[str] = []
            f["runs"][run].visit(lambda p: names.append(p) if isinstance(f["runs"][run][p], h5py.Dataset)
                                 and f["runs"][run][p].dtype.kind == "f" else None)
            for p in names:
                assert f["runs"][run][p][()].tobytes() == g["runs"][run][p][()].tobytes(), f"{run}/{p}"
                n += 1
    return n


def provenance(store: Path, key: str) -> list:
    with h5py.File(store, "r") as f:
        return [json.loads(r["provenance"][0].decode().rstrip("\0"))[key] for r in f["runs"].values()]


def hosts(store: Path) -> list[list[str]]:
    return provenance(store, "hosts")


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
