"""One run's failure stays in that run; a stall is named, not hung; the world matches Slurm
(docs/DESIGN.md "Guarantees")."""
from __future__ import annotations

import subprocess
from pathlib import Path

import h5py
import numpy as np

from conftest import ENV, NMECH, sweep, write_config

DIVERGE = """
model = "mlp_bn"
classifier_width = 32
dataset = "synthetic"
steps = 40
batch_size = 16
lr = [0.05, 1e4, 0.1]
momentum = 0.9
weight_decay = 5e-4
"""
DIVERGED = 3


def test_diverging_run_is_marked_at_its_step_and_the_others_are_unaffected(tmp: Path) -> None:
    cfg = write_config(tmp / "sweep.toml", DIVERGE)
    store = tmp / "sweep.h5"
    p = sweep(2, cfg, store)  # exit code 0: a diverged run is a result, not a failure
    assert "3 runs: done 2, diverged 1, failed 0, unfinished 0" in p.stdout, p.stdout
    with h5py.File(store, "r") as f:
        run = f["runs/lr1e4"]
        prog = run["progress"][0]
        assert prog["status"] == DIVERGED
        k = int(prog["diverged_at"])
        assert 0 < k < 40 and prog["rows_committed"] == k + 1
        assert f"diverged: lr1e4 at step {k}" in p.stdout
        # The right step: everything measured before step k is finite, step k's row is not.
        measured = [run["loss"][()], run["scale/scale_sq_norm"][()], run["translation/translation_sum"][()]]
        assert all(np.all(np.isfinite(m[:k])) for m in measured)
        assert not all(np.all(np.isfinite(m[k])) for m in measured)
        assert np.all(np.isnan(run["loss"][k + 1:]))  # never written
        for other in ("lr0.05", "lr0.1"):
            assert f[f"runs/{other}/progress"][0]["status"] == 2
    # Unaffected: each other run is bitwise the run `nmech run` trains alone.
    for other, lr in (("lr0.05", "0.05"), ("lr0.1", "0.1")):
        alone_cfg = write_config(tmp / f"{other}.toml",
                                 "\n".join(l for l in DIVERGE.splitlines() if not l.startswith("lr ")) +
                                 f"\nlr = {lr}\nname = \"{other}\"\n")
        alone = tmp / f"{other}.h5"
        r = subprocess.run([NMECH, "run", str(alone_cfg), "-o", str(alone)], env=ENV, capture_output=True,
                           text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        with h5py.File(store, "r") as f, h5py.File(alone, "r") as g:
            a, b = f[f"runs/{other}"], g[f"runs/{other}"]
            names = []
            a.visit(lambda n: names.append(n) if isinstance(a[n], h5py.Dataset) and a[n].dtype.kind == "f" else None)
            assert len(names) > 20
            for n in names:
                assert a[n][()].tobytes() == b[n][()].tobytes(), f"{other}/{n}"


STALL = """
model = "mlp"
classifier_width = 16
dataset = "synthetic"
steps = 50
batch_size = 16
lr = [0.05, 0.1]
ranks_per_run = 2
reducer = "single"
"""


def test_a_collective_one_rank_never_joins_is_named_not_hung(tmp: Path) -> None:
    cfg = write_config(tmp / "sweep.toml", STALL)
    p = sweep(2, cfg, tmp / "sweep.h5", "--collective-timeout", "2",
              env={"NMECH_TEST_STALL": "1:grad_allreduce"}, check=False)
    assert p.returncode == 1, p.stdout + p.stderr
    lines = [l for l in p.stderr.splitlines() if l.startswith("nmech: collective")]
    assert len(lines) == 1, p.stderr
    assert "'grad_allreduce' timed out" in lines[0] and "rank 1 (" in lines[0] and "did not arrive" in lines[0]
    assert "rank 0 (" not in lines[0]  # only the missing rank is named


def test_idle_ranks_wait_for_a_long_run_and_name_a_dead_one(tmp: Path) -> None:
    # Rank 1 finishes early and waits at the end while rank 0 still trains for longer than the
    # timeout: the heartbeat keeps that wait alive. Then rank 0 never arrives: named.
    cfg = write_config(tmp / "sweep.toml", STALL.replace("ranks_per_run = 2", "ranks_per_run = 1")
                       .replace("batch_size = 16", "batch_size = [16, 1024]").replace("steps = 50", "steps = 1500")
                       .replace("lr = [0.05, 0.1]", "lr = 0.05"))
    ok = sweep(2, cfg, tmp / "ok.h5", "--collective-timeout", "0.5", "--progress-every", "100")
    assert "2 runs: done 2" in ok.stdout
    # The premise: the short run's rank waited at the end longer than the timeout (the final
    # commits' heartbeats are wall-clock seconds).
    with h5py.File(tmp / "ok.h5", "r") as f:
        ends = {r: f[f"runs/{r}/progress"][0]["heartbeat_utc"] for r in ("b16", "b1024")}
    assert ends["b1024"] - ends["b16"] > 2 * 0.5, ends
    p = sweep(2, cfg, tmp / "stall.h5", "--collective-timeout", "2", env={"NMECH_TEST_STALL": "0:sweep_end"},
              check=False)
    assert p.returncode == 1
    assert "collective 'sweep_end' timed out" in p.stderr and "rank 0 (" in p.stderr, p.stderr


def test_world_that_differs_from_slurm_ntasks_is_refused(tmp: Path) -> None:
    cfg = write_config(tmp / "sweep.toml", STALL)
    p = sweep(2, cfg, tmp / "sweep.h5", env={"SLURM_NTASKS": "4"}, check=False)
    assert p.returncode == 2
    assert "SLURM_NTASKS is 4" in p.stderr and "world has 2 ranks" in p.stderr
    assert not (tmp / "sweep.h5").exists()
