"""A 2x2x2 grid trained by rank groups: every run done, exact predictions hold, data parallelism
is right."""
from __future__ import annotations

import re
from pathlib import Path

import h5py
import numpy as np
import pytest

from conftest import run_rows, status, sweep, write_config

GRID = """
dataset = "synthetic"
dtype = "float64"
bn_eps = 1e-12
steps = 30
batch_size = 16
lr = [0.05, 0.1]
momentum = [0.0, 0.9]
weight_decay = [5e-4, 5e-3]
checkpoint_every = 10
"""
MODELS = {
    "vgg": 'model = "vgg11_bn"\nwidth = 0.0625\nclassifier_width = 16\n',
    "mlp": 'model = "mlp"\nclassifier_width = 24\n',
}
EXACT_TOL = 1e-10  # docs/THEORY.md §7b, exact recurrence free running, float64 with ε = 1e-12


def family_errors(run: h5py.Group) -> dict[str, tuple[float, float]]:
    """Per family: worst relative error of pred_exact over every row and set, and the same for
    the deliberately wrong 'conserved' prediction (the first row held constant)."""
    out = {}
    for fam, measured, norm in (("translation", "translation_sum", ("translation_abs_sum",)),
                                ("scale", "scale_sq_norm", ("scale_sq_norm",)),
                                ("rescale", "rescale_diff", ("sq_norm_in", "sq_norm_out"))):
        if fam not in run:
            continue
        g = run[fam]
        m = g[measured][()]
        scale = sum(np.abs(g[n][()]) for n in norm)
        scale = np.where(scale > 0, scale, 1.0)  # as the tracer's own error: empty sets
        exact = np.abs(g["pred_exact"][()] - m) / scale
        conserved = np.abs(m[0] - m) / scale
        out[fam] = (float(np.max(exact)), float(np.max(conserved)))
    return out


@pytest.mark.parametrize("model", sorted(MODELS))
@pytest.mark.parametrize("ranks,per_run", [(2, 1), (4, 2)])
def test_grid_every_run_done_and_exact(tmp: Path, model: str, ranks: int, per_run: int) -> None:
    cfg = write_config(tmp / "grid.toml", MODELS[model] + GRID + f"ranks_per_run = {per_run}\n")
    store = tmp / "grid.h5"
    p = sweep(ranks, cfg, store)
    assert "8 runs: done 8, diverged 0, failed 0, unfinished 0" in p.stdout, p.stdout
    # What a run cost besides its steps: positive, its store writes a part of it, and together
    # less than the groups' whole time (the wall is printed to the second).
    m = re.search(r"wall (\d+):(\d\d) .* a run: ([\d.]+) ms besides its steps, ([\d.]+) ms of it store writes", p.stdout)
    assert m, p.stdout
    wall_s, besides, writes = 60 * int(m[1]) + int(m[2]) + 1, float(m[3]), float(m[4])
    assert 0 < writes <= besides < 1e3 * wall_s * (ranks // per_run) / 8, m[0]
    s = status(store)
    assert s.returncode == 0 and "8 runs: done 8, running 0, diverged 0, failed 0, pending 0" in s.stdout
    with h5py.File(store, "r") as f:
        assert len(f["runs"]) == 8
        for name, run in f["runs"].items():
            prog = run["progress"][0]
            assert prog["rows_committed"] == 31 and prog["last_step"] == 30, name
            assert np.all(np.isfinite(run["loss"][:30])), name
            errors = family_errors(run)
            assert set(errors) >= ({"translation", "rescale"} | ({"scale"} if model == "vgg" else set()))
            for fam, (exact, conserved) in errors.items():
                assert exact <= EXACT_TOL, f"{name} {fam}: exact {exact:.3e}"
                assert conserved > 1e3 * EXACT_TOL, f"{name} {fam}: the wrong prediction passes ({conserved:.3e})"
            prov = [x for x in run["provenance"][()] if x]
            assert len(prov) == 1 and b'"world_size":%d' % ranks in prov[0]
            assert len(eval(prov[0].decode().replace("true", "True"))["world_ranks"]) == per_run


DATA_PARALLEL = """
model = "mlp"
classifier_width = 32
dataset = "synthetic"
dtype = "float64"
steps = 30
batch_size = 24
lr = [0.05, 0.1]
momentum = 0.9
weight_decay = 5e-4
"""


def relative_differences(a: Path, b: Path) -> dict[str, float]:
    """Worst |a − b| / max|a| per run and dataset (translation sums, which are ~0, against the
    L1 norm of their sets)."""
    ra, rb = run_rows(a), run_rows(b)
    out = {}
    for run, data in ra.items():
        for ds, x in data.items():
            y = rb[run][ds]
            ok = np.isfinite(x)
            assert np.array_equal(ok, np.isfinite(y)), f"{run}/{ds}: NaN rows differ"
            ref = data["translation/translation_abs_sum"] if ds.startswith("translation/") else x
            scale = np.max(np.abs(ref[np.isfinite(ref)])) if np.isfinite(ref).any() else 1.0
            out[f"{run}/{ds}"] = float(np.max(np.abs(x[ok] - y[ok]), initial=0.0) / max(scale, 1e-300))
    return out


def test_group_of_two_writes_what_one_rank_writes(tmp: Path) -> None:
    one = write_config(tmp / "one.toml", DATA_PARALLEL + "ranks_per_run = 1\n")
    two = write_config(tmp / "two.toml", DATA_PARALLEL + "ranks_per_run = 2\n")
    sweep(2, one, tmp / "one.h5")
    sweep(2, two, tmp / "two.h5")
    diffs = relative_differences(tmp / "one.h5", tmp / "two.h5")
    assert len(diffs) > 40
    worst = max(diffs, key=diffs.get)
    assert diffs[worst] <= 1e-10, f"{worst}: {diffs[worst]:.3e}"
    assert max(diffs.values()) > 0  # two ranks do sum in another order: not a copied file
    # Teeth: the same comparison tells two different learning rates apart.
    with h5py.File(tmp / "one.h5", "r") as f:
        a, b = f["runs/lr0.05/loss"][1:30], f["runs/lr0.1/loss"][1:30]
        assert np.max(np.abs(a - b) / np.abs(a)) > 1e-4
