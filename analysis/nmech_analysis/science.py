"""The paper's figures (Kunin et al., ICLR 2021), each computed from the stores.

Every figure is one function `(results, out_dir) -> (png name, csv name, sentence)` that writes
<name>.png and <name>.csv (the plotted numbers) into out_dir; the sentence says what the figure
shows for this data. A figure never fails on stores that lack what it needs: it draws a panel
that says what is missing (and writes a CSV with its header only).

Reads go through the reader (committed rows only, at most MAX_ROWS rows per run, evenly strided
with the last committed row, reader.row_selection). Medians over sets are numpy medians over the
finite values. Formulas cite docs/THEORY.md.
"""
from __future__ import annotations

import collections
import contextlib
import csv
import math
import os
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import matplotlib

matplotlib.use("Agg")
import matplotlib.ticker  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from . import fits, theory  # noqa: E402
from .reader import RunInfo, RunView, axis_names, families_of, open_store, row_selection  # noqa: E402
from .summary import RunResult, format_value  # noqa: E402

DPI = 80  # as figures.py
MAX_ROWS = 500
# Colours of the families the store knows today (a family added there is drawn in grey).
FAM_COLOR = collections.defaultdict(lambda: "#7f7f7f", {"translation": "#1f77b4", "scale": "#d62728",
                                                        "rescale": "#2ca02c"})
# Relative errors below this are float noise of the run's dtype (docs/THEORY.md §7a: float32
# recurrences hold to 1e-6 – 1e-5), never fitted.
ERROR_FLOOR = {"float32": 1e-6, "float64": 1e-12}
LEARNED_FRACTION = 0.75  # a run learned if its final loss is below 0.75·ln(classes)
# Attributes allowed to differ between runs compared at equal t = ηk.
NOT_GROUPING = {"lr", "seed", "steps", "record_every", "eval_every"}
FAN_LAYERS, FAN_SETS, FAN_CSV_ROWS = 6, 32, 6
COLLAPSE_CSV_ROWS = 8
COLLAPSED_Q = 1e-3  # a set whose Q fell below this share of its start has collapsed (figure 9)


Figure = tuple[str, str, str]


# ---------------------------------------------------------------------------------------------
# helpers


def _done(results: list[RunResult]) -> list[RunResult]:
    return [r for r in results if r.info.status == "done" and r.info.rows_committed > 0]


def _optim(info: RunInfo) -> theory.Optim:
    return theory.Optim.from_attrs(info.attrs)


def _dtype(info: RunInfo) -> str:
    return str(info.attrs.get("dtype", "float32"))


@contextlib.contextmanager
def _view(info: RunInfo) -> Iterator[RunView]:
    with open_store(info.path) as f:
        yield RunView(info, f)


def _csv(path: str, header: list[str], rows: list[list[Any]]) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for row in rows:
            w.writerow([repr(v) if isinstance(v, float) else v for v in row])  # floats round-trip


def _save(fig: plt.Figure, path: str) -> None:
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def _missing(a: plt.Axes, text: str) -> None:
    a.text(0.5, 0.5, text, ha="center", va="center", transform=a.transAxes, fontsize=9, wrap=True)
    a.set_xticks([])
    a.set_yticks([])


def _nothing(fig: plt.Figure, axes: tuple, out_dir: str, files: tuple[str, str, list[str]], what: str,
             sentence: str) -> Figure:
    """A figure with nothing to draw: every panel says what is missing, the CSV has its header."""
    png, name, header = files
    for ax in axes:
        _missing(ax, what)
    _save(fig, os.path.join(out_dir, png))
    _csv(os.path.join(out_dir, name), header, [])
    return png, name, sentence


def _fmt(v: float) -> str:
    return format_value(float(v)) if isinstance(v, (int, float)) else str(v)


def _row_medians(a: np.ndarray) -> np.ndarray:
    """Per row, the median over sets of the finite values."""
    return np.array([fits.median_finite(row) for row in a]) if a.size else np.full(a.shape[0], math.nan)


def _norm(x: np.ndarray) -> np.ndarray:
    """A non-positive normaliser divides by 1 (the convention of fits.relative_error)."""
    return np.where(x > 0, x, 1.0)


def _evenly(n: int, k: int) -> np.ndarray:
    """k (or fewer) evenly spaced indices of range(n), first and last included."""
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    return np.unique(np.linspace(0, n - 1, min(k, n)).round().astype(np.int64))


def classes_of(info: RunInfo) -> tuple[float, str]:
    """Number of classes (the run attribute `classes`, the data's) and where it came from."""
    v = info.attrs.get("classes")
    if isinstance(v, (int, float)) and v > 0:
        return float(v), "run attribute classes"
    return math.nan, "unknown"


def choose_run(results: list[RunResult]) -> tuple[RunResult | None, str]:
    """The run of the per-layer figures: finished, with weight decay and momentum, most steps
    (then the first in order); failing that a finished run with weight decay, then any finished
    run."""
    done = _done(results)
    rules = ((lambda r: r.info.attrs.get("weight_decay", 0) > 0 and r.info.attrs.get("momentum", 0) > 0,
              "finished, λ > 0 and β > 0, most steps"),
             (lambda r: r.info.attrs.get("weight_decay", 0) > 0, "finished, λ > 0, most steps"),
             (lambda r: True, "finished, most steps"))
    for rule, why in rules:
        pool = [r for r in done if rule(r)]
        if pool:
            best = max(pool, key=lambda r: r.info.last_step)  # max keeps the first of equals
            return best, why
    return None, "no finished run"


@dataclass
class LrGroup:
    """Finished runs that differ only in lr (and seed, steps): compared at one t = ηk."""

    label: str
    runs: list[RunResult]
    t: float  # the largest t reached by every run of the group


def lr_groups(results: list[RunResult], keep: Callable[[RunResult], bool], min_lr: int = 3) -> list[LrGroup]:
    """Groups of finished runs passing keep() that agree on every grid axis but lr, seed, steps
    (and record_every, eval_every), with at least min_lr distinct lr."""
    done = [r for r in _done(results) if keep(r)]
    axes = [k for k in axis_names([r.info for r in done]) if k not in NOT_GROUPING]
    by: dict[tuple, list[RunResult]] = {}
    for r in done:
        by.setdefault(tuple((k, str(r.info.attrs.get(k))) for k in axes), []).append(r)
    out = []
    for key, runs in by.items():
        if len({float(r.info.attrs.get("lr", math.nan)) for r in runs}) < min_lr:
            continue
        runs = sorted(runs, key=lambda r: (float(r.info.attrs["lr"]), r.info.key))
        t = min(_final_time(r.info) for r in runs)
        varying = [k for k in axes if len({str(x.info.attrs.get(k)) for x in done}) > 1]
        label = ", ".join(f"{k}={v}" for k, v in key if k in varying) or "all runs"
        out.append(LrGroup(label, runs, t))
    return out


def _final_time(info: RunInfo) -> float:
    with _view(info) as v:
        return float(v.series("time", np.array([info.rows_committed - 1]))[0])


def row_at_time(view: RunView, t: float) -> int:
    """The last committed row whose time is at most t (relative slack 1e-9)."""
    time = view.series("time")
    ok = np.flatnonzero(time <= t * (1 + 1e-9))
    return int(ok[-1]) if ok.size else 0


def _group_rows(view: RunView, t: float) -> tuple[int, np.ndarray]:
    """The row at t and the rows read up to it (row_selection, at most MAX_ROWS)."""
    row = row_at_time(view, t)
    return row, row_selection(0, row + 1, MAX_ROWS)


# ---------------------------------------------------------------------------------------------
# 1. learning curves


def learning_curves(results: list[RunResult], out_dir: str) -> Figure:
    """Loss against step of every run; runs whose final loss is above 0.75·ln(classes) did not
    learn."""
    png, name = "science_learning.png", "science_learning.csv"
    fig, a = plt.subplots(figsize=(8, 4.6))
    rows, bad, sources = [], [], set()
    shown = [r for r in results if r.step is not None and r.loss is not None and r.step.size]
    for r in shown:
        k, src = classes_of(r.info)
        sources.add(src)
        thr = LEARNED_FRACTION * math.log(k) if k > 1 else math.nan
        final = float(r.row.get("final_loss", math.nan))
        learned = bool(math.isfinite(final) and math.isfinite(thr) and final <= thr)
        if math.isfinite(thr) and not learned:
            bad.append(r.info.key)
        rows.append([r.info.key, r.info.status, final, k, src, thr, int(learned) if math.isfinite(thr) else ""])
        ok = np.isfinite(r.loss) & (r.loss > 0)
        style = dict(lw=0.9, alpha=0.8) if learned else dict(lw=1.4, ls="--", color="#b22222")
        a.plot(r.step[ok], r.loss[ok], label=r.info.key if len(shown) <= 12 else None, **style)
    _csv(os.path.join(out_dir, name), ["run", "status", "final_loss", "classes", "classes_from", "threshold",
                                       "learned"], rows)
    if not shown:
        _missing(a, "no run with committed rows")
        _save(fig, os.path.join(out_dir, png))
        return png, name, "No run has committed rows yet."
    thrs = sorted({x[5] for x in rows if math.isfinite(x[5])})
    for thr in thrs:
        a.axhline(thr, color="k", ls=":", lw=1)
    a.set_yscale("log")
    if thrs:  # a diverged run's loss (up to 1e30) would flatten every other curve
        lo = min((float(np.nanmin(r.loss[np.isfinite(r.loss) & (r.loss > 0)])) for r in shown
                  if np.any(np.isfinite(r.loss) & (r.loss > 0))), default=thrs[0] / 10)
        a.set_ylim(max(lo / 1.5, 1e-3), 4 * thrs[-1])
    a.set_xscale("symlog", linthresh=10)  # runs of 25 to thousands of steps on one axis
    a.set_xlabel("step k")
    a.set_ylabel("minibatch training loss")
    a.set_title("learning curves (red dashed: did not learn; dotted: 0.75·ln classes)", fontsize=9)
    if a.get_legend_handles_labels()[0]:
        a.legend(fontsize=6, ncol=2)
    fig.subplots_adjust(left=0.1, right=0.97, bottom=0.12)
    _save(fig, os.path.join(out_dir, png))
    learned_n = sum(1 for x in rows if x[6] == 1)
    judged = sum(1 for x in rows if x[6] != "")
    text = (f"{learned_n} of {judged} runs learned (final training loss below 0.75·ln(classes) = "
            f"{', '.join(_fmt(x) for x in thrs) or 'n/a'}; classes from {', '.join(sorted(sources))})")
    text += f"; not learned: {', '.join(bad[:6])}{' …' if len(bad) > 6 else ''}." if bad else "."
    return png, name, text


# ---------------------------------------------------------------------------------------------
# 3. per-layer fans (paper Fig. 5)


def _layer_choice(layers: np.ndarray) -> list[int]:
    uniq = list(dict.fromkeys(layers.tolist()))
    return [uniq[i] for i in _evenly(len(uniq), FAN_LAYERS)]


def layer_fans(results: list[RunResult], out_dir: str) -> Figure:
    """Per family and layer, up to 32 sets' measured S, Q, R (÷ their normaliser at step 0)
    against t = ηk, with pred_paper dashed."""
    png, name = "science_fans.png", "science_fans.csv"
    header = ["family", "layer", "layer_name", "set", "set_name", "step", "t", "measured", "pred_paper", "norm0"]
    run, why = choose_run(results)
    fams = list(run.info.families) if run is not None else []
    if not fams:
        fig, a = plt.subplots(figsize=(6, 3))
        _missing(a, "no finished run with symmetry sets")
        _save(fig, os.path.join(out_dir, png))
        _csv(os.path.join(out_dir, name), header, [])
        return png, name, "No finished run with symmetry sets: no per-layer fans."
    rows: list[list[Any]] = []
    errs: dict[str, float] = {}
    with _view(run.info) as view:
        idx = row_selection(0, view.n, MAX_ROWS)
        step, t = view.series("step", idx), view.series("time", idx)
        csv_pos = _evenly(idx.size, FAN_CSV_ROWS)
        panels = []
        for fam in fams:
            layers, lnames = view.set_layers(fam)
            snames = view.set_names(fam)
            meas, norm = fits.measured_and_norm(view, fam, idx)
            pred = view.matrix(fam, "pred_paper", idx)
            n0 = _norm(norm[0])
            errs[fam] = fits.median_finite(np.abs(pred[-1] - meas[-1]) / _norm(norm[-1]))
            for layer in _layer_choice(layers):
                cols = np.flatnonzero(layers == layer)
                cols = cols[_evenly(cols.size, FAN_SETS)]
                panels.append((fam, layer, lnames[cols[0]], cols, meas[:, cols] / n0[cols], pred[:, cols] / n0[cols],
                               int(np.count_nonzero(layers == layer))))
                for j in cols:
                    for p in csv_pos:
                        rows.append([fam, int(layer), lnames[j], int(j), snames[j], float(step[p]), float(t[p]),
                                     float(meas[p, j]), float(pred[p, j]), float(n0[j])])
    ncol = max(sum(p[0] == f for p in panels) for f in fams)
    width = max(7.5, 2.9 * ncol + 0.9)
    fig, axes = plt.subplots(len(fams), ncol, figsize=(width, 2.5 * len(fams) + 0.6), squeeze=False)
    for i, fam in enumerate(fams):
        mine = [p for p in panels if p[0] == fam]
        for j, a in enumerate(axes[i]):
            if j >= len(mine):
                a.set_axis_off()
                continue
            _, layer, lname, cols, m, pr, total = mine[j]
            colours = plt.get_cmap("viridis")(np.linspace(0, 0.9, cols.size))
            for c in range(cols.size):
                a.plot(t, m[:, c], color=colours[c], lw=0.9, alpha=0.8)
                a.plot(t, pr[:, c], color="k", ls="--", lw=0.6, alpha=0.6)
            a.set_title(f"{fam} {lname} (layer {layer}): {cols.size}/{total} sets", fontsize=8)
            a.tick_params(labelsize=7)
            if i == len(fams) - 1:
                a.set_xlabel("t = ηk", fontsize=8)
        axes[i][0].set_ylabel({"translation": "S / Σ|θ|₀", "scale": "Q / Q₀",
                               "rescale": "R / (Q_in+Q_out)₀"}[fam], fontsize=8)
    fig.suptitle(f"{run.info.key}\nmeasured (colour) and pred_paper (dashed), ÷ the normaliser at step 0", fontsize=9)
    fig.subplots_adjust(left=0.9 / width, right=0.98, bottom=0.1, top=0.86, wspace=0.3, hspace=0.6)
    _save(fig, os.path.join(out_dir, png))
    _csv(os.path.join(out_dir, name), header, rows)
    text = (f"Run {run.info.key} (chosen: {why}): every drawn set's measured quantity follows its continuous "
            "prediction layer by layer; median pred_paper error at the last row " +
            ", ".join(f"{f} {_fmt(errs[f])}" for f in fams) + ".")
    return png, name, text


# ---------------------------------------------------------------------------------------------
# 2. raw parameters against symmetry sets (the paper's Fig. 1)

RAW_CSV_ROWS = 40  # rows of the run sampled into the CSV


def _raw_layer(view: RunView) -> tuple[int, np.ndarray, np.ndarray] | None:
    """The sampled layer drawn: the one with the most scale sets (else any with a sample), its
    sample columns and its scale-set columns."""
    if not view.has("sample", "value"):
        return None
    s_layers, _ = view.set_layers("sample")
    q_layers = view.set_layers("scale")[0] if "scale" in view.info.families else np.zeros(0, np.int64)
    candidates = [int(x) for x in dict.fromkeys(s_layers.tolist())]
    with_sets = [x for x in candidates if np.count_nonzero(q_layers == x)]
    layer = max(with_sets, key=lambda x: np.count_nonzero(q_layers == x)) if with_sets else candidates[0]
    return layer, np.flatnonzero(s_layers == layer), np.flatnonzero(q_layers == layer)[:FAN_SETS]


def raw_parameters(results: list[RunResult], out_dir: str) -> Figure:
    """A few single weights of one layer against that layer's scale sets Q (÷ Q_0), with pred_paper."""
    png, name = "science_raw.png", "science_raw.csv"
    header = ["kind", "column", "name", "step", "t", "value"]
    run, why = choose_run(results)
    picked = None
    if run is not None:
        with _view(run.info) as view:
            picked = _raw_layer(view)
            if picked is not None:
                layer, scols, qcols = picked
                idx = row_selection(0, view.n, MAX_ROWS)
                step, t = view.series("step", idx), view.series("time", idx)
                raw = view.matrix("sample", "value", idx)[:, scols]
                raw_names = [view.set_names("sample")[j] for j in scols]
                q = view.matrix("scale", "scale_sq_norm", idx)[:, qcols] if qcols.size else np.zeros((idx.size, 0))
                pred = view.matrix("scale", "pred_paper", idx)[:, qcols] if qcols.size else q
                q_names = [view.set_names("scale")[j] for j in qcols]
    if picked is None:
        fig, a = plt.subplots(figsize=(6, 3))
        _missing(a, "no finished run with a parameter sample (sample/value)")
        _save(fig, os.path.join(out_dir, png))
        _csv(os.path.join(out_dir, name), header, [])
        return png, name, "No finished run stores a parameter sample: no raw-parameter figure."
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 3.6))
    for c in range(raw.shape[1]):
        a.plot(t, raw[:, c], lw=0.7, label=raw_names[c])
    a.set_title(f"single weights of {raw_names[0].split('.')[0]}: no law", fontsize=9)
    a.set_xlabel("t = ηk", fontsize=8)
    a.set_ylabel("θ_i", fontsize=8)
    a.legend(fontsize=6)
    q0 = _norm(q[0]) if q.shape[1] else q[0]
    for c in range(q.shape[1]):
        b.plot(t, q[:, c] / q0[c], lw=0.9, alpha=0.8)
        b.plot(t, pred[:, c] / q0[c], color="k", ls="--", lw=0.6, alpha=0.6)
    b.set_title(f"its {q.shape[1]} scale sets: Q/Q₀ (colour) and pred_paper (dashed)", fontsize=9)
    b.set_xlabel("t = ηk", fontsize=8)
    fig.suptitle(f"{run.info.key}", fontsize=9)
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.15, top=0.85, wspace=0.25)
    _save(fig, os.path.join(out_dir, png))
    rows: list[list[Any]] = []
    for p in _evenly(idx.size, RAW_CSV_ROWS):
        rows += [["raw", int(scols[c]), raw_names[c], float(step[p]), float(t[p]), float(raw[p, c])]
                 for c in range(raw.shape[1])]
        rows += [["scale_sq_norm", int(qcols[c]), q_names[c], float(step[p]), float(t[p]), float(q[p, c])]
                 for c in range(q.shape[1])]
    _csv(os.path.join(out_dir, name), header, rows)
    with np.errstate(divide="ignore", invalid="ignore"):
        moved = raw[-1] / raw[0]
        miss = np.abs(pred[-1] - q[-1]) / np.where(q[-1] > 0, q[-1], 1.0)
    text = (f"Run {run.info.key} ({why}), layer {raw_names[0].split('.')[0]}: {raw.shape[1]} single weights end at "
            f"{', '.join(_fmt(x) for x in moved)} times their start, with no law for any of them, while the "
            f"layer's {q.shape[1]} drawn scale sets end within {_fmt(fits.median_finite(miss))} (median) of their "
            "continuous prediction.")
    return png, name, text


# ---------------------------------------------------------------------------------------------
# 4. conservation at λ = 0 (docs/THEORY.md §3)


@dataclass
class Drift:
    run: RunResult
    lr: float
    t: float
    translation_max_change: float  # max over rows ≤ t and sets of |S_k − S_0|/Σ|θ|_k
    scale_drift: float  # median over sets of |Q(t) − Q(0)|/Q(0)
    rescale_drift: float  # median over sets of |R(t) − R(0)|/(Q_in + Q_out)(0)
    t_curve: np.ndarray | None = None
    scale_curve: np.ndarray | None = None  # per row read, the median scale drift


def _drift(r: RunResult, t: float) -> Drift:
    with _view(r.info) as view:
        row, idx = _group_rows(view, t)
        d = Drift(r, float(r.info.attrs["lr"]), float(view.series("time", np.array([row]))[0]),
                  math.nan, math.nan, math.nan)
        d.t_curve = view.series("time", idx)
        fams = r.info.families
        if "translation" in fams:
            s = view.matrix("translation", "translation_sum", idx)
            n = view.matrix("translation", "translation_abs_sum", idx)
            d.translation_max_change = float(np.max(np.abs(s - s[0]) / _norm(n)))
        if "scale" in fams:
            q = view.matrix("scale", "scale_sq_norm", idx)
            rel = np.abs(q - q[0]) / _norm(q[0])
            d.scale_drift, d.scale_curve = fits.median_finite(rel[-1]), _row_medians(rel)
        if "rescale" in fams:
            end = np.array([0, row])
            rd = view.matrix("rescale", "rescale_diff", end)
            n0 = view.matrix("rescale", "sq_norm_in", end[:1]) + view.matrix("rescale", "sq_norm_out", end[:1])
            d.rescale_drift = fits.median_finite(np.abs(rd[1] - rd[0]) / _norm(n0[0]))
    return d


def conservation(results: list[RunResult], out_dir: str) -> Figure:
    """At λ = 0: S constant, Q and R drift by η∫G dt, i.e. ∝ η at fixed t (docs/THEORY.md §3)."""
    png, name = "science_conservation.png", "science_conservation.csv"
    header = ["group", "run", "lr", "t", "translation_max_change", "scale_drift", "rescale_drift",
              "slope_scale", "slope_rescale"]
    groups = lr_groups(results, lambda r: float(r.info.attrs.get("weight_decay", math.nan)) == 0)
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.4))
    if not groups:
        for ax in (a, b):
            _missing(ax, "no finished runs with weight_decay 0 that differ only in lr (≥ 3 values)")
        _save(fig, os.path.join(out_dir, png))
        _csv(os.path.join(out_dir, name), header, [])
        return png, name, "The stores have no finished runs at λ = 0 that differ only in lr (≥ 3 values): not shown."
    rows, notes = [], []
    markers = "osD^v"
    for gi, g in enumerate(groups):
        ds = [_drift(r, g.t) for r in g.runs]
        lr = [d.lr for d in ds]
        sl_q = fits.loglog_slope(lr, [d.scale_drift for d in ds])
        sl_r = fits.loglog_slope(lr, [d.rescale_drift for d in ds])
        for d in ds:
            rows.append([g.label, d.run.info.key, d.lr, d.t, d.translation_max_change, d.scale_drift,
                         d.rescale_drift, sl_q, sl_r])
        m = markers[gi % len(markers)]
        for key, colour, sl, lab in (("translation_max_change", FAM_COLOR["translation"], None,
                                      "translation max |ΔS|/Σ|θ|"),
                                     ("scale_drift", FAM_COLOR["scale"], sl_q, "scale |ΔQ|/Q₀"),
                                     ("rescale_drift", FAM_COLOR["rescale"], sl_r, "rescale |ΔR|/(Q_in+Q_out)₀")):
            y = [getattr(d, key) for d in ds]
            if any(math.isfinite(v) and v > 0 for v in y):
                tag = f" slope {sl:.2f}" if sl is not None and math.isfinite(sl) else ""
                where = f" [{g.label}]" if len(groups) > 1 else ""
                a.loglog(lr, y, marker=m, color=colour, lw=1, label=f"{lab}{tag}{where}")
        for d in ds:
            if d.scale_curve is not None:
                b.semilogy(d.t_curve, np.where(d.scale_curve > 0, d.scale_curve, np.nan), lw=1,
                           label=f"η = {_fmt(d.lr)}")
        notes.append(f"t = {_fmt(g.t)}, η {_fmt(min(lr))}–{_fmt(max(lr))}: translation sums change by at most "
                     f"{_fmt(max(d.translation_max_change for d in ds))} of Σ|θ| while the drift of Q and R "
                     f"grows with slopes {_fmt(sl_q)} and {_fmt(sl_r)} in η")
    lrs = sorted({float(r.info.attrs["lr"]) for g in groups for r in g.runs})
    a.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    a.set_xticks(lrs, [_fmt(x) for x in lrs])
    a.set_xlabel("lr η")
    a.set_ylabel("change at the common t")
    a.set_title("λ = 0: conserved S, drifting Q and R (slope 1: ∝ η)", fontsize=9)
    a.legend(fontsize=6)
    b.set_xlabel("t = ηk")
    b.set_ylabel("median |Q_k − Q_0| / Q_0")
    b.set_title("scale drift against t, per η", fontsize=9)
    if b.get_legend_handles_labels()[0]:
        b.legend(fontsize=7)
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.12, wspace=0.25)
    _save(fig, os.path.join(out_dir, png))
    _csv(os.path.join(out_dir, name), header, rows)
    return png, name, "At λ = 0 (" + "; ".join(notes) + ")."


# ---------------------------------------------------------------------------------------------
# 5. gradient descent vs gradient flow vs modified flow (docs/THEORY.md §5.1, §7d)

PREDICTIONS = ("gradient_flow", "paper", "modloss")
PRED_STYLE = {"gradient_flow": ("#7f7f7f", "o"), "paper": ("#d62728", "s"), "modloss": ("#1f77b4", "D")}


def flow_rate(info: RunInfo, family: str) -> float:
    """κ of gradient flow with weight decay and no forcing, ω²/(2γ) of the family's oscillator
    constants as the store has them: λ (translation), 2λ (scale, rescale), divided by 1 − β in
    heavy ball's overdamped limit (docs/THEORY.md §5.2)."""
    omega, gamma = float(info.attrs[f"{family}_omega"]), float(info.attrs[f"{family}_gamma"])
    return omega * omega / (2 * gamma)


def order_errors(r: RunResult, t: float) -> dict[str, Any]:
    """Per family, the median over sets at the row at t of each prediction's relative error."""
    out: dict[str, Any] = {}
    with _view(r.info) as view:
        row = row_at_time(view, t)
        out["t"] = float(view.series("time", np.array([row]))[0])
        both = np.array([0, row])
        for fam in r.info.families:
            meas, norm = fits.measured_and_norm(view, fam, both)
            n = _norm(norm[1])
            e = {"gradient_flow": fits.median_finite(np.abs(meas[0] * math.exp(-flow_rate(r.info, fam) * out["t"]) - meas[1]) / n)}
            for p in ("paper", "modloss"):
                e[p] = (fits.median_finite(np.abs(view.matrix(fam, f"pred_{p}", both)[1] - meas[1]) / n)
                        if view.has(fam, f"pred_{p}") else math.nan)
            out[fam] = e
    return out


def order_in_eta(results: list[RunResult], out_dir: str) -> Figure:
    """Error at equal t of gradient flow, pred_paper and pred_modloss against η, log–log."""
    png, name = "science_order.png", "science_order.csv"
    header = ["group", "family", "run", "lr", "t", "err_gradient_flow", "err_paper", "err_modloss", "floor",
              "below_floor", "slope_gradient_flow", "slope_paper", "slope_modloss"]
    # SGD only: there the three predictions are the first-order model's (pred_modloss exists only
    # without momentum, and the oscillator's errors are another question, figure 8)
    groups = lr_groups(results, lambda r: float(r.info.attrs.get("weight_decay", 0)) > 0
                       and float(r.info.attrs.get("momentum", 0)) == 0)
    fams = families_of([r.info for g in groups for r in g.runs])
    fig, axes = plt.subplots(1, max(1, len(fams)), figsize=(4.8 * max(1, len(fams)), 4.4), squeeze=False)
    if not groups or not fams:
        _missing(axes[0][0], "no finished SGD runs with λ > 0 that differ only in lr (≥ 3 values): order not shown")
        _save(fig, os.path.join(out_dir, png))
        _csv(os.path.join(out_dir, name), header, [])
        return png, name, ("The stores have no finished SGD runs (β = 0) with λ > 0 that differ only in lr "
                           "(≥ 3 values): order in η not shown.")
    rows, notes = [], []
    for gi, g in enumerate(groups):
        errs = [order_errors(r, g.t) for r in g.runs]
        lr = [float(r.info.attrs["lr"]) for r in g.runs]
        floor = max(ERROR_FLOOR.get(_dtype(r.info), ERROR_FLOOR["float32"]) for r in g.runs)
        slopes_txt = []
        for a, fam in zip(axes[0], fams):
            have = [i for i, e in enumerate(errs) if fam in e]
            slopes = {}
            for p in PREDICTIONS:
                y = [errs[i][fam][p] for i in have]
                x = [lr[i] for i in have]
                keep = [(xi, yi) for xi, yi in zip(x, y) if math.isfinite(yi) and yi > floor]
                slopes[p] = fits.loglog_slope([k[0] for k in keep], [k[1] for k in keep])
                colour, m = PRED_STYLE[p]
                if any(math.isfinite(v) and v > 0 for v in y):
                    lab = f"{p}: slope {slopes[p]:.2f}" if math.isfinite(slopes[p]) else f"{p}: < 3 η above floor"
                    a.loglog([k[0] for k in keep], [k[1] for k in keep], marker=m, color=colour, lw=1,
                             label=lab + (f" [{g.label}]" if len(groups) > 1 else ""))
                    low = [(xi, yi) for xi, yi in zip(x, y) if math.isfinite(yi) and 0 < yi <= floor]
                    if low:
                        a.loglog([k[0] for k in low], [k[1] for k in low], marker=m, ls="none", mfc="none",
                                 color="#999999")
            for i in have:
                below = [p for p in PREDICTIONS if math.isfinite(errs[i][fam][p]) and errs[i][fam][p] <= floor]
                rows.append([g.label, fam, g.runs[i].info.key, lr[i], errs[i]["t"], errs[i][fam]["gradient_flow"],
                             errs[i][fam]["paper"], errs[i][fam]["modloss"], floor, " ".join(below),
                             slopes["gradient_flow"], slopes["paper"], slopes["modloss"]])
            if have:
                a.axhline(floor, color="#999999", ls=":", lw=1)
                slopes_txt.append(f"{fam} " + "/".join(_fmt(slopes[p]) for p in PREDICTIONS))
        notes.append(f"t = {_fmt(g.t)}, η {_fmt(min(lr))}–{_fmt(max(lr))}"
                     + (f" ({g.label})" if len(groups) > 1 else "") + ": slopes of gradient flow / pred_paper / "
                     "pred_modloss " + "; ".join(slopes_txt))
    lrs = sorted({float(r.info.attrs["lr"]) for g in groups for r in g.runs})
    for a, fam in zip(axes[0], fams):
        a.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        a.set_xticks(lrs, [_fmt(x) for x in lrs])
        a.set_title(f"{fam}: error at equal t against η", fontsize=9)
        a.set_xlabel("lr η")
        a.set_ylabel("median relative error at t")
        if a.get_legend_handles_labels()[0]:
            a.legend(fontsize=6)
    fig.suptitle("order of accuracy in η (hollow grey: below the float floor, not fitted)", fontsize=10)
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.12, top=0.86, wspace=0.3)
    _save(fig, os.path.join(out_dir, png))
    _csv(os.path.join(out_dir, name), header, rows)
    return png, name, ("Order in η of each prediction's error at equal t (gradient flow ≈ 1, modified flow ≈ 2): "
                       + "; ".join(notes) + ".")


# ---------------------------------------------------------------------------------------------
# 6. equilibrium across the grid (docs/THEORY.md §6, §7c)

STATE_COLOR = {"at_equilibrium": "#2ca02c", "drifting": "#ff7f0e", "off_equilibrium": "#d62728",
               "symmetry_broken": "#9467bd", "not_relaxed": "#7f7f7f", "collapsed": "#000000"}
BATCH_MARKERS = "os^Dv<>p*h"


def equilibrium_grid(results: list[RunResult], out_dir: str) -> Figure:
    """Per (run, layer), the measured RMS angle against Δ* and Q*/Q against Δ*."""
    png, name = "science_equilibrium.png", "science_equilibrium.csv"
    header = ["run", "layer", "layer_name", "batch_size", "angle_eq", "angle_ratio", "p10", "p90",
              "equilibrium_ratio", "state", "sets", "sets_live", "window_start"]
    rows = []
    for r in _done(results):
        for L in (getattr(r.scale, "layers", None) or []):
            rows.append([r.info.key, int(L.layer), L.name, r.info.attrs.get("batch_size", ""), float(L.angle_eq),
                         float(L.angle_ratio), float(L.angle_p10), float(L.angle_p90),
                         float(L.equilibrium_ratio), L.state, int(L.sets), int(L.sets_live),
                         float(L.window_start)])
    _csv(os.path.join(out_dir, name), header, rows)
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.6))
    pts = [x for x in rows if math.isfinite(x[5]) and x[4] > 0]
    if not pts:
        why = "no finished run with a judged scale layer (needs scale sets, λ > 0 and ≥ 5 T_rel of steps)"
        _missing(a, why)
        _missing(b, why)
        _save(fig, os.path.join(out_dir, png))
        return png, name, f"No (run, layer) with an equilibrium window ({len(rows)} layers, none relaxed and live)."
    batches = sorted({str(x[3]) for x in pts},
                     key=lambda v: (float(v) if v.replace(".", "").isdigit() else math.inf, v))
    for x in pts:
        m = BATCH_MARKERS[batches.index(str(x[3])) % len(BATCH_MARKERS)]
        c = STATE_COLOR.get(x[9], "#17becf")
        d, ratio = x[4], x[5]
        lo, hi = (ratio - x[6]) * d, (x[7] - ratio) * d
        a.errorbar([d], [ratio * d], yerr=[[max(lo, 0)], [max(hi, 0)]], marker=m, color=c, ms=6, lw=0.8, capsize=2)
        if math.isfinite(x[8]) and x[8] > 0:
            b.plot([d], [x[8]], marker=m, color=c, ms=6, ls="none")
    ds = [x[4] for x in pts]
    line = np.array([min(ds) / 1.5, max(ds) * 1.5])
    a.plot(line, line, color="k", lw=1)
    # the tolerance that decides "at_equilibrium" (fits.ANGLE_TOL), and the ratio it implies
    a.fill_between(line, line * (1 - fits.ANGLE_TOL), line * (1 + fits.ANGLE_TOL), color="#999999", alpha=0.3, lw=0)
    b.axhline(1.0, color="k", lw=1)
    b.axhspan((1 - fits.ANGLE_TOL) ** 2, (1 + fits.ANGLE_TOL) ** 2, color="#999999", alpha=0.3, lw=0)
    for ax in (a, b):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("Δ* = √(2ηλ/(1+β))  (rad/step)")
    for st in dict.fromkeys(x[9] for x in pts):
        a.plot([], [], "o", color=STATE_COLOR.get(st, "#17becf"), label=st)
    for bs in batches:
        a.plot([], [], BATCH_MARKERS[batches.index(bs) % len(BATCH_MARKERS)], color="#555555", mfc="none",
               label=f"batch {bs}")
    a.legend(fontsize=7)
    a.set_ylabel("RMS angle_step over the window (median over live sets)")
    a.set_title("angular update: measured against Δ* (bars: 10–90% of sets)", fontsize=9)
    b.set_ylabel("Q*/Q = c·mean(forcing)/mean(Q)")
    b.set_title("equilibrium norm: 1 = at Q*", fontsize=9)
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.12, wspace=0.28)
    _save(fig, os.path.join(out_dir, png))
    ratios = [x[5] for x in pts]
    eq = sum(x[9] == "at_equilibrium" for x in pts)
    return png, name, (f"{len(pts)} (run, layer) pairs with an equilibrium window, {eq} at equilibrium: "
                       f"RMS angle / Δ* median {_fmt(float(np.median(ratios)))} (range {_fmt(min(ratios))}–"
                       f"{_fmt(max(ratios))}), Q*/Q median {_fmt(fits.median_finite(np.array([x[8] for x in pts])))}.")


# ---------------------------------------------------------------------------------------------
# 7. collapse onto the relaxation time (docs/THEORY.md §4.1, §6)


def running_rms(a: np.ndarray, w: int) -> np.ndarray:
    """Per column, the RMS of the finite values among the last w rows (NaN if none): Δ* is an RMS
    angle (docs/THEORY.md §6), and a plain mean of fluctuating angles sits below it."""
    ok = np.isfinite(a)
    cs = np.vstack([np.zeros((1, a.shape[1])), np.cumsum(np.where(ok, a * a, 0.0), axis=0)])
    cn = np.vstack([np.zeros((1, a.shape[1])), np.cumsum(ok, axis=0)])
    lo = np.maximum(np.arange(a.shape[0]) - w + 1, 0)
    hi = np.arange(a.shape[0]) + 1
    n = cn[hi] - cn[lo]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(n > 0, np.sqrt((cs[hi] - cs[lo]) / n), math.nan)


@dataclass
class Collapse:
    run: RunResult
    step: np.ndarray
    x: np.ndarray  # k/T_rel
    q_ratio: np.ndarray  # median over sets of Q/Q*
    angle: np.ndarray  # median over sets of angle_step/Δ*
    angle_smooth: np.ndarray  # median over sets of the running RMS over ~T_rel/4 of angle_step/Δ*
    s_meas: np.ndarray | None  # median over sets of S_k/S_0
    s_pred: np.ndarray | None
    sets_live: int = 0


def collapse_run(r: RunResult) -> Collapse:
    """Q/Q* and angle/Δ* medians per row read; Q* = c·mean(forcing) over the run's second half."""
    o = _optim(r.info)
    t_rel, d_star, c = o.relax_steps, o.angle_eq, o.equilibrium_factor
    forcing = "velocity_sq" if o.heavy_ball else "grad_sq"
    with _view(r.info) as view:
        idx = row_selection(0, view.n, MAX_ROWS)
        step = view.series("step", idx)
        q = view.matrix("scale", "scale_sq_norm", idx)
        f = view.matrix("scale", forcing, idx)
        ang = view.matrix("scale", "angle_step", idx)
        half = (step >= step[-1] / 2) & (np.arange(idx.size) < idx.size - 1)  # the final row has no forcing
        g = view.matrix("scale", "grad_sq", idx) if o.heavy_ball else f
        with np.errstate(divide="ignore", invalid="ignore"):
            qstar = c * f[half].mean(axis=0) if half.any() else np.full(q.shape[1], math.nan)
            # live sets in the second half, as fits.py judges equilibrium: a collapsed unit has
            # Q → 0 and no meaningful angle (docs/THEORY.md §7c)
            live = np.zeros(q.shape[1], bool)
            layers = view.set_layers("scale")[0]
            for layer in np.unique(layers):  # per layer: collapse is judged against the layer's norms
                cols = layers == layer
                live[cols] = fits.live_sets(g[half][:, cols].mean(axis=0), q[half][:, cols].mean(axis=0), o)
            q_ratio = _row_medians(q[:, live] / qstar[live])
        angle = _row_medians(ang[:, live] / d_star)
        stride = float(step[1] - step[0]) if step.size > 1 else 1.0
        smooth = _row_medians(running_rms(ang[:, live] / d_star, max(1, int(round(t_rel / 4 / stride)))))
        s_meas = s_pred = None
        if "translation" in r.info.families:
            s = view.matrix("translation", "translation_sum", idx)
            n0 = view.matrix("translation", "translation_abs_sum", idx[:1])[0]
            live = np.abs(s[0]) > 1e-3 * n0  # sums that start well away from 0
            if live.any():
                s_meas = _row_medians(s[:, live] / s[0, live])
                # the exact recurrence from S_0 has no forcing, so its ratio is the same for every set
                pred = view.matrix("translation", "pred_exact", idx)
                s_pred = _row_medians(pred[:, live] / pred[0, live])
    return Collapse(r, step, step / t_rel, q_ratio, angle, smooth, s_meas, s_pred, int(live.sum()))


def _collapsible(r: RunResult) -> bool:
    o = _optim(r.info)
    return ("scale" in r.info.families and o.weight_decay > 0 and not (o.nesterov or o.decoupled)
            and r.info.rows_committed > 2)


def collapse(results: list[RunResult], out_dir: str) -> Figure:
    """All runs on one time axis k/T_rel: Q/Q* → 1, angle/Δ* → 1, and S/S_0 against its prediction."""
    png, name = "science_collapse.png", "science_collapse.csv"
    header = ["run", "sets_live", "step", "k_over_trel", "q_over_qstar", "angle_over_eq", "angle_smoothed",
              "s_ratio_meas", "s_ratio_pred"]
    runs = [r for r in _done(results) if _collapsible(r)]
    fig, (a, b, c) = plt.subplots(1, 3, figsize=(15, 4.4))
    if not runs:
        return _nothing(fig, (a, b, c), out_dir, (png, name, header), "no finished run with scale sets and λ > 0",
                        "No finished run with scale sets and λ > 0: no collapse.")
    rows, late_q, late_a, s_err = [], [], [], []
    colours = plt.get_cmap("tab10")
    for i, r in enumerate(runs):
        cl = collapse_run(r)
        col = colours(i % 10)
        a.loglog(cl.x, cl.q_ratio, color=col, lw=0.9)
        b.semilogx(cl.x[:-1], cl.angle_smooth[:-1], color=col, lw=0.9)
        late = cl.x >= 5
        late_q += list(cl.q_ratio[late & np.isfinite(cl.q_ratio)])
        late_a += list(cl.angle_smooth[:-1][late[:-1] & np.isfinite(cl.angle_smooth[:-1])])
        if cl.s_meas is not None:
            c.loglog(cl.x, np.abs(cl.s_meas), color=col, lw=1.2, alpha=0.7)
            c.loglog(cl.x, np.abs(cl.s_pred), color=col, lw=0.8, ls="--")
        for p in _evenly(cl.step.size - 1, COLLAPSE_CSV_ROWS):
            sm = float(cl.s_meas[p]) if cl.s_meas is not None else math.nan
            sp = float(cl.s_pred[p]) if cl.s_pred is not None else math.nan
            rows.append([r.info.key, cl.sets_live, float(cl.step[p]), float(cl.x[p]), float(cl.q_ratio[p]),
                         float(cl.angle[p]),
                         float(cl.angle_smooth[p]), sm, sp])
            if math.isfinite(sm) and math.isfinite(sp):
                s_err.append(abs(sm - sp))
    a.axhline(1, color="k", lw=1)
    b.axhline(1, color="k", lw=1)
    for ax, yl, tt in ((a, "median Q/Q*", "norm: Q/Q* of live sets (Q* = c·mean forcing, 2nd half)"),
                       (b, "median over sets of the RMS over T_rel/4 of angle/Δ*", "angle: angle_step/Δ* (live sets)"),
                       (c, "|S_k/S_0| (median over sets)", "translation: measured (solid), predicted (dashed)")):
        ax.set_xlabel("k / T_rel  (log; k = 0 not shown)")
        ax.set_ylabel(yl, fontsize=8)
        ax.set_title(tt, fontsize=9)
    fig.suptitle(f"{len(runs)} runs on one relaxation clock (T_rel = (1−β)/(4ηλ))", fontsize=10)
    fig.subplots_adjust(left=0.06, right=0.98, bottom=0.12, top=0.86, wspace=0.3)
    _save(fig, os.path.join(out_dir, png))
    _csv(os.path.join(out_dir, name), header, rows)
    text = f"{len(runs)} runs with λ > 0 on one clock k/T_rel: "
    if late_q:
        text += (f"after 5 T_rel the median Q/Q* lies in {_fmt(min(late_q))}–{_fmt(max(late_q))} and the "
                 f"smoothed angle/Δ* in {_fmt(min(late_a)) if late_a else '-'}–{_fmt(max(late_a)) if late_a else '-'}")
    else:
        text += "no run reaches 5 T_rel"
    if s_err:
        text += f"; S/S_0 matches its predicted decay within {_fmt(max(s_err))} at the sampled points"
    return png, name, text + "."


# ---------------------------------------------------------------------------------------------
# 8. momentum: damping regimes, period and decay (docs/THEORY.md §4.1, §4.3)


def boundary_beta(eta_lambda: np.ndarray, family: str) -> np.ndarray:
    """β on the critical line: (1 + β − cηλ)² = 4β, c = 1 (translation), 2 (scale/rescale):
    √β = 1 − √(cηλ); underdamped above it."""
    cx = eta_lambda * (1.0 if family == "translation" else 2.0)
    return np.where(cx < 1, (1 - np.sqrt(np.clip(cx, 0, 1))) ** 2, np.nan)


def ar2_fit(step: np.ndarray, s: np.ndarray, floor: np.ndarray, min_rows: int = 10) -> tuple[float, float, bool]:
    """(period in steps, decay factor per step, complex roots) of S_{j+1} = aS_j − bS_{j−1} fitted
    on the leading uniformly spaced rows above the noise floor; NaN when too short."""
    d = np.diff(step)
    n = int(np.flatnonzero(d != d[0])[0]) + 1 if d.size and (d != d[0]).any() else step.size
    below = np.flatnonzero(np.abs(s[:n]) <= floor[:n])
    n = int(below[0]) if below.size else n
    if n < min_rows:
        return math.nan, math.nan, False
    h = float(step[1] - step[0])
    x = np.column_stack([s[1:n - 1], -s[:n - 2]])
    (a, b), *_ = np.linalg.lstsq(x, s[2:n], rcond=None)
    roots = np.roots([1.0, -a, b])
    r = roots[np.argmax(np.abs(roots))]
    rate = float(abs(r) ** (1 / h))
    phase = abs(math.atan2(r.imag, r.real))
    if abs(r.imag) > 0 and phase > 0:
        return 2 * math.pi * h / phase, rate, True
    return math.inf, rate, False


def measured_oscillation(r: RunResult) -> tuple[float, float, int]:
    """Median over sets of the AR(2) period and decay per step of the translation sums, and the
    number of sets fitted (sets starting above 100× the noise floor)."""
    u = fits.UNIT_ROUNDOFF.get(_dtype(r.info), fits.UNIT_ROUNDOFF["float32"])
    with _view(r.info) as view:
        idx = row_selection(0, view.n, MAX_ROWS)
        step = view.series("step", idx)
        s = view.matrix("translation", "translation_sum", idx)
        floor = fits.NOISE_FACTOR * u * view.matrix("translation", "translation_abs_sum", idx)
    periods, rates = [], []
    for j in range(s.shape[1]):
        if not abs(s[0, j]) > 100 * floor[0, j]:
            continue
        p, rate, osc = ar2_fit(step, s[:, j], floor[:, j])
        if math.isfinite(rate):
            rates.append(rate)
            if osc:
                periods.append(p)
    return fits.median_finite(np.array(periods)), fits.median_finite(np.array(rates)), len(rates)


def momentum(results: list[RunResult], out_dir: str) -> Figure:
    """The (ηλ, β) plane with the damping boundaries; measured against predicted period and decay."""
    png, name = "science_momentum.png", "science_momentum.csv"
    header = ["run", "eta_lambda", "beta", "underdamped", "underdamped_scale", "period_pred", "period_meas",
              "rate_pred", "rate_meas", "sets_fitted"]
    fig, (a, b, c) = plt.subplots(1, 3, figsize=(15, 4.4))
    runs = [r for r in results if _optim(r.info).weight_decay > 0 and _optim(r.info).lr > 0
            and not (_optim(r.info).nesterov or _optim(r.info).decoupled)]
    if not runs:
        return _nothing(fig, (a, b, c), out_dir, (png, name, header), "no run with λ > 0 (heavy ball or SGD)",
                        "No run with weight decay: no damping regimes to show.")
    rows = []
    for r in runs:
        o = _optim(r.info)
        el = o.lr * o.weight_decay
        under = o.translation_underdamped
        under_s = (1 + o.momentum - 2 * el) ** 2 < 4 * o.momentum  # docs/THEORY.md §4.3
        p_pred, r_pred = o.translation_period, o.translation_rate
        p_meas = r_meas = math.nan
        fitted = 0
        if under and r.info.status == "done" and "translation" in r.info.families and r.info.rows_committed > 2:
            p_meas, r_meas, fitted = measured_oscillation(r)
        rows.append([r.info.key, el, o.momentum, int(under), int(under_s), p_pred, p_meas, r_pred, r_meas, fitted])
    el = np.array([x[1] for x in rows])
    lo, hi = el.min() / 10, min(el.max() * 10, 0.5)
    grid = np.logspace(math.log10(lo), math.log10(hi), 200)
    a.plot(grid, boundary_beta(grid, "translation"), color=FAM_COLOR["translation"],
           label="translation: (1+β−ηλ)² = 4β")
    a.plot(grid, boundary_beta(grid, "scale"), color=FAM_COLOR["scale"], label="scale, rescale: (1+β−2ηλ)² = 4β")
    for x in rows:
        a.plot([x[1]], [x[2]], marker="o" if x[3] else "s", mfc=FAM_COLOR["translation"] if x[3] else "none",
               color="k", ms=6, ls="none")
    a.plot([], [], "o", color="k", mfc=FAM_COLOR["translation"], label="run, translation underdamped")
    a.plot([], [], "s", color="k", mfc="none", label="run, overdamped")
    a.set_xscale("log")
    a.set_xlabel("ηλ")
    a.set_ylabel("β")
    a.set_ylim(-0.02, 1.0)
    a.set_title("damping regimes (underdamped above a line)", fontsize=9)
    a.legend(fontsize=7, loc="lower left")
    fitted = [x for x in rows if math.isfinite(x[6]) or math.isfinite(x[8])]
    if fitted:
        for ax, pi, mi, lab in ((b, 5, 6, "period (steps)"), (c, 7, 8, "−ln decay per step")):
            f = (lambda v: v) if pi == 5 else (lambda v: -math.log(v) if v > 0 else math.nan)
            xs = [f(x[pi]) for x in fitted if math.isfinite(x[mi])]
            ys = [f(x[mi]) for x in fitted if math.isfinite(x[mi])]
            ax.plot(xs, ys, "o", color=FAM_COLOR["translation"])
            if xs:
                v = [z for z in xs + ys if math.isfinite(z) and z > 0]
                line = np.array([min(v) / 1.3, max(v) * 1.3])
                ax.plot(line, line, color="k", lw=1)
                ax.set_xscale("log")
                ax.set_yscale("log")
            ax.set_xlabel(f"predicted {lab}")
            ax.set_ylabel(f"measured {lab} (AR(2) fit)")
        b.set_title("translation period: measured vs the stored translation_period", fontsize=9)
        c.set_title("translation decay: measured vs the stored translation_rate", fontsize=9)
    else:
        for ax in (b, c):
            _missing(ax, "no finished translation-underdamped run with sums above the noise floor")
    fig.subplots_adjust(left=0.06, right=0.98, bottom=0.12, wspace=0.3)
    _save(fig, os.path.join(out_dir, png))
    _csv(os.path.join(out_dir, name), header, rows)
    n_under = sum(x[3] for x in rows)
    text = f"{len(rows)} runs with λ > 0, {n_under} translation-underdamped"
    good = [x for x in fitted if math.isfinite(x[6]) and math.isfinite(x[5])]
    if good:
        dp = max(abs(x[6] / x[5] - 1) for x in good)
        dr = max(abs(math.log(x[8]) / math.log(x[7]) - 1) for x in good if 0 < x[8] < 1 and 0 < x[7] < 1)
        text += (f"; their measured period matches theory within {_fmt(100 * dp)}% and the decay exponent within "
                 f"{_fmt(100 * dr)}% ({len(good)} runs fitted)")
    return png, name, text + "."


# ---------------------------------------------------------------------------------------------
# 9. symmetry violation per layer (docs/THEORY.md §2a, §2c)


VIOLATION_NEEDS = {"translation": ("grad_sum", "grad_sq"), "scale": ("theta_dot_grad", "scale_sq_norm", "grad_sq"),
                   "rescale": ("theta_dot_grad_in", "theta_dot_grad_out", "sq_norm_in", "sq_norm_out",
                               "grad_sq_in", "grad_sq_out")}


def violation_rows(view: RunView, fam: str, idx: np.ndarray, classes: float) -> tuple[np.ndarray, np.ndarray]:
    """Per row and set, the normalised gradient constraint (docs/THEORY.md §2a): translation
    |Σg|/√(n·G), scale |P|/√(Q·G), rescale |P_in − P_out|/(√(Q_in G_in) + √(Q_out G_out)); per set,
    whether it collapsed (Q at the last row read below COLLAPSED_Q of its start, or G = 0 on a row)."""
    m = lambda k: view.matrix(fam, k, idx)  # noqa: E731
    with np.errstate(divide="ignore", invalid="ignore"):
        if fam == "translation":
            g = m("grad_sq")
            v = np.abs(m("grad_sum")) / np.sqrt(classes * g)
            dead = (g == 0).any(axis=0)
        elif fam == "scale":
            q, g = m("scale_sq_norm"), m("grad_sq")
            v = np.abs(m("theta_dot_grad")) / np.sqrt(q * g)
            dead = (g == 0).any(axis=0) | (q[-1] < COLLAPSED_Q * q[0])
        else:
            qi, qo, gi, go = m("sq_norm_in"), m("sq_norm_out"), m("grad_sq_in"), m("grad_sq_out")
            v = np.abs(m("theta_dot_grad_in") - m("theta_dot_grad_out")) / (np.sqrt(qi * gi) + np.sqrt(qo * go))
            q = qi + qo
            dead = (gi + go == 0).any(axis=0) | (q[-1] < COLLAPSED_Q * q[0])
    return v, dead


def violation(results: list[RunResult], out_dir: str) -> Figure:
    """Per layer, the median over live sets and rows of the normalised constraint violation."""
    png, name = "science_violation.png", "science_violation.csv"
    header = ["family", "layer", "layer_name", "sets", "collapsed", "median_violation"]
    run, why = choose_run(results)
    fig, a = plt.subplots(figsize=(9, 4.4))
    fams = list(run.info.families) if run is not None else []
    if not fams or run.info.rows_committed < 2:
        _missing(a, "no finished run with symmetry sets")
        _save(fig, os.path.join(out_dir, png))
        _csv(os.path.join(out_dir, name), header, [])
        return png, name, "No finished run with symmetry sets: no violation figure."
    k, k_from = classes_of(run.info)
    rows, per_fam, missing = [], {}, []
    with _view(run.info) as view:
        idx = row_selection(0, view.n - 1, MAX_ROWS)  # the final row has no gradient
        for fam in fams:
            layers, lnames = view.set_layers(fam)
            lack = [d for d in VIOLATION_NEEDS[fam] if not view.has(fam, d)]
            if lack:  # e.g. stores without a translation grad_sq: nothing to normalise by
                missing.append(f"{fam} has no {', '.join(lack)}")
                for layer in dict.fromkeys(layers.tolist()):
                    cols = np.flatnonzero(layers == layer)
                    rows.append([fam, int(layer), lnames[cols[0]], int(cols.size), "", math.nan])
                continue
            v, dead = violation_rows(view, fam, idx, k)
            for layer in dict.fromkeys(layers.tolist()):
                cols = np.flatnonzero(layers == layer)
                live = cols[~dead[cols]]
                med = fits.median_finite(v[:, live].ravel()) if live.size else math.nan
                rows.append([fam, int(layer), lnames[cols[0]], int(cols.size), int(dead[cols].sum()), med])
                per_fam.setdefault(fam, []).append(med)
    pos = np.arange(len(rows))
    for fam in per_fam:
        sel = [i for i, x in enumerate(rows) if x[0] == fam]
        a.plot(pos[sel], [rows[i][5] if rows[i][5] > 0 else np.nan for i in sel], "o-", color=FAM_COLOR[fam],
               label=fam, ms=4, lw=0.8)
        for i in sel:
            if rows[i][4]:
                a.annotate(f"{rows[i][4]} collapsed", (pos[i], rows[i][5]), fontsize=6, xytext=(0, 4),
                           textcoords="offset points")
    if missing:
        a.text(0.01, 0.02, "missing: " + "; ".join(missing), transform=a.transAxes, fontsize=7, color="#b22222")
    a.axhline(fits.UNIT_ROUNDOFF.get(_dtype(run.info), 2**-24), color="#999999", ls=":", lw=1, label="unit round-off")
    a.set_yscale("log")
    a.set_xticks(pos, [f"{x[0][:5]} {x[2]}" for x in rows], rotation=60, fontsize=6)
    a.set_ylabel("median |constraint| / its scale")
    a.set_title(f"{run.info.key}: gradient-constraint violation per layer (collapsed sets left out)", fontsize=9)
    a.legend(fontsize=7)
    fig.subplots_adjust(left=0.1, right=0.98, bottom=0.25)
    _save(fig, os.path.join(out_dir, png))
    _csv(os.path.join(out_dir, name), header, rows)
    parts = [f"{f} {_fmt(_nanmin(per_fam[f]))}–{_fmt(_nanmax(per_fam[f]))}" for f in per_fam]
    collapsed = sum(x[4] for x in rows if x[4] != "")
    text = (f"Run {run.info.key} (chosen: {why}): median normalised violation per layer "
            f"{', '.join(parts) or 'n/a'}; {collapsed} collapsed sets left out")
    if "translation" in per_fam:
        text += f"; translation set size {_fmt(k)} from the {k_from}"
    return png, name, text + (f"; missing: {'; '.join(missing)}." if missing else ".")


def _nanmin(v: list[float]) -> float:
    f = [x for x in v if math.isfinite(x)]
    return min(f) if f else math.nan


def _nanmax(v: list[float]) -> float:
    f = [x for x in v if math.isfinite(x)]
    return max(f) if f else math.nan


# ---------------------------------------------------------------------------------------------
# all figures, in the paper's order


@dataclass
class ScienceFigure:
    number: int
    title: str
    png: str  # '' for a placeholder
    csv: str
    sentence: str


FIGURES: tuple[tuple[int, str, Callable[[list[RunResult], str], Figure] | None], ...] = (
    (1, "Learning curves", learning_curves),
    (2, "Raw parameters against symmetry sets", raw_parameters),
    (3, "Per-layer fans: measured against the continuous prediction", layer_fans),
    (4, "Conservation at λ = 0", conservation),
    (5, "Gradient descent vs gradient flow vs modified flow: order in η", order_in_eta),
    (6, "Equilibrium across the grid", equilibrium_grid),
    (7, "Collapse onto the relaxation time", collapse),
    (8, "Momentum: damping regimes, period and decay", momentum),
    (9, "Symmetry violation per layer", violation),
)


def _draw(job: tuple[Callable[[list[RunResult], str], Figure], list[RunResult], str]) -> tuple[str, str, str]:
    """One figure; one that raises is reported as failed instead of stopping the page."""
    draw, results, out_dir = job
    try:
        return draw(results, out_dir)
    except Exception as e:  # noqa: BLE001 — the report must still be written
        return "", "", f"figure failed: {type(e).__name__}: {e}"


def science_figures(results: list[RunResult], out_dir: str, workers: int = 1) -> list[ScienceFigure]:
    """Every figure in order, drawn in spawned worker processes when workers > 1 (each figure
    reads its own rows; spawned, not forked, as report.run_jobs explains)."""
    drawn = [(n, t, d) for n, t, d in FIGURES if d is not None]
    jobs = [(d, results, out_dir) for _, _, d in drawn]
    if workers > 1 and len(jobs) > 1:
        import multiprocessing
        with multiprocessing.get_context("spawn").Pool(min(workers, len(jobs))) as pool:
            outs = pool.map(_draw, jobs, chunksize=1)
    else:
        outs = [_draw(j) for j in jobs]
    done = {n: o for (n, _, _), o in zip(drawn, outs)}
    out = []
    for number, title, draw in FIGURES:
        if draw is None:
            out.append(ScienceFigure(number, title, "", "", "Placeholder: drawn elsewhere."))
        else:
            out.append(ScienceFigure(number, title, *done[number]))
    return out
