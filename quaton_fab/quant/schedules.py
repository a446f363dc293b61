"""Schedules over the fraction of the run, and the sharpness units PSQ and PSQ-LT share.

One idea: where a schedule stands at a given optimiser step, independently of how long the run is. The lab's
schedules count epochs (PSQ-LT: λ doubles every 5 epochs, written for 50-epoch runs), so the same settings mean
a different method in a 3-epoch run and a 50-epoch run. Here a schedule is a function of the position in the
run, measured in optimiser steps:

* the **elapsed fraction** ``p = step / total`` ∈ [0, 1) (``total = epochs × steps per epoch``): at epoch ``e`` of
  ``E`` the lab's "every 5 epochs of 50" is "every 0.1 of the run", so ``⌊p/0.1⌋ = ⌊e/5⌋`` exactly when the
  run has 50 epochs (PSQ-LT's λ);
* the **ramp fraction** ``t`` ∈ [0, 1] of the steps after a warm-up: 0 at the first quantized step, 1 at the
  last step of the run (PSQ's sharpness, GS's temperature: they end where they are meant to end).

Sharpness is compared in the dimensionless ``k·Δ_min`` (slope × smallest level step). PSQ starts at
``k·Δ = 2`` for every level count; PSQ-LT's lab form (``k = 1/(|κ| + ε)`` in rad⁻¹, κ₀ = 0.05) starts at
``k·Δ_min = Δ_min/0.055``, 28.6 for 4 levels on the circle. :func:`kappa_for_k_delta` gives the κ₀ that starts
PSQ-LT at any ``k·Δ`` (e.g. where PSQ starts), :func:`psq_lt_start_k_delta` the reverse.
"""

from __future__ import annotations

import math

__all__ = [
    "SCHEDULES",
    "run_fraction",
    "ramp_fraction",
    "run_step_doubling",
    "kappa_for_k_delta",
    "psq_lt_start_k_delta",
    "geometric_ramp",
    "geometric",
    "step_doubling",
]

#: ``"run"``: over the fraction of the run (default); ``"epoch"``: the lab's per-epoch form.
SCHEDULES = ("run", "epoch")


def run_fraction(step: int, total_steps: int) -> float:
    """Elapsed fraction ``step / total_steps`` of the run (dimensionless, in [0, 1) for steps inside the run)."""
    return float(step) / float(max(1, total_steps))


def ramp_fraction(step: int, total_steps: int, warmup_steps: int = 0) -> float:
    """Position on a ramp that starts at the first step after ``warmup_steps`` and ends at the last step.

    0 during the warm-up and at its first step after it, 1 at step ``total_steps − 1`` (and later); linear in
    between. With no step after the warm-up, 1.
    """
    span = total_steps - 1 - warmup_steps
    if step < warmup_steps:
        return 0.0
    return 1.0 if span <= 0 else min(1.0, (step - warmup_steps) / span)


def run_step_doubling(fraction: float, base: float, every_fraction: float, factor: float) -> float:
    """``base · factor^⌊fraction/every_fraction⌋``: PSQ-LT's λ over the run (lab shape: 0.01, ×2 every 0.1).

    ``fraction`` is the elapsed fraction of the run (:func:`run_fraction`). A tiny tolerance keeps exact
    multiples (0.3/0.1 in floating point) on the step they name.
    """
    return float(base * factor ** math.floor(fraction / every_fraction + 1e-9))


def kappa_for_k_delta(k_delta: float, min_step_rad: float, epsilon: float, relative: bool) -> float:
    """κ₀ at which PSQ-LT's slope ``k = 1/(|κ| + ε)`` has sharpness ``k·Δ_min = k_delta``.

    ``relative``: the slope is already in units of 1/Δ_min (``k·Δ_min = 1/(|κ| + ε)``). Raises ValueError when
    the sharpness is beyond PSQ-LT's cap (``k·Δ_min < Δ_min/ε``, or ``1/ε`` in relative units).
    """
    scale = 1.0 if relative else float(min_step_rad)
    cap = scale / epsilon
    if not (0 < k_delta < cap):
        raise ValueError(f"k·Δ = {k_delta:g} is beyond PSQ-LT's range (0, {cap:g}) for ε = {epsilon:g}")
    return scale / k_delta - epsilon


def psq_lt_start_k_delta(kappa_init: float, min_step_rad: float, epsilon: float, relative: bool) -> float:
    """PSQ-LT's starting sharpness ``k·Δ_min`` for κ₀ (the inverse of :func:`kappa_for_k_delta`)."""
    scale = 1.0 if relative else float(min_step_rad)
    return scale / (abs(kappa_init) + epsilon)


def geometric_ramp(epoch: int, total_epochs: int, start: float, end: float, warmup: int = 0) -> float:
    """Value of a geometric ramp from ``start`` to ``end`` over the epochs after ``warmup`` (dimensionless).

    Epochs are counted from 0. Epochs ``< warmup`` and the first ramp epoch give ``start``; the last epoch
    (``total_epochs − 1``) and any later one give ``end``; in between, ``start·(end/start)^t`` with
    ``t = (epoch − warmup)/(total_epochs − 1 − warmup)``. With no epoch left after the warm-up, ``end``.
    """
    span = total_epochs - 1 - warmup
    if epoch < warmup:
        return float(start)
    t = 1.0 if span <= 0 else min(1.0, (epoch - warmup) / span)
    return float(start * (end / start) ** t)


def geometric(start: float, end: float, t: float) -> float:
    """``start·(end/start)^t`` for t ∈ [0, 1] (a geometric ramp at fraction t)."""
    return float(start * (end / start) ** t)


def step_doubling(epoch: int, base: float, every: int, factor: float) -> float:
    """``base · factor^⌊epoch/every⌋`` (PSQ-LT's λ_e, lab: base 0.01, factor 2, every 5)."""
    return float(base * factor ** (epoch // every))
