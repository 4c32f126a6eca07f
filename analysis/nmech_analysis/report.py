"""The HTML report: DIR/index.html, DIR/summary.csv and PNG figures beside them.

The page is self-contained and offline: images are PNG files in DIR referenced by relative
paths, the style sheet is inline, there is no script and no remote resource.
"""
from __future__ import annotations

import datetime as _dt
import html
import math
import multiprocessing
import os
import re
from typing import Any, Callable

from . import figures, science
from .reader import families_of
from .summary import (DEFAULT_MAX_ROWS, RunResult, analyse, default_workers, format_value,
                      status_counts, write_csv)

FAMILY_METRICS = ("exact_median", "exact_worst", "paper_median", "paper_worst")
RATIO_METRICS = (
    ("translation_rate_ratio", "translation: fitted / predicted decay exponent ln r_fit / ln r_theory"),
    ("scale_angle_ratio", "scale: RMS angle_step / angle_eq over live sets after relaxation (median of layers)"),
    ("scale_equilibrium_ratio", "scale: equilibrium_ratio ηV(1+β)/(2λQ) (SGD: ηG/((2λ−ηλ²)Q))"),
)
PAGE_COLUMNS = (
    "run", "status", "lr", "batch_size", "weight_decay", "momentum", "steps", "final_loss",
    "final_accuracy", "translation_exact_median", "translation_paper_median", "scale_exact_median",
    "scale_paper_median", "rescale_exact_median", "rescale_paper_median", "translation_rate_ratio",
    "translation_oscillation", "scale_angle_ratio", "scale_equilibrium_ratio", "scale_equilibrium",
)
PARALLEL_METRICS = [
    "final_loss", "translation_paper_median", "scale_exact_median", "scale_paper_median",
    "rescale_paper_median", "translation_rate_ratio", "scale_angle_ratio", "scale_equilibrium_ratio",
]

STYLE = """
body { font-family: sans-serif; margin: 1.2em 2em; color: #222; max-width: 1500px; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; margin-top: 1.6em; }
nav a { margin-right: 1.2em; }
table { border-collapse: collapse; font-size: 12px; }
th, td { border: 1px solid #ddd; padding: 2px 6px; text-align: right; white-space: nowrap; }
th { background: #f0f0f0; position: sticky; top: 0; }
td.name { text-align: left; font-family: monospace; }
table.findings td.name { white-space: normal; max-width: 60em; }
tr.diverged td { background: #fde0e0; } tr.running td, tr.pending td { background: #fff1dc; }
.status-done { color: #2e7d32; font-weight: bold; } .status-diverged { color: #b22222; font-weight: bold; }
.status-running, .status-pending { color: #e65100; font-weight: bold; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.4em 0; }
.scroll { overflow-x: auto; max-height: 34em; overflow-y: auto; }
.note { color: #555; font-size: 13px; max-width: 70em; }
dl dt { font-weight: bold; margin-top: 0.4em; } dl dd { margin-left: 1.5em; }
"""


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)[:120]


def _img(src: str, alt: str) -> str:
    return f'<img src="{html.escape(src)}" alt="{html.escape(alt)}">'


Job = tuple[Callable[..., None], tuple]


def _run_job(job: Job) -> None:
    f, args = job
    f(*args)


def run_jobs(jobs: list[Job], workers: int) -> None:
    """Draw figures, in worker processes when workers > 1.

    Workers are spawned, not forked: a forked child deadlocks in OpenBLAS once the parent has
    used numpy.linalg.
    """
    if workers <= 1 or len(jobs) < 4:
        for job in jobs:
            _run_job(job)
        return
    with multiprocessing.get_context("spawn").Pool(min(workers, len(jobs))) as pool:
        pool.map(_run_job, jobs, chunksize=1)


def build_report(paths: list[str], out_dir: str, x: str = "lr", y: str = "batch_size",
                 max_rows: int = DEFAULT_MAX_ROWS, workers: int | None = None) -> str:
    """Analyse the stores, write figures, summary.csv and index.html; return the page's path."""
    os.makedirs(out_dir, exist_ok=True)
    workers = workers if workers is not None else default_workers()
    results = analyse(paths, max_rows, workers)
    write_csv(results, os.path.join(out_dir, "summary.csv"))
    jobs: list[Job] = []
    figs = _grid_figures(results, out_dir, x, y, jobs)
    run_figs = _run_figures(results, out_dir, jobs)
    run_jobs(jobs, workers)
    sci = science.science_figures(results, out_dir, workers)
    page = _page(paths, results, figs, run_figs, x, y, sci)
    index = os.path.join(out_dir, "index.html")
    with open(index, "w", encoding="utf-8") as fh:
        fh.write(page)
    return index


def _grid_figures(results: list[RunResult], out: str, x: str,
                  y: str, jobs: list[Job]) -> list[tuple[str, str, str]]:
    """(section, file, caption) of every grid figure; the drawing is queued on jobs."""
    figs: list[tuple[str, str, str]] = []

    def add(section: str, name: str, caption: str, draw: Callable[..., None], *args: Any,
            **kw: Any) -> None:
        figs.append((section, name, caption))
        jobs.append((_call, (draw, args + (os.path.join(out, name),), kw)))

    add("grid", "heatmap_status.png", "Status of every run (diverged cells give the step of divergence).",
        _heatmap, results, "status", x, y, "run status", "status")
    fams = [f for f in families_of([r.info for r in results]) if any(f in r.families for r in results)]
    for fam in fams:
        for m in FAMILY_METRICS:
            metric = f"{fam}_{m}"
            which, stat = m.split("_")
            caption = (f"{fam}: {stat} over sets of the relative error of pred_{which} at the last "
                       "committed row.")
            add("grid", f"heatmap_{metric}.png", caption, _heatmap, results, metric, x, y, caption, "log")
    for metric, caption in RATIO_METRICS:
        if any(metric in r.row for r in results):
            add("grid", f"heatmap_{metric}.png", caption + " 1 = theory.", _heatmap, results, metric, x, y,
                caption, "ratio")
    add("whole", "parallel.png", "Every run as one line across every varying hyperparameter and the main "
        "fitted figures.", figures.parallel_coordinates, results,
        [m for m in PARALLEL_METRICS if any(m in r.row for r in results)])
    add("equilibrium", "rates.png", "Translation: decay exponent fitted from the measured sums against "
        "1 − ηλ (SGD) or |r_+| (momentum).", figures.rate_figure, results)
    return figs


def _call(draw: Callable[..., None], args: tuple, kw: dict) -> None:
    draw(*args, **kw)


def _heatmap(results: list[RunResult], metric: str, x: str, y: str, title: str, kind: str,
             path: str) -> None:
    figures.heatmap(results, metric, x, y, path, title, kind)


def _run_figures(results: list[RunResult], out: str, jobs: list[Job]) -> dict[str, str]:
    files: dict[str, str] = {}
    for i, r in enumerate(results):
        if r.step is None or not r.families:
            continue
        name = f"run_{i:03d}_{_safe(r.info.key)}.png"
        jobs.append((figures.run_figure, (r, os.path.join(out, name))))
        files[r.info.key] = name
    return files


def _page(paths: list[str], results: list[RunResult],
          figs: list[tuple[str, str, str]], run_figs: dict[str, str], x: str, y: str,
          sci: list[science.ScienceFigure] | None = None) -> str:
    counts = status_counts(results)
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        "<title>nmech report</title>", f"<style>{STYLE}</style></head><body>",
        "<h1>nmech report</h1>",
        f'<p class="note">Stores: {", ".join(html.escape(p) for p in paths)}. Written {now}. '
        f"{len(results)} runs: " + ", ".join(f"{v} {k}" for k, v in counts.items()) +
        ". Only committed rows are read, so this page can be written while a sweep runs; "
        "unfinished and diverged runs are listed but never fitted.</p>",
        '<nav><a href="#findings">Findings</a><a href="#science">The science</a><a href="#summary">Summary</a><a href="#skipped">Diverged and unfinished</a>'
        '<a href="#grid">Grid heatmaps</a><a href="#whole">Whole grid</a>'
        '<a href="#equilibrium">Equilibrium and rates</a>'
        '<a href="#runs">Per run</a><a href="#definitions">Definitions</a></nav>',
    ]
    parts += _findings_section(results)
    parts += _science_section(sci or [])
    parts += _summary_section(results)
    parts += _skipped_section(results)
    parts.append(f'<h2 id="grid">Where theory holds: the grid ({html.escape(x)} × {html.escape(y)})</h2>')
    parts.append('<p class="note">One panel per value of the other varying hyperparameters. Hatched cells '
                 "with a letter are runs that are not fitted: D diverged, R running, P pending; "
                 "n/a: finished but no value (e.g. too short for equilibrium); empty: no run.</p>")
    parts += _figs(figs, "grid")
    parts.append('<h2 id="whole">The whole grid</h2>')
    parts += _figs(figs, "whole")
    parts.append('<h2 id="equilibrium">Equilibrium and rates</h2>')
    parts += _figs(figs, "equilibrium")
    parts += _runs_section(results, run_figs)
    parts += _definitions()
    parts.append("</body></html>")
    return "\n".join(parts)


def _figs(figs: list[tuple[str, str, str]], section: str) -> list[str]:
    return [f"<figure>{_img(name, caption)}<figcaption class=\"note\">{html.escape(caption)}"
            "</figcaption></figure>" for sec, name, caption in figs if sec == section]


def _cell(col: str, v: Any) -> str:
    s = html.escape(format_value(v) if v != "" else "")
    if col == "run":
        return f'<td class="name">{s}</td>'
    if col == "status":
        return f'<td class="status-{s}">{s}</td>'
    return f"<td>{s}</td>"


def _range(values: list[float]) -> str:
    v = [x for x in values if isinstance(x, float) and math.isfinite(x)]
    if not v:
        return "–"
    lo, hi = min(v), max(v)
    return format_value(lo) if lo == hi else f"{format_value(lo)} … {format_value(hi)}"


def _findings_section(results: list[RunResult]) -> list[str]:
    """The answer first: how well each prediction holds over the finished runs, and what broke."""
    done = [r for r in results if r.info.status == "done"]
    rows: list[tuple[str, str]] = []
    for fam in families_of([r.info for r in done]):
        have = [r for r in done if fam in r.families]
        if not have:
            continue
        for pred in ("exact", "paper"):
            med = _range([r.row.get(f"{fam}_{pred}_median") for r in have])
            worst = _range([r.row.get(f"{fam}_{pred}_worst") for r in have])
            rows.append((f"{fam}: pred_{pred} error at the last row",
                         f"median over sets {med}; worst set {worst} (over {len(have)} runs)"))
    rated = [r for r in done if r.translation is not None and math.isfinite(r.translation.rate_ratio)]
    if rated:
        dev = max(abs(r.translation.rate_ratio - 1) for r in rated)
        agree = sum((r.translation.oscillation == "yes") == r.translation.underdamped for r in rated
                    if r.translation.oscillation != "undetermined")
        rows.append(("translation: fitted decay vs 1 − ηλ or |r_+|",
                     f"ln r_fit / ln r_theory within {format_value(dev)} of 1 in {len(rated)} runs; measured "
                     f"oscillation agrees with the underdamped threshold in {agree} runs"))
    eq = [r for r in done if r.scale is not None]
    if eq:
        by: dict[str, list[RunResult]] = {}
        for r in eq:
            by.setdefault(r.scale.status, []).append(r)
        counts = ", ".join(f"{len(v)} {k}" for k, v in sorted(by.items()))
        ok = by.get("at_equilibrium", [])
        rows.append(("scale: equilibrium (judged per layer on the angle, live sets)", counts))
        if ok:
            rows.append(("scale: runs at equilibrium",
                         f"RMS angle / angle_eq {_range([r.scale.angle_ratio for r in ok])}; "
                         f"equilibrium_ratio {_range([r.scale.equilibrium_ratio for r in ok])}"))
    bad = [r for r in results if r.info.status != "done"]
    if bad:
        rows.append(("not fitted", "; ".join(
            f"{r.info.status} at " + ", ".join(f"{k}={format_value(r.row.get(k))}" for k in ("lr", "batch_size",
                                                                                             "weight_decay",
                                                                                             "momentum")
                                                  if k in r.row) for r in bad)))
    out = ['<h2 id="findings">Findings</h2>', '<table class="findings"><tbody>']
    out += [f'<tr><td class="name">{html.escape(k)}</td><td class="name">{html.escape(v)}</td></tr>'
            for k, v in rows]
    out.append("</tbody></table>")
    return out


def _science_section(sci: list[science.ScienceFigure]) -> list[str]:
    """The paper's figures in order, each with its one sentence and a link to its plotted numbers."""
    out = ['<h2 id="science">The science</h2>',
           '<p class="note">The paper\'s figures, computed from the stores. Each figure\'s plotted numbers '
           "are in the CSV beside it (columns: analysis/README.md).</p>"]
    for f in sci:
        title = html.escape(f"Figure {f.number}. {f.title}")
        anchor = f'science-{f.number}'
        if not f.png:
            out.append(f'<h3 id="{anchor}">{title}</h3><p class="note">{html.escape(f.sentence)}</p>')
            continue
        link = f' <a href="{html.escape(f.csv)}">{html.escape(f.csv)}</a>' if f.csv else ""
        out.append(f'<h3 id="{anchor}">{title}</h3><figure>{_img(f.png, f.title)}'
                   f'<figcaption class="note">{html.escape(f.sentence)}{link}</figcaption></figure>')
    return out


def _summary_section(results: list[RunResult]) -> list[str]:
    cols = [c for c in PAGE_COLUMNS if any(c in r.row for r in results)]
    out = ['<h2 id="summary">Summary</h2>',
           '<p class="note">The main columns; <a href="summary.csv">summary.csv</a> has every '
           "hyperparameter and every fitted figure. Errors are relative (see Definitions).</p>",
           '<div class="scroll"><table><thead><tr>' + "".join(f"<th>{html.escape(c)}</th>" for c in cols) +
           "</tr></thead><tbody>"]
    for r in results:
        out.append(f'<tr class="{html.escape(r.info.status)}">' +
                   "".join(_cell(c, r.row.get(c, "")) for c in cols) + "</tr>")
    out.append("</tbody></table></div>")
    return out


def _skipped_section(results: list[RunResult]) -> list[str]:
    out = ['<h2 id="skipped">Diverged and unfinished runs</h2>']
    bad = [r for r in results if r.info.status != "done"]
    if not bad:
        return out + ['<p class="note">None: every run is done.</p>']
    out.append("<ul>")
    for r in bad:
        where = ", ".join(f"{k}={format_value(r.row.get(k))}" for k in ("lr", "batch_size", "weight_decay",
                                                                          "momentum") if k in r.row)
        out.append(f'<li><span class="status-{html.escape(r.info.status)}">{html.escape(r.info.status)}'
                   f"</span> <code>{html.escape(r.info.key)}</code> ({html.escape(where)}): "
                   f"{html.escape(r.row.get('fit_note', ''))}</li>")
    out.append("</ul>")
    return out


def _fit_line(r: RunResult) -> str:
    bits = []
    t, s = r.translation, r.scale
    if t is not None and math.isfinite(t.rate_fit):
        bits.append(f"translation rate fit {format_value(t.rate_fit)} vs theory {format_value(t.rate_theory)} "
                    f"(ratio of exponents {format_value(t.rate_ratio)}, {t.sets_fitted} sets; oscillation "
                    f"measured {t.oscillation}, theory {'under' if t.underdamped else 'over'}damped)")
    if s is not None and s.status not in ("skipped",):
        bits.append(f"scale equilibrium {s.status}: RMS angle {format_value(s.angle_rms)} vs angle_eq "
                    f"{format_value(s.angle_eq)}, equilibrium_ratio {format_value(s.equilibrium_ratio)}, "
                    f"relax_steps {format_value(s.relax_steps)}")
    if r.row.get("fit_note"):
        bits.append(str(r.row["fit_note"]))
    return "; ".join(bits)


def _runs_section(results: list[RunResult], run_figs: dict[str, str]) -> list[str]:
    out = ['<h2 id="runs">Per run</h2>',
           '<p class="note">Top row: loss, translation decay, scale angle and norm balance over steps '
           "(grey: the equilibrium window). Then per family: the sets with the best, median and worst "
           "final pred_paper error (measured solid, pred_exact dashed, pred_paper dotted), and the "
           "relative error over all sets per step (median, worst, 10–90% band).</p>"]
    for r in results:
        out.append(f'<h3 id="{html.escape(_safe(r.info.key))}"><code>{html.escape(r.info.key)}</code> '
                   f'<span class="status-{html.escape(r.info.status)}">{html.escape(r.info.status)}</span></h3>')
        out.append(f'<p class="note">{html.escape(_fit_line(r))}</p>')
        if r.info.key in run_figs:
            out.append(_img(run_figs[r.info.key], f"traces of {r.info.key}"))
        else:
            out.append('<p class="note">No committed rows yet.</p>')
    return out


def _definitions() -> list[str]:
    items = [
        ("relative error", "|prediction − measured| / normaliser per set: translation Σ_A|θ| "
         "(translation_abs_sum), scale Q = |θ_A|², rescale Q_in + Q_out. Median = the (n//2)-th smallest "
         "over n sets, worst = the largest (as `nmech run` prints); *_worst_max = worst over the rows read."),
        ("pred_exact / pred_paper", "docs/THEORY.md §4 exact discrete recurrence / §5 continuous prediction."),
        ("translation_rate_fit", "median over sets of the decay factor per step of the translation sum S_k: "
         "a line through ln|S_k| (after the fast root's transient; rows above the float noise floor), or "
         "for sums that change sign twice a fitted damped oscillation S_{k+1} = aS_k − bS_{k−1}. "
         "rate_theory = 1 − ηλ (SGD) or |r_+| of r² − (1+β−ηλ)r + β = 0; rate_ratio = ln fit / ln theory."),
        ("translation_oscillation", "measured: yes if most fitted sets change sign at least twice; "
         "undetermined if the predicted period is longer than the sums stay above the noise floor."),
        ("scale_equilibrium", "judged per layer on the live sets (equilibrium_ratio ≥ 0.1; the others "
         "collapsed): not_relaxed if the run ends before 5·relax_steps plus 2·relax_steps·ln(Q_0/Q*) "
         "(the first decay at the memory rate) or leaves a window shorter than relax_steps; "
         "symmetry_broken if the free-running pred_exact misses by more than 1e-2 in median (the "
         "violation, e.g. BN ε, then shifts Q* by more than 1%); at_equilibrium if the median RMS angle is within 5% of angle_eq; else "
         "drifting if |norm_drift|/2 > 5% (a quasi-static drift explains the miss), else "
         "off_equilibrium. A run is at_equilibrium when 3/4 of its judged layers are; otherwise it "
         "takes its layers' most common state. The window is steps ≥ max(relaxed step, last/2)."),
        ("scale_angle_rms / angle_ratio", "per layer the median over live sets of the RMS of angle_step "
         "in the window divided by angle_eq = √(2η'λ/(1+β)), η' = η(1 − τ); the run's value is the "
         "median over its judged layers (angle_rms = angle_ratio·angle_eq)."),
        ("scale_equilibrium_ratio", "per layer the median over live sets of η·mean(V)(1+β)/(2λ(1−τ)·mean(Q)) "
         "in the window (SGD: η·mean(G)/((2λ−ηλ²)·mean(Q))) = Q*/Q; 1 at equilibrium."),
        ("scale_norm_drift", "2·relax_steps·(d ln Q/dk) fitted in the window: a norm drifting this "
         "fast biases equilibrium_ratio by about norm_drift and the angle by about half of it."),
        ("scale_layers_at_equilibrium / layers_judged, sets_live / sets_collapsed",
         "how many layers were judged and found at equilibrium; live and collapsed scale sets."),
    ]
    out = ['<h2 id="definitions">Definitions</h2>', "<dl>"]
    for term, text in items:
        out.append(f"<dt>{html.escape(term)}</dt><dd>{html.escape(text)}</dd>")
    out.append("</dl>")
    return out

