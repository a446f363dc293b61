"""Training configuration and named presets.

A :class:`TrainConfig` is a flat, JSON-serialisable description of one training run: the geometry (SI units),
the level set, the QAT method, the task, the data and the optimiser. Presets are named starting points; any
field can be overridden (the CLI maps its flags onto fields).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from quaton_fab.printing.defaults import DEFAULT_MATERIAL
from quaton_fab.sanity import geometry_problems
from quaton_fab.training.config_checks import (  # the constants and ConfigError are importable from here too
    LR_SCHEDULES, MAX_LR, MODELS, ORIENTATIONS, RECOMPUTE, TASKS, ConfigError, check_models, check_sizes,
    check_training,
)

__all__ = ["TrainConfig", "PRESETS", "preset", "ConfigError", "TASKS", "MODELS", "ORIENTATIONS", "MAX_LR",
           "LR_SCHEDULES", "RECOMPUTE"]


@dataclass
class TrainConfig:
    """Everything that defines a training run. Lengths in metres, phases in radians.

    Geometry: ``layers`` masks of ``neurons``×``neurons`` with pitch ``pitch_m``; input plane → ``d_in_m`` →
    mask 1 → ``spacing_m`` → … → mask L → ``d_out_m`` → detector. ``d_in_m``/``d_out_m`` default to ``spacing_m``.
    """

    # task and data
    task: str = "classify"
    dataset: str = "mnist"
    train_samples: int | None = None
    val_samples: int | None = None
    test_samples: int | None = None
    # geometry
    layers: int = 5
    neurons: int = 64
    pitch_m: float = 1e-6
    wavelength_m: float = 780e-9
    spacing_m: float = 30.2e-6
    d_in_m: float | None = None
    d_out_m: float | None = None
    n_medium: float = 1.0
    #: Simulation pixels per neuron side: "auto" (the sampling rule s = ceil(2·p·n_med/λ0)) or an int ≥ the rule;
    #: an int below the rule needs ``allow_undersampling`` (recorded in design.json and warned about).
    oversample: int | str = "auto"
    allow_undersampling: bool = False
    padding: str | int = "auto"
    # mask model: "relief" (multislice through the printed relief; needs a material, default IP-Dip) or "thin"
    model: str = "relief"
    #: Base slab under each mask's relief (m); None: DEFAULT_BASE_M for the relief model.
    base_m: float | None = None
    #: Largest slice of the relief model (m); None: one slice per level step.
    max_slice_m: float | None = None
    orientation: str = "base-first"
    # input encoding
    object_fraction: float = 0.6
    encoding_mode: str = "phase"
    phase_scale_rad: float = math.pi
    # level set and QAT method
    method: str = "psq-lt"
    #: How the masks start (vocabulary.MASK_INITS): "uniform" random phases over the level range, or "flat"
    #: (every pixel at level 0). Recorded in design.json only when "flat" (older designs all started uniform).
    mask_init: str = "uniform"
    levels: int = 4
    level_range_rad: tuple[float, float] | None = None
    level_phases_rad: tuple[float, ...] | None = None
    #: Quantizer settings per method name, e.g. {"psq-lt": {"lambda0": 1.0}}; a method without an entry uses
    #: its defaults (see docs/QUANTIZERS.md), so changing ``method`` never carries another method's settings.
    quantizer: dict[str, dict[str, Any]] = field(default_factory=dict)
    # fabrication-aware level set (snap heights to the printer's z-step and train on the snapped phases)
    material: str | None = None
    medium: str | None = None
    z_step_m: float | None = None
    # task settings
    detector_fraction: float = 0.1
    loss: str | None = None
    temperature: float = 10.0
    qpi_crop: int | None = None
    qpi_phase_max_rad: float = math.pi
    # optimisation
    epochs: int = 3
    batch_size: int = 64
    lr: float = 0.05
    lr_schedule: str = "constant"
    seed: int = 0
    eval_batch_size: int = 256
    device: str = "auto"
    threads: int | None = None
    #: Vaccinated training (None: plain): ``{"set": name or None, "magnitudes": {field: value}}``, the
    #: fabrication errors of :mod:`quaton_fab.analysis.tolerance` drawn afresh for every training batch (seeded).
    vaccinate: dict[str, Any] | None = None
    #: Relief model: recompute each mask's slices in the backward pass instead of storing them ("on"), never
    #: ("off"), or when the memory estimate of storing them exceeds half the memory available ("auto").
    #: Same gradients either way (see :mod:`quaton_fab.resources`).
    recompute: str = "auto"
    #: Largest number of samples run through forward + backward at once; a batch is accumulated in such
    #: micro-batches (same gradients). None: the whole batch at once.
    micro_batch: int | None = None

    def __post_init__(self) -> None:
        if self.level_phases_rad is not None:
            self.level_phases_rad = tuple(float(p) for p in self.level_phases_rad)
            self.levels = len(self.level_phases_rad)  # an explicit list fixes the level count
        self.validate()

    # ------------------------------------------------------------------
    @property
    def d_in(self) -> float:
        """Input-plane → first-mask distance (m)."""
        return self.spacing_m if self.d_in_m is None else self.d_in_m

    @property
    def d_out(self) -> float:
        """Last-mask → detector distance (m)."""
        return self.spacing_m if self.d_out_m is None else self.d_out_m

    @property
    def effective_material(self) -> str | None:
        """The material the run's level set and relief use: ``material``, or IP-Dip for the relief model."""
        if self.material is None and self.model == "relief":
            return DEFAULT_MATERIAL
        return self.material

    @property
    def object_neurons(self) -> int:
        """Side of the input object in neurons."""
        return max(1, min(self.neurons, int(round(self.object_fraction * self.neurons))))

    def validate(self) -> None:
        """Raise ConfigError naming the first invalid value (see :mod:`quaton_fab.training.config_checks`)."""
        check_models(self)
        check_sizes(self)
        check_training(self)

    def physics_problems(self) -> tuple[list[str], list[str]]:
        """(refusals, warnings) about the geometry's physics (see :mod:`quaton_fab.sanity`)."""

        return geometry_problems(
            wavelength_m=self.wavelength_m, pitch_m=self.pitch_m, neurons=self.neurons, n_medium=self.n_medium,
            distances_m={"spacing_m": self.spacing_m, "d_in_m": self.d_in_m, "d_out_m": self.d_out_m},
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dictionary of every field."""
        out = dataclasses.asdict(self)
        for key in ("level_range_rad", "level_phases_rad"):
            if out[key] is not None:
                out[key] = list(out[key])
        if out["mask_init"] == "uniform":
            del out["mask_init"]  # the start every design before the choice existed had
        if out["vaccinate"] is None:
            del out["vaccinate"]  # plain runs keep the dictionary (and design.json) they always had
        for key, default in (("recompute", "auto"), ("micro_batch", None)):
            if out[key] == default:
                del out[key]  # memory settings that do not change the result: recorded only when set
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"unknown training setting(s): {', '.join(unknown)}")
        values = dict(data)
        for key in ("level_range_rad", "level_phases_rad"):
            if values.get(key) is not None:
                values[key] = tuple(values[key])
        return cls(**values)

    def replace(self, **changes: Any) -> "TrainConfig":
        """A copy with some fields changed (validated)."""
        return dataclasses.replace(self, **changes)


# The lab's geometry and optimiser: λ = 632.8 nm, λ/2 neurons, 8 masks of 128×128, 3.373 µm spacing and d_in,
# 5.904 µm d_out, object 32×32, Adam lr 0.01, batch 32, 50 epochs, seed 10. λ/2 neurons meet the sampling rule
# with s = 1, but pixels this small are where the scalar relief model stops being trustworthy (README): check
# such designs with a vectorial solver.
_LAB_SETUP: dict[str, Any] = dict(
    dataset="mnist",
    layers=8,
    neurons=128,
    pitch_m=316.4e-9,
    wavelength_m=632.8e-9,
    spacing_m=3.373e-6,
    d_in_m=3.373e-6,
    d_out_m=5.904e-6,
    object_fraction=0.25,
    method="psq-lt",
    levels=4,
    epochs=50,
    batch_size=32,
    lr=0.01,
    seed=10,
)

# Named presets. Each is a dict of TrainConfig fields.
PRESETS: dict[str, dict[str, Any]] = {
    # Real MNIST, 4 levels, PSQ-LT, trained through the printed IP-Dip relief (sliced at most 180 nm on the 100 nm
    # grid) at the sampling rule taken inside the material, s = ceil(2·p·n_mat/λ0) = 4, so the training model is the
    # converged reference's sampling (docs/VALIDITY.md). Geometry inside the validated region of the model: λ0 =
    # 780 nm (IP-Dip is transparent there), 1 µm pixels (pitch/λ0 = 1.28), 40×40 neurons, 70 µm hops between the
    # planes where the reliefs start (each gap holds the next 2 µm base and this mask's 1.1 µm relief): acceptance
    # cone sin θ = 0.50, where the multislice model's complex order error vs a rigorous solver is 0.084 (≤ 0.10).
    # Digits enter as amplitude objects (transmission on a dark field, as in the first D2NN experiments):
    # measured on this geometry, 5,000 × 2 digits, first 2,000 test digits, 1 thread: phase objects 84.55 %,
    # amplitude objects 89.95 % (70 µm hops) and 90.30 % (55 µm hops) in the training model; 6,000 × 2 on all
    # 10,000 test digits: 91.23 % (70 µm) against 90.40 % (55 µm, the previous default, whose export measured
    # 0.110 model error in its wider 0.59 cone). Digit 0.6·N wide, 3-4-3 detector squares 0.1·N wide. PSQ-LT
    # regulariser compressed to λ0 = 1 doubling every epoch; levels as a ladder (the relief model never wraps a
    # height); cosine learning-rate decay from 0.08; cross-entropy temperature 25. The masks start random
    # (uniform): started flat, 5,000 × 2 scored 83.40 % (70 µm) and 81.85 % (55 µm) on the first 2,000.
    "quickstart": dict(
        task="classify",
        dataset="mnist",
        train_samples=6000,
        val_samples=2000,
        test_samples=10000,
        layers=5,
        neurons=40,
        pitch_m=1e-6,
        wavelength_m=780e-9,
        spacing_m=70e-6,
        oversample=4,
        encoding_mode="amplitude",
        model="relief",
        material="ip-dip",
        # Levels on the default printer's 100 nm slicing grid (2pp-63x-ip-dip): the design trains on the heights
        # that will be printed (0, 0.4, 0.7, 1.1 µm), so the export needs no snapping.
        z_step_m=100e-9,
        max_slice_m=180e-9,
        method="psq-lt",
        levels=4,
        # λ per epoch, κ sharing the phases' rate and cosine decay (the run-fraction schedules and κ's own rate
        # are the library defaults; benchmarks/quaton_study.toml).
        quantizer={"psq-lt": dict(lambda0=1.0, reg_every=1, reg_schedule="epoch", kappa_lr=None)},
        temperature=25.0,
        epochs=2,
        batch_size=64,
        lr=0.08,
        lr_schedule="cosine",
    ),
    # The lab's D2NN geometry (research notes, paper_spec §3), all-optical QPI of MNIST phase in [0, π].
    # Slow on a CPU: meant for a GPU.
    "paper": dict(task="qpi", **_LAB_SETUP),
    # The same lab geometry for classification of MNIST phase objects (3-4-3 detectors).
    "paper-classify": dict(task="classify", **_LAB_SETUP),
    # Quick all-optical QPI on synthetic red blood cells (Evans–Fung discocytes), 8 levels, trained through the
    # printed IP-Dip relief at the sampling rule taken inside the material, s = ceil(2·p·n_mat/λ0) = 4. Geometry
    # inside the validated region of the model: λ0 = 632.8 nm, 0.8 µm pixels (pitch/λ0 = 1.26), 40×40 neurons,
    # 60 µm hops (each gap holds the next 2 µm base and this mask's 1.0 µm relief; 20 µm from the cell to the
    # first mask): acceptance cone sin θ = 0.47, multislice error vs a rigorous solver 0.086 (≤ 0.10). The masks
    # start flat: from random phases no QPI geometry with a cone this narrow learns (SSIM ≈ 0.52 after 2,000 × 2
    # cells), from flat ones it does (0.827; docs/VALIDITY.md, "QPI"). 4,000 × 2: validation SSIM is flat after the
    # second epoch (4,000 × 6 measured 0.8179, 0.8197, 0.8196, 0.8202, 0.8202, 0.8202).
    "qpi-quickstart": dict(
        task="qpi",
        dataset="rbc",
        train_samples=4000,
        val_samples=300,
        test_samples=500,
        layers=4,
        neurons=40,
        pitch_m=0.8e-6,
        wavelength_m=632.8e-9,
        spacing_m=60e-6,
        d_in_m=20e-6,
        oversample=4,
        mask_init="flat",
        object_fraction=0.5,
        model="relief",
        material="ip-dip",
        z_step_m=100e-9,  # the default printer's slicing grid (levels at 0, 0.1, 0.3, 0.4, 0.6, 0.7, 0.9, 1.0 µm)
        method="psq-lt",
        levels=8,
        quantizer={"psq-lt": dict(lambda0=1.0, reg_every=1, reg_schedule="epoch", kappa_lr=None)},  # as quickstart
        epochs=2,
        batch_size=32,
        lr=0.05,
        lr_schedule="cosine",
    ),
    # Seconds-long smoke run on generated data (used by tests and demos without any data package).
    "tiny": dict(
        task="classify",
        dataset="synthetic",
        train_samples=256,
        val_samples=64,
        test_samples=64,
        layers=2,
        neurons=24,
        pitch_m=0.78e-6,
        wavelength_m=780e-9,
        spacing_m=12e-6,
        object_fraction=0.6,
        method="psq-lt",
        levels=4,
        epochs=2,
        batch_size=32,
        lr=0.2,
        detector_fraction=0.15,
    ),
}


def preset(name: str, **overrides: Any) -> TrainConfig:
    """Build a TrainConfig from a named preset with some fields overridden."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    values = dict(PRESETS[name])
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return TrainConfig(**values)
    except TypeError as exc:
        raise ConfigError(str(exc)) from None
