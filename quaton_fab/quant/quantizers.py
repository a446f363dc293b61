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

The schedules are in :mod:`quaton_fab.quant.schedules`, the settings in :mod:`quaton_fab.quant.settings`, the
transfer functions in :mod:`quaton_fab.quant.transfer` and the base class in :mod:`quaton_fab.quant.base`;
their public names are importable from here too.
"""

from __future__ import annotations

import logging
from abc import abstractmethod
from collections.abc import Mapping
from dataclasses import fields
from typing import Any

import torch
from torch import nn

from quaton_fab.quant.base import Quantizer, _initial_latent, check_init
from quaton_fab.quant.levels import LevelSet
from quaton_fab.quant.schedules import (
    geometric,
    geometric_ramp,
    kappa_for_k_delta,
    psq_lt_start_k_delta,
    ramp_fraction,
    run_fraction,
    run_step_doubling,
    step_doubling,
)
from quaton_fab.quant.settings import GSConfig, NoSettings, PSQConfig, PSQLTConfig, QuantizerError
from quaton_fab.quant.transfer import (
    MAX_PAD_PERIODS,
    TAIL,
    gumbel_noise,
    gumbel_softmax_st,
    level_offsets,
    psq_transfer,
    soft_staircase,
    straight_through,
)
from quaton_fab.vocabulary import METHODS

__all__ = [
    "METHODS", "MAX_PAD_PERIODS", "TAIL",
    "Quantizer", "QuantizerError", "make_quantizer",
    "FPQuantizer", "PQQuantizer", "STEQuantizer", "GSQuantizer", "PSQQuantizer", "PSQLTQuantizer",
    "NoSettings", "PSQConfig", "PSQLTConfig", "GSConfig",
    "geometric", "geometric_ramp", "step_doubling",
    "gumbel_noise", "gumbel_softmax_st", "level_offsets", "psq_transfer", "soft_staircase", "straight_through",
]

logger = logging.getLogger(__name__)

#: GS with ``init="flat"``: level 0's starting logit, the others 0 (level 0 drawn with probability e²/(e² + n − 1)).
GS_FLAT_LOGIT = 2.0



class _LatentPhaseQuantizer(Quantizer):
    """Base of the methods whose parameter is one latent phase per pixel (rad), initialised uniformly or flat."""

    def __init__(
        self,
        levels: LevelSet,
        shape: Any,
        config: Any = None,
        *,
        generator: torch.Generator | None = None,
        init: str = "uniform",
    ) -> None:
        super().__init__(levels, shape, config)
        self.latent = nn.Parameter(_initial_latent(levels, self.shape, generator, init))


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

    def __init__(self, levels: LevelSet, shape: Any, config: Any = None, **start: Any) -> None:
        """``start``: ``generator`` and ``init``, as :class:`_LatentPhaseQuantizer`."""
        super().__init__(levels, shape, config, **start)
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

    def __init__(self, levels: LevelSet, shape: Any, config: Any = None, **start: Any) -> None:
        """``start``: ``generator`` and ``init``, as :class:`_LatentPhaseQuantizer`."""
        super().__init__(levels, shape, config, **start)
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
        self,
        levels: LevelSet,
        shape: Any,
        config: Any = None,
        *,
        generator: torch.Generator | None = None,
        init: str = "uniform",
    ) -> None:
        super().__init__(levels, shape, config)
        device = generator.device if generator is not None else None
        logits = torch.randn((*self.shape, levels.n), generator=generator, dtype=torch.float64, device=device)
        if check_init(init) == "flat":
            logits = torch.zeros_like(logits)
            logits[..., 0] = GS_FLAT_LOGIT  # level 0 the most likely everywhere; the argmax mask is flat
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
    init: str = "uniform",
    **settings: Any,
) -> Quantizer:
    """Build the quantizer ``method`` (one of METHODS) for an (N, N) mask on ``levels``.

    ``settings`` are the method's hyper-parameters (see the config dataclasses); a whole ``settings()`` dict
    may be passed back, including its ``method`` key. ``generator`` seeds the initial parameters (and GS's
    noise seed); without it torch's global RNG is used. ``init`` (one of MASK_INITS) starts the mask with random
    phases over the level range (``"uniform"``) or flat at level 0 (``"flat"``; GS: level 0 the most likely).
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
    return cls(levels, shape, cls.config_type(**given), generator=generator, init=init)
