"""Quantization-aware training methods for one phase mask: FP, PQ, STE, GS, PSQ and PSQ-LT.

Every method is an ``nn.Module`` (a ``Quantizer``) that owns the trainable parameters of one (N, N) mask:

- ``forward()`` → (N, N) phase in radians. In eval mode every method except ``fp`` returns exactly
  ``levels.index_to_phase(level_indices())`` (cast to the parameters' dtype).
- ``level_indices()`` → (N, N) int64, what is exported.
- ``start_epoch(epoch, total_epochs)`` and ``advance(step, steps_per_epoch, total_epochs)`` move the schedules
  (PSQ slope, GS temperature, PSQ-LT λ_e): schedules over the fraction of the run (the default, the same shape
  for any run length; see :mod:`quaton_fab.quant.schedules`) follow every optimiser step, the lab's epoch
  forms (``schedule = "epoch"``) follow the epochs.
- ``param_groups()`` → the optimiser parameter groups of the mask (PSQ-LT's κ gets its own learning rate).
- ``regularizer()`` → scalar (PSQ-LT's ½·λ_e·κ², zero otherwise).
- ``settings()`` → JSON-able dict; ``make_quantizer(s["method"], levels, shape, **s)`` rebuilds the method.
- ``status()`` → live values for a progress display.

All schedule state (epoch, slope, temperature, λ_e, the Gumbel noise counter) lives in registered buffers, so
``state_dict()`` restores it. The methods, schedules and choices are explained in docs/QUANTIZERS.md.
"""

from __future__ import annotations

import logging
import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from quaton_fab.errors import QuatonFabError
from quaton_fab.quant.levels import TWO_PI, LevelSet
from quaton_fab.quant.schedules import (
    SCHEDULES,
    kappa_for_k_delta,
    psq_lt_start_k_delta,
    ramp_fraction,
    run_fraction,
    run_step_doubling,
)

logger = logging.getLogger(__name__)

METHODS = ("fp", "pq", "ste", "gs", "psq", "psq-lt")

#: Sigmoid tails beyond k·|φ − c| > TAIL are dropped when the periodic staircase is truncated (σ(−20) ≈ 2e-9).
TAIL = 20.0
#: At most this many 2π periods of thresholds are added on each side of the wrap window (very small slopes).
MAX_PAD_PERIODS = 16


class QuantizerError(QuatonFabError):
    """A quantizer was given an invalid method, setting or argument (one-line message naming it)."""


# ============================================================================================= schedules
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


# ============================================================================================= transfer functions
def soft_staircase(
    phi: torch.Tensor,
    base: float,
    thresholds: torch.Tensor,
    steps: torch.Tensor,
    slope: torch.Tensor | float,
) -> torch.Tensor:
    """Sum of sigmoids: ``base + Σ_i Δ_i·[σ(k(φ − c_i)) − 1(c_i < base)]``, elementwise in φ (radians).

    ``thresholds`` c_i and ``steps`` Δ_i have shape (m,) (rad); ``slope`` k (rad⁻¹) is a float or a scalar
    tensor (it may carry a gradient). Thresholds below ``base`` count as already passed (their step is
    subtracted back), which lets a periodic staircase include the steps just below its window. Written as
    ``s·Δ·σ(s·x)`` with ``s = ±1`` so neither branch loses precision. Returns a tensor shaped like ``phi``.
    """
    sign = torch.where(thresholds < base, -1.0, 1.0).to(phi.dtype)
    x = slope * (phi.unsqueeze(-1) - thresholds)
    return base + (sign * steps * torch.sigmoid(sign * x)).sum(dim=-1)


def _periodic_thresholds(levels: LevelSet, slope_value: float) -> tuple[np.ndarray, np.ndarray]:
    """Thresholds and steps (rad) of a periodic level set, repeated every 2π as far as the sigmoid tails reach.

    Keeps every threshold within ``TAIL/k`` of the wrap window [φ_0, φ_0 + 2π), so the truncated staircase
    is continuous across the wrap to ~σ(−TAIL). Shapes (m,), (m,).
    """
    reach_rad = TAIL / slope_value
    periods = min(MAX_PAD_PERIODS, math.ceil(reach_rad / TWO_PI))
    shifts = TWO_PI * np.arange(-periods, periods + 1, dtype=np.float64)
    c = (levels.thresholds[None, :] + shifts[:, None]).reshape(-1)
    d = np.tile(levels.steps, len(shifts))
    lo = levels.phases[0]
    keep = (c > lo - reach_rad) & (c < lo + TWO_PI + reach_rad)
    return c[keep], d[keep]


def psq_transfer(phi: torch.Tensor, levels: LevelSet, slope: torch.Tensor | float, alpha: float = 0.01) -> torch.Tensor:
    """PSQ's soft transfer Q(φ) (radians, same shape as ``phi``) at slope k (rad⁻¹; float or scalar tensor).

    ``range`` sets (lab form): ``Q = lo + Σ_{i=0}^{n−2} Δ_i·σ(k(φ − c_i)) + α·(φ − clamp(φ, lo, hi))``,
    the last term giving out-of-range latents the restoring slope α (the lab adds α·φ outside the range; the
    clamp form has the same gradient and no jump at lo/hi).

    Periodic sets (``circle``, ``list``): φ is wrapped into the window [φ_0, φ_0 + 2π), whose edges sit on
    level 0, and the staircase includes the step from the top level back to level 0 + 2π and its 2π repeats
    as far as the sigmoid tails reach, so Q(φ + 2π) ≡ Q(φ) (mod 2π) and the soft curve is continuous across
    the wrap. Outputs near φ_0 + 2π are level 0 (same phase). No α term: no latent is out of range.
    """
    k = float(slope.detach()) if isinstance(slope, torch.Tensor) else float(slope)
    if not (k > 0 and math.isfinite(k)):
        raise QuantizerError(f"PSQ slope must be a positive finite number (rad⁻¹), got {k!r}")
    as_t = {"dtype": phi.dtype, "device": phi.device}
    if not levels.periodic:
        lo, hi = float(levels.phases[0]), float(levels.phases[-1])
        c = torch.as_tensor(levels.thresholds, **as_t)
        d = torch.as_tensor(levels.steps, **as_t)
        return soft_staircase(phi, lo, c, d, slope) + alpha * (phi - torch.clamp(phi, lo, hi))
    lo = float(levels.phases[0])
    wrapped = lo + torch.remainder(phi - lo, TWO_PI)
    c_np, d_np = _periodic_thresholds(levels, k)
    return soft_staircase(wrapped, lo, torch.as_tensor(c_np, **as_t), torch.as_tensor(d_np, **as_t), slope)


def straight_through(hard: torch.Tensor, surrogate: torch.Tensor) -> torch.Tensor:
    """Value of ``hard`` exactly, gradient of ``surrogate`` (``surrogate − surrogate.detach()`` is exactly 0)."""
    return hard + (surrogate - surrogate.detach())


def gumbel_noise(shape: Sequence[int], seed: int, *, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Standard Gumbel noise −log(−log U) of ``shape`` from a private generator seeded with ``seed``."""
    gen = torch.Generator(device=device)
    gen.manual_seed(int(seed) % (2**63))
    u = torch.rand(tuple(shape), generator=gen, dtype=dtype, device=device)
    tiny = torch.finfo(dtype).tiny
    return -torch.log(-torch.log(u.clamp(min=tiny, max=1.0 - torch.finfo(dtype).eps)))


def gumbel_softmax_st(logits: torch.Tensor, noise: torch.Tensor, tau: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Hard Gumbel-softmax sample and its soft relaxation, over the last dim (levels).

    Returns ``(index, soft)``: ``index = argmax(logits + noise)`` (int64, shape ``logits.shape[:-1]``) and
    ``soft = softmax((logits + noise)/τ)`` (shape of ``logits``). As τ → 0, ``soft`` tends to the one-hot of
    ``index``.
    """
    perturbed = logits + noise
    return torch.argmax(perturbed, dim=-1), torch.softmax(perturbed / tau, dim=-1)


def level_offsets(levels: LevelSet) -> np.ndarray:
    """(n, n) matrix D[j, i] = φ_i − φ_j (rad), wrapped into [−π, π) for periodic sets.

    GS's soft phase around the sampled level j is ``φ_j + Σ_i p_i·D[j, i]``; for ``range`` sets this equals
    the lab's ``Σ_i p_i·φ_i``, for periodic sets it mixes levels along the short way round the circle.
    """
    d = levels.phases[None, :] - levels.phases[:, None]
    if levels.periodic:
        d = np.mod(d + math.pi, TWO_PI) - math.pi
    return d


# ============================================================================================= configs
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


# ============================================================================================= base class
def _check_shape(shape: Any) -> tuple[int, int]:
    """``shape`` as (N, N) positive ints (an int N is accepted as (N, N))."""
    if isinstance(shape, (int, np.integer)) and not isinstance(shape, bool):
        shape = (shape, shape)
    try:
        dims = tuple(shape)
    except TypeError:
        raise QuantizerError(f"mask shape must be (N, N) positive integers, got {shape!r}") from None
    if len(dims) != 2 or any(isinstance(x, bool) or not isinstance(x, (int, np.integer)) or x < 1 for x in dims):
        raise QuantizerError(f"mask shape must be (N, N) positive integers, got {shape!r}")
    return int(dims[0]), int(dims[1])


def _uniform_latent(levels: LevelSet, shape: tuple[int, int], generator: torch.Generator | None) -> torch.Tensor:
    """Latent phases (rad) drawn uniformly over the level range: [lo, hi] for ``range``, [φ_0, φ_0 + 2π) else."""
    lo = float(levels.phases[0])
    width = float(levels.phases[-1]) - lo if not levels.periodic else TWO_PI
    device = generator.device if generator is not None else None
    u = torch.rand(shape, generator=generator, dtype=torch.float64, device=device)
    return (lo + width * u).to(torch.get_default_dtype())


class Quantizer(nn.Module, ABC):
    """One phase mask's trainable parameters and its quantization method (see module docstring)."""

    method: ClassVar[str]
    config_type: ClassVar[type] = NoSettings
    #: settings() keys that describe rather than configure; make_quantizer accepts and ignores them.
    info_keys: ClassVar[tuple[str, ...]] = ()

    def __init__(self, levels: LevelSet, shape: Any, config: Any = None) -> None:
        super().__init__()
        if not isinstance(levels, LevelSet):
            raise QuantizerError(f"levels must be a LevelSet, got {type(levels).__name__}")
        self.levels = levels
        self.shape = _check_shape(shape)
        self.config = self.config_type() if config is None else config
        if not isinstance(self.config, self.config_type):
            raise QuantizerError(f"{self.method} needs a {self.config_type.__name__}, got {type(config).__name__}")
        self.register_buffer("epoch", torch.zeros((), dtype=torch.int64))

    @abstractmethod
    def forward(self) -> torch.Tensor:
        """(N, N) phase in radians."""

    @abstractmethod
    def level_indices(self) -> torch.Tensor:
        """(N, N) int64 level index per pixel (what is exported)."""

    def _param_dtype_device(self) -> tuple[torch.dtype, torch.device]:
        p = next(self.parameters())
        return p.dtype, p.device

    def hard_phase(self) -> torch.Tensor:
        """Exact level phases of ``level_indices()``, (N, N), in the parameters' dtype; no gradient."""
        dtype, device = self._param_dtype_device()
        return self.levels.index_to_phase(self.level_indices(), dtype=dtype, device=device)

    def start_epoch(self, epoch: int, total_epochs: int) -> None:
        """Advance the schedules to ``epoch`` (counted from 0) of ``total_epochs``."""
        if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)) or epoch < 0:
            raise QuantizerError(f"epoch must be an integer ≥ 0, got {epoch!r}")
        if isinstance(total_epochs, bool) or not isinstance(total_epochs, (int, np.integer)) or total_epochs < 1:
            raise QuantizerError(f"total_epochs must be an integer ≥ 1, got {total_epochs!r}")
        self.epoch.fill_(int(epoch))
        self._update_schedules(int(epoch), int(total_epochs))
        self._update_run_schedules(int(epoch), 1, int(total_epochs))

    def advance(self, step: int, steps_per_epoch: int, total_epochs: int) -> None:
        """Move the run-fraction schedules to global optimiser step ``step`` (0-based) of a run of
        ``total_epochs × steps_per_epoch`` steps. The trainer calls it before every step (after
        ``start_epoch``); without it the run-fraction schedules move once per epoch (one step per epoch).
        """
        for name, value, minimum in (("step", step, 0), ("steps_per_epoch", steps_per_epoch, 1),
                                     ("total_epochs", total_epochs, 1)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
                raise QuantizerError(f"{name} must be an integer ≥ {minimum}, got {value!r}")
        self._update_run_schedules(int(step), int(steps_per_epoch), int(total_epochs))

    def _update_schedules(self, epoch: int, total_epochs: int) -> None:
        """Set the per-epoch schedule buffers for this epoch (no schedule by default)."""

    def _update_run_schedules(self, step: int, steps_per_epoch: int, total_epochs: int) -> None:
        """Set the run-fraction schedule buffers for this optimiser step (no schedule by default)."""

    def param_groups(self) -> list[dict[str, Any]]:
        """Optimiser parameter groups: ``{"params": [...], "lr_scale": s}`` (learning rate × s, following the
        run's learning-rate schedule), or ``{"params": [...], "fixed_lr": lr, "follow_schedule": bool}`` (a
        learning rate of its own). Default: every parameter in one group at ``lr_scale()``.
        """
        return [{"params": list(self.parameters()), "lr_scale": self.lr_scale()}]

    def lr_scale(self) -> float:
        """Multiplier of the optimiser's learning rate for this quantizer's parameters (1 unless configured)."""
        return float(getattr(self.config, "lr_scale", 1.0))

    def regularizer(self) -> torch.Tensor:
        """Scalar term to add to the loss (zero unless the method defines one)."""
        dtype, device = self._param_dtype_device()
        return torch.zeros((), dtype=dtype, device=device)

    def settings(self) -> dict[str, Any]:
        """JSON-able method description; ``make_quantizer(s["method"], levels, shape, **s)`` rebuilds it.

        ``state`` records the schedule/learned values at the time of the call (e.g. PSQ-LT's learned κ and
        slope, the final GS temperature); it describes the trained mask and is ignored when rebuilding.
        """
        state = {key: float(value) for key, value in self.status().items()}
        return {"method": self.method, **asdict(self.config), "state": state}

    def status(self) -> dict[str, float]:
        """Live schedule values for a progress display."""
        return {}

    def extra_repr(self) -> str:
        return f"method={self.method!r}, shape={self.shape}, levels={self.levels.kind}:{self.levels.n}"


# ============================================================================================= methods
class _LatentPhaseQuantizer(Quantizer):
    """Base of the methods whose parameter is one latent phase per pixel (rad), initialised uniformly."""

    def __init__(
        self, levels: LevelSet, shape: Any, config: Any = None, *, generator: torch.Generator | None = None
    ) -> None:
        super().__init__(levels, shape, config)
        self.latent = nn.Parameter(_uniform_latent(levels, self.shape, generator))


class FPQuantizer(_LatentPhaseQuantizer):
    """Full precision: the raw phase, unconstrained, in training and eval (the upper bound).

    Not exportable as such: ``level_indices()`` gives the PQ mapping (closest level on the circle), and
    ``settings()`` carries an ``export_warning``.
    """

    method = "fp"
    info_keys = ("export_warning",)

    def forward(self) -> torch.Tensor:
        return self.latent.clone()

    def level_indices(self) -> torch.Tensor:
        return self.levels.circular_nearest_index(self.latent)

    def settings(self) -> dict[str, Any]:
        return {
            **super().settings(),
            "export_warning": "fp phases are not levels; exported as PQ (closest level on the circle)",
        }


class PQQuantizer(_LatentPhaseQuantizer):
    """Post-training quantization: trains the raw phase; eval/export wrap it mod 2π and take the nearest level.

    "Nearest" is on the circle for every level-set kind (for ``range`` sets this is the smallest phase
    error, not a clamp).
    """

    method = "pq"

    def forward(self) -> torch.Tensor:
        if self.training:
            return self.latent.clone()
        return self.hard_phase()

    def level_indices(self) -> torch.Tensor:
        return self.levels.circular_nearest_index(self.latent)


class STEQuantizer(_LatentPhaseQuantizer):
    """Straight-through estimator: hard nearest level forward (train and eval), identity gradient backward."""

    method = "ste"

    def forward(self) -> torch.Tensor:
        hard = self.hard_phase()
        return straight_through(hard, self.latent) if self.training else hard

    def level_indices(self) -> torch.Tensor:
        return self.levels.nearest_index(self.latent)


class _SigmoidQuantizer(_LatentPhaseQuantizer):
    """Shared PSQ / PSQ-LT machinery: latent phase, FP warm-up, soft staircase in training, hard in eval."""

    info_keys = ("k_delta_at_start",)

    @abstractmethod
    def slope(self) -> torch.Tensor:
        """Current slope k (rad⁻¹), scalar tensor."""

    def in_warmup(self) -> bool:
        """True during the full-precision warm-up epochs (epoch < quant_after)."""
        return int(self.epoch) < self.config.quant_after

    def forward(self) -> torch.Tensor:
        if not self.training:
            return self.hard_phase()
        if self.in_warmup():
            return self.latent.clone()
        return psq_transfer(self.latent, self.levels, self.slope(), self.config.alpha)

    def level_indices(self) -> torch.Tensor:
        return self.levels.nearest_index(self.latent)

    def status(self) -> dict[str, float]:
        k = float(self.slope().detach())
        return {"slope": k, "k_delta": k * self.levels.min_step, "fp_warmup": float(self.in_warmup())}

    @abstractmethod
    def start_k_delta(self) -> float:
        """Sharpness k·Δ_min (dimensionless) at the first quantized step: PSQ and PSQ-LT in the same units."""

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), "k_delta_at_start": self.start_k_delta()}


class PSQQuantizer(_SigmoidQuantizer):
    """Progressive sigmoid quantization: soft staircase whose slope rises geometrically over the epochs."""

    method = "psq"
    config_type = PSQConfig

    def __init__(
        self, levels: LevelSet, shape: Any, config: Any = None, *, generator: torch.Generator | None = None
    ) -> None:
        super().__init__(levels, shape, config, generator=generator)
        self.k_delta_start = self._start_sharpness()
        self.register_buffer("k_delta", torch.tensor(self.k_delta_start, dtype=torch.float64))

    def start_k_delta(self) -> float:
        return self.k_delta_start

    def _start_sharpness(self) -> float:
        """k·Δ_min of the first quantized step (``"psq-lt"``: PSQ-LT's default start on this level set)."""
        if self.config.k_delta_start != "psq-lt":
            return float(self.config.k_delta_start)
        lt = PSQLTConfig()
        return psq_lt_start_k_delta(lt.kappa_init, self.levels.min_step, lt.epsilon, relative=False)

    def _update_schedules(self, epoch: int, total_epochs: int) -> None:
        c = self.config
        if c.schedule == "epoch":
            self.k_delta.fill_(geometric_ramp(epoch, total_epochs, self.k_delta_start, c.k_delta_end, c.quant_after))

    def _update_run_schedules(self, step: int, steps_per_epoch: int, total_epochs: int) -> None:
        c = self.config
        if c.schedule == "run":
            t = ramp_fraction(step, total_epochs * steps_per_epoch, c.quant_after * steps_per_epoch)
            self.k_delta.fill_(geometric(self.k_delta_start, c.k_delta_end, t))

    def slope(self) -> torch.Tensor:
        dtype, _ = self._param_dtype_device()
        return (self.k_delta / self.levels.min_step).to(dtype)


class PSQLTQuantizer(_SigmoidQuantizer):
    """PSQ with a learnable slope per mask, k = 1/(|κ| + ε), and the regulariser ½·λ_e·κ² pushing k up."""

    method = "psq-lt"
    config_type = PSQLTConfig

    def __init__(
        self, levels: LevelSet, shape: Any, config: Any = None, *, generator: torch.Generator | None = None
    ) -> None:
        super().__init__(levels, shape, config, generator=generator)
        self.kappa = nn.Parameter(torch.tensor(self.initial_kappa(), dtype=torch.get_default_dtype()))
        self.register_buffer("reg_weight", torch.tensor(self.config.lambda0, dtype=torch.float64))

    def initial_kappa(self) -> float:
        """κ₀: ``kappa_init``, or the κ that starts at the sharpness ``k_delta_start`` (k·Δ_min)."""
        c = self.config
        if c.k_delta_start is None:
            return c.kappa_init
        k_delta = PSQConfig().k_delta_start if c.k_delta_start == "psq" else float(c.k_delta_start)
        try:
            return kappa_for_k_delta(k_delta, self.levels.min_step, c.epsilon, c.slope_units == "relative")
        except ValueError as exc:
            raise QuantizerError(f"psq-lt setting k_delta_start: {exc}") from None

    def start_k_delta(self) -> float:
        c = self.config
        return psq_lt_start_k_delta(self.initial_kappa(), self.levels.min_step, c.epsilon, c.slope_units == "relative")

    def _update_schedules(self, epoch: int, total_epochs: int) -> None:
        c = self.config
        if c.reg_schedule == "epoch":
            self.reg_weight.fill_(step_doubling(epoch, c.lambda0, c.reg_every, c.reg_factor))

    def _update_run_schedules(self, step: int, steps_per_epoch: int, total_epochs: int) -> None:
        c = self.config
        if c.reg_schedule == "run":
            p = run_fraction(step, total_epochs * steps_per_epoch)
            self.reg_weight.fill_(run_step_doubling(p, c.lambda0, c.reg_every_fraction, c.reg_factor))

    def param_groups(self) -> list[dict[str, Any]]:
        """The latent phases at the run's learning rate; κ in a group of its own at ``kappa_lr`` (if set)."""
        c = self.config
        if c.kappa_lr is None:
            return super().param_groups()
        return [
            {"params": [self.latent], "lr_scale": self.lr_scale()},
            {"params": [self.kappa], "fixed_lr": c.kappa_lr, "follow_schedule": c.kappa_lr_schedule == "follow"},
        ]

    def slope(self) -> torch.Tensor:
        k = 1.0 / (self.kappa.abs() + self.config.epsilon)
        return k / self.levels.min_step if self.config.slope_units == "relative" else k

    def regularizer(self) -> torch.Tensor:
        return 0.5 * self.reg_weight.to(self.kappa.dtype) * self.kappa**2

    def status(self) -> dict[str, float]:
        # |κ| (the slope depends on it alone): a signed mean over masks would hide masks of opposite sign.
        return {**super().status(), "kappa_abs": abs(float(self.kappa.detach())), "reg_weight": float(self.reg_weight)}


class GSQuantizer(Quantizer):
    """Straight-through Gumbel-softmax: one logit per level per pixel; hard sample forward, soft backward.

    Training draws fresh Gumbel noise at every forward from a private generator seeded with
    ``noise_seed + noise_step`` (both buffers), so seeded runs repeat and a checkpoint resumes the noise
    stream. Eval uses the argmax of the logits, never noise.
    """

    method = "gs"
    config_type = GSConfig

    def __init__(
        self, levels: LevelSet, shape: Any, config: Any = None, *, generator: torch.Generator | None = None
    ) -> None:
        super().__init__(levels, shape, config)
        device = generator.device if generator is not None else None
        logits = torch.randn((*self.shape, levels.n), generator=generator, dtype=torch.float64, device=device)
        self.logits = nn.Parameter(logits.to(torch.get_default_dtype()))
        seed = torch.randint(0, 2**62, (), generator=generator, device=device)
        self.register_buffer("noise_seed", seed.to(torch.int64).cpu())
        self.register_buffer("noise_step", torch.zeros((), dtype=torch.int64))
        self.register_buffer("temperature", torch.tensor(self.config.tau_start, dtype=torch.float64))

    def _update_schedules(self, epoch: int, total_epochs: int) -> None:
        c = self.config
        if c.schedule == "epoch":
            self.temperature.fill_(geometric_ramp(epoch, total_epochs, c.tau_start, c.tau_end))

    def _update_run_schedules(self, step: int, steps_per_epoch: int, total_epochs: int) -> None:
        c = self.config
        if c.schedule == "run":
            t = ramp_fraction(step, total_epochs * steps_per_epoch)
            self.temperature.fill_(geometric(c.tau_start, c.tau_end, t))

    def forward(self) -> torch.Tensor:
        if not self.training:
            return self.hard_phase()
        seed = int(self.noise_seed) + int(self.noise_step)
        self.noise_step += 1
        noise = gumbel_noise(self.logits.shape, seed, dtype=self.logits.dtype, device=self.logits.device)
        index, soft = gumbel_softmax_st(self.logits, noise, float(self.temperature))
        hard = self.levels.index_to_phase(index, dtype=self.logits.dtype, device=self.logits.device)
        offsets = torch.as_tensor(level_offsets(self.levels), dtype=soft.dtype, device=soft.device)[index]
        return straight_through(hard, (soft * offsets).sum(dim=-1))

    def level_indices(self) -> torch.Tensor:
        return torch.argmax(self.logits.detach(), dim=-1)

    def status(self) -> dict[str, float]:
        return {"temperature": float(self.temperature)}


_CLASSES: Mapping[str, type[Quantizer]] = {
    cls.method: cls for cls in (FPQuantizer, PQQuantizer, STEQuantizer, GSQuantizer, PSQQuantizer, PSQLTQuantizer)
}


def _normalise_method(method: Any) -> str:
    """Canonical method name ("PSQ_LT" → "psq-lt"), or QuantizerError."""
    name = str(method).strip().lower().replace("_", "-") if isinstance(method, str) else None
    if name not in _CLASSES:
        raise QuantizerError(f"unknown quantization method {method!r} (expected one of {', '.join(METHODS)})")
    return name


def make_quantizer(
    method: str,
    levels: LevelSet,
    shape: Any,
    /,
    *,
    generator: torch.Generator | None = None,
    **settings: Any,
) -> Quantizer:
    """Build the quantizer ``method`` (one of METHODS) for an (N, N) mask on ``levels``.

    ``settings`` are the method's hyper-parameters (see the config dataclasses); a whole ``settings()`` dict
    may be passed back, including its ``method`` key. ``generator`` seeds the initial parameters (and GS's
    noise seed); without it torch's global RNG is used.
    """
    name = _normalise_method(method)
    cls = _CLASSES[name]
    given = dict(settings)
    stated = given.pop("method", name)
    if _normalise_method(stated) != name:
        raise QuantizerError(f"settings are for method {stated!r}, not {name!r}")
    for key in (*cls.info_keys, "state"):
        given.pop(key, None)
    allowed = [f.name for f in fields(cls.config_type)]
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        expected = ", ".join(allowed) if allowed else "none"
        raise QuantizerError(f"unknown setting {unknown[0]!r} for method {name!r} (expected: {expected})")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise QuantizerError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    return cls(levels, shape, cls.config_type(**given), generator=generator)
