"""Figures of the report, drawn with matplotlib's Agg backend into PNG files."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib import colors as mcolors  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from .reader import axis_names  # noqa: E402
from .summary import RunResult, format_value  # noqa: E402

DPI = 80
C_MEAS, C_EXACT, C_PAPER = "#222222", "#1f77b4", "#d62728"
# Colours of the statuses the store knows today; the names and their order come from the store's
# HDF5 enum (RunInfo.statuses), and a status added there is drawn in OTHER_COLOR, marked by its
# first letter.
STATUS_COLOR = {"done": "#4daf4a", "running": "#ff7f00", "pending": "#999999", "diverged": "#e41a1c",
                "failed": "#6a3d9a"}
OTHER_COLOR = "#000000"


def status_mark(status: str) -> str:
    return status[:1].upper() or "?"


def status_order(runs: "list[RunResult]") -> tuple[str, ...]:
    """The status heatmap colours a cell by its worst run: done first, then the store's status
    codes in order."""
    names = next((r.info.statuses for r in runs if r.info.statuses), ("done",))
    return ("done",) + tuple(s for s in names if s != "done")


def _save(fig: plt.Figure, path: str) -> None:
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def _legend(a: plt.Axes, **kw: Any) -> None:
    """A legend only when something is labelled (matplotlib warns otherwise)."""
    if a.get_legend_handles_labels()[0]:
        a.legend(**kw)


def _finite(a: Any) -> bool:
    return isinstance(a, (int, float)) and not isinstance(a, bool) and math.isfinite(a)


# ---------------------------------------------------------------------------------------------
# per run


def run_figure(res: RunResult, path: str) -> None:
    """Overview row, then per family: three representative sets and the error spread over sets."""
    fams = list(res.families)
    nrow = 1 + math.ceil(len(fams) / 2)
    fig, axes = plt.subplots(nrow, 4, figsize=(15, 2.9 * nrow), squeeze=False)
    _overview_row(res, axes[0])
    cells = list(axes[1:].reshape(-1, 2))
    for pair, fam in zip(cells, fams):
        _family_pair(res, fam, pair)
    for pair in cells[len(fams):]:
        for a in pair:
            a.set_axis_off()
    fig.suptitle(f"{res.info.key}   [{res.info.status}, {res.info.rows_committed} rows]", fontsize=11)
    top = 1 - 0.45 / fig.get_figheight()
    fig.subplots_adjust(left=0.05, right=0.95, bottom=0.5 / fig.get_figheight(), top=top - 0.05,
                        wspace=0.38, hspace=0.55)
    _save(fig, path)


def _overview_row(res: RunResult, ax: np.ndarray) -> None:
    a = ax[0]
    a.plot(res.step, res.loss, color=C_MEAS, lw=0.8, label="loss")
    a.set_xlabel("step")
    a.set_ylabel("minibatch loss")
    b = a.twinx()
    b.plot(res.step, res.accuracy, color="#2ca02c", lw=0.8, alpha=0.7, label="accuracy")
    b.set_ylim(0, 1.02)
    b.set_ylabel("accuracy", color="#2ca02c")
    a.set_title("loss and accuracy", fontsize=9)
    _translation_panel(res, ax[1])
    _angle_panel(res, ax[2])
    _ratio_panel(res, ax[3])


def _translation_panel(res: RunResult, a: plt.Axes) -> None:
    t = res.translation
    a.set_title("translation: median |S_k/S_0| over sets", fontsize=9)
    if t is None or t.decay is None:
        a.text(0.5, 0.5, t.note if t else "no translation sets", ha="center", va="center",
               transform=a.transAxes, fontsize=8, wrap=True)
        return
    k = t.step
    a.semilogy(k, t.decay, color=C_MEAS, lw=1.2, label="measured")
    a.semilogy(k, t.rate_theory ** k, color=C_EXACT, ls="--", lw=1, label=f"theory r={t.rate_theory:.6f}")
    if _finite(t.rate_fit):
        a.semilogy(k, t.rate_fit ** k, color=C_PAPER, ls=":", lw=1.2, label=f"fit r={t.rate_fit:.6f}")
    a.set_xlabel("step")
    _legend(a, fontsize=7, loc="lower left")


def _angle_panel(res: RunResult, a: plt.Axes) -> None:
    s = res.scale
    a.set_title("scale: median angle_step over sets", fontsize=9)
    if s is None or s.angle_median is None:
        a.text(0.5, 0.5, f"equilibrium: {s.status}" if s else "no scale sets", ha="center",
               va="center", transform=a.transAxes, fontsize=8)
        return
    a.plot(s.step, s.angle_median, color=C_MEAS, lw=0.7, label="median over sets")
    a.axhline(s.angle_eq, color=C_EXACT, ls="--", lw=1, label=f"angle_eq {s.angle_eq:.3g}")
    if _finite(s.angle_rms):
        a.axhline(s.angle_rms, color=C_PAPER, ls=":", lw=1.2, label=f"RMS in window {s.angle_rms:.3g}")
        a.axvspan(s.window_start, s.step[-1], color="#cccccc", alpha=0.4, lw=0)
    a.set_xlabel("step")
    a.set_ylabel("rad")
    _legend(a, fontsize=7, title=f"equilibrium: {s.status}", title_fontsize=7)


def _ratio_panel(res: RunResult, a: plt.Axes) -> None:
    s = res.scale
    a.set_title("scale: equilibrium_ratio (median over sets)", fontsize=9)
    if s is None or s.ratio_median is None:
        a.set_axis_off()
        return
    a.semilogy(s.step, s.ratio_median, color=C_MEAS, lw=0.7)
    a.axhline(1.0, color=C_EXACT, ls="--", lw=1)
    if _finite(s.equilibrium_ratio):
        a.axhline(s.equilibrium_ratio, color=C_PAPER, ls=":", lw=1.2,
                  label=f"window mean {s.equilibrium_ratio:.3g}")
        a.axvspan(s.window_start, s.step[-1], color="#cccccc", alpha=0.4, lw=0)
        _legend(a, fontsize=7)
    a.set_xlabel("step")


REP_COLORS = ("#2ca02c", "#9467bd", "#ff7f0e")


def _family_pair(res: RunResult, fam: str, ax: np.ndarray) -> None:
    """Left: the sets with the best, median and worst final paper error, each divided by its error
    normaliser at step 0; right: the relative error over all sets per step."""
    fr = res.families[fam]
    a = ax[0]
    if fr.rep_measured is None:
        a.set_axis_off()
    else:
        k = fr.step
        for j, (name, c) in enumerate(zip(fr.rep_names, REP_COLORS)):
            n0 = fr.rep_norm0[j]
            a.plot(k, fr.rep_measured[:, j] / n0, color=c, lw=2.2, alpha=0.55, label=name)
            a.plot(k, fr.rep_exact[:, j] / n0, color="k", ls="--", lw=0.8)
            a.plot(k, fr.rep_paper[:, j] / n0, color=c, ls=":", lw=1.4)
        a.plot([], [], color="#888888", lw=2.2, alpha=0.55, label="measured")
        a.plot([], [], color="k", ls="--", lw=0.8, label="pred_exact")
        a.plot([], [], color="#888888", ls=":", lw=1.4, label="pred_paper")
        a.set_title(f"{fam}: best / median / worst set (÷ normaliser at step 0)", fontsize=8)
        a.tick_params(labelsize=7)
        _legend(a, fontsize=6, ncol=2)
    a = ax[1]
    for name, es, c in (("exact", fr.exact, C_EXACT), ("paper", fr.paper, C_PAPER)):
        k = fr.step
        a.fill_between(k, _pos(es.p10), _pos(es.p90), color=c, alpha=0.18, lw=0)
        a.plot(k, _pos(es.median), color=c, lw=1.2, label=f"{name} median")
        a.plot(k, _pos(es.worst), color=c, lw=0.6, ls="--", label=f"{name} worst")
    a.set_yscale("log")
    a.set_title(f"{fam}: relative error over {fr.sets} sets (band 10–90%)", fontsize=8)
    a.tick_params(labelsize=7)
    _legend(a, fontsize=6, ncol=2)


def _pos(a: np.ndarray) -> np.ndarray:
    """Zeros (e.g. the first row, where every prediction is the measurement) are left out of a
    log axis."""
    return np.where(a > 0, a, np.nan)


# ---------------------------------------------------------------------------------------------
# grid: heatmaps


def grid_axes(results: list[RunResult]) -> list[str]:
    """Run attributes (hyperparameters) that take more than one value over the runs."""
    return [k for k in axis_names([r.info for r in results])
            if len({str(r.row.get(k)) for r in results}) > 1]


def _sort_values(values: set) -> list:
    try:
        return sorted(values, key=lambda v: float(v))
    except (TypeError, ValueError):
        return sorted(values, key=str)


def panels(results: list[RunResult], x: str, y: str) -> list[tuple[tuple, list[RunResult]]]:
    """Runs split by the values of every varying axis other than x and y."""
    others = [k for k in grid_axes(results) if k not in (x, y)]
    groups: dict[tuple, list[RunResult]] = {}
    for r in results:
        groups.setdefault(tuple((k, r.row.get(k)) for k in others), []).append(r)
    keys = sorted(groups, key=lambda t: [(_num(v), str(v)) for _, v in t])
    return [(k, groups[k]) for k in keys]


def _num(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.inf


def heatmap(results: list[RunResult], metric: str, x: str, y: str, path: str, title: str,
            kind: str = "log") -> None:
    """One panel per value of the other axes; cells coloured by metric (kind: log | ratio | status).

    Diverged, running and pending runs are hatched and lettered (D, R, P) instead of coloured;
    a finished run without a value shows 'n/a'; a cell without a run stays empty.
    """
    xs = _sort_values({r.row.get(x) for r in results})
    ys = _sort_values({r.row.get(y) for r in results})
    groups = panels(results, x, y)
    ncol = min(4, len(groups))
    nrow = math.ceil(len(groups) / ncol)
    w, h = max(3.2, 0.9 * len(xs) + 1.8), max(2.6, 0.6 * len(ys) + 1.6)
    fig, axes = plt.subplots(nrow, ncol, figsize=(w * ncol + 1.2, h * nrow + 0.6), squeeze=False)
    values = [r.row.get(metric) for r in results if r.info.status == "done"]
    norm, cmap = _norm(values, kind)
    im = None
    for a, (key, runs) in zip(axes.flat, groups):
        im = _heat_panel(a, runs, metric, x, y, xs, ys, norm, cmap, kind)
        a.set_title(", ".join(f"{k}={format_value(v)}" for k, v in key) or "all runs", fontsize=8)
    for a in list(axes.flat)[len(groups):]:
        a.set_axis_off()
    if im is not None and kind != "status":
        fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.8, label=metric)
    fig.suptitle(title, fontsize=10)
    _save(fig, path)


def _norm(values: list, kind: str) -> tuple[mcolors.Normalize, str]:
    v = np.array([x for x in values if _finite(x)], dtype=float)
    if kind == "status":
        return mcolors.Normalize(0, 3), "viridis"
    if kind == "ratio":
        dev = float(np.max(np.abs(np.log10(v[v > 0])))) if (v > 0).any() else 0.0
        dev = max(dev, 0.02)
        return mcolors.LogNorm(10 ** -dev, 10 ** dev), "coolwarm"
    v = v[v > 0]
    if v.size == 0:
        return mcolors.LogNorm(1e-8, 1), "viridis"
    lo, hi = float(v.min()), float(v.max())
    if hi <= lo * 1.01:
        lo, hi = lo / 2, hi * 2
    return mcolors.LogNorm(lo, hi), "viridis"


@dataclass
class HeatCells:
    """What one heatmap panel shows: values, their labels, and letters for runs not fitted."""

    values: np.ndarray  # [len(ys), len(xs)], NaN where nothing is coloured
    text: dict[tuple[int, int], str]
    marks: dict[tuple[int, int], str]  # a status's first letter: D diverged, R running, P pending, …


def heat_cells(runs: list[RunResult], metric: str, x: str, y: str, xs: list, ys: list,
               kind: str = "log") -> HeatCells:
    """Cells of one panel. Several runs in a cell (seeds, repeated names): the median of the
    finished runs' values; a cell with no finished run shows the letter of its first other run."""
    cells: dict[tuple[int, int], list[RunResult]] = {}
    for r in runs:
        cells.setdefault((ys.index(r.row.get(y)), xs.index(r.row.get(x))), []).append(r)
    out = HeatCells(np.full((len(ys), len(xs)), np.nan), {}, {})
    codes = {name: i for i, name in enumerate(status_order(runs))}
    for ij, members in cells.items():
        done = [r for r in members if r.info.status == "done"]
        suffix = f" ×{len(members)}" if len(members) > 1 else ""
        if kind == "status":
            worst = max(members, key=lambda r: codes.get(r.info.status, len(codes)))
            out.values[ij] = codes.get(worst.info.status, 0)
            st = worst.info.status
            out.text[ij] = (f"diverged@{worst.info.diverged_at}" if st == "diverged" else st) + suffix
            continue
        if not done:
            out.marks[ij] = status_mark(members[0].info.status)
            continue
        vals = [r.row.get(metric) for r in done]
        vals = [v for v in vals if _finite(v) and (kind != "log" or v > 0)]
        if vals:
            out.values[ij] = float(np.median(vals))
            out.text[ij] = f"{out.values[ij]:.2g}" + suffix
        else:
            out.text[ij] = "n/a" + suffix
        if len(done) < len(members):
            out.marks[ij] = "+" + "".join(status_mark(r.info.status) for r in members
                                          if r.info.status != "done")
    return out


def _heat_panel(a: plt.Axes, runs: list[RunResult], metric: str, x: str, y: str, xs: list, ys: list,
                norm, cmap: str, kind: str):
    cells = heat_cells(runs, metric, x, y, xs, ys, kind)
    if kind == "status":
        order = status_order(runs)
        cm = mcolors.ListedColormap([STATUS_COLOR.get(s, OTHER_COLOR) for s in order])
        im = a.imshow(np.ma.masked_invalid(cells.values), cmap=cm, norm=mcolors.Normalize(-0.5, len(order) - 0.5),
                      origin="lower", aspect="auto")
    else:
        im = a.imshow(np.ma.masked_invalid(cells.values), cmap=cmap, norm=norm, origin="lower", aspect="auto")
    a.set_facecolor("#f4f4f4")
    for (i, j), letter in cells.marks.items():
        a.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, hatch="///", edgecolor="#b22222", lw=0))
        dy = -0.3 if (i, j) in cells.text else 0.0
        a.text(j, i + dy, letter, ha="center", va="center", fontsize=12, fontweight="bold", color="#b22222")
    for (i, j), s in cells.text.items():
        a.text(j, i, s, ha="center", va="center", fontsize=7,
               color="black" if kind == "status" else _text_color(cells.values[i, j], norm, cmap))
    a.set_xticks(range(len(xs)), [format_value(v) for v in xs], fontsize=7)
    a.set_yticks(range(len(ys)), [format_value(v) for v in ys], fontsize=7)
    a.set_xlabel(x, fontsize=8)
    a.set_ylabel(y, fontsize=8)
    return im


def _text_color(v: float, norm, cmap: str) -> str:
    if not math.isfinite(v):
        return "#555555"
    r, g, b, _ = plt.get_cmap(cmap)(norm(v))
    return "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white"


# ---------------------------------------------------------------------------------------------
# grid: parallel coordinates


def parallel_coordinates(results: list[RunResult], metrics: list[str], path: str) -> None:
    """An axis per varying hyperparameter and per metric; a line per run, coloured by status or
    by the scale (else translation) paper error; log axes where values span a decade or more."""
    axes_names = grid_axes(results) + [m for m in metrics if any(_finite(r.row.get(m)) for r in results)]
    if not axes_names:
        axes_names = ["lr"]
    cols = [_column(results, k) for k in axes_names]
    fig, a = plt.subplots(figsize=(max(8, 1.5 * len(axes_names)), 4.8))
    colour_by = next((m for m in ("scale_paper_median", "translation_paper_median") if m in metrics
                      and any(_finite(r.row.get(m)) for r in results)), None)
    cnorm = _norm([r.row.get(colour_by) for r in results], "log")[0] if colour_by else None
    cmap = plt.get_cmap("viridis")
    for n, r in enumerate(results):
        ys = [c[0][n] for c in cols]
        st = r.info.status
        if st == "done":
            v = r.row.get(colour_by) if colour_by else None
            colour = cmap(cnorm(v)) if (cnorm and _finite(v) and v > 0) else "#555555"
            a.plot(range(len(ys)), ys, color=colour, lw=1.2, alpha=0.85, marker="o", ms=3)
        else:
            a.plot(range(len(ys)), ys, color=STATUS_COLOR.get(st, "k"), lw=1.5, ls="--", marker="x", ms=5,
                   label=st)
    for i, (_, ticks) in enumerate(cols):
        a.axvline(i, color="#888888", lw=0.8)
        for pos, label in ticks:
            a.text(i + 0.03, pos, label, fontsize=7, va="center")
    a.set_xticks(range(len(axes_names)), axes_names, rotation=25, ha="right", fontsize=8)
    a.set_yticks([])
    a.set_ylim(-0.08, 1.08)
    a.set_xlim(-0.2, len(axes_names) - 0.5)
    handles, labels = a.get_legend_handles_labels()
    uniq = dict(zip(labels, handles))
    if uniq:
        a.legend(uniq.values(), uniq.keys(), fontsize=8, loc="upper right")
    if cnorm is not None:
        sm = plt.cm.ScalarMappable(norm=cnorm, cmap=cmap)
        fig.colorbar(sm, ax=a, label=f"{colour_by} (finished runs)")
    a.set_title("the whole grid: one line per run (dashed: diverged or unfinished)", fontsize=10)
    fig.subplots_adjust(bottom=0.22, left=0.03, right=0.97)
    _save(fig, path)


def _column(results: list[RunResult], key: str) -> tuple[list[float], list[tuple[float, str]]]:
    """Positions in [0, 1] of each run's value on one axis, and tick labels."""
    raw = [r.row.get(key) for r in results]
    numeric = all(_finite(v) or v is None or (isinstance(v, float) and math.isnan(v)) for v in raw) and \
        any(_finite(v) for v in raw)
    if not numeric:
        cats = _sort_values({str(v) for v in raw})
        pos = {c: (i / (len(cats) - 1) if len(cats) > 1 else 0.5) for i, c in enumerate(cats)}
        return [pos[str(v)] for v in raw], [(p, c[:14]) for c, p in pos.items()]
    v = np.array([x if _finite(x) else np.nan for x in raw], dtype=float)
    fin = v[np.isfinite(v)]
    lo, hi = float(fin.min()), float(fin.max())
    use_log = lo > 0 and hi / lo >= 10
    f: Callable[[np.ndarray], np.ndarray] = np.log10 if use_log else (lambda z: z)
    flo, fhi = float(f(np.array(lo))), float(f(np.array(hi)))
    span = fhi - flo
    with np.errstate(invalid="ignore", divide="ignore"):
        pos = (f(v) - flo) / span if span > 0 else np.where(np.isfinite(v), 0.5, np.nan)
    ticks = [(0.0, format_value(lo)), (1.0, format_value(hi))] if span > 0 else [(0.5, format_value(lo))]
    return list(pos), ticks


# ---------------------------------------------------------------------------------------------
# grid: predicted against measured


def rate_figure(results: list[RunResult], path: str) -> None:
    """Fitted against predicted translation decay exponent −ln r per step."""
    fig, a = plt.subplots(figsize=(6.4, 4.8))
    pts = [r for r in results if r.translation is not None and _finite(r.translation.rate_fit)
           and 0 < r.translation.rate_theory < 1 and 0 < r.translation.rate_fit < 1]
    for osc, marker in (("no", "o"), ("yes", "s"), ("undetermined", "D")):
        sel = [r for r in pts if r.translation.oscillation == osc]
        if sel:
            a.scatter([-math.log(r.translation.rate_theory) for r in sel],
                      [-math.log(r.translation.rate_fit) for r in sel], marker=marker, s=40,
                      label=f"oscillation measured: {osc}")
    if pts:
        v = [-math.log(r.translation.rate_theory) for r in pts] + [-math.log(r.translation.rate_fit) for r in pts]
        line = np.array([min(v) / 1.5, max(v) * 1.5])
        a.plot(line, line, color="k", lw=1, label="fit = theory")
        a.set_xscale("log")
        a.set_yscale("log")
    else:
        a.text(0.5, 0.5, "no finished run with a fitted rate", ha="center", va="center", transform=a.transAxes)
    a.set_xlabel("−ln r_theory  (1 − ηλ, or |r_+| with momentum)")
    a.set_ylabel("−ln r_fit  (from the measured translation sums)")
    a.set_title("translation decay per step", fontsize=10)
    _legend(a, fontsize=8)
    fig.subplots_adjust(left=0.14, bottom=0.12)
    _save(fig, path)
