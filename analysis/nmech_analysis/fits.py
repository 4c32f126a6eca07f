"""Per-run and per-family fits of measured traces against theory (THEORY.md §5–§6).

- errors: relative error of pred_exact and pred_paper per set, normalised by translation_abs_sum
  (translation), scale_sq_norm (scale), sq_norm_in + sq_norm_out (rescale); the median and the worst
  over sets, at the last committed row and per row. The conventions are those of `nmech run`'s
  printout (a zero norm divides by 1; the median of n sets is the (n//2)-th smallest; a NaN counts
  as worst), so the two agree.
- translation: the decay factor per step of |S_k| fitted from the measured sums, against
  1 − ηλ (SGD) or |r_+| (momentum); oscillation measured against the underdamped threshold.
- scale: RMS of angle_step after equilibrium against angle_eq, the equilibrium ratio, the drift.

Runs that are not `done` are never fitted (their errors at the last committed row are still
reported); the fits return NaN with a reason instead.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from . import theory
from .reader import RunView
from .theory import Optim

# Unit round-off of the run's dtype: noise floor of the measured sums.
UNIT_ROUNDOFF = {"float32": 2.0**-24, "float64": 2.0**-53}
# |S| below NOISE_FACTOR·u·Σ|θ| is noise (float32: 6e-5 of Σ|θ|).
NOISE_FACTOR = 1e3
# Equilibrium: a window whose norm drift biases the ratio by more than this is "drifting".
DRIFT_LIMIT = 0.05


@dataclass
class ErrorSeries:
    """Relative error of one prediction over the sets of a family, per row."""

    median: np.ndarray
    worst: np.ndarray
    p10: np.ndarray
    p90: np.ndarray


@dataclass
class FamilyResult:
    family: str
    sets: int
    step: np.ndarray  # steps of the rows read
    exact: ErrorSeries
    paper: ErrorSeries
    rep_sets: list[int] = field(default_factory=list)  # best, median, worst set by final paper error
    rep_names: list[str] = field(default_factory=list)
    rep_measured: np.ndarray | None = None  # [rows, len(rep_sets)]
    rep_exact: np.ndarray | None = None
    rep_paper: np.ndarray | None = None
    rep_norm0: np.ndarray | None = None  # the error normaliser of each set at the first row

    def final(self) -> dict[str, float]:
        return {"exact_median": float(self.exact.median[-1]), "exact_worst": float(self.exact.worst[-1]),
                "paper_median": float(self.paper.median[-1]), "paper_worst": float(self.paper.worst[-1]),
                "exact_worst_max": _nanmax(self.exact.worst), "paper_worst_max": _nanmax(self.paper.worst)}


@dataclass
class TranslationFit:
    rate_fit: float = math.nan  # median over fitted sets of the decay factor per step
    rate_theory: float = math.nan
    rate_ratio: float = math.nan  # ln(rate_fit)/ln(rate_theory): 1 when the decay matches
    sets_fitted: int = 0
    underdamped: bool = False  # theory
    oscillation: str = "n/a"  # measured: yes | no | undetermined
    period_steps: float = math.inf  # theory
    note: str = ""
    # for the figure: median over fitted sets of |S_k|/|S_0|
    step: np.ndarray | None = None
    decay: np.ndarray | None = None


@dataclass
class ScaleFit:
    angle_rms: float = math.nan  # median over sets of the RMS angle_step in the window
    angle_eq: float = math.nan
    angle_ratio: float = math.nan
    equilibrium_ratio: float = math.nan  # median over sets of c·mean(forcing)/mean(Q)
    norm_drift: float = math.nan  # 2·T_rel·d ln Q/dk: the ratio's expected bias from drift
    fluctuation: float = math.nan  # mean(F/Q)·mean(Q)/mean(F): RMS² ≈ fluctuation·ratio·Δ*²
    relax_steps: float = math.nan
    window_start: float = math.nan  # first step of the averaging window
    status: str = "n/a"  # ok | drifting | too_short | no_weight_decay | unsupported | skipped
    # for the figure: per row, median over sets of the angle and its RMS over sets
    step: np.ndarray | None = None
    angle_median: np.ndarray | None = None
    ratio_median: np.ndarray | None = None


def _nanmax(a: np.ndarray) -> float:
    """Max that lets NaN count as worst, like the C++ printout; NaN for an empty array."""
    return float(np.max(a)) if a.size else math.nan


def relative_error(pred: np.ndarray, meas: np.ndarray, norm: np.ndarray) -> np.ndarray:
    """|pred − meas|/norm, a non-positive norm dividing by 1 (as `nmech run` prints)."""
    return np.abs(pred - meas) / np.where(norm > 0, norm, 1.0)


def upper_median(err: np.ndarray) -> np.ndarray:
    """Per row, the (n//2)-th smallest of n values; NaN sorts last."""
    n = err.shape[-1]
    if n == 0:
        return np.full(err.shape[:-1], math.nan)
    return np.partition(err, n // 2, axis=-1)[..., n // 2]


def row_quantiles(a: np.ndarray, qs: tuple[float, ...]) -> list[np.ndarray]:
    """Per row, the nearest-rank quantiles of the non-NaN values (NaN for an all-NaN row).

    One sort of the whole array: numpy's nanpercentile along an axis loops over rows in Python.
    """
    if a.shape[1] == 0:
        return [np.full(a.shape[0], math.nan) for _ in qs]
    nan = np.isnan(a)
    if not nan.any():  # the usual case: one partition at fixed ranks
        ks = [int(math.floor(q * (a.shape[1] - 1))) for q in qs]
        p = np.partition(a, sorted(set(ks)), axis=1)
        return [p[:, k].copy() for k in ks]
    s = np.sort(a, axis=1)  # NaN last
    m = np.count_nonzero(~nan, axis=1)
    rows = np.arange(a.shape[0])
    out = []
    for q in qs:
        v = s[rows, np.clip(np.floor(q * (m - 1)).astype(np.int64), 0, None)]
        out.append(np.where(m > 0, v, math.nan))
    return out


def error_series(err: np.ndarray) -> ErrorSeries:
    p10, p90 = row_quantiles(err, (0.1, 0.9))
    worst = np.max(err, axis=1) if err.shape[1] else np.full(err.shape[0], math.nan)
    return ErrorSeries(upper_median(err), worst, p10, p90)


def measured_and_norm(view: RunView, family: str, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The measured quantity the predictions predict, and the error normaliser."""
    if family == "translation":
        return view.matrix(family, "translation_sum", idx), view.matrix(family, "translation_abs_sum", idx)
    if family == "scale":
        q = view.matrix(family, "scale_sq_norm", idx)
        return q, q
    meas = view.matrix(family, "rescale_diff", idx)
    return meas, view.matrix(family, "sq_norm_in", idx) + view.matrix(family, "sq_norm_out", idx)


def family_errors(view: RunView, family: str, idx: np.ndarray, step: np.ndarray) -> FamilyResult:
    meas, norm = measured_and_norm(view, family, idx)
    exact = view.matrix(family, "pred_exact", idx)
    paper = view.matrix(family, "pred_paper", idx)
    e_exact = relative_error(exact, meas, norm)
    e_paper = relative_error(paper, meas, norm)
    res = FamilyResult(family, meas.shape[1], step, error_series(e_exact), error_series(e_paper))
    final = e_paper[-1]
    finite = np.flatnonzero(np.isfinite(final))
    if finite.size:
        order = finite[np.argsort(final[finite], kind="stable")]
        reps = list(dict.fromkeys([int(order[0]), int(order[order.size // 2]), int(order[-1])]))
        names = view.set_names(family)
        res.rep_sets = reps
        res.rep_names = [names[i] if i < len(names) else str(i) for i in reps]
        res.rep_measured, res.rep_exact, res.rep_paper = meas[:, reps], exact[:, reps], paper[:, reps]
        res.rep_norm0 = np.where(norm[0, reps] > 0, norm[0, reps], 1.0)
    return res


# ---------------------------------------------------------------------------------------------
# translation: decay rate and oscillation


def _sign_changes(s: np.ndarray) -> int:
    sg = np.sign(s[s != 0])
    return int(np.count_nonzero(sg[1:] != sg[:-1]))


def fit_loglinear(step: np.ndarray, s: np.ndarray) -> float:
    """Decay factor per step from a least-squares line through ln|S_k| against k."""
    slope = np.polyfit(step, np.log(np.abs(s)), 1)[0]
    return float(math.exp(slope))


def fit_ar2(step: np.ndarray, s: np.ndarray) -> float:
    """Larger root modulus per step of S_{j+1} = aS_j − bS_{j−1} fitted on uniformly spaced rows."""
    h = step[1] - step[0]
    x = np.column_stack([s[1:-1], -s[:-2]])
    (a, b), *_ = np.linalg.lstsq(x, s[2:], rcond=None)
    roots = np.roots([1.0, -a, b])
    return float(np.max(np.abs(roots)) ** (1.0 / h))


def fit_translation_set(step: np.ndarray, s: np.ndarray, floor: np.ndarray, k_skip: float,
                        min_rows: int = 5) -> tuple[float, bool, float]:
    """(decay factor per step, oscillates, steps above the noise floor) for one set.

    The factor is NaN when the set has too little signal.

    Rows after the last one above the noise floor are dropped. A set whose sum changes sign at
    least twice oscillates and is fitted as a damped oscillation (AR(2)); otherwise ln|S| is
    fitted by a line over rows after the fast root's transient (k ≥ k_skip).
    """
    above = np.abs(s) > floor
    if not above.any() or not above[0] or abs(s[0]) <= 100 * floor[0]:
        return math.nan, False, 0.0
    end = int(np.flatnonzero(above)[-1]) + 1
    k, s, above = step[:end], s[:end], above[:end]
    span = float(k[-1] - k[0])
    if _sign_changes(s[above]) >= 2:  # signs of rows in the noise are not counted
        d = np.diff(k)
        irregular = np.flatnonzero(d != d[0])
        n = int(irregular[0]) + 1 if irregular.size else k.size  # leading uniformly spaced rows
        if n < 2 * min_rows:
            return math.nan, True, span
        return fit_ar2(k[:n], s[:n]), True, span
    use = above & (k >= k_skip)
    if np.count_nonzero(use) < min_rows:
        return math.nan, False, span
    return fit_loglinear(k[use], s[use]), False, span


def transient_steps(o: Optim, last_step: float) -> float:
    """Steps until the smaller real root's share is below 1e-3 of the larger (capped at half the run)."""
    r1, r2 = theory.translation_roots(o)
    if abs(r1.imag) > 0 or abs(r2) < 1e-12 or abs(r2) >= abs(r1):
        return 0.0
    return min(math.log(1e-3) / math.log(abs(r2) / abs(r1)), last_step / 2)


def translation_fit(view: RunView, idx: np.ndarray, step: np.ndarray, o: Optim, dtype: str,
                    rate_formula=theory.translation_rate) -> TranslationFit:
    """Fit every set's decay factor and compare the median with rate_formula(o)."""
    fit = TranslationFit(rate_theory=rate_formula(o), underdamped=theory.translation_underdamped(o),
                         period_steps=theory.translation_period(o))
    s = view.matrix("translation", "translation_sum", idx)
    floor = NOISE_FACTOR * UNIT_ROUNDOFF.get(dtype, UNIT_ROUNDOFF["float32"]) * \
        view.matrix("translation", "translation_abs_sum", idx)
    k_skip = transient_steps(o, float(step[-1]))
    rates, osc, spans, fitted = [], [], [], []
    for j in range(s.shape[1]):
        r, o_j, span = fit_translation_set(step, s[:, j], floor[:, j], k_skip)
        if math.isfinite(r):
            rates.append(r)
            osc.append(o_j)
            spans.append(span)
            fitted.append(j)
    fit.sets_fitted = len(rates)
    if not rates:
        fit.note = "no set with a sum above the noise floor"
        return fit
    fit.rate_fit = float(np.median(rates))
    if fit.rate_theory < 1 and fit.rate_fit > 0:
        fit.rate_ratio = math.log(fit.rate_fit) / math.log(fit.rate_theory)
    if sum(osc) * 2 >= len(osc):
        fit.oscillation = "yes"
    elif fit.underdamped and fit.period_steps > float(np.median(spans)):
        fit.oscillation = "undetermined"  # the sums reach the noise floor within one period
        fit.note = "oscillation undetermined: the line through ln|S| mixes decay and phase"
    else:
        fit.oscillation = "no"
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.abs(s[:, fitted] / s[0, fitted])
    fit.step, fit.decay = step, row_quantiles(ratio, (0.5,))[0]
    return fit


def check_rate(fit: TranslationFit, o: Optim, rate_formula, tolerance: float) -> bool:
    """Does the fitted decay exponent match rate_formula(o)'s within tolerance (relative)?"""
    r = rate_formula(o)
    if not (math.isfinite(fit.rate_fit) and 0 < r < 1 and fit.rate_fit > 0):
        return False
    return abs(math.log(fit.rate_fit) / math.log(r) - 1) <= tolerance


# ---------------------------------------------------------------------------------------------
# scale: equilibrium angle and norm


def equilibrium_window(step: np.ndarray, t_rel: float, min_rows: int = 10) -> tuple[int, str]:
    """First row of the averaging window [max(5·T_rel, last/2), last], or a reason there is none.

    The window must start after 5·T_rel (THEORY.md §7) and span at least T_rel steps.
    """
    last = float(step[-1])
    start = max(5 * t_rel, last / 2)
    if last < 5 * t_rel or last - start < t_rel:
        return -1, "too_short"
    row = int(np.searchsorted(step, start))
    if step.size - row < min_rows:
        return -1, "too_short"
    return row, "ok"


def _slope(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least-squares slope of each column of y against x."""
    xc = x - x.mean()
    return (xc @ (y - y.mean(axis=0))) / (xc @ xc)


def scale_fit(view: RunView, step_all: np.ndarray, o: Optim, max_rows: int) -> ScaleFit:
    a = view.info.attrs
    fit = ScaleFit(angle_eq=float(a.get("angle_eq", theory.angle_eq(o))),
                   relax_steps=float(a.get("relax_steps", theory.relax_steps(o))))
    if o.nesterov or o.decoupled or o.dampening != 0:
        fit.status = "unsupported"
        return fit
    if o.weight_decay <= 0:
        fit.status = "no_weight_decay"
        return fit
    forcing = "velocity_sq" if o.heavy_ball else "grad_sq"
    # angle and forcing are NaN on the final row (no update follows it)
    last = step_all.size - 1 if step_all.size > 1 else step_all.size
    row0, fit.status = equilibrium_window(step_all[:last], fit.relax_steps)
    if row0 < 0:
        return fit
    idx = np.arange(row0, last)
    if idx.size > max_rows:
        idx = np.unique(np.linspace(row0, last - 1, max_rows).astype(np.int64))
    k = step_all[idx]
    q = view.matrix("scale", "scale_sq_norm", idx)
    f = view.matrix("scale", forcing, idx)
    ang = view.matrix("scale", "angle_step", idx)
    c = theory.equilibrium_factor(o)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = c * f.mean(axis=0) / q.mean(axis=0)
        drift = 2 * fit.relax_steps * _slope(k, np.log(q))
        fluct = (f / q).mean(axis=0) * q.mean(axis=0) / f.mean(axis=0)
    rms = np.sqrt(np.mean(ang**2, axis=0))
    fit.window_start = float(k[0])
    fit.angle_rms = float(np.nanmedian(rms))
    fit.angle_ratio = fit.angle_rms / fit.angle_eq
    fit.equilibrium_ratio = float(np.nanmedian(ratio))
    fit.norm_drift = float(np.nanmedian(drift))
    fit.fluctuation = float(np.nanmedian(fluct))
    if abs(fit.norm_drift) > DRIFT_LIMIT:
        fit.status = "drifting"
    return fit


def scale_curves(view: RunView, idx: np.ndarray, step: np.ndarray, o: Optim, fit: ScaleFit) -> None:
    """Per row, the median angle over sets and the median equilibrium ratio (for the figure)."""
    if o.weight_decay <= 0 or fit.status == "unsupported":
        return
    forcing = "velocity_sq" if o.heavy_ball else "grad_sq"
    with np.errstate(divide="ignore", invalid="ignore"):
        ang = view.matrix("scale", "angle_step", idx)
        ratio = theory.equilibrium_factor(o) * view.matrix("scale", forcing, idx) / \
            view.matrix("scale", "scale_sq_norm", idx)
    fit.step = step
    fit.angle_median = row_quantiles(ang, (0.5,))[0]
    fit.ratio_median = row_quantiles(ratio, (0.5,))[0]


# ---------------------------------------------------------------------------------------------
# order of accuracy in η across runs


def loglog_slope(lr: list[float], err: list[float]) -> float:
    """Slope of ln(err) against ln(lr), NaN with fewer than two distinct lr or any err ≤ 0."""
    pts = [(x, y) for x, y in zip(lr, err) if x > 0 and y > 0 and math.isfinite(y)]
    if len({x for x, _ in pts}) < 2:
        return math.nan
    x, y = np.log([p[0] for p in pts]), np.log([p[1] for p in pts])
    return float(np.polyfit(x, y, 1)[0])
