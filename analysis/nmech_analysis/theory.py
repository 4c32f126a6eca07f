"""Closed forms the fits are held against (docs/THEORY.md §4.1, §5.2, §6), per run's optimizer settings."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Optim:
    """lr, weight_decay, momentum, dampening (η, λ, β, τ) and the variant flags of one run."""

    lr: float
    weight_decay: float
    momentum: float = 0.0
    dampening: float = 0.0
    nesterov: bool = False
    decoupled: bool = False

    @staticmethod
    def from_attrs(a: dict) -> "Optim":
        return Optim(float(a.get("lr", math.nan)), float(a.get("weight_decay", 0.0)),
                     float(a.get("momentum", 0.0)), float(a.get("dampening", 0.0)),
                     bool(a.get("nesterov", 0)), bool(a.get("decoupled_weight_decay", 0)))

    @property
    def heavy_ball(self) -> bool:
        return self.momentum > 0

    @property
    def effective_lr(self) -> float:
        """η' = η(1 − τ): heavy ball with dampening τ is heavy ball in u = v/(1 − τ) at η'
        (docs/THEORY.md §5.2b); LibTorch ignores τ without momentum."""
        return self.lr * (1 - self.dampening) if self.heavy_ball else self.lr


def translation_matrix(o: Optim) -> np.ndarray:
    """One step of the translation sum (docs/THEORY.md §4.1) on the state (S_k, m_k), m = Σ_A v.

    Heavy ball: m_{k+1} = βm_k + νλS_k, S_{k+1} = S_k − ηm_{k+1} (ν = 1 − τ after the first
    step); Nesterov: S_{k+1} = S_k − η(λS_k + βm_{k+1}); decoupled weight decay: Σ_A v ≡ 0.
    """
    eta, lam, beta = o.lr, o.weight_decay, o.momentum
    if o.decoupled:
        return np.array([[1.0 - eta * lam, 0.0], [0.0, 0.0]])
    if o.nesterov:
        return np.array([[1.0 - eta * lam * (1.0 + beta), -eta * beta * beta], [lam, beta]])
    nu = 1.0 - o.dampening
    return np.array([[1.0 - eta * nu * lam, -eta * beta], [nu * lam, beta]])


def translation_roots(o: Optim) -> tuple[complex, complex]:
    """Roots of the translation recurrence, larger modulus first (SGD: 1 − ηλ and 0)."""
    ev = np.linalg.eigvals(translation_matrix(o))
    ev = sorted(ev, key=lambda z: (-abs(z), -z.real))
    return complex(ev[0]), complex(ev[1])


def translation_rate(o: Optim) -> float:
    """Decay factor per step of |S_k|: 1 − ηλ (SGD), else |r_+| (r² − (1 + β − ηλ)r + β = 0)."""
    return abs(translation_roots(o)[0])


def translation_underdamped(o: Optim) -> bool:
    """S_k oscillates iff the roots are complex: (1 + β − ηλ)² < 4β for heavy ball."""
    r1, _ = translation_roots(o)
    return abs(r1.imag) > 1e-15


def translation_period(o: Optim) -> float:
    """Steps per oscillation of S_k (inf when overdamped)."""
    r1, _ = translation_roots(o)
    phase = abs(math.atan2(r1.imag, r1.real))
    return 2 * math.pi / phase if phase > 1e-15 else math.inf


def angle_eq(o: Optim) -> float:
    """Δ* = √(2η'λ/(1 + β)) (docs/THEORY.md §6; η' = η(1 − τ), §5.2b)."""
    return math.sqrt(2 * o.effective_lr * o.weight_decay / (1 + o.momentum))


def relax_steps(o: Optim) -> float:
    """T_rel = (1 − β)/(4η'λ) (docs/THEORY.md §6)."""
    denom = 4 * o.effective_lr * o.weight_decay
    return (1 - o.momentum) / denom if denom > 0 else math.inf


def equilibrium_factor(o: Optim) -> float:
    """c with equilibrium_ratio = c·mean(forcing)/mean(Q).

    Heavy ball: η'U(1 + β)/(2λQ) with U = V/(1 − τ)², i.e. ηV(1 + β)/(2λ(1 − τ)Q); SGD:
    ηG/((2λ − ηλ²)Q) (docs/THEORY.md §6, §8).
    """
    eta, lam, beta = o.lr, o.weight_decay, o.momentum
    if o.heavy_ball:
        return eta * (1 + beta) / (2 * lam * (1 - o.dampening))
    return eta / (2 * lam - eta * lam * lam)
