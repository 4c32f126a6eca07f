"""Helpers for the sweep tests: real mpiexec launches of the nmech binary on tiny grids.

Every launch runs under a wall-clock timeout, so a hang fails the test instead of the CI job
(docs/PLATFORM.md §3: a collective write from a subset of ranks hangs forever)."""
from __future__ import annotations

import hashlib
import os
import subprocess
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

NMECH = os.environ.get("NMECH_BIN", "nmech")
MPIEXEC = os.environ.get("MPIEXEC", "mpiexec")
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OMPI_MCA_rmaps_base_oversubscribe="1")
ENV.pop("SLURM_NTASKS", None)
ENV.pop("SLURM_JOB_ID", None)
LAUNCH_TIMEOUT = 300


def write_config(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def sweep_argv(n: int, config: Path, store: Path, *extra: str, env: dict | None = None) -> list[str]:
    argv = [MPIEXEC, "-n", str(n)]
    if n > 2:
        argv.append("--oversubscribe")
    for k, v in (env or {}).items():
        argv += ["-x", f"{k}={v}"]
    return argv + [NMECH, "sweep", str(config), "-o", str(store), "--progress", "lines", *extra]


def sweep(n: int, config: Path, store: Path, *extra: str, env: dict | None = None,
          check: bool = True) -> subprocess.CompletedProcess:
    p = subprocess.run(sweep_argv(n, config, store, *extra, env=env), env=ENV, capture_output=True,
                       text=True, timeout=LAUNCH_TIMEOUT)
    if check and p.returncode != 0:
        raise AssertionError(f"sweep exited {p.returncode}\n{p.stdout}\n{p.stderr}")
    return p


def start_sweep(n: int, config: Path, store: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(sweep_argv(n, config, store, *extra), env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def status(store: Path) -> subprocess.CompletedProcess:
    return subprocess.run([NMECH, "status", str(store)], env=ENV, capture_output=True, text=True,
                          timeout=60)


def rank_pids(launcher_pid: int) -> list[int]:
    """The nmech processes mpiexec started (its children), in pid order."""
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            cmd = (d / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == launcher_pid and cmd and cmd[0].endswith(b"nmech"):
            pids.append(int(d.name))
    return sorted(pids)


def progress(store: Path) -> dict[str, tuple]:
    """Every run's progress record, read the way a user would (h5py) while a sweep writes."""
    with h5py.File(store, "r") as f:
        return {name: tuple(run["progress"][0]) for name, run in f["runs"].items()}


def wait_until(pred, timeout: float, what: str, proc: subprocess.Popen | None = None) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"sweep ended (exit {proc.returncode}) before {what}")
        try:
            if pred():
                return
        except (OSError, KeyError):
            pass  # the store is not there yet
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def run_rows(store: Path) -> dict[str, dict[str, np.ndarray]]:
    """Every float dataset of every run (progress and provenance left out)."""
    out: dict[str, dict[str, np.ndarray]] = {}
    with h5py.File(store, "r") as f:
        for name, run in f["runs"].items():
            data: dict[str, np.ndarray] = {}
            run.visititems(lambda p, o: data.__setitem__(p, o[()])
                           if isinstance(o, h5py.Dataset) and o.dtype.kind == "f" else None)
            out[name] = data
    return out


def assert_bitwise_equal(a: Path, b: Path) -> int:
    """Every run's rows in a and b are the same bits; returns the number of datasets compared."""
    ra, rb = run_rows(a), run_rows(b)
    assert sorted(ra) == sorted(rb)
    n = 0
    for run in ra:
        assert sorted(ra[run]) == sorted(rb[run])
        for ds, x in ra[run].items():
            assert x.tobytes() == rb[run][ds].tobytes(), f"{run}/{ds} differs"
            n += 1
    return n


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def tmp(tmp_path: Path) -> Path:
    return tmp_path

