"""The trained artefact: a ``Design`` and its versioned, pickle-free file format.

A design directory holds

* ``design.json`` — everything an independent simulator needs, in SI units (metres, radians):
  geometry, the level set (phase of every level), the input encoding, the task (detector regions or QPI crop
  and gain), the QAT method and its settings, the dataset and split, the metrics (with the number of test
  samples), the seed, the software version and, optionally, the fabrication assumptions the level set was
  derived from. Its ``schema`` key names the format (``quaton-fab/design``) and ``schema_version`` its version.
* ``masks.npz`` — ``level_indices``: integer level index per neuron, shape ``(L, N, N)`` (mask, row, column);
  optionally ``fp_phases_rad`` ``(L, N, N)``, the unquantized phases of a full-precision design.
  Written with ``numpy.savez_compressed`` and read with ``allow_pickle=False``.

The phase of neuron (l, i, j) is ``design.json["levels"]["phases_rad"][level_indices[l, i, j]]``, and the
mask transmission is ``exp(+i·phase)``; the physics conventions are in docs/ARCHITECTURE.md.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from quaton_fab._version import __version__
from quaton_fab.bounded import load_json_file, npz_arrays
from quaton_fab.errors import QuatonFabError
from quaton_fab.fileio import atomic_write_with
from quaton_fab.optics.network import Geometry
from quaton_fab.optics.propagation import KERNEL_FLAT_MARGIN_PX, KERNEL_TAPER_PX, PROPAGATION_MODEL
from quaton_fab.optics.relief import RELIEF_MODEL, Relief
from quaton_fab.quant.levels import LevelSet
from quaton_fab.resources import check_simulation
from quaton_fab.sanity import geometry_problems

__all__ = ["Design", "DesignError", "SCHEMA", "SCHEMA_VERSION", "sampling_record"]

log = logging.getLogger(__name__)

SCHEMA = "quaton-fab/design"
#: Version 2 adds the mask model (``propagation.mask_model``, ``propagation.relief``) and the sampling record;
#: version-1 designs (thin masks) are still read.
SCHEMA_VERSION = 2
READABLE_VERSIONS = (1, 2)
RELIEF_SUMMARY = (
    "multislice (split-step angular spectrum, Strang splitting) through each printed relief: slices at every "
    "level height (subdivided to max_slice_m), slice phase k0*(n_material - n_medium)*dz*occupancy, "
    "occupancy = clamp((h - z_lo)/dz, 0, 1); base slab of n_material crossed as a homogeneous layer; "
    "orientation base-first: light enters through the base, leaves through the relief top; distances are "
    "measured between the planes where consecutive reliefs start (top of each base), so the next mask's base "
    "slab and this mask's relief region lie inside the gap; see quaton_fab/optics/relief.py"
)
DESIGN_JSON = "design.json"
#: Top-level design.json entries that must be JSON objects (when present and not null).
_OBJECT_KEYS = ("software", "geometry", "propagation", "levels", "encoding", "task", "method", "dataset",
                "training", "metrics", "fabrication", "masks")
MASKS_NPZ = "masks.npz"


class DesignError(QuatonFabError):
    """A design directory that is missing, corrupted, of another schema version, or inconsistent."""


@dataclass
class Design:
    """A trained diffractive design: level indices per mask plus everything needed to simulate and print it.

    Attributes:
        geometry: grid, pitch (m), distances (m), wavelength (m), medium index, oversampling, padding rule.
        levels: the level set; ``levels.phases`` (rad) are exactly the phases that are exported.
        level_indices: int array ``(L, N, N)`` with values in ``[0, levels.n)``.
        encoding: ``Encoding.to_dict()`` — how an input image becomes the input field.
        task: ``task.to_dict()`` — detector regions or QPI crop/gain.
        method: QAT method name and its settings (per mask where learned, e.g. PSQ-LT slopes).
        dataset: dataset description and split (``DatasetSplits.info``).
        training: training configuration (epochs, batch size, learning rate, …).
        metrics: measured metrics, e.g. ``{"test": {"accuracy": 0.93, "samples": 10000}, …}``.
        seed: the random seed of the run.
        fabrication: optional fabrication assumptions the level set came from (material, medium, z-step, base).
        relief: the printed relief the design was trained through (relief model), or None (thin masks).
        sampling: how the oversampling was chosen (``sampling_record``); None for old designs.
        fp_phases_rad: optional unquantized phases ``(L, N, N)`` of a full-precision design.
        software_version: quaton-fab version that wrote the design.
        created: ISO-8601 UTC time stamp.
    """

    geometry: Geometry
    levels: LevelSet
    level_indices: np.ndarray
    encoding: dict[str, Any]
    task: dict[str, Any]
    method: dict[str, Any]
    dataset: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    fabrication: dict[str, Any] | None = None
    relief: Relief | None = None
    sampling: dict[str, Any] | None = None
    fp_phases_rad: np.ndarray | None = None
    software_version: str = __version__
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))

    def __post_init__(self) -> None:
        self.level_indices = np.asarray(self.level_indices)
        self.validate()

    # ------------------------------------------------------------------ checks
    def validate(self) -> None:
        """Check that the masks agree with the geometry and the level set; raise DesignError otherwise."""
        idx = self.level_indices
        g = self.geometry
        expected = (g.layers, g.neurons, g.neurons)
        if idx.shape != expected:
            raise DesignError(f"level_indices has shape {idx.shape}, expected (layers, N, N) = {expected}")
        if not np.issubdtype(idx.dtype, np.integer):
            raise DesignError(f"level_indices must be integers, got dtype {idx.dtype}")
        if idx.size and (idx.min() < 0 or idx.max() >= self.levels.n):
            raise DesignError(
                f"level_indices must lie in [0, {self.levels.n - 1}], found {int(idx.min())}..{int(idx.max())}"
            )
        if self.relief is not None and len(self.relief.level_heights_m) != self.levels.n:
            raise DesignError(
                f"the relief has {len(self.relief.level_heights_m)} level heights for {self.levels.n} levels"
            )
        if self.sampling is None:
            self.sampling = sampling_record(g, g.oversample)
        if self.fp_phases_rad is not None and np.shape(self.fp_phases_rad) != expected:
            raise DesignError(f"fp_phases_rad has shape {np.shape(self.fp_phases_rad)}, expected {expected}")

    # ------------------------------------------------------------------ derived
    @property
    def model(self) -> str:
        """The mask model the design was trained with: ``"relief"`` or ``"thin"``."""
        return "thin" if self.relief is None else "relief"

    def level_heights_m(self) -> np.ndarray | None:
        """Relief height of every neuron above the base, ``(L, N, N)`` metres; None for a thin design."""
        if self.relief is None:
            return None
        return np.asarray(self.relief.level_heights_m, dtype=np.float64)[self.level_indices]

    @property
    def num_masks(self) -> int:
        """Number of phase masks L."""
        return self.geometry.layers

    def phases_rad(self) -> np.ndarray:
        """Phase of every neuron, ``(L, N, N)`` float64 radians: ``levels.phases[level_indices]``."""
        return np.asarray(self.levels.phases, dtype=np.float64)[self.level_indices]

    def level_counts(self) -> np.ndarray:
        """How many neurons use each level, ``(L, n)`` int."""
        n = self.levels.n
        return np.stack([np.bincount(m.ravel(), minlength=n) for m in self.level_indices])

    def primary_metric(self) -> tuple[str, float] | None:
        """The headline test metric ``(name, value)`` if the design has one."""
        test = self.metrics.get("test", {})
        # the order of quaton_fab.tasks.metrics.HEADLINE_ORDER (design and tasks are independent layers)
        for name in ("accuracy", "ssim"):
            if name in test:
                return name, float(test[name])
        return None

    # ------------------------------------------------------------------ files
    def to_json_dict(self) -> dict[str, Any]:
        """The content of ``design.json`` (JSON-serialisable, SI units)."""
        return {
            "schema": SCHEMA,
            "schema_version": SCHEMA_VERSION,
            "software": {"name": "quaton-fab", "version": self.software_version},
            "created": self.created,
            "seed": int(self.seed),
            "geometry": self.geometry.to_dict(),
            "propagation": {
                "model": PROPAGATION_MODEL,
                "summary": "band-limited angular spectrum (Matsushima & Shimobaba 2009), float64 transfer function "
                "on the exact fftfreq grid, evanescent waves cut; impulse response kept on |x| <= z*tan(theta_max) "
                "+ flat margin, raised-cosine taper, zero beyond; exact linear convolution (zero padding); "
                "see quaton_fab/optics/propagation.py",
                "kernel_flat_margin_px": KERNEL_FLAT_MARGIN_PX,
                "kernel_taper_px": KERNEL_TAPER_PX,
                "transmission": "exp(+i*phase)",
                "mask_model": self.model,
                "sampling": self.sampling,
                **(
                    {
                        "relief_model": RELIEF_MODEL,
                        "relief": self.relief.to_dict(),
                        "relief_summary": RELIEF_SUMMARY,
                    }
                    if self.relief is not None
                    else {"thin_summary": "each mask is exp(+i*phase) in one plane (the mask plane)"}
                ),
            },
            "levels": self.levels.to_dict(),
            "encoding": self.encoding,
            "task": self.task,
            "method": self.method,
            "dataset": self.dataset,
            "training": self.training,
            "metrics": self.metrics,
            "fabrication": self.fabrication,
            "masks": {
                "file": MASKS_NPZ,
                "key": "level_indices",
                "shape": list(self.level_indices.shape),
                "axes": ["mask", "row", "column"],
                "phase_of_index": "levels.phases_rad[index]; transmission exp(+i*phase)",
                "has_fp_phases": self.fp_phases_rad is not None,
            },
        }

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write ``design.json`` and ``masks.npz`` into the directory ``path`` (created if needed).

        Each file is written to a temporary name in the same directory and then renamed, so an interrupted save
        never leaves a half-written file under the final name.
        """
        out = Path(path)
        out.mkdir(parents=True, exist_ok=True)
        for name in (MASKS_NPZ, DESIGN_JSON):
            if (out / name).exists() and not (out / name).is_file():
                raise DesignError(f"cannot save the design: {str(out / name)!r} is in the way (not a file)")
        arrays: dict[str, np.ndarray] = {"level_indices": self.level_indices.astype(_index_dtype(self.levels.n))}
        if self.fp_phases_rad is not None:
            arrays["fp_phases_rad"] = np.asarray(self.fp_phases_rad, dtype=np.float64)
        text = json.dumps(self.to_json_dict(), indent=2, allow_nan=False)
        atomic_write_with(out / MASKS_NPZ, lambda f: np.savez_compressed(f, **arrays))
        try:  # design.json is the committing write: without it the masks are not a design
            atomic_write_with(out / DESIGN_JSON, lambda f: f.write(text.encode("utf-8")))
        except BaseException:
            (out / MASKS_NPZ).unlink(missing_ok=True)
            raise
        log.info("saved design to %s", out)
        return out

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "Design":
        """Read a design directory (or the path of its ``design.json``). Never executes code from the files.

        Raises:
            DesignError: missing files, bad JSON, another schema or version, or inconsistent masks.
        """
        json_path, npz_path = _design_paths(path)
        meta = _read_meta(json_path)
        # array headers are checked against memory before any data is read; members inflate with a cap
        arrays = npz_arrays(npz_path, DesignError, names=("level_indices", "fp_phases_rad"))
        if "level_indices" not in arrays:
            raise DesignError(f"{str(npz_path)!r} has no 'level_indices' array")
        propagation = _propagation(meta, json_path)
        try:
            relief = Relief.from_dict(propagation["relief"]) if propagation.get("relief") is not None else None
            geometry = Geometry.from_dict(meta["geometry"])
            geometry.rule_oversample  # noqa: B018 - a pitch or wavelength out of range overflows here, not later
            design = cls(
                geometry=geometry,
                levels=LevelSet.from_dict(meta["levels"]),
                level_indices=arrays["level_indices"],
                encoding=dict(meta["encoding"]),
                task=dict(meta["task"]),
                method=dict(meta["method"]),
                dataset=dict(meta.get("dataset") or {}),
                training=dict(meta.get("training") or {}),
                metrics=dict(meta.get("metrics") or {}),
                seed=int(meta.get("seed", 0)),
                fabrication=meta.get("fabrication"),
                relief=relief,
                sampling=propagation.get("sampling"),
                fp_phases_rad=arrays.get("fp_phases_rad"),
                software_version=str(meta.get("software", {}).get("version", "unknown")),
                created=str(meta.get("created", "")),
            )
        except DesignError:
            raise
        except KeyError as exc:
            raise DesignError(f"{str(json_path)!r} lacks the required key {exc}") from None
        except (TypeError, ValueError, AttributeError, OverflowError) as exc:
            raise DesignError(f"{str(json_path)!r} is inconsistent: {exc}") from None
        _check_loaded_geometry(geometry, relief, json_path)
        return design


def _design_paths(path: str | os.PathLike[str]) -> tuple[Path, Path]:
    """``(design.json, masks.npz)`` of a design directory (or of the path of its ``design.json``), both present."""
    root = Path(path)
    if root.is_file() and root.name == DESIGN_JSON:
        root = root.parent
    if not root.exists():
        raise DesignError(f"design directory {str(root)!r} does not exist")
    json_path, npz_path = root / DESIGN_JSON, root / MASKS_NPZ
    if not json_path.is_file():
        raise DesignError(f"{str(root)!r} is not a design directory: {DESIGN_JSON} is missing")
    if not npz_path.is_file():
        raise DesignError(f"{str(npz_path)!r} is missing")
    return json_path, npz_path


def _read_meta(json_path: Path) -> dict[str, Any]:
    """``design.json`` read and checked: schema, a readable version, objects where objects belong."""
    meta = load_json_file(json_path, "design file", DesignError)
    if not isinstance(meta, dict) or meta.get("schema") != SCHEMA:
        raise DesignError(f"{str(json_path)!r} is not a quaton-fab design (schema key missing or wrong)")
    version = meta.get("schema_version")
    if version not in READABLE_VERSIONS:
        raise DesignError(
            f"{str(json_path)!r} has schema_version {version!r}; this quaton-fab reads versions "
            f"{', '.join(map(str, READABLE_VERSIONS))}"
        )
    for key in _OBJECT_KEYS:
        if meta.get(key) is not None and not isinstance(meta[key], dict):
            raise DesignError(
                f"{str(json_path)!r}: {key!r} must be a JSON object, got {type(meta[key]).__name__}"
            )
    for key in ("test", "val_best", "test_unquantized"):
        value = (meta.get("metrics") or {}).get(key)
        if value is not None and not isinstance(value, dict):
            raise DesignError(f"{str(json_path)!r}: 'metrics.{key}' must be a JSON object")
    return meta


def _propagation(meta: dict[str, Any], json_path: Path) -> dict[str, Any]:
    """The design's ``propagation`` record; a warning when it was made with another propagation or relief model."""
    propagation = meta.get("propagation") or {}
    if not isinstance(propagation, dict):
        raise DesignError(f"{str(json_path)!r}: 'propagation' must be an object")
    model = propagation.get("model")
    if model is not None and model != PROPAGATION_MODEL:
        log.warning("design was made with propagation model %s; this version simulates with %s", model,
                    PROPAGATION_MODEL)
    relief_model = propagation.get("relief_model")
    if relief_model is not None and relief_model != RELIEF_MODEL:
        log.warning("design was made with relief model %s; this version simulates with %s", relief_model,
                    RELIEF_MODEL)
    return propagation


def _check_loaded_geometry(geometry: Geometry, relief: Relief | None, json_path: Path) -> None:
    """The design's own simulation (one sample) must fit before any command allocates it; geometry warnings
    are logged (a saved design is still read; its numbers may mean little)."""
    check_simulation(geometry, relief, option=str(json_path))
    refusals, warnings = geometry_problems(
        wavelength_m=geometry.wavelength_m, pitch_m=geometry.pitch_m, neurons=geometry.neurons,
        distances_m={"d_in_m": geometry.d_in_m, "spacing_m": geometry.spacing_m, "d_out_m": geometry.d_out_m},
        n_medium=geometry.n_medium)
    for message in refusals + warnings:
        log.warning("%s: %s", json_path, message)


def sampling_record(geometry: Geometry, requested: int | str) -> dict[str, Any]:
    """How the simulation sampling was chosen: requested value, s used, the rule's minimum, whether it is met.

    The rule: simulation pitch ``p/s ≤ λ0/(2·n_med)``, i.e. ``s ≥ ceil(2·p·n_med/λ0)``.
    """
    return {
        "requested": requested if requested == "auto" else int(requested),
        "oversample": geometry.oversample,
        "rule_oversample": geometry.rule_oversample,
        "meets_rule": geometry.meets_sampling_rule,
        "sim_pitch_m": geometry.sim_pitch_m,
        "rule": "sim_pitch_m <= wavelength_m / (2 * n_medium)",
    }


def _index_dtype(n_levels: int) -> type[np.integer]:
    """Smallest unsigned dtype that holds indices ``0..n_levels-1``."""
    return np.uint8 if n_levels <= 256 else np.uint16
