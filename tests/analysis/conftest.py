"""Real stores for the analysis tests, made by the built `nmech` binary (env NMECH_BIN).

One session-wide tiny sweep, each run in its own store (MLP with BatchNorm on synthetic data, a
few seconds each):

- grid: lr ∈ {0.05, 0.1} × batch_size ∈ {16, 32} × momentum ∈ {0, 0.9}, λ = 0.01, 400 steps.
  SGD runs have relax_steps 250–500 (too short for equilibrium); momentum runs 25–50.
- osc: lr 0.1, batch 32, β 0.9, λ 0.1: translation underdamped ((1 + β − ηλ)² < 4β), period 71 steps.
- diverged: lr 1e4 (the loss is non-finite within a few steps).
- unfinished: a copy of a finished store whose progress record is rewritten to 'running' with
  fewer committed rows, as a live sweep looks.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import h5py
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "analysis"))

ARTIFACTS = REPO / "build" / "test-artifacts"
CONFIG = REPO / "configs" / "demo.toml"
COMMON = {"model": '"mlp_bn"', "dataset": '"synthetic"', "classifier_width": "32", "threads": "1"}
GRID_LR = (0.05, 0.1)
GRID_BATCH = (16, 32)
GRID_MOMENTUM = (0.0, 0.9)
GRID_WD = 0.01
GRID_STEPS = 400
UNFINISHED_ROWS = 30


def nmech_bin() -> Path:
    path = Path(os.environ.get("NMECH_BIN", REPO / "build" / "src" / "apps" / "nmech"))
    if not path.is_file() or not os.access(path, os.X_OK):
        pytest.fail(f"nmech binary not found at {path}: build it (scripts/build.sh) or set NMECH_BIN")
    return path


@dataclass
class Made:
    """A store made by `nmech run`, with the run's own printout (its error table)."""

    path: Path
    settings: dict[str, str]
    stdout: str


def _command(out: Path, settings: dict[str, str]) -> list[str]:
    cmd = [str(nmech_bin()), "run", str(CONFIG), "-o", str(out), "--overwrite"]
    for k, v in {**COMMON, **settings}.items():
        cmd += ["--set", f"{k}={v}"]
    return cmd


def make_stores(jobs: dict[str, dict[str, str]], folder: Path) -> dict[str, Made]:
    """Run nmech for every job, two at a time; fail on a non-zero exit.

    Each process gets its own Open MPI session directory: two singletons started together race on
    the shared one ("mkdir /tmp/ompi.<host>.<uid>: File exists", then MPI_Init fails)."""
    made: dict[str, Made] = {}
    names = list(jobs)
    width = max(1, min(2, os.cpu_count() or 1))
    for i in range(0, len(names), width):
        procs = []
        for name in names[i:i + width]:
            out = folder / f"{name}.h5"
            session = folder / f"ompi-{name}"
            session.mkdir(exist_ok=True)
            env = {**os.environ, "OMPI_MCA_orte_tmpdir_base": str(session)}
            procs.append((name, out, subprocess.Popen(_command(out, jobs[name]), stdout=subprocess.PIPE,
                                                      stderr=subprocess.STDOUT, text=True, env=env)))
        for name, out, p in procs:
            stdout, _ = p.communicate(timeout=300)
            if p.returncode != 0:
                pytest.fail(f"nmech run for {name} failed ({p.returncode}):\n{stdout}")
            made[name] = Made(out, jobs[name], stdout)
    return made


def grid_jobs() -> dict[str, dict[str, str]]:
    jobs = {}
    for lr in GRID_LR:
        for b in GRID_BATCH:
            for m in GRID_MOMENTUM:
                jobs[f"grid_lr{lr}_b{b}_m{m}"] = {"lr": str(lr), "batch_size": str(b), "momentum": str(m),
                                                  "weight_decay": str(GRID_WD), "steps": str(GRID_STEPS)}
    jobs["osc"] = {"lr": "0.1", "batch_size": "32", "momentum": "0.9", "weight_decay": "0.1", "steps": "300"}
    jobs["diverged"] = {"lr": "1e4", "batch_size": "32", "momentum": "0.9", "weight_decay": str(GRID_WD),
                        "steps": "60"}
    jobs["unfinished_source"] = {"lr": "0.1", "batch_size": "64", "momentum": "0.9",
                                 "weight_decay": str(GRID_WD), "steps": "100"}
    return jobs


def mark_unfinished(src: Path, dst: Path, rows: int) -> None:
    """Copy a finished store and rewrite its progress record as a sweep that is still writing."""
    shutil.copyfile(src, dst)
    with h5py.File(dst, "r+") as f:
        for run in f["runs"].values():
            p = run["progress"][0]
            p["rows_committed"] = rows
            p["last_step"] = rows - 1
            p["status"] = 1  # running
            p["diverged_at"] = -1
            run["progress"][0] = p


@pytest.fixture(scope="session")
def stores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Made]:
    folder = tmp_path_factory.mktemp("stores")
    made = make_stores(grid_jobs(), folder)
    src = made.pop("unfinished_source")
    dst = folder / "unfinished.h5"
    mark_unfinished(src.path, dst, UNFINISHED_ROWS)
    made["unfinished"] = Made(dst, src.settings, "")
    return made


@pytest.fixture(scope="session")
def grid_paths(stores: dict[str, Made]) -> list[str]:
    return [str(m.path) for k, m in stores.items() if k.startswith("grid_")]


@pytest.fixture(scope="session")
def all_paths(stores: dict[str, Made]) -> list[str]:
    return [str(m.path) for m in stores.values()]


@pytest.fixture(scope="session")
def report_dir(all_paths: list[str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The report over every store, written by the command line as a user runs it."""
    out = tmp_path_factory.mktemp("report")
    env = {**os.environ, "PYTHONPATH": str(REPO / "analysis")}
    r = subprocess.run([sys.executable, "-m", "nmech_analysis", "report", *all_paths, "-o", str(out)],
                       capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr
    return out


# Stores for the science figures (tests/analysis/test_science.py): runs that differ only in lr,
# compared at one t = ηk = SCIENCE_T (steps = t/η, a row every step): SGD, batch 32, LibTorch's
# init (unit-scale norms, so that η∫G dt stays small against Q up to t: the linear regime in η),
# BN ε = 1e-12 (the scale symmetry holds to float32 round-off even as weight decay shrinks the
# norms, docs/THEORY.md §2c):
# - cons_lr*: λ = 0 (conservation, docs/THEORY.md §3);
# - order_lr*: λ = 0.2 (ηλ = 0.005 … 0.04: the modified flow's O(η²) error stays above float noise).
SCIENCE_LR = (0.025, 0.05, 0.1, 0.2)
SCIENCE_T = 5.0
SCIENCE_WD = 0.2


def science_jobs() -> dict[str, dict[str, str]]:
    jobs = {}
    for lr in SCIENCE_LR:
        base = {"lr": str(lr), "batch_size": "32", "momentum": "0", "steps": str(round(SCIENCE_T / lr)),
                "init": '"torch"', "bn_eps": "1e-12"}
        jobs[f"cons_lr{lr}"] = {**base, "weight_decay": "0"}
        jobs[f"order_lr{lr}"] = {**base, "weight_decay": str(SCIENCE_WD)}
    return jobs


@pytest.fixture(scope="session")
def science_stores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Made]:
    return make_stores(science_jobs(), tmp_path_factory.mktemp("science_stores"))


@pytest.fixture(scope="session")
def science_paths(stores: dict[str, Made], science_stores: dict[str, Made]) -> list[str]:
    """Every store: the grid, the oscillating, diverged and unfinished runs, and the science runs."""
    return [str(m.path) for m in stores.values()] + [str(m.path) for m in science_stores.values()]
