"""Evaluation: run a network over a dataset split and compute the task's metrics.

Used by the trainer (validation and test with hard-quantized masks), by ``quaton-fab evaluate`` (re-simulate a
saved design from its two files) and by ``quaton-fab verify`` (re-simulate with phases read back from exports).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from quaton_fab.resources import check_simulation, fidelity_option
from quaton_fab.data import DatasetSplits, Encoding, load_dataset
from quaton_fab.design import Design, DesignError
from quaton_fab.errors import QuatonFabError
from quaton_fab.optics.network import DiffractiveNetwork, Geometry, rule_oversample
from quaton_fab.optics.relief import Relief
from quaton_fab.tasks import task_from_dict
from quaton_fab.printing.level_table import LevelTable, relief_from_table
from quaton_fab.printing.resolve import build_level_table, resolve_print

__all__ = [
    "evaluate_network",
    "SampleRecord",
    "simulate_design",
    "load_design_split",
    "resolve_device",
    "DeviceError",
    "Fidelity",
    "design_fidelity",
    "default_relief",
    "reference_fidelity",
    "reference_oversample",
]

log = logging.getLogger(__name__)

ProgressFn = Callable[[int, int], None]


class DeviceError(QuatonFabError):
    """A device name that is unknown or not available on this machine."""


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` → CUDA when available, else CPU; ``cpu``, ``cuda`` or ``cuda:N`` otherwise (checked)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or (name.startswith("cuda:") and name[5:].isdigit()):
        if not torch.cuda.is_available():
            raise DeviceError(f"device {name!r} was asked for, but this torch build or machine has no CUDA GPU")
        index = int(name[5:]) if ":" in name else 0
        if index >= torch.cuda.device_count():
            raise DeviceError(f"device {name!r} does not exist (this machine has {torch.cuda.device_count()} GPU(s))")
        return torch.device(name)
    raise DeviceError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N")


@dataclass(frozen=True)
class SampleRecord:
    """What each evaluated sample scored, in sample order.

    Attributes:
        values: ``(K,)`` float64 primary metric per sample (accuracy: 1 right, 0 wrong; SSIM per image); their
            mean is the reported metric.
        margins: ``(K,)`` float64 distance of each sample from a changed decision (classification: winning minus
            runner-up detector power as a fraction of all detector power), or None for a continuous metric.
    """

    values: np.ndarray
    margins: np.ndarray | None


@torch.no_grad()
def evaluate_network(
    network: DiffractiveNetwork,
    task: Any,
    encoding: Encoding,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    batch_size: int = 256,
    phases: torch.Tensor | None = None,
    heights_m: torch.Tensor | None = None,
    progress: ProgressFn | None = None,
    per_sample: bool = False,
) -> dict[str, Any]:
    """Metrics of ``network`` (in eval mode, i.e. hard-quantized masks) on ``images``/``labels``.

    Args:
        images: ``(K, H, W)`` float32 dataset images (pixel values or radians, per ``encoding``).
        labels: ``(K,)`` int64.
        phases: optional ``(L, N, N)`` radians replacing the network's own masks (re-simulation of exports).
        heights_m: optional ``(L, N, N)`` relief heights (m) for a relief-model network (files read back).
        progress: called as ``progress(done, total)`` after each batch.
        per_sample: also return each sample's metric and margin as ``"per_sample"`` (a :class:`SampleRecord`).

    Returns the task's metrics plus ``samples``.
    """
    was_training = network.training, task.training
    network.eval()
    task.eval()
    device = next(iter(network.buffers()), None)
    device = device.device if device is not None else _module_device(network)
    neurons, oversample = network.geometry.neurons, network.geometry.oversample
    state = None
    total = int(images.shape[0])
    values: list[torch.Tensor] = []
    margins: list[torch.Tensor] = []
    try:
        for start in range(0, total, batch_size):
            batch = images[start : start + batch_size].to(device)
            target = labels[start : start + batch_size].to(device)
            field, input_phase = encoding.field_and_phase(batch, neurons, oversample)
            intensity = network(field, phases=phases, heights_m=heights_m)
            state = task.update_metrics(state, intensity, target, input_phase)
            if per_sample:
                values.append(task.sample_values(intensity, target, input_phase).cpu())
                margin = task.sample_margins(intensity)
                if margin is not None:
                    margins.append(margin.cpu())
            if progress is not None:
                progress(min(start + batch_size, total), total)
    finally:
        network.train(was_training[0])
        task.train(was_training[1])
    metrics = dict(task.finalize_metrics(state))
    metrics["samples"] = total
    if per_sample:
        metrics["per_sample"] = SampleRecord(
            torch.cat(values).numpy(), torch.cat(margins).numpy() if margins else None
        )
    return metrics


def _module_device(module: torch.nn.Module) -> torch.device:
    for p in module.parameters():
        return p.device
    return torch.device("cpu")


def load_design_split(
    design: Design, split: str = "test", *, samples: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Reload the dataset split a design was trained/tested on (same source, same seed, same sample counts)."""
    info = design.dataset
    spec = info.get("spec")
    if not spec:
        raise DesignError("the design does not record its dataset spec; pass --dataset")
    counts = {
        "train_samples": info.get("train_samples"),
        "val_samples": info.get("val_samples"),
        "test_samples": info.get("test_samples"),
    }
    if samples is not None:
        counts[f"{split}_samples"] = samples
    splits: DatasetSplits = load_dataset(spec, seed=int(info.get("seed", design.seed)), **counts)
    part = getattr(splits, split)
    return part.images, part.labels


@dataclass(frozen=True)
class Fidelity:
    """How a design is simulated: simulation pixels per neuron side and the mask model.

    Attributes:
        oversample: s (the simulation pitch is ``pitch/s``).
        relief: the printed relief to propagate through (multislice), or None for thin masks.
        label: short name for reports (``"design"``, ``"reference"``, …).
    """

    oversample: int
    relief: Relief | None = None
    label: str = ""

    @property
    def model(self) -> str:
        """``"relief"`` or ``"thin"``."""
        return "thin" if self.relief is None else "relief"

    def describe(self, geometry: Geometry) -> str:
        """One line: sampling (against the rule of the simulated part) and mask model, e.g. for tables."""
        rule = reference_oversample(geometry, self.relief)
        where = "medium" if self.relief is None else "in-material"
        sampling = f"s={self.oversample} ({'meets' if self.oversample >= rule else 'BELOW'} the {where} rule s>={rule})"
        if self.relief is None:
            return f"{sampling}, thin masks"
        r = self.relief
        dz = np.diff(r.slice_edges_m())
        return (
            f"{sampling}, relief n={r.n_material:.4f}, base {r.base_m * 1e6:.3g} µm, top {r.top_m * 1e6:.3g} µm, "
            f"{dz.size} slices ≤ {float(dz.max(initial=0.0)) * 1e9:.4g} nm, {r.orientation}"
        )

    def identifier(self, geometry: Geometry) -> dict[str, Any]:
        """Where a number was measured, precisely: sampling, its rule, slicing and indices (JSON-ready, SI).

        ``max_slice_m`` is the thickest slice actually simulated (not the requested bound); ``rule_oversample``
        the rule of the simulated part (:func:`reference_oversample`).
        """
        relief = self.relief
        dz = np.diff(relief.slice_edges_m()) if relief is not None else np.zeros(0)
        return {
            "label": self.label,
            "model": self.model,
            "oversample": self.oversample,
            "sim_pitch_m": geometry.pitch_m / self.oversample,
            "rule_oversample": reference_oversample(geometry, relief),
            "rule_oversample_medium": geometry.rule_oversample,
            "n_medium": geometry.n_medium,
            "n_material": None if relief is None else relief.n_material,
            "slices": int(dz.size),
            "max_slice_m": float(dz.max()) if dz.size else None,
            "base_m": None if relief is None else relief.base_m,
            "wavelength_m": geometry.wavelength_m,
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description."""
        return {
            "label": self.label,
            "oversample": self.oversample,
            "model": self.model,
            "relief": None if self.relief is None else self.relief.to_dict(),
        }


#: The reference relief model slices no thicker than λ0 times this (λ0/16 = 48.75 nm at 780 nm). Measured at the
#: in-material rule on 300 test digits (benchmarks/reference_convergence.py): halving λ0/4 → λ0/8 → λ0/16 flips
#: 2 → 2 digits of the 0.78 µm sample design (accuracy unchanged) and 8 → 1 digits of a 2 µm-pixel design
#: (+0.33 points, one digit, at λ0/8 → λ0/16): λ0/8 is not within 0.1 point there; at the measured rate
#: (about four times fewer flips per halving) λ0/16 → λ0/32 moves well under one digit in 300. ``verify``'s probe
#: halves the slices again for every design it judges.
REFERENCE_SLICE_FRACTION = 1.0 / 16.0


def design_fidelity(design: Design) -> Fidelity:
    """The fidelity the design was trained (and its metrics measured) at."""
    return Fidelity(design.geometry.oversample, design.relief, "design")


def default_relief(
    design: Design, *, material: str | None = None, base_m: float | None = None, table: LevelTable | None = None,
) -> Relief:
    """The printed relief of a design: its own (relief-trained), else one built from its fabrication record.

    ``material``/``base_m`` override (:mod:`quaton_fab.printing.resolve`: without a record the material is the
    default in the design's medium and the base the fabrication default); the recorded z-step applies only to
    the recorded material. ``table``: an already built level table (e.g. an export's) to build the relief from.
    """
    if table is not None:
        return relief_from_table(table, periodic=design.levels.periodic)
    fab = design.fabrication or {}
    if design.relief is not None and material is None:
        relief = design.relief
        return relief if base_m is None else dataclasses.replace(relief, base_m=float(base_m))
    g = design.geometry
    choices = resolve_print(fab, wavelength_m=g.wavelength_m, n_medium=g.n_medium, material=material,
                            base_m=base_m, z_step_m=fab.get("z_step_m") if material is None else None)
    return relief_from_table(build_level_table(design.levels.phases, g.wavelength_m, choices),
                             periodic=design.levels.periodic)


def reference_fidelity(
    design: Design,
    *,
    relief: Relief | None = None,
    oversample: int | None = None,
    max_slice_m: float | None = None,
) -> Fidelity:
    """The printed-object reference: at least the design's sampling and never below the in-material rule
    (:func:`reference_oversample`), the relief model sliced at least as finely as :func:`reference_slicing` (so
    the reference is converged in the slicing).

    Args:
        relief: the relief to simulate (e.g. from an export's level table); default :func:`default_relief`.
        oversample: a finer s (values below the reference are raised to it).
        max_slice_m: a finer slicing than the relief's own (values coarser than it are ignored).
    """
    g = design.geometry
    relief = reference_slicing(relief or default_relief(design), g.wavelength_m, max_slice_m)
    s = max(g.oversample, reference_oversample(g, relief), oversample or 1)
    return Fidelity(s, relief, "reference")


def reference_oversample(geometry: Geometry, relief: Relief | None) -> int:
    """The reference's sampling rule: ``ceil(2·p·n/λ0)`` with n the relief material's index at λ0 (the light's
    shortest wavelength inside the printed part), or the medium's where that is higher or there is no relief.

    Inside the material a flat-topped pixel's spectrum is carried by waves up to ``n_mat/λ0``; the medium rule
    (``n_med``) drops them and the re-simulated metric is then not converged (benchmarks/reference_convergence.py).
    """
    n = geometry.n_medium if relief is None else max(geometry.n_medium, relief.n_material)
    return rule_oversample(geometry.pitch_m, geometry.wavelength_m, n)


def reference_slicing(relief: Relief, wavelength_m: float, max_slice_m: float | None = None) -> Relief:
    """``relief`` sliced as finely as the reference: slices ≤ λ0·REFERENCE_SLICE_FRACTION (and ≤ ``max_slice_m``).

    Level-aligned slices are kept as edges; each level step is subdivided until no slice is thicker.
    """
    limit = wavelength_m * REFERENCE_SLICE_FRACTION
    if max_slice_m is not None:
        limit = min(limit, float(max_slice_m))
    if relief.max_slice_m is not None and relief.max_slice_m <= limit:
        return relief
    return dataclasses.replace(relief, max_slice_m=limit)


def check_dataset_fits(design: Design, splits: DatasetSplits, spec: str) -> None:
    """Refuse a dataset the design cannot be scored on: other input kind, or labels beyond its classes."""
    trained_on_phase = bool(design.encoding.get("input_is_phase", False))
    if (splits.kind == "phase") != trained_on_phase:
        raise DesignError(
            f"dataset {spec!r} holds {splits.kind} images, but the design was trained on "
            f"{'phase' if trained_on_phase else 'intensity'} images; its metric on them would be meaningless"
        )
    if design.task.get("kind") == "classify":
        classes = len(design.task.get("regions") or [])
        top = max(int(s.labels.max()) for s in (splits.train, splits.val, splits.test) if s.labels.numel())
        if top >= classes:
            raise DesignError(
                f"dataset {spec!r} has labels up to {top}, but the design has detectors for {classes} classes "
                f"(0..{classes - 1})"
            )


def simulate_design(
    design: Design,
    *,
    dataset: str | None = None,
    split: str = "test",
    samples: int | None = None,
    phases_rad: np.ndarray | None = None,
    heights_m: np.ndarray | None = None,
    fidelity: Fidelity | None = None,
    batch_size: int = 256,
    device: str = "auto",
    progress: ProgressFn | None = None,
    indices: np.ndarray | None = None,
    per_sample: bool = False,
) -> dict[str, Any]:
    """Re-simulate a design from its files alone and compute its task metric.

    Args:
        dataset: another dataset spec to evaluate on (default: the design's own, same split and seed).
        phases_rad: ``(L, N, N)`` phases to simulate instead of the design's level phases (thin model, or the
            relief's heights interpolated from them); default ``design.phases_rad()``.
        heights_m: ``(L, N, N)`` relief heights above the base (m) read back from files (relief model only;
            takes precedence over ``phases_rad``).
        fidelity: sampling and mask model; default the design's own (:func:`design_fidelity`).
        indices: ``(k,)`` positions within the split (as loaded at ``samples``) to simulate; default all of them.
        per_sample: also return each sample's metric and margin as ``"per_sample"`` (:class:`SampleRecord`).
    """
    dev = resolve_device(device)
    fidelity = fidelity or design_fidelity(design)
    if dataset is None:
        images, labels = load_design_split(design, split, samples=samples)
    else:
        kwargs = {f"{split}_samples": samples} if samples is not None else {}
        splits = load_dataset(dataset, seed=design.seed, **kwargs)
        check_dataset_fits(design, splits, dataset)
        part = getattr(splits, split)
        images, labels = part.images, part.labels
    if indices is not None:
        chosen = torch.as_tensor(np.asarray(indices, dtype=np.int64))
        images, labels = images[chosen], labels[chosen]
    geometry = dataclasses.replace(design.geometry, oversample=fidelity.oversample)
    check_simulation(geometry, fidelity.relief, batch=max(1, min(batch_size, len(images))),
                     option=fidelity_option(fidelity.oversample, fidelity.relief))
    network = DiffractiveNetwork(geometry, relief=fidelity.relief).to(dev)
    task = task_from_dict(design.task, geometry.neurons, geometry.oversample).to(dev)
    encoding = Encoding.from_dict(design.encoding)
    heights = None
    if heights_m is not None and fidelity.relief is not None:
        heights = torch.as_tensor(np.asarray(heights_m, dtype=np.float64), dtype=torch.float32, device=dev)
    if heights_m is not None and fidelity.relief is None and phases_rad is None:
        raise ValueError("thin-model simulation of read-back heights needs their phases (phases_rad)")
    phases = design.phases_rad() if phases_rad is None else np.asarray(phases_rad, dtype=np.float64)
    phase_tensor = torch.as_tensor(phases, dtype=torch.float32, device=dev)
    return evaluate_network(
        network, task, encoding, images, labels, batch_size=batch_size, phases=phase_tensor, heights_m=heights,
        progress=progress, per_sample=per_sample,
    )
