"""What a run trains, built from its configuration: the level set, the relief, the sampling, the geometry, the
quantizers, the encoding and the task.

Pure functions of a :class:`~quaton_fab.training.config.TrainConfig` (lengths in metres, phases in radians);
the trainer calls them in :meth:`~quaton_fab.training.trainer.Trainer.build`, the benchmarks call them alone.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from quaton_fab.data import DatasetSplits, Encoding
from quaton_fab.optics.network import DiffractiveNetwork, Geometry, rule_oversample
from quaton_fab.optics.perturbation import ErrorMagnitudes
from quaton_fab.optics.relief import Relief
from quaton_fab.printing.level_table import printable_phases
from quaton_fab.printing.materials import parse_medium
from quaton_fab.printing.resolve import build_level_table, resolve_print
from quaton_fab.printing.resolve import resolve_base_m as resolve_print_base_m
from quaton_fab.quant import LevelSet, Quantizer, make_quantizer
from quaton_fab.tasks import ClassificationTask, QPITask
from quaton_fab.training.config import ConfigError, TrainConfig

__all__ = [
    "RunParts",
    "resolve_n_medium",
    "build_level_set",
    "resolve_base_m",
    "resolve_oversample",
    "build_relief",
    "make_geometry",
    "make_quantizers",
    "make_encoding",
    "make_task",
    "vaccination_of",
]

log = logging.getLogger(__name__)


@dataclass
class RunParts:
    """Everything :meth:`~quaton_fab.training.trainer.Trainer.build` makes for one run, on ``device``."""

    network: DiffractiveNetwork
    task: torch.nn.Module
    encoding: Encoding
    levels: LevelSet
    fabrication: dict[str, Any] | None
    data: DatasetSplits
    device: torch.device


def resolve_n_medium(config: TrainConfig) -> float:
    """Index of the medium around the masks: ``config.medium`` (name or number) if given, else ``n_medium``.

    Raises:
        ConfigError: both are given and disagree.
    """
    if config.medium is None:
        return config.n_medium

    n = parse_medium(config.medium, config.wavelength_m)[1]
    if config.n_medium != 1.0 and abs(config.n_medium - n) > 1e-9:
        raise ConfigError(f"medium {config.medium!r} (n = {n:.4f}) contradicts n_medium = {config.n_medium}")
    return n


def build_level_set(config: TrainConfig) -> tuple[LevelSet, dict[str, Any] | None]:
    """The level set the run trains on, and the fabrication assumptions it came from (if any).

    Default: ``levels`` phases uniform on the circle. ``level_range_rad`` gives the range form (both ends
    included), ``level_phases_rad`` an explicit list. With ``material`` (and optionally ``z_step_m``), the
    phases are replaced by those of the printable heights, so the design and the print agree by construction.
    """
    if config.level_phases_rad is not None:
        levels = LevelSet.explicit(list(config.level_phases_rad))
    elif config.level_range_rad is not None:
        lo, hi = config.level_range_rad
        levels = LevelSet.range(config.levels, lo, hi)
    else:
        levels = LevelSet.uniform(config.levels)
    if config.effective_material is None:
        return levels, None

    n_medium = resolve_n_medium(config)  # the medium light propagates in is the one around the masks
    choices = resolve_print(None, wavelength_m=config.wavelength_m, n_medium=n_medium,
                            material=config.effective_material, base_m=config.base_m, z_step_m=config.z_step_m)
    material = choices.material
    medium_name = parse_medium(config.medium, config.wavelength_m)[0] if config.medium else f"n={n_medium:g}"
    phases = np.asarray(levels.phases, dtype=np.float64)
    if config.z_step_m is not None:
        phases = np.asarray(
            printable_phases(phases, material, config.wavelength_m, n_medium, config.z_step_m), dtype=np.float64
        )
        levels = LevelSet.ladder(phases.tolist()) if config.model == "relief" else LevelSet.explicit(phases.tolist())
    if config.model == "relief" and levels.periodic:
        # A printed relief's levels are heights: nothing wraps from the top level back to level 0. A periodic
        # soft staircase would pass a pixel from the top level to level 0 through every intermediate height
        # (every other phase), so the relief model trains on the same levels as a ladder.
        levels = LevelSet.ladder(levels.phases.tolist())
    table = build_level_table(levels.phases, config.wavelength_m, choices)  # built once for the run
    fabrication = {
        "material": material.name,
        "n_material": float(table.n_material),
        "medium": medium_name,
        "n_medium": float(n_medium),
        "z_step_m": config.z_step_m,
        "base_m": choices.base_m,
        "level_heights_m": [float(h) for h in table.snapped_height_m],
        "note": "level phases are those of the printable (snapped) heights" if config.z_step_m else
        "level phases are the nominal ones; heights follow from the material",
    }
    return levels, fabrication


def resolve_base_m(config: TrainConfig) -> float:
    """Base slab thickness (m) of the printed masks: ``base_m``, else the fabrication default (2 µm)."""

    return resolve_print_base_m(config.base_m)


def resolve_oversample(config: TrainConfig, n_medium: float | None = None) -> tuple[int, int]:
    """``(s, rule)``: the run's oversampling and the sampling rule's minimum ``ceil(2·p·n_med/λ0)``.

    Raises:
        ConfigError: an explicit ``oversample`` below the rule without ``allow_undersampling``.
    """
    n = resolve_n_medium(config) if n_medium is None else n_medium
    rule = rule_oversample(config.pitch_m, config.wavelength_m, n)
    if config.oversample == "auto":
        return rule, rule
    s = int(config.oversample)
    if s < rule and not config.allow_undersampling:
        raise ConfigError(
            f"oversample {s} is below the sampling rule (s >= {rule} for pitch {config.pitch_m * 1e6:g} µm, "
            f"λ0 {config.wavelength_m * 1e9:g} nm, n_med {n:g}): light the printed pixels send into steep angles "
            "would be dropped; use --oversample auto, or --allow-undersampling to accept it"
        )
    if s < rule:
        log.warning(
            "oversample %d is below the sampling rule (s >= %d): the simulation drops propagating light; "
            "the printed part will not behave like this model",
            s,
            rule,
        )
    return s, rule


def build_relief(config: TrainConfig, levels: LevelSet, fabrication: dict[str, Any] | None) -> Relief | None:
    """The printed relief the run trains through (relief model), or None (thin model)."""
    if config.model != "relief":
        return None
    if fabrication is None:  # pragma: no cover - effective_material is never None for the relief model
        raise ConfigError("the relief model needs a material")
    return Relief(
        n_material=fabrication["n_material"],
        level_phases_rad=tuple(float(p) for p in levels.phases),
        level_heights_m=tuple(fabrication["level_heights_m"]),
        periodic=levels.periodic,
        base_m=fabrication["base_m"],
        max_slice_m=config.max_slice_m,
        orientation=config.orientation,
        continuous=config.method == "fp",
    )


def make_geometry(config: TrainConfig, n_medium: float, oversample: int) -> Geometry:
    """The network's geometry (lengths in metres) for the run's medium index and oversampling."""
    cfg = config
    return Geometry(
        wavelength_m=cfg.wavelength_m,
        neurons=cfg.neurons,
        pitch_m=cfg.pitch_m,
        layers=cfg.layers,
        d_in_m=cfg.d_in,
        spacing_m=cfg.spacing_m,
        d_out_m=cfg.d_out,
        n_medium=n_medium,
        oversample=oversample,
        padding=cfg.padding,
    )


def make_quantizers(config: TrainConfig, levels: LevelSet, generator: torch.Generator) -> list[Quantizer]:
    """One (neurons, neurons) quantizer per layer, initialised in order from ``generator`` (``mask_init``)."""
    cfg = config
    settings = cfg.quantizer.get(cfg.method, {})
    return [
        make_quantizer(
            cfg.method, levels, (cfg.neurons, cfg.neurons), generator=generator, init=cfg.mask_init, **settings
        )
        for _ in range(cfg.layers)
    ]


def make_encoding(config: TrainConfig, data: DatasetSplits) -> Encoding:
    """How the run's images enter the network (amplitude or phase object)."""
    return Encoding(
        object_neurons=config.object_neurons,
        mode=config.encoding_mode,
        phase_scale_rad=config.phase_scale_rad,
        input_is_phase=data.kind == "phase",
    )


def make_task(config: TrainConfig, data: DatasetSplits, oversample: int) -> torch.nn.Module:
    """The run's task head: classification (detector regions) or QPI (phase imaging)."""
    cfg = config
    if cfg.task == "classify":
        return ClassificationTask(
            cfg.neurons,
            oversample,
            num_classes=data.num_classes,
            detector_size=max(1, int(round(cfg.detector_fraction * cfg.neurons))),
            loss=cfg.loss or "ce",
            temperature=cfg.temperature,
        )
    return QPITask(
        cfg.neurons,
        oversample,
        crop=cfg.qpi_crop or cfg.object_neurons,
        phase_max_rad=cfg.qpi_phase_max_rad,
        loss=cfg.loss or "berhu",
    )


def vaccination_of(config: TrainConfig) -> Any:
    """The :class:`~quaton_fab.optics.perturbation.ErrorMagnitudes` a vaccinated run draws from, or None (plain run)."""
    if config.vaccinate is None:
        return None

    return ErrorMagnitudes.from_dict(config.vaccinate["magnitudes"])
