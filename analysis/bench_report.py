"""Time `report` on a large synthetic store: python3 analysis/bench_report.py DIR [--runs 64 ...].

The store has the layout of docs/STORE.md with made-up values. To keep it on an ordinary disk,
only --distinct runs hold data; the others are HDF5 soft links to them (the analysis reads each
link as a run of its own, so CPU work is that of --runs runs; the data mostly comes from the page
cache after the first pass).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nmech_analysis.reader import FORMAT_VERSION  # noqa: E402

SETS_DATASETS = {
    "translation": ["translation_sum", "translation_abs_sum", "grad_sum"],
    "scale": ["scale_sq_norm", "grad_sq", "step_sq", "theta_dot_grad", "velocity_sq", "angle_step"],
    "rescale": ["rescale_diff", "sq_norm_in", "sq_norm_out", "grad_sq_in", "grad_sq_out", "velocity_sq_in",
                "velocity_sq_out"],
}
PREDICTIONS = ["pred_exact", "pred_exact_aux", "pred_paper"]


def make_store(path: str, runs: int, distinct: int, rows: int, sets: int) -> None:
    counts = {"translation": min(sets, 513), "scale": sets, "rescale": sets}
    rng = np.random.default_rng(0)
    enum = h5py.enum_dtype({"pending": 0, "running": 1, "done": 2, "diverged": 3, "failed": 4}, basetype="<i4")
    progress = np.dtype([("rows_committed", "<i8"), ("last_step", "<i8"), ("status", enum),
                         ("diverged_at", "<i8"), ("heartbeat_utc", "<f8"), ("last_loss", "<f8")])
    k = np.arange(rows, dtype=float)
    with h5py.File(path, "w") as f:
        f.attrs["format"], f.attrs["format_version"] = "nmech-store", FORMAT_VERSION
        # what nmech writes (layout::file_attrs): the families and the hyperparameters
        f.attrs["families"] = " ".join(counts)
        for fam, (measured, scale) in {"translation": ("translation_sum", "translation_abs_sum"),
                                       "scale": ("scale_sq_norm", "scale_sq_norm"),
                                       "rescale": ("rescale_diff", "sq_norm_in + sq_norm_out")}.items():
            f.attrs[f"{fam}_measured"], f.attrs[f"{fam}_error_scale"] = measured, scale
        f.attrs["hyperparameters"] = "model_name lr weight_decay momentum batch_size steps seed dtype record_every"
        f.attrs["closed_forms"] = ("angle_eq relax_steps equilibrium_factor translation_rate translation_fast_rate "
                                   "translation_period")
        for fam, n in counts.items():
            f[f"models/m/sets/{fam}/name"] = np.array([f"{fam}{i}".encode() for i in range(n)])
        for i in range(distinct):
            g = f.create_group(f"runs/r{i}")
            attrs = dict(lr=[0.05, 0.1, 0.2, 0.4][i % 4], weight_decay=5e-4, momentum=0.9,
                         batch_size=[64, 128, 256, 512][(i // 4) % 4], steps=rows - 1, record_every=1,
                         dtype="float32", model="m", model_name="vgg16_bn", seed=0,
                         # the closed forms nmech writes, for one lr: the benchmark times the report
                         angle_eq=float(np.sqrt(2 * 0.1 * 5e-4 / 1.9)), relax_steps=500.0,
                         equilibrium_factor=190.0, translation_rate=0.9995, translation_fast_rate=0.9005,
                         translation_period=float("inf"))
            g.attrs.update(attrs)
            p = np.zeros(1, progress)
            p[0] = (rows, rows - 1, 2, -1, 0.0, 0.5)
            g["progress"] = p
            for name in ("step", "time", "loss", "accuracy"):
                g[name] = k if name == "step" else rng.random(rows)
            for fam, n in counts.items():
                base = np.exp(-1e-4 * k)[:, None] * (1 + rng.random(n))[None, :]
                for name in SETS_DATASETS[fam] + PREDICTIONS:
                    noise = rng.standard_normal((rows, n))
                    data = 0.007 * (1 + 0.3 * noise) if name == "angle_step" else base * (1 + 1e-3 * noise)
                    g.create_dataset(f"{fam}/{name}", data=data)
        for i in range(distinct, runs):
            f[f"runs/r{i}"] = h5py.SoftLink(f"/runs/r{i % distinct}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("dir")
    p.add_argument("--runs", type=int, default=64)
    p.add_argument("--distinct", type=int, default=4)
    p.add_argument("--rows", type=int, default=2000)
    p.add_argument("--sets", type=int, default=5000)
    p.add_argument("--jobs", type=int, default=None)
    a = p.parse_args()
    os.makedirs(a.dir, exist_ok=True)
    store = os.path.join(a.dir, "bench.h5")
    t0 = time.time()
    make_store(store, a.runs, a.distinct, a.rows, a.sets)
    t1 = time.time()
    from nmech_analysis.report import build_report
    build_report([store], os.path.join(a.dir, "report"), workers=a.jobs)
    t2 = time.time()
    print(f"store: {a.runs} runs ({a.distinct} distinct) x {a.rows} rows x {a.sets} sets, written in {t1 - t0:.1f} s")
    print(f"report: {t2 - t1:.1f} s with {a.jobs or 'default'} jobs on {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
