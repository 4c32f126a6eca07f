"""Fitted figures of summary.csv against closed forms computed here, independently of the package.

Tolerances
- Translation decay: the fitted exponent ln r_fit must match ln r within TOL_RATE = 1% (relative).
  The measured sums are float32 sums of ~10 parameters; their round-off (~1e-7 of Σ|θ| per step)
  moves a 400-step log-linear fit by ~1e-5 relative, and the fit starts after the fast root's share
  is below 1e-3 (momentum), which biases the exponent by < 0.2%. Observed: ≤ 4e-5. A formula off by
  a factor 2 in ηλ (or one that ignores momentum) misses by 50% or more, so 1% has teeth.
- Equilibrium (docs/THEORY.md §6, §7c): the grid's runs are 8–16 T_rel long and still learning, so their
  states are checked against their definitions and their per-layer figures recomputed from the
  store; the angle against Δ* is asserted on the longer runs of test_sweep_store.py (TOL_EQ).
"""
from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest

from nmech_analysis import fits, theory

TOL_RATE = 0.01
TOL_EQ = 0.10


@pytest.fixture(scope="module")
def rows(report_dir: Path) -> list[dict[str, str]]:
    with open(report_dir / "summary.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def hp(row: dict[str, str]) -> tuple[float, float, float]:
    return float(row["lr"]), float(row["weight_decay"]), float(row["momentum"])


def r_plus(eta: float, lam: float, beta: float) -> float:
    """Modulus of the larger root of r² − (1 + β − ηλ)r + β = 0 (β = 0: 1 − ηλ)."""
    b = 1 + beta - eta * lam
    disc = b * b - 4 * beta
    return (b + math.sqrt(disc)) / 2 if disc >= 0 else math.sqrt(beta)


def right_rate(eta: float, lam: float, beta: float) -> float:
    return 1 - eta * lam if beta == 0 else r_plus(eta, lam, beta)


def exponent_error(row: dict[str, str], rate: float) -> float:
    return abs(math.log(float(row["translation_rate_fit"])) / math.log(rate) - 1)


def done(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return [r for r in rows if r["status"] == "done"]


def test_every_translation_rate_matches_its_formula(rows):
    assert len(done(rows)) == 9
    for r in done(rows):
        eta, lam, beta = hp(r)
        assert int(r["translation_sets_fitted"]) >= 30, r["run"]  # 32 columns + a zero bias sum
        err = exponent_error(r, right_rate(eta, lam, beta))
        assert err <= TOL_RATE, (r["run"], r["translation_rate_fit"], right_rate(eta, lam, beta))
        assert float(r["translation_rate_theory"]) == pytest.approx(right_rate(eta, lam, beta), rel=1e-12)


def test_a_wrong_rate_formula_fails_the_check(rows):
    """Teeth: 1 − 2ηλ, and for momentum also 1 − ηλ (momentum ignored), must be rejected."""
    for r in done(rows):
        eta, lam, beta = hp(r)
        wrong = [1 - 2 * eta * lam] + ([1 - eta * lam] if beta > 0 else [])
        for rate in wrong:
            assert exponent_error(r, rate) > TOL_RATE, (r["run"], rate)


def test_package_rate_check_has_teeth(stores):
    """The package's own check, given a deliberately wrong formula, fails; given theory's, passes."""
    from nmech_analysis.summary import analyse
    results = analyse([str(stores["grid_lr0.1_b16_m0.0"].path), str(stores["grid_lr0.1_b32_m0.9"].path)])
    for res in results:
        o = theory.Optim.from_attrs(res.info.attrs)
        assert fits.check_rate(res.translation, o, lambda p: p.translation_rate, TOL_RATE)
        assert not fits.check_rate(res.translation, o, lambda p: 1 - 2 * p.lr * p.weight_decay, TOL_RATE)


def test_oscillation_is_measured_where_theory_says_underdamped(rows):
    for r in done(rows):
        eta, lam, beta = hp(r)
        under = (1 + beta - eta * lam) ** 2 < 4 * beta
        assert (r["translation_underdamped"] == "True") == under, r["run"]
        assert r["translation_oscillation"] == ("yes" if under else "no"), r["run"]
    assert any(r["translation_oscillation"] == "yes" for r in done(rows))  # the osc run


def _f(row: dict[str, str], key: str) -> float:
    return float(row[key]) if row[key] not in ("", "nan") else math.nan


def test_equilibrium_states_follow_their_definitions(rows):
    """Every finished run's equilibrium state is one of EQ_STATES; runs shorter than 5·T_rel are
    not relaxed and carry no equilibrium figures; the theory columns match their formulas."""
    for r in done(rows):
        eta, lam, beta = hp(r)
        t_rel = (1 - beta) / (4 * eta * lam)
        assert _f(r, "scale_relax_steps") == pytest.approx(t_rel, rel=1e-12)
        assert _f(r, "scale_angle_eq") == pytest.approx(math.sqrt(2 * eta * lam / (1 + beta)), rel=1e-12)
        status = r["scale_equilibrium"]
        assert status in fits.EQ_STATES, r["run"]
        if int(r["steps"]) < fits.RELAXED_T_REL * t_rel:
            assert status == "not_relaxed", r["run"]
            for k in ("scale_angle_rms", "scale_angle_ratio", "scale_equilibrium_ratio", "scale_norm_drift"):
                assert math.isnan(_f(r, k)), (r["run"], k)
        layers = int(r["scale_layers_judged"])
        assert 0 <= int(r["scale_layers_at_equilibrium"]) <= layers <= 3, r["run"]  # fc1, bn1's group, fc2
    assert any(r["scale_equilibrium"] == "not_relaxed" for r in done(rows))
    assert any(r["scale_equilibrium"] != "not_relaxed" for r in done(rows))


def test_layer_equilibrium_recomputed_from_the_store(stores):
    """A layer's window, live sets, RMS angle / Δ*, equilibrium ratio and drift, recomputed here
    with h5py from the store's rows (docs/THEORY.md §6), equal the package's to 1e-9."""
    import h5py
    import numpy as np

    from nmech_analysis.summary import analyse
    made = stores["grid_lr0.1_b32_m0.9"]
    (res,) = analyse([str(made.path)], max_rows=100000)
    eta, lam, beta = 0.1, 0.01, 0.9
    checked = 0
    with h5py.File(made.path, "r") as f:
        run = f["runs"][next(iter(f["runs"]))]
        n = int(run["progress"][0]["rows_committed"])
        layer_of = f[f"models/{run.attrs['model']}/sets/scale/layer"][:]
        step = run["step"][:n]
        for lay in res.scale.layers:
            if not math.isfinite(lay.angle_ratio):
                continue
            cols = np.flatnonzero(layer_of == lay.layer)
            rows_ = (step >= lay.window_start) & (np.arange(n) < n - 1)
            q = run["scale/scale_sq_norm"][:n][rows_][:, cols]
            v = run["scale/velocity_sq"][:n][rows_][:, cols]
            g = run["scale/grad_sq"][:n][rows_][:, cols]
            ang = run["scale/angle_step"][:n][rows_][:, cols]
            live = eta * g.mean(0) / (2 * lam * (1 - beta) * q.mean(0)) >= fits.LIVE_RATIO
            assert int(live.sum()) == lay.sets_live
            rms = np.sqrt((ang[:, live] ** 2).mean(0)) / math.sqrt(2 * eta * lam / (1 + beta))
            ratio = eta * (1 + beta) * v.mean(0) / (2 * lam * q.mean(0))
            k = step[rows_]
            drift = 2 * (1 - beta) / (4 * eta * lam) * np.polyfit(k, np.log(q[:, live]), 1)[0]
            assert lay.angle_ratio == pytest.approx(float(np.median(rms)), rel=1e-9)
            assert lay.equilibrium_ratio == pytest.approx(float(np.median(ratio[live])), rel=1e-9)
            assert lay.norm_drift == pytest.approx(float(np.median(drift)), rel=1e-6, abs=1e-9)
            checked += 1
    assert checked >= 2


def test_fits_skip_diverged_and_unfinished(rows):
    by_status = {r["status"]: r for r in rows}
    assert set(by_status) == {"done", "diverged", "running"}
    div, run = by_status["diverged"], by_status["running"]
    assert int(div["diverged_at"]) >= 0
    assert "diverged at step" in div["fit_note"]
    assert "running" in run["fit_note"] and "30 of" in run["fit_note"]
    for r in (div, run):
        assert r["scale_equilibrium"] == "skipped"
        for k in ("translation_rate_fit", "translation_rate_ratio", "scale_angle_rms", "scale_equilibrium_ratio"):
            assert math.isnan(_f(r, k)), (r["status"], k)


def test_dampening_runs_on_the_effective_learning_rate_in_the_stored_closed_forms(tmp_path):
    """docs/THEORY.md §5.2b: with dampening τ the closed forms run on η' = η(1 − τ). The store's
    Δ*, T_rel and equilibrium factor (written by nmech, read by the analysis) equal the forms on η'
    and differ from those on η."""
    from conftest import make_stores
    made = make_stores({"damp": {"lr": "0.1", "momentum": "0.9", "dampening": "0.3", "weight_decay": "0.01",
                                 "steps": "20"}}, tmp_path)["damp"]
    from nmech_analysis.reader import list_runs
    (info,) = list_runs([str(made.path)])
    o = theory.Optim.from_attrs(info.attrs)
    assert o.effective_lr == pytest.approx(0.07, rel=1e-15)
    assert o.angle_eq == pytest.approx(math.sqrt(2 * 0.07 * 0.01 / 1.9), rel=1e-14)
    assert o.relax_steps == pytest.approx(0.1 / (4 * 0.07 * 0.01), rel=1e-14)
    assert o.equilibrium_factor == pytest.approx(0.07 * 1.9 / (2 * 0.01 * 0.7 ** 2), rel=1e-14)
    # teeth: the same forms on η instead of η' miss by far more than rounding
    assert abs(math.sqrt(2 * 0.1 * 0.01 / 1.9) / o.angle_eq - 1) > 0.1
    assert abs(0.1 / (4 * 0.1 * 0.01) / o.relax_steps - 1) > 0.1
    assert abs(0.1 * 1.9 / (2 * 0.01) / o.equilibrium_factor - 1) > 0.1


def test_the_stored_translation_roots_follow_the_recurrence_of_each_variant(tmp_path):
    """The run attributes translation_rate, _fast_rate and _period (docs/STORE.md) are the roots of
    each optimizer's own translation recurrence (docs/THEORY.md §4.1), written by nmech."""
    from conftest import make_stores
    runs = {"hb": {"lr": "0.1", "momentum": "0.99", "weight_decay": "0.01"},
            "nesterov": {"lr": "0.1", "momentum": "0.9", "nesterov": "true", "weight_decay": "0.01"},
            "decoupled": {"lr": "0.1", "momentum": "0.9", "decoupled_weight_decay": "true", "weight_decay": "5"}}
    made = make_stores({k: dict(v, steps="2") for k, v in runs.items()}, tmp_path)
    from nmech_analysis.reader import list_runs
    o = {k: theory.Optim.from_attrs(list_runs([str(m.path)])[0].attrs) for k, m in made.items()}
    # heavy ball, β = 0.99, ηλ = 1e-3: complex roots of r² − (1 + β − ηλ)r + β, modulus √β
    phase = math.acos((1.99 - 1e-3) / (2 * math.sqrt(0.99)))
    assert o["hb"].translation_underdamped and o["hb"].translation_period == pytest.approx(2 * math.pi / phase, rel=1e-12)
    assert o["hb"].translation_rate == pytest.approx(math.sqrt(0.99), rel=1e-14)
    # Nesterov: S' = (1 − ηλ(1 + β))S − ηβ²m, m' = βm + λS; real roots with product β(1 − ηλ) + ηβ²λ
    tr, det = 1 - 1e-3 * 1.9 + 0.9, 0.9 * (1 - 1e-3 * 1.9) + 0.1 * 0.81 * 0.01
    big = (tr + math.sqrt(tr * tr - 4 * det)) / 2
    assert not o["nesterov"].translation_underdamped
    assert o["nesterov"].translation_rate == pytest.approx(big, rel=1e-12)
    assert o["nesterov"].translation_fast_rate == pytest.approx(det / big, rel=1e-12)
    # decoupled weight decay: Σv stays 0, so S decays by 1 − ηλ = 0.5 although β = 0.9 is larger
    assert o["decoupled"].translation_rate == pytest.approx(0.5, rel=1e-15)
    assert abs(o["decoupled"].translation_rate - 0.9) > 0.1  # teeth: not the unexcited mode β
