"""Evaluation: run a network over a dataset split and compute the task's metrics.

Used by the trainer (validation and test with hard-quantized masks), by ``quaton-fab evaluate`` (re-simulate a
saved design from its two files) and by ``quaton-fab verify`` (re-simulate with phases read back from exports).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from quaton_fab.data import DatasetSplits, Encoding, load_dataset
from quaton_fab.design import Design, DesignError
from quaton_fab.errors import QuatonFabError
from quaton_fab.optics.network import DiffractiveNetwork
from quaton_fab.tasks import task_from_dict

__all__ = ["evaluate_network", "simulate_design", "load_design_split", "resolve_device", "DeviceError"]

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
    progress: ProgressFn | None = None,
) -> dict[str, Any]:
    """Metrics of ``network`` (in eval mode, i.e. hard-quantized masks) on ``images``/``labels``.

    Args:
        images: ``(K, H, W)`` float32 dataset images (pixel values or radians, per ``encoding``).
        labels: ``(K,)`` int64.
        phases: optional ``(L, N, N)`` radians replacing the network's own masks (re-simulation of exports).
        progress: called as ``progress(done, total)`` after each batch.

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
    try:
        for start in range(0, total, batch_size):
            batch = images[start : start + batch_size].to(device)
            target = labels[start : start + batch_size].to(device)
            field, input_phase = encoding.field_and_phase(batch, neurons, oversample)
            intensity = network(field, phases=phases)
            state = task.update_metrics(state, intensity, target, input_phase)
            if progress is not None:
                progress(min(start + batch_size, total), total)
    finally:
        network.train(was_training[0])
        task.train(was_training[1])
    metrics = dict(task.finalize_metrics(state))
    metrics["samples"] = total
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
    batch_size: int = 256,
    device: str = "auto",
    progress: ProgressFn | None = None,
) -> dict[str, Any]:
    """Re-simulate a design from its files alone and compute its task metric.

    Args:
        dataset: another dataset spec to evaluate on (default: the design's own, same split and seed).
        phases_rad: ``(L, N, N)`` phases to simulate instead of the design's level phases (e.g. read back from
            exported files); default ``design.phases_rad()``.
    """
    dev = resolve_device(device)
    if dataset is None:
        images, labels = load_design_split(design, split, samples=samples)
    else:
        kwargs = {f"{split}_samples": samples} if samples is not None else {}
        splits = load_dataset(dataset, seed=design.seed, **kwargs)
        check_dataset_fits(design, splits, dataset)
        part = getattr(splits, split)
        images, labels = part.images, part.labels
    network = DiffractiveNetwork(design.geometry).to(dev)
    task = task_from_dict(design.task, design.geometry.neurons, design.geometry.oversample).to(dev)
    encoding = Encoding.from_dict(design.encoding)
    phases = design.phases_rad() if phases_rad is None else np.asarray(phases_rad, dtype=np.float64)
    phase_tensor = torch.as_tensor(phases, dtype=torch.float32, device=dev)
    return evaluate_network(
        network, task, encoding, images, labels, batch_size=batch_size, phases=phase_tensor, progress=progress
    )
