"""One run's optimizer settings and the closed forms its fits are held against, both read from the
run's attributes. The closed forms are computed once, by nmech (src/nmech/theory/closed_forms.cpp),
and stored with the run (docs/STORE.md, "Run attributes"): nothing here restates a formula."""
from __future__ import annotations

import math
from dataclasses import dataclass

NAN = math.nan


@dataclass(frozen=True)
class Optim:
    """lr, weight_decay, momentum, dampening (η, λ, β, τ), the variant flags of one run and the
    closed forms the store wrote for them (docs/THEORY.md §4.1, §6)."""

    lr: float
    weight_decay: float
    momentum: float = 0.0
    dampening: float = 0.0
    nesterov: bool = False
    decoupled: bool = False
    angle_eq: float = NAN  # Δ*
    relax_steps: float = NAN  # T_rel
    equilibrium_factor: float = NAN  # c in Q* = c·mean(forcing)
    translation_rate: float = NAN  # |r_+|, the decay factor per step of a translation sum
    translation_fast_rate: float = NAN  # |r_−|
    translation_period: float = NAN  # 2π/|arg r_+|: inf for a positive real root, 2 for a negative one

    @staticmethod
    def from_attrs(a: dict) -> "Optim":
        def num(k: str, default: float = NAN) -> float:
            return float(a.get(k, default))

        return Optim(num("lr"), num("weight_decay", 0.0), num("momentum", 0.0), num("dampening", 0.0),
                     bool(a.get("nesterov", 0)), bool(a.get("decoupled_weight_decay", 0)),
                     num("angle_eq"), num("relax_steps"), num("equilibrium_factor"), num("translation_rate"),
                     num("translation_fast_rate"), num("translation_period"))

    @property
    def heavy_ball(self) -> bool:
        return self.momentum > 0

    @property
    def effective_lr(self) -> float:
        """η' = η(1 − τ): heavy ball with dampening τ is heavy ball in u = v/(1 − τ) at η'
        (docs/THEORY.md §5.2b); LibTorch ignores τ without momentum."""
        return self.lr * (1 - self.dampening) if self.heavy_ball else self.lr

    @property
    def translation_underdamped(self) -> bool:
        """S_k oscillates: the roots of its recurrence are complex, so its period is finite and more
        than the 2 steps of a sign flip."""
        return 2 < self.translation_period < math.inf
