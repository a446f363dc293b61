"""The checks of a training configuration: one function per group of fields, each raising
:class:`ConfigError` with one line naming the first invalid value.

:meth:`~quaton_fab.training.config.TrainConfig.validate` runs them in order (models and lengths, sizes and
ranges, method and optimiser). They read the fields of a ``TrainConfig`` (lengths in metres, phases in radians)
and change nothing.
"""

from __future__ import annotations

import math
from typing import Any

from quaton_fab.errors import QuatonFabError
from quaton_fab.optics.perturbation import ErrorMagnitudes, ToleranceError
from quaton_fab.resources import MAX_EXPORT_LEVELS
from quaton_fab.vocabulary import ENCODINGS, LR_SCHEDULES, MASK_INITS, METHODS, MODELS, ORIENTATIONS, RECOMPUTE, TASKS

__all__ = ["ConfigError", "TASKS", "MODELS", "ORIENTATIONS", "MAX_LR", "LR_SCHEDULES", "RECOMPUTE",
           "check_models", "check_sizes", "check_training", "check_vaccination"]

#: Largest accepted learning rate (an Adam step of 10 rad already scrambles every phase).
MAX_LR = 10.0


class ConfigError(QuatonFabError):
    """An invalid training configuration (one line naming the bad value)."""


def check_models(cfg: Any) -> None:
    """Task, input encoding, mask start, oversampling, mask model, relief orientation and the relief's lengths."""
    if cfg.task not in TASKS:
        raise ConfigError(f"task must be one of {', '.join(TASKS)}, got {cfg.task!r}")
    if cfg.encoding_mode not in ENCODINGS:
        raise ConfigError(f"encoding_mode must be one of {', '.join(ENCODINGS)}, got {cfg.encoding_mode!r}")
    if cfg.mask_init not in MASK_INITS:
        raise ConfigError(f"mask_init must be one of {', '.join(MASK_INITS)}, got {cfg.mask_init!r}")
    if cfg.oversample != "auto" and (
        not isinstance(cfg.oversample, int) or isinstance(cfg.oversample, bool) or cfg.oversample < 1
    ):
        raise ConfigError(f"oversample must be 'auto' or a positive integer, got {cfg.oversample!r}")
    if cfg.model not in MODELS:
        raise ConfigError(f"model must be one of {', '.join(MODELS)}, got {cfg.model!r}")
    if cfg.orientation not in ORIENTATIONS:
        raise ConfigError(f"orientation must be one of {', '.join(ORIENTATIONS)}, got {cfg.orientation!r}")
    for name in ("base_m", "max_slice_m"):
        value = getattr(cfg, name)
        if value is not None and not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
            raise ConfigError(f"{name.removesuffix('_m')} must be a finite length ≥ 0, got {value!r}")
    if cfg.max_slice_m == 0:
        raise ConfigError("max_slice must be a positive length")


def check_sizes(cfg: Any) -> None:
    """Counts, level set, lengths, indices, fractions, sample counts and the printer's z step."""
    for name in ("layers", "neurons", "levels", "epochs", "batch_size", "eval_batch_size"):
        value = getattr(cfg, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    if cfg.levels < 2:
        raise ConfigError(f"levels must be at least 2, got {cfg.levels}")
    if cfg.level_range_rad is not None:
        lo, hi = cfg.level_range_rad
        if not (math.isfinite(lo) and math.isfinite(hi) and 0 <= lo < hi):
            raise ConfigError(f"level_range_rad must be finite with 0 ≤ lo < hi, got {cfg.level_range_rad}")
    if cfg.level_range_rad is not None and cfg.level_phases_rad is not None:
        raise ConfigError("give either level_range_rad or level_phases_rad, not both")
    for name in ("pitch_m", "wavelength_m", "spacing_m", "lr", "n_medium", "temperature", "phase_scale_rad"):
        value = getattr(cfg, name)
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise ConfigError(f"{name} must be a positive finite number, got {value!r}")
    for name in ("d_in_m", "d_out_m"):
        value = getattr(cfg, name)
        if value is not None and not (math.isfinite(value) and value >= 0):
            raise ConfigError(f"{name} must be a finite length ≥ 0, got {value!r}")
    if cfg.n_medium < 1.0:
        raise ConfigError(f"n_medium must be ≥ 1, got {cfg.n_medium}")
    if not 0 < cfg.object_fraction <= 1:
        raise ConfigError(f"object_fraction must be in (0, 1], got {cfg.object_fraction}")
    if not 0 < cfg.detector_fraction < 0.3:
        raise ConfigError(f"detector_fraction must be in (0, 0.3), got {cfg.detector_fraction}")
    for name in ("train_samples", "val_samples", "test_samples"):
        value = getattr(cfg, name)
        if value is not None and (not isinstance(value, int) or value < 1):
            raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    if cfg.z_step_m is not None and not (math.isfinite(cfg.z_step_m) and cfg.z_step_m > 0):
        raise ConfigError(f"z_step must be a positive length, got {cfg.z_step_m!r}")
    if cfg.z_step_m is not None and cfg.material is None and cfg.model != "relief":
        raise ConfigError("z_step needs a material (--material) to convert heights to phases")


def check_training(cfg: Any) -> None:
    """Method and quantizer settings, optimiser, export limit, physics, vaccination and memory settings."""
    if cfg.method not in METHODS:
        raise ConfigError(f"method must be one of {', '.join(METHODS)}, got {cfg.method!r}")
    unknown = [m for m in cfg.quantizer if m not in METHODS]
    if unknown or not all(isinstance(v, dict) for v in cfg.quantizer.values()):
        raise ConfigError(f"quantizer settings must map method names to dicts, got {cfg.quantizer!r}")
    if cfg.lr_schedule not in LR_SCHEDULES:
        raise ConfigError(f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got {cfg.lr_schedule!r}")
    if cfg.lr > MAX_LR:
        raise ConfigError(f"lr {cfg.lr} is too large (at most {MAX_LR}); the phases are in radians")

    if cfg.levels > MAX_EXPORT_LEVELS:
        raise ConfigError(
            f"levels = {cfg.levels} exceeds the exporter's limit of {MAX_EXPORT_LEVELS} (level k goes on "
            f"GDS layer 1 + k, below the mark layer {MAX_EXPORT_LEVELS + 1})"
        )
    refusals, _ = cfg.physics_problems()
    if refusals:
        raise ConfigError(refusals[0])
    if cfg.vaccinate is not None:
        check_vaccination(cfg)
    if cfg.recompute not in RECOMPUTE:
        raise ConfigError(f"recompute must be one of {', '.join(RECOMPUTE)}, got {cfg.recompute!r}")
    if cfg.micro_batch is not None and (
        not isinstance(cfg.micro_batch, int) or isinstance(cfg.micro_batch, bool) or cfg.micro_batch < 1
    ):
        raise ConfigError(f"micro_batch must be a positive integer, got {cfg.micro_batch!r}")


def check_vaccination(cfg: Any) -> None:
    """Vaccination settings: a mapping ``{"set", "magnitudes"}`` of valid magnitudes, relief model only."""
    v = cfg.vaccinate
    if not isinstance(v, dict) or set(v) != {"set", "magnitudes"} or not isinstance(v["magnitudes"], dict):
        raise ConfigError(f"vaccinate must be {{'set': name, 'magnitudes': {{...}}}}, got {v!r}")
    try:
        ErrorMagnitudes.from_dict(v["magnitudes"])
    except ToleranceError as exc:
        raise ConfigError(f"vaccinate: {exc}") from None
    if cfg.model != "relief":
        raise ConfigError("vaccinated training perturbs the printed relief: it needs the relief model")
