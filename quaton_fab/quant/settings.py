"""The quantizers' settings: one frozen dataclass per method, each value checked when it is built.

``make_quantizer(method, levels, shape, **settings)`` builds the method's dataclass from keyword settings, so
a wrong value fails early with a one-line :class:`QuantizerError` naming the method and the setting. The
meaning of each setting is in the dataclass docstrings and docs/QUANTIZERS.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from quaton_fab.errors import QuatonFabError
from quaton_fab.quant.schedules import SCHEDULES


class QuantizerError(QuatonFabError):
    """A quantizer was given an invalid method, setting or argument (one-line message naming it)."""


def _as_float(method: str, name: str, value: Any, *, positive: bool = False, nonneg: bool = False) -> float:
    """``value`` as a finite float (checked positive / non-negative), else QuantizerError naming it."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise QuantizerError(f"{method} setting {name} must be a number, got {value!r}") from None
    if isinstance(value, bool) or not math.isfinite(x) or (positive and x <= 0) or (nonneg and x < 0):
        need = "a positive" if positive else "a non-negative" if nonneg else "a finite"
        raise QuantizerError(f"{method} setting {name} must be {need} number, got {value!r}")
    return x


def _as_int(method: str, name: str, value: Any, *, minimum: int) -> int:
    """``value`` as an int ≥ ``minimum``, else QuantizerError naming it."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise QuantizerError(f"{method} setting {name} must be an integer ≥ {minimum}, got {value!r}")
    return int(value)


def _as_schedule(method: str, name: str, value: Any) -> str:
    """``value`` as one of SCHEDULES, else QuantizerError naming it."""
    if value not in SCHEDULES:
        raise QuantizerError(f"{method} setting {name} must be one of {', '.join(SCHEDULES)}, got {value!r}")
    return str(value)


@dataclass(frozen=True)
class NoSettings:
    """FP, PQ and STE have no hyper-parameters."""


@dataclass(frozen=True)
class PSQConfig:
    """PSQ hyper-parameters.

    quant_after: full-precision warm-up epochs (epochs 0 … quant_after−1 train the raw phase).
    k_delta_start, k_delta_end: dimensionless sharpness k·Δ_min at the first quantized step and at the end;
        the slope k (rad⁻¹) = (k·Δ)/Δ_min rises geometrically between them. ``k_delta_start = "psq-lt"``
        starts where PSQ-LT's default starts (lab κ₀ = 0.05, ε = 0.005: k·Δ_min = Δ_min/0.055).
    schedule: "run" (default: the ramp spans the optimiser steps after the warm-up, updated every step, the
        same shape for any run length) or "epoch" (one value per epoch, the earlier form).
    alpha: restoring slope for latents outside [lo, hi] (``range`` sets only; lab 0.01).
    """

    quant_after: int = 0
    k_delta_start: float | str = 2.0
    k_delta_end: float = 30.0
    schedule: str = "run"
    alpha: float = 0.01

    def __post_init__(self) -> None:
        object.__setattr__(self, "quant_after", _as_int("psq", "quant_after", self.quant_after, minimum=0))
        if self.k_delta_start != "psq-lt":
            object.__setattr__(self, "k_delta_start", _as_float("psq", "k_delta_start", self.k_delta_start,
                                                                positive=True))
        object.__setattr__(self, "k_delta_end", _as_float("psq", "k_delta_end", self.k_delta_end, positive=True))
        object.__setattr__(self, "schedule", _as_schedule("psq", "schedule", self.schedule))
        object.__setattr__(self, "alpha", _as_float("psq", "alpha", self.alpha, nonneg=True))


@dataclass(frozen=True)
class PSQLTConfig:
    """PSQ-LT hyper-parameters (defaults from the lab code).

    kappa_init, epsilon: the learnable slope is k = 1/(|κ| + ε) with κ₀ = kappa_init (k ≤ 1/ε).
    k_delta_start: None (κ₀ = kappa_init), a sharpness k·Δ_min to start at (κ₀ is derived from it), or "psq"
        (start where PSQ's default starts, k·Δ = 2) — so a comparison with PSQ is not about the start.
    slope_units: "absolute" (lab: k in rad⁻¹) or "relative" (k·Δ_min = 1/(|κ| + ε), same sharpness for any n).
    lambda0, reg_factor: the regulariser ½·λ·κ² with λ = lambda0·reg_factor^j.
    reg_schedule: "run" (default: j = ⌊p/reg_every_fraction⌋ with p the elapsed fraction of the run, updated
        every step; the lab's 50-epoch schedule "×2 every 5 epochs" is reg_every_fraction = 0.1) or "epoch"
        (j = ⌊e/reg_every⌋, the lab's form, which only has its shape in 50-epoch runs).
    kappa_lr: Adam learning rate of κ (its own parameter group); None: κ shares the phases' learning rate and
        its schedule (the earlier behaviour). Default 0.01: an Adam step moves κ by about its learning rate,
        so 0.01 is 20 % of κ₀ = 0.05, the lab's relation (lr 0.01 for phases and κ alike).
    kappa_lr_schedule: "constant" (default: the phase learning-rate schedule, e.g. cosine, does not touch κ)
        or "follow" (κ's rate is scaled by the same schedule).
    quant_after, alpha: as for PSQ.
    """

    quant_after: int = 0
    kappa_init: float = 0.05
    epsilon: float = 0.005
    k_delta_start: float | str | None = None
    slope_units: str = "absolute"
    lambda0: float = 0.01
    reg_schedule: str = "run"
    reg_every_fraction: float = 0.1
    reg_every: int = 5
    reg_factor: float = 2.0
    kappa_lr: float | None = 0.01
    kappa_lr_schedule: str = "constant"
    alpha: float = 0.01

    def __post_init__(self) -> None:
        m = "psq-lt"
        object.__setattr__(self, "quant_after", _as_int(m, "quant_after", self.quant_after, minimum=0))
        object.__setattr__(self, "reg_every", _as_int(m, "reg_every", self.reg_every, minimum=1))
        object.__setattr__(self, "kappa_init", _as_float(m, "kappa_init", self.kappa_init))
        for name in ("epsilon", "reg_factor", "reg_every_fraction"):
            object.__setattr__(self, name, _as_float(m, name, getattr(self, name), positive=True))
        for name in ("lambda0", "alpha"):
            object.__setattr__(self, name, _as_float(m, name, getattr(self, name), nonneg=True))
        if self.kappa_lr is not None:
            object.__setattr__(self, "kappa_lr", _as_float(m, "kappa_lr", self.kappa_lr, positive=True))
        if self.k_delta_start not in (None, "psq"):
            object.__setattr__(self, "k_delta_start", _as_float(m, "k_delta_start", self.k_delta_start,
                                                                positive=True))
        object.__setattr__(self, "reg_schedule", _as_schedule(m, "reg_schedule", self.reg_schedule))
        if self.slope_units not in ("absolute", "relative"):
            raise QuantizerError(
                f"psq-lt setting slope_units must be 'absolute' or 'relative', got {self.slope_units!r}"
            )
        if self.kappa_lr_schedule not in ("constant", "follow"):
            raise QuantizerError(
                f"psq-lt setting kappa_lr_schedule must be 'constant' or 'follow', got {self.kappa_lr_schedule!r}"
            )


@dataclass(frozen=True)
class GSConfig:
    """Gumbel-softmax hyper-parameters: temperature τ falls geometrically from tau_start to tau_end.

    schedule: "run" (default: over the optimiser steps of the run, updated every step) or "epoch" (per epoch).

    lr_scale: learning-rate multiplier for the logits. Logits are scores, not radians: with the phase learning
        rate (0.05) Adam moves them too slowly to flip levels in a short run (quickstart: 13.9 % test accuracy
        at ×1), so the trainer gives them ``lr × lr_scale``.
    """

    tau_start: float = 2.0
    tau_end: float = 0.5
    schedule: str = "run"
    lr_scale: float = 4.0

    def __post_init__(self) -> None:
        for name in ("tau_start", "tau_end", "lr_scale"):
            object.__setattr__(self, name, _as_float("gs", name, getattr(self, name), positive=True))
        object.__setattr__(self, "schedule", _as_schedule("gs", "schedule", self.schedule))
