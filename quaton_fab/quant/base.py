"""The quantizer base class: one phase mask's trainable parameters, its schedule state and its interface.

The interface (``forward``, ``level_indices``, ``start_epoch``/``advance``, ``param_groups``, ``regularizer``,
``settings``, ``status``) is described in :mod:`quaton_fab.quant.quantizers`, which holds the methods.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from quaton_fab.quant.levels import TWO_PI, LevelSet
from quaton_fab.quant.settings import NoSettings, QuantizerError
from quaton_fab.vocabulary import MASK_INITS


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


def check_init(init: Any) -> str:
    """``init`` if it is one of MASK_INITS, else QuantizerError naming it."""
    if init not in MASK_INITS:
        raise QuantizerError(f"mask init must be one of {', '.join(MASK_INITS)}, got {init!r}")
    return init


def _initial_latent(
    levels: LevelSet, shape: tuple[int, int], generator: torch.Generator | None, init: str
) -> torch.Tensor:
    """(N, N) starting latent phases (rad): uniform over the level range, or ``"flat"``: all at level 0's phase."""
    if check_init(init) == "flat":
        device = generator.device if generator is not None else None
        return torch.full(shape, float(levels.phases[0]), dtype=torch.get_default_dtype(), device=device)
    return _uniform_latent(levels, shape, generator)


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
