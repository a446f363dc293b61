"""Input checks and the error type shared by every task (tensors in, one-line TaskError out)."""

from __future__ import annotations

import torch

from quaton_fab.errors import QuatonFabError

__all__ = ["TaskError", "check_intensity", "check_labels", "check_input_phase", "check_grid"]


class TaskError(QuatonFabError):
    """Bad task settings or bad tensors handed to a task (one line naming the bad value)."""


def check_intensity(intensity: torch.Tensor, neurons: int, oversample: int) -> int:
    """Check a detector-plane intensity of shape ``(B, N·s, N·s)`` (real float); return B."""
    side = neurons * oversample
    if not isinstance(intensity, torch.Tensor):
        raise TaskError(f"intensity must be a tensor, got {type(intensity).__name__}")
    if intensity.is_complex() or not intensity.is_floating_point():
        raise TaskError(f"intensity must be a real float tensor, got dtype {intensity.dtype}")
    if intensity.dim() != 3 or tuple(intensity.shape[1:]) != (side, side):
        raise TaskError(
            f"intensity must have shape (B, {side}, {side}) (neurons {neurons} × oversample {oversample}), "
            f"got {tuple(intensity.shape)}"
        )
    return intensity.shape[0]


def check_labels(labels: torch.Tensor, batch: int, num_classes: int | None = None) -> None:
    """Check class labels of shape ``(B,)``, integer, and (if ``num_classes``) in ``[0, num_classes)``."""
    if not isinstance(labels, torch.Tensor):
        raise TaskError(f"labels must be a tensor, got {type(labels).__name__}")
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise TaskError(f"labels must be an integer tensor, got dtype {labels.dtype}")
    if tuple(labels.shape) != (batch,):
        raise TaskError(f"labels must have shape ({batch},), got {tuple(labels.shape)}")
    if num_classes is not None and batch > 0:
        low, high = int(labels.min()), int(labels.max())
        if low < 0 or high >= num_classes:
            bad = low if low < 0 else high
            raise TaskError(f"label {bad} is outside [0, {num_classes})")


def check_input_phase(input_phase: torch.Tensor, batch: int, neurons: int) -> None:
    """Check an input phase map of shape ``(B, N, N)`` (real float, radians)."""
    if not isinstance(input_phase, torch.Tensor):
        raise TaskError(f"input_phase must be a tensor, got {type(input_phase).__name__}")
    if input_phase.is_complex() or not input_phase.is_floating_point():
        raise TaskError(f"input_phase must be a real float tensor (radians), got dtype {input_phase.dtype}")
    if tuple(input_phase.shape) != (batch, neurons, neurons):
        raise TaskError(f"input_phase must have shape ({batch}, {neurons}, {neurons}), got {tuple(input_phase.shape)}")


def check_grid(neurons: int, oversample: int) -> None:
    """Check the detector grid: ``neurons`` and ``oversample`` positive integers."""
    for name, value in (("neurons", neurons), ("oversample", oversample)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise TaskError(f"{name} must be a positive integer, got {value!r}")
