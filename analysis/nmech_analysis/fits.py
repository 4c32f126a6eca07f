"""Per-run and per-family fits of measured traces against theory (docs/THEORY.md §5–§7).

- errors: relative error of pred_exact and pred_paper per set, normalised by translation_abs_sum
  (translation), scale_sq_norm (scale), sq_norm_in + sq_norm_out (rescale); the median and the worst
  over sets, at the last committed row and per row. The conventions are those of `nmech run`'s
  printout (a zero norm divides by 1; the median of n sets is the (n//2)-th smallest; a NaN counts
  as worst), so the two agree.
- translation: the decay factor per step of |S_k| fitted from the measured sums, against
  1 − ηλ (SGD) or |r_+| (momentum); oscillation measured against the underdamped threshold.
- scale: per layer and over live sets, the RMS of angle_step after relaxation against Δ*, the
  equilibrium ratio, the drift, and a state (EQ_STATES) decided on the angle.

Runs that are not `done` are never fitted (their errors at the last committed row are still
reported); the fits return NaN with a reason instead.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .reader import RunView, row_selection
from .theory import Optim

# Unit round-off of the run's dtype: noise floor of the measured sums.
UNIT_ROUNDOFF = {"float32": 2.0**-24, "float64": 2.0**-53}
# |S| below NOISE_FACTOR·u·Σ|θ| is noise (float32: 6e-5 of Σ|θ|).
NOISE_FACTOR = 1e3
# Equilibrium (docs/THEORY.md §7c), judged per layer on the live sets' RMS angle:
ANGLE_TOL = 0.05  # |RMS angle/Δ* − 1| within this: at equilibrium
RELAXED_T_REL = 5  # the window starts at least this many T_rel after the start (plus the first decay)
# A set is live while its gradient still drives it: ηG/(2λ(1 − β)Q) is ~1 for a set in equilibrium
# (SGD exactly ηG/((2λ − ηλ²)Q); with momentum and uncorrelated steps V ≈ G/(1 − β²)) and 0 for a
# dead unit (G ≡ 0) whatever η, λ, β; below LIVE_RATIO the set has collapsed (docs/THEORY.md §7c).
LIVE_RATIO = 0.1
COLLAPSED_Q = 1e-3  # a set whose Q is below this share of its layer's 90th percentile has collapsed
RUN_LAYERS_AT_EQ = 0.75  # a run is at equilibrium when this share of its judged layers is
# A layer's symmetry is broken (its BN ε term, say) when the free-running exact prediction misses
# by more than this in median at the last row. Old errors decay with the recurrence, so in steady
# state the miss is about the relative shift of Q* that the violation causes: at 1e-2 it moves the
# angle by ≤ 0.5%, a tenth of ANGLE_TOL; above it the violation, not the theory, sets the angle.
# (Round-off alone leaves ≤ 1e-4 in float32, docs/THEORY.md §7a.)
EXACT_TOL = 1e-2
# The states of a layer (and of a run), in the order ties are broken.
EQ_STATES = ("not_relaxed", "symmetry_broken", "drifting", "off_equilibrium", "at_equilibrium", "collapsed")

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
class LayerEquilibrium:
    """One layer's scale sets over the equilibrium window; ratios are medians over live sets."""

    layer: int
    name: str  # the layer's name (the prefix of its set names)
    sets: int
    angle_eq: float  # Δ*
    relax_steps: float  # T_rel
    sets_live: int = 0
    q0_over_qstar: float = math.nan  # median Q_0/Q* (Q* from the second half's mean forcing)
    relaxed_after: float = math.nan  # first step the window may start at
    window_start: float = math.nan
    angle_ratio: float = math.nan  # median over live sets of RMS(angle_step)/Δ*
    angle_p10: float = math.nan  # its spread over live sets
    angle_p90: float = math.nan
    equilibrium_ratio: float = math.nan  # median of c·mean(forcing)/mean(Q) = Q*/Q
    norm_drift: float = math.nan  # median of 2·T_rel·d ln Q/dk
    exact_error: float = math.nan  # median exact-prediction error at the last row
    state: str = "n/a"  # one of EQ_STATES


@dataclass
class ScaleFit:
    angle_rms: float = math.nan  # angle_ratio·Δ*
    angle_eq: float = math.nan
    angle_ratio: float = math.nan  # median over judged layers of their live-set medians
    equilibrium_ratio: float = math.nan  # likewise, of c·mean(forcing)/mean(Q)
    norm_drift: float = math.nan  # likewise, of 2·T_rel·d ln Q/dk
    relax_steps: float = math.nan
    window_start: float = math.nan  # first step of the earliest layer window
    layers_at_equilibrium: int = 0
    layers_judged: int = 0  # layers with at least one live set, or not relaxed
    sets_live: int = 0
    sets_collapsed: int = 0
    status: str = "n/a"  # run_state of the layers | no_weight_decay | unsupported | skipped
    layers: list[LayerEquilibrium] = field(default_factory=list)
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
    """The measured quantity the predictions predict, and the error normaliser: the datasets the
    store names for the family (its file attributes <family>_measured and <family>_error_scale)."""
    traits = view.info.family_traits[family]
    norm = sum(view.matrix(family, d, idx) for d in traits.error_scale)
    return view.matrix(family, traits.measured, idx), norm


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
    r1, r2 = o.translation_rate, o.translation_fast_rate
    if o.translation_underdamped or r2 < 1e-12 or r2 >= r1:
        return 0.0
    return min(math.log(1e-3) / math.log(r2 / r1), last_step / 2)


def translation_fit(view: RunView, idx: np.ndarray, step: np.ndarray, o: Optim, dtype: str,
                    rate_formula=lambda o: o.translation_rate) -> TranslationFit:
    """Fit every set's decay factor and compare the median with rate_formula(o)."""
    fit = TranslationFit(rate_theory=rate_formula(o), underdamped=o.translation_underdamped,
                         period_steps=o.translation_period)
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
# scale: equilibrium, judged per layer on the angle over live sets (docs/THEORY.md §6, §7c)


def equilibrium_window(step: np.ndarray, needed: float, t_rel: float, min_rows: int = 10) -> tuple[int, str]:
    """First row of the averaging window [max(needed, last/2), last], or "not_relaxed".

    `needed` is the step from which the run may be relaxed (relaxed_after); the window must
    also span at least T_rel steps and min_rows rows.
    """
    last = float(step[-1])
    start = max(needed, last / 2)
    if last < needed or last - start < t_rel:
        return -1, "not_relaxed"
    row = int(np.searchsorted(step, start))
    if step.size - row < min_rows:
        return -1, "not_relaxed"
    return row, "ok"


def relaxed_after(t_rel: float, q0_over_qstar: float) -> float:
    """Steps after which a set may be at equilibrium: RELAXED_T_REL·T_rel, plus the first decay.

    A set that starts far above its equilibrium norm first loses ln(Q_0/Q*) at the memory rate
    2ηλ/(1 − β) = 1/(2T_rel) per step (docs/THEORY.md §6), i.e. in 2T_rel·ln(Q_0/Q*) steps.
    """
    excess = math.log(q0_over_qstar) if q0_over_qstar > 1 else 0.0
    return t_rel * (RELAXED_T_REL + 2 * excess)


def _slope(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least-squares slope of each column of y against x."""
    xc = x - x.mean()
    return (xc @ (y - y.mean(axis=0))) / (xc @ xc)


def median_finite(a: np.ndarray) -> float:
    """Median of the finite values (NaN if none)."""
    a = np.asarray(a, dtype=float)
    a = a[np.isfinite(a)]
    return float(np.median(a)) if a.size else math.nan


def live_sets(g_mean: np.ndarray, q_mean: np.ndarray, o: Optim) -> np.ndarray:
    """Sets of one layer whose mean gradient still drives them (LIVE_RATIO) and whose norm has
    not collapsed below COLLAPSED_Q of the layer's 90th percentile: a dying unit of a BatchNorm
    layer keeps a gradient of order 1/Q (scale invariance) while its norm decays to nothing."""
    with np.errstate(divide="ignore", invalid="ignore"):
        drive = o.effective_lr * g_mean / (2 * o.weight_decay * (1 - o.momentum) * q_mean)
    finite = q_mean[np.isfinite(q_mean)]
    big = float(np.quantile(finite, 0.9)) if finite.size else math.nan
    return (drive >= LIVE_RATIO) & (q_mean >= COLLAPSED_Q * big)


def _layer_state(angle_ratio: float, drift: float, exact_err: float) -> str:
    """The equilibrium state of one relaxed layer from its live-set medians."""
    if not exact_err <= EXACT_TOL:
        return "symmetry_broken"
    if abs(angle_ratio - 1) <= ANGLE_TOL:
        return "at_equilibrium"
    # Q drifting at rate d ln Q/dk biases the norm ratio by ~drift and the angle by ~drift/2.
    return "drifting" if abs(drift) / 2 > ANGLE_TOL else "off_equilibrium"


def _window_rows(row0: int, last: int, max_rows: int) -> np.ndarray:
    """Rows [row0, last) evenly strided (RunView reads a strided slab plus the last row)."""
    return row_selection(row0, last, max_rows)


def scale_layers(view: RunView, step_all: np.ndarray, o: Optim, max_rows: int) -> list[LayerEquilibrium]:
    """Every layer's equilibrium: window, live sets, medians of angle, norm ratio, drift, state."""
    t_rel, angle_eq, c = o.relax_steps, o.angle_eq, o.equilibrium_factor
    forcing = "velocity_sq" if o.heavy_ball else "grad_sq"
    last = step_all.size - 1  # angle and forcing are NaN on the final row (no update follows it)
    layers, names = view.set_layers("scale")
    q0 = view.matrix("scale", "scale_sq_norm", np.array([0]))[0]
    q_end = view.matrix("scale", "scale_sq_norm", np.array([last]))[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        exact_err = np.abs(view.matrix("scale", "pred_exact", np.array([last]))[0] - q_end) / \
            np.where(q_end > 0, q_end, 1.0)
    # Q* of each set from the forcing over the second half of the run, to place the window; sets
    # that have collapsed by then (Q* ≪ Q) would stretch it without end and are left out.
    half = _window_rows(last // 2, last, max_rows) if last > 1 else np.zeros(0, np.int64)
    if half.size:
        qstar_half = c * view.matrix("scale", forcing, half).mean(axis=0)
        q_half = view.matrix("scale", "scale_sq_norm", half).mean(axis=0)
        g_half = view.matrix("scale", "grad_sq", half).mean(axis=0)
    else:
        qstar_half = q_half = g_half = np.full(q0.shape, np.nan)
    out = []
    for layer in dict.fromkeys(layers.tolist()):
        cols = np.flatnonzero(layers == layer)
        res = LayerEquilibrium(layer=int(layer), name=names[cols[0]], sets=int(cols.size), angle_eq=angle_eq,
                               relax_steps=t_rel)
        out.append(res)
        use = cols[live_sets(g_half[cols], q_half[cols], o)]
        with np.errstate(divide="ignore", invalid="ignore"):
            res.q0_over_qstar = median_finite(q0[use] / qstar_half[use])
        res.relaxed_after = relaxed_after(t_rel, res.q0_over_qstar)
        row0, state = equilibrium_window(step_all[:last], res.relaxed_after, t_rel) if last > 1 else (-1, "not_relaxed")
        if row0 < 0:
            res.state = state
            continue
        idx = _window_rows(row0, last, max_rows)
        k = step_all[idx]
        q = view.matrix("scale", "scale_sq_norm", idx)[:, cols]
        f = view.matrix("scale", forcing, idx)[:, cols]
        ang = view.matrix("scale", "angle_step", idx)[:, cols]
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = c * f.mean(axis=0) / q.mean(axis=0)
            drift = 2 * t_rel * _slope(k, np.log(q))
        live = live_sets(view.matrix("scale", "grad_sq", idx)[:, cols].mean(axis=0), q.mean(axis=0), o)
        res.window_start, res.sets_live = float(k[0]), int(np.count_nonzero(live))
        if not live.any():
            res.state = "collapsed"
            continue
        rms = np.sqrt(np.mean(ang[:, live] ** 2, axis=0)) / angle_eq
        res.angle_ratio = median_finite(rms)
        res.angle_p10, res.angle_p90 = (float(np.quantile(rms, p)) for p in (0.1, 0.9))
        res.equilibrium_ratio = median_finite(ratio[live])
        res.norm_drift = median_finite(drift[live])
        res.exact_error = median_finite(exact_err[cols][live])
        res.state = _layer_state(res.angle_ratio, res.norm_drift, res.exact_error)
    return out


def run_state(layers: list[LayerEquilibrium]) -> str:
    """A run is at equilibrium when at least RUN_LAYERS_AT_EQ of its judged layers are; otherwise
    it takes the most common state of its layers (ties: the first in EQ_STATES)."""
    judged = [x.state for x in layers if x.state != "collapsed"]
    if not judged:
        return "collapsed" if layers else "n/a"
    if judged.count("at_equilibrium") >= RUN_LAYERS_AT_EQ * len(judged):
        return "at_equilibrium"
    others = [s for s in judged if s != "at_equilibrium"]
    return max(EQ_STATES, key=lambda s: (others.count(s), -EQ_STATES.index(s)))


def scale_fit(view: RunView, step_all: np.ndarray, o: Optim, max_rows: int) -> ScaleFit:
    fit = ScaleFit(angle_eq=o.angle_eq, relax_steps=o.relax_steps)
    if o.nesterov or o.decoupled:
        fit.status = "unsupported"
        return fit
    if o.weight_decay <= 0:
        fit.status = "no_weight_decay"
        return fit
    fit.layers = scale_layers(view, step_all, o, max_rows)
    fit.status = run_state(fit.layers)
    judged = [x for x in fit.layers if math.isfinite(x.angle_ratio)]
    fit.layers_at_equilibrium = sum(x.state == "at_equilibrium" for x in fit.layers)
    fit.layers_judged = sum(x.state != "collapsed" for x in fit.layers)
    fit.sets_live = sum(x.sets_live for x in fit.layers)
    fit.sets_collapsed = sum(x.sets - x.sets_live for x in fit.layers if math.isfinite(x.window_start))
    if judged:
        fit.angle_ratio = float(np.median([x.angle_ratio for x in judged]))
        fit.angle_rms = fit.angle_ratio * fit.angle_eq
        fit.equilibrium_ratio = float(np.median([x.equilibrium_ratio for x in judged]))
        fit.norm_drift = float(np.median([x.norm_drift for x in judged]))
        fit.window_start = min(x.window_start for x in judged)
    return fit


def scale_curves(view: RunView, idx: np.ndarray, step: np.ndarray, o: Optim, fit: ScaleFit) -> None:
    """Per row, the median angle over sets and the median equilibrium ratio (for the figure)."""
    if o.weight_decay <= 0 or fit.status in ("unsupported", "skipped"):
        return
    forcing = "velocity_sq" if o.heavy_ball else "grad_sq"
    with np.errstate(divide="ignore", invalid="ignore"):
        ang = view.matrix("scale", "angle_step", idx)
        ratio = o.equilibrium_factor * view.matrix("scale", forcing, idx) / \
            view.matrix("scale", "scale_sq_norm", idx)
    fit.step = step
    fit.angle_median = row_quantiles(ang, (0.5,))[0]
    fit.ratio_median = row_quantiles(ratio, (0.5,))[0]


# ---------------------------------------------------------------------------------------------
# order of accuracy in η across runs


def loglog_slope(lr: list[float], err: list[float], min_lr: int = 3) -> float:
    """Least-squares slope of ln(err) against ln(lr) over the positive, finite points; NaN with
    fewer than min_lr distinct lr (docs/THEORY.md §7d: order in η from ≥ 3 values)."""
    pts = [(x, y) for x, y in zip(lr, err) if x > 0 and y > 0 and math.isfinite(y)]
    if len({x for x, _ in pts}) < min_lr:
        return math.nan
    x, y = np.log([p[0] for p in pts]), np.log([p[1] for p in pts])
    return float(np.polyfit(x, y, 1)[0])
