"""The summary table: one row per run with hyperparameters, status, final metrics and every fit."""
from __future__ import annotations

import csv
import math
import multiprocessing
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import fits, theory
from .reader import (RunInfo, RunView, families_of, iter_runs, list_runs, open_store,
                     row_selection)

DEFAULT_MAX_ROWS = 500


@dataclass
class RunResult:
    info: RunInfo
    row: dict[str, Any]
    families: dict[str, fits.FamilyResult] = field(default_factory=dict)
    translation: fits.TranslationFit | None = None
    scale: fits.ScaleFit | None = None
    step: np.ndarray | None = None  # rows read for the curves
    loss: np.ndarray | None = None
    accuracy: np.ndarray | None = None


def skip_reason(info: RunInfo) -> str:
    """Why the fits skip a run ('' when they do not)."""
    if info.status == "done":
        return ""
    if info.status == "diverged":
        return f"not fitted: diverged at step {info.diverged_at}"
    return f"not fitted: {info.status}, {info.rows_committed} of {info.rows_allocated} rows committed"


def _last_finite(a: np.ndarray) -> float:
    ok = np.flatnonzero(np.isfinite(a))
    return float(a[ok[-1]]) if ok.size else math.nan


def _base_row(info: RunInfo) -> dict[str, Any]:
    row: dict[str, Any] = {"run": info.key, "store": info.path, "status": info.status,
                           "rows_committed": info.rows_committed, "rows": info.rows_allocated,
                           "last_step": info.last_step, "diverged_at": info.diverged_at}
    for k in info.hyperparameters:
        if k in info.attrs:
            row[k] = info.attrs[k]
    for k in sorted(info.attrs):
        if k not in row and k != "config":
            row[k] = info.attrs[k]
    return row


def analyse_run(view: RunView, max_rows: int = DEFAULT_MAX_ROWS) -> RunResult:
    info = view.info
    res = RunResult(info, _base_row(info))
    n = info.rows_committed
    loss = view.series("loss") if n else np.zeros(0)
    acc = view.series("accuracy") if n else np.zeros(0)
    res.row["final_loss"], res.row["final_accuracy"] = _last_finite(loss), _last_finite(acc)
    if n == 0:  # pending, or stopped before its first commit: theory columns only
        res.row["fit_note"] = skip_reason(info)
        _fit(res, view, None, None, None, res.row["fit_note"], max_rows)
        return res
    idx = row_selection(0, n, max_rows)
    step_all = view.series("step")
    res.step, res.loss, res.accuracy = step_all[idx], loss[idx], acc[idx]
    for fam in info.families:
        fr = fits.family_errors(view, fam, idx, res.step)
        res.families[fam] = fr
        res.row[f"{fam}_sets"] = fr.sets
        for k, v in fr.final().items():
            res.row[f"{fam}_{k}"] = v
    reason = skip_reason(info)
    res.row["fit_note"] = reason
    _fit(res, view, idx, res.step, step_all, reason, max_rows)
    return res


def _fit(res: RunResult, view: RunView, idx, step, step_all, reason: str, max_rows: int) -> None:
    """The translation and scale fits; with a skip reason only their theory values."""
    info = view.info
    o = theory.Optim.from_attrs(info.attrs)
    if "translation" in info.families:
        res.translation = _translation(view, idx, step, o, reason)
        _put(res.row, "translation", res.translation,
             ("rate_fit", "rate_theory", "rate_ratio", "sets_fitted", "underdamped", "oscillation",
              "period_steps"))
        if res.translation.note and not reason:
            res.row["fit_note"] = res.translation.note
    if "scale" in info.families:
        res.scale = _scale(view, idx, step, step_all, o, reason, max_rows)
        _put(res.row, "scale", res.scale,
             ("angle_rms", "angle_eq", "angle_ratio", "equilibrium_ratio", "norm_drift",
              "relax_steps", "window_start", "layers_at_equilibrium", "layers_judged", "sets_live",
              "sets_collapsed", "status"))
        res.row["scale_equilibrium"] = res.row.pop("scale_status")


def _translation(view: RunView, idx, step, o, reason: str) -> fits.TranslationFit:
    if reason:
        return fits.TranslationFit(rate_theory=o.translation_rate, underdamped=o.translation_underdamped,
                                   period_steps=o.translation_period, oscillation="n/a",
                                   note=reason)
    return fits.translation_fit(view, idx, step, o, str(view.info.attrs.get("dtype", "float32")))


def _scale(view: RunView, idx, step, step_all, o, reason: str, max_rows: int) -> fits.ScaleFit:
    if reason:
        return fits.ScaleFit(angle_eq=o.angle_eq, relax_steps=o.relax_steps, status="skipped")
    fit = fits.scale_fit(view, step_all, o, max_rows)
    fits.scale_curves(view, idx, step, o, fit)
    return fit


def _put(row: dict, prefix: str, obj: Any, names: tuple[str, ...]) -> None:
    for k in names:
        row[f"{prefix}_{k}"] = getattr(obj, k)


def _analyse_info(job: tuple[RunInfo, int]) -> RunResult:
    info, max_rows = job
    with open_store(info.path) as f:
        return analyse_run(RunView(info, f), max_rows)


def analyse(paths: list[str], max_rows: int = DEFAULT_MAX_ROWS, workers: int = 1) -> list[RunResult]:
    """Every run of the stores, fitted; runs are analysed in spawned processes when workers > 1."""
    infos = list_runs(paths)
    if workers > 1 and len(infos) >= 4:
        with multiprocessing.get_context("spawn").Pool(min(workers, len(infos))) as pool:
            results = pool.map(_analyse_info, [(i, max_rows) for i in infos], chunksize=1)
    else:
        results = [analyse_run(view, max_rows) for view in iter_runs(infos)]
    return results


def default_workers() -> int:
    return min(8, os.cpu_count() or 1)


def columns(results: list[RunResult]) -> list[str]:
    """Union of the rows' keys, in first-seen order, fit_note last."""
    cols: list[str] = []
    seen: set[str] = set()
    for r in results:
        for k in r.row:
            if k not in seen and k != "fit_note":
                seen.add(k)
                cols.append(k)
    return _ordered(cols, families_of([r.info for r in results])) + ["fit_note"]


def _ordered(cols: list[str], families: list[str]) -> list[str]:
    """Hyperparameters and attributes first, then final metrics, then per-family figures."""
    fams = tuple(f + "_" for f in families)
    fitted = [c for c in cols if c.startswith(fams) and not c.endswith(("_gamma", "_omega", "_damping_regime"))]
    rest = [c for c in cols if c not in fitted]
    head = [c for c in rest if c not in ("final_loss", "final_accuracy")]
    tail = [c for c in ("final_loss", "final_accuracy") if c in rest]
    order = {f: i for i, f in enumerate(fams)}
    fitted.sort(key=lambda c: order[next(f for f in fams if c.startswith(f))])
    return head + tail + fitted


def write_csv(results: list[RunResult], path: str) -> list[str]:
    cols = columns(results)
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(cols)
        for r in results:
            w.writerow([_csv_value(r.row.get(c, "")) for c in cols])
    return cols


def _csv_value(v: Any) -> Any:
    if isinstance(v, float):
        return repr(v)  # round-trips exactly
    return v


TERMINAL_COLUMNS = (
    "run", "status", "lr", "batch_size", "weight_decay", "momentum", "final_loss",
    "translation_exact_median", "translation_paper_median", "scale_exact_median",
    "scale_paper_median", "rescale_exact_median", "rescale_paper_median",
    "translation_rate_ratio", "scale_angle_ratio", "scale_equilibrium_ratio", "scale_equilibrium",
)


def format_value(v: Any) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if math.isnan(v):
            return "-"
        if v == 0 or 1e-3 <= abs(v) < 1e5:
            return f"{v:.4g}"
        return f"{v:.3e}"
    return str(v)


def format_table(results: list[RunResult], cols: list[str] | None = None) -> str:
    all_cols = columns(results)
    cols = [c for c in (cols or TERMINAL_COLUMNS) if c in all_cols]
    cells = [[format_value(r.row.get(c, "")) for c in cols] for r in results]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(cols)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)


def status_counts(results: list[RunResult]) -> dict[str, int]:
    """Runs per status, every status the stores can record included (their enum)."""
    out = {s: 0 for r in results for s in r.info.statuses}
    for r in results:
        out[r.info.status] = out.get(r.info.status, 0) + 1
    return out


def store_label(path: str) -> str:
    return os.path.basename(path)
