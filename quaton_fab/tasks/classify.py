"""Classification with detector regions on the output plane.

One detector per class: a pixel rectangle on the detector (neuron) grid, half-open
``(row0, col0, row1, col1)``, in class order. The score of a class is the optical power that lands on its
detector: the sum of ``|U|²`` over the ``s×s`` simulation pixels of every neuron in the rectangle. The
predicted class is the detector with the largest score.

Loss (paper_spec §4.2, feasibility.md): the scores are normalised by their sum, ``p = score / Σ score``,
and either
- ``"ce"``: cross-entropy of ``softmax(temperature · p)`` against the label (temperature 10 by default), or
- ``"mse"``: mean squared error of ``p`` against the one-hot label.

"""

from __future__ import annotations

import logging
import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from .checks import TaskError, check_grid, check_input_phase, check_intensity, check_labels
from .metrics import ACCURACY

__all__ = [
    "ClassificationTask",
    "ClassificationMetricsState",
    "default_regions",
    "balanced_rows",
    "validate_regions",
]

logger = logging.getLogger(__name__)

Region = tuple[int, int, int, int]
LOSSES = ("ce", "mse")
#: Default detector side as a fraction of the grid side.
DEFAULT_DETECTOR_FRACTION = 0.1


# --------------------------------------------------------------------------------------------- layout
def balanced_rows(num_classes: int) -> list[int]:
    """Detectors per row for the default layout, e.g. ``[3, 4, 3]`` for 10 classes.

    ``round(√K)`` rows, as equal as possible; the extra detectors go to the rows nearest the middle
    (ties: the upper row), so the layout is symmetric whenever it can be.
    """
    if num_classes < 1:
        raise TaskError(f"num_classes must be at least 1, got {num_classes}")
    n_rows = max(1, round(math.sqrt(num_classes)))
    base, extra = divmod(num_classes, n_rows)
    centre = (n_rows - 1) / 2
    by_centrality = sorted(range(n_rows), key=lambda r: (abs(r - centre), r))
    counts = [base] * n_rows
    for r in by_centrality[:extra]:
        counts[r] += 1
    return counts


def _gap(count: int, side: int, neurons: int) -> int:
    """Gap (neurons) between ``count`` squares of ``side`` so they fit in ``neurons``: ``side`` if possible."""
    if count <= 1:
        return 0
    return max(0, min(side, (neurons - count * side) // (count - 1)))


def default_regions(neurons: int, num_classes: int = 10, detector_size: int | None = None) -> list[Region]:
    """The default detector layout on an ``N×N`` detector grid, in class order (rows top to bottom, left to right).

    Equal squares of side ``detector_size`` neurons (default ``max(1, round(0.1·N))``) in rows given by
    :func:`balanced_rows` (3-4-3 for 10 classes). Squares are separated by one square side where that fits
    (less otherwise, never overlapping); every row is centred horizontally and the block of rows vertically.

    Returns:
        ``num_classes`` half-open rectangles ``(row0, col0, row1, col1)`` in neurons.

    Raises:
        TaskError: the squares cannot fit in the grid.
    """
    check_grid(neurons, 1)
    side = max(1, round(DEFAULT_DETECTOR_FRACTION * neurons)) if detector_size is None else detector_size
    if isinstance(side, bool) or not isinstance(side, int) or side < 1:
        raise TaskError(f"detector_size must be a positive integer (neurons), got {detector_size!r}")
    counts = balanced_rows(num_classes)
    widest, n_rows = max(counts), len(counts)
    if widest * side > neurons or n_rows * side > neurons:
        raise TaskError(
            f"{num_classes} classes (labels 0..{num_classes - 1}) need {widest} × {n_rows} detector squares of "
            f"{side} neurons, which do not fit in {neurons}×{neurons} neurons; use fewer classes, more neurons or "
            "smaller detectors"
        )
    col_gap = _gap(widest, side, neurons)
    row_gap = _gap(n_rows, side, neurons)
    block_height = n_rows * side + (n_rows - 1) * row_gap
    top = (neurons - block_height) // 2
    regions: list[Region] = []
    for r, count in enumerate(counts):
        row0 = top + r * (side + row_gap)
        row_width = count * side + (count - 1) * col_gap
        left = (neurons - row_width) // 2
        for c in range(count):
            col0 = left + c * (side + col_gap)
            regions.append((row0, col0, row0 + side, col0 + side))
    return regions


def _is_integral(value: object) -> bool:
    """True for an integer-valued real number (``3``, ``np.int64(3)``, ``3.0``), False for bools and the rest."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return False
    return math.isfinite(value) and int(value) == value


def validate_regions(regions: Sequence[Sequence[int]], neurons: int, num_classes: int) -> list[Region]:
    """Check user detector regions (count, integers, non-empty, inside the grid, pairwise disjoint).

    Returns them as a list of int tuples ``(row0, col0, row1, col1)``.
    """
    if len(regions) != num_classes:
        raise TaskError(f"got {len(regions)} detector regions for {num_classes} classes (need one per class)")
    checked: list[Region] = []
    for k, region in enumerate(regions):
        values = tuple(region)
        if len(values) != 4 or not all(_is_integral(v) for v in values):
            raise TaskError(f"detector region {k} must be 4 integers (row0, col0, row1, col1), got {region!r}")
        row0, col0, row1, col1 = (int(v) for v in values)
        if not (0 <= row0 < row1 <= neurons and 0 <= col0 < col1 <= neurons):
            raise TaskError(
                f"detector region {k} {values} is empty or outside the {neurons}×{neurons} detector grid "
                "(half-open row0 < row1 <= N, col0 < col1 <= N)"
            )
        checked.append((row0, col0, row1, col1))
    for i in range(num_classes):
        for j in range(i + 1, num_classes):
            a, b = checked[i], checked[j]
            if a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]:
                raise TaskError(f"detector regions {i} {a} and {j} {b} overlap")
    return checked


# --------------------------------------------------------------------------------------------- task
@dataclass
class ClassificationMetricsState:
    """Running sums for the classification metrics (no autograd)."""

    confusion: torch.Tensor  # (K, K) int64, rows = true class, columns = predicted class
    efficiency_sum: float = 0.0
    samples: int = 0


class ClassificationTask(nn.Module):
    """Detector-region classification (no learnable parameters; an ``nn.Module`` like every task).

    Args:
        neurons: detector grid side N (neurons).
        oversample: simulation pixels per neuron side s.
        num_classes: number of classes K (≥ 2).
        regions: K half-open rectangles ``(row0, col0, row1, col1)`` in neurons, class order; default
            :func:`default_regions`.
        detector_size: side of the default squares, neurons (ignored when ``regions`` is given).
        loss: ``"ce"`` or ``"mse"`` (see the module docstring).
        temperature: softmax temperature on the normalised scores for ``"ce"``.
    """

    primary_metric = ACCURACY
    kind = "classify"

    def __init__(
        self,
        neurons: int,
        oversample: int,
        num_classes: int = 10,
        regions: Sequence[Sequence[int]] | None = None,
        detector_size: int | None = None,
        loss: str = "ce",
        temperature: float = 10.0,
    ) -> None:
        super().__init__()
        check_grid(neurons, oversample)
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
            raise TaskError(f"num_classes must be an integer of at least 2, got {num_classes!r}")
        if loss not in LOSSES:
            raise TaskError(f"classification loss must be one of {', '.join(LOSSES)}, got {loss!r}")
        if not (isinstance(temperature, (int, float)) and math.isfinite(temperature) and temperature > 0):
            raise TaskError(f"temperature must be a positive number, got {temperature!r}")
        self.neurons = neurons
        self.oversample = oversample
        self.num_classes = num_classes
        self.loss_name = loss
        self.temperature = float(temperature)
        if regions is None:
            self.regions = default_regions(neurons, num_classes, detector_size)
        else:
            self.regions = validate_regions(regions, neurons, num_classes)

    # ------------------------------------------------------------------ scores
    def scores(self, intensity: torch.Tensor) -> torch.Tensor:
        """Power on each detector, ``(B, N·s, N·s) -> (B, K)`` (sum of intensity over the region's pixels)."""
        check_intensity(intensity, self.neurons, self.oversample)
        s = self.oversample
        return torch.stack(
            [intensity[:, r0 * s : r1 * s, c0 * s : c1 * s].sum(dim=(-2, -1)) for r0, c0, r1, c1 in self.regions],
            dim=-1,
        )

    @staticmethod
    def normalised(scores: torch.Tensor) -> torch.Tensor:
        """Scores divided by their sum over classes, ``(B, K)``; all-dark samples give zeros."""
        total = scores.sum(dim=-1, keepdim=True)
        return scores / total.clamp_min(torch.finfo(scores.dtype).tiny)

    # ------------------------------------------------------------------ interface
    def loss(
        self, intensity: torch.Tensor, labels: torch.Tensor, input_phase: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Scalar training loss (mean over the batch). ``input_phase`` is not used (shape-checked if given)."""
        scores = self.scores(intensity)
        batch = scores.shape[0]
        check_labels(labels, batch, self.num_classes)
        if input_phase is not None:
            check_input_phase(input_phase, batch, self.neurons)
        p = self.normalised(scores)
        labels = labels.to(device=p.device, dtype=torch.long)
        if self.loss_name == "ce":
            return F.cross_entropy(self.temperature * p, labels)
        one_hot = F.one_hot(labels, self.num_classes).to(p.dtype)
        return F.mse_loss(p, one_hot)

    def predict(self, intensity: torch.Tensor) -> torch.Tensor:
        """Predicted class per sample, ``(B,)`` int64: the detector with the most power."""
        return self.scores(intensity).argmax(dim=-1)

    @torch.no_grad()
    def sample_values(
        self, intensity: torch.Tensor, labels: torch.Tensor, input_phase: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The primary metric of each sample, ``(B,)`` float64: 1 where the prediction is right, else 0 (their mean
        is the accuracy). ``input_phase`` is not used."""
        predicted = self.predict(intensity.detach().to(torch.float64))
        check_labels(labels, predicted.shape[0], self.num_classes)
        return (predicted == labels.to(predicted.device)).to(torch.float64)

    @torch.no_grad()
    def sample_margins(self, intensity: torch.Tensor) -> torch.Tensor:
        """How far each sample lies from a changed prediction, ``(B,)`` float64: the winning detector's power minus
        the runner-up's, as a fraction of the power on all detectors (0: a tie; small values flip first when the
        simulation changes)."""
        p = self.normalised(self.scores(intensity.detach().to(torch.float64)))
        top2 = p.topk(min(2, p.shape[-1]), dim=-1).values
        return top2[:, 0] - (top2[:, 1] if top2.shape[-1] > 1 else 0.0)

    def detector_efficiency(self, intensity: torch.Tensor) -> torch.Tensor:
        """Fraction of the detector-plane power that lands on the detectors, per sample ``(B,)``."""
        total = intensity.sum(dim=(-2, -1))
        return self.scores(intensity).sum(dim=-1) / total.clamp_min(torch.finfo(total.dtype).tiny)

    @torch.no_grad()
    def update_metrics(
        self,
        state: ClassificationMetricsState | None,
        intensity: torch.Tensor,
        labels: torch.Tensor,
        input_phase: torch.Tensor | None = None,
    ) -> ClassificationMetricsState:
        """Add a batch to the confusion matrix and efficiency sum; returns the (new or updated) state."""
        batch = check_intensity(intensity, self.neurons, self.oversample)
        check_labels(labels, batch, self.num_classes)
        if input_phase is not None:
            check_input_phase(input_phase, batch, self.neurons)
        if state is None:
            confusion = torch.zeros(self.num_classes, self.num_classes, dtype=torch.long)
            state = ClassificationMetricsState(confusion=confusion)
        intensity = intensity.detach().to(torch.float64)
        predicted = self.predict(intensity).cpu()
        flat = labels.detach().cpu().long() * self.num_classes + predicted
        state.confusion += torch.bincount(flat, minlength=self.num_classes**2).view(self.num_classes, self.num_classes)
        state.efficiency_sum += float(self.detector_efficiency(intensity).sum())
        state.samples += batch
        return state

    def finalize_metrics(self, state: ClassificationMetricsState | None) -> dict[str, Any]:
        """``{"accuracy", "confusion" (rows = true class), "detector_efficiency" (mean), "samples"}``."""
        if state is None or state.samples == 0:
            raise TaskError("no samples were evaluated: cannot compute classification metrics")
        confusion = state.confusion
        return {
            ACCURACY: float(confusion.diagonal().sum()) / state.samples,
            "confusion": confusion.tolist(),
            "detector_efficiency": state.efficiency_sum / state.samples,
            "samples": state.samples,
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON description: everything needed to recompute scores, loss and metrics from the detector intensity."""
        return {
            "kind": self.kind,
            "neurons": self.neurons,
            "num_classes": self.num_classes,
            "regions": [list(r) for r in self.regions],
            "regions_units": "neurons (detector pixels), half-open [row0, row1) x [col0, col1), class order",
            "score": "sum of |U|^2 over every simulation pixel of the region (s x s per neuron)",
            "prediction": "argmax of the scores",
            "loss": self.loss_name,
            "temperature": self.temperature,
            "primary_metric": self.primary_metric,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], neurons: int, oversample: int) -> ClassificationTask:
        """Rebuild from :meth:`to_dict` output (the stored regions are used as given)."""
        return cls(
            neurons,
            oversample,
            num_classes=int(d["num_classes"]),
            regions=d["regions"],
            loss=d.get("loss", "ce"),
            temperature=float(d.get("temperature", 10.0)),
        )

    def extra_repr(self) -> str:
        return (
            f"neurons={self.neurons}, oversample={self.oversample}, classes={self.num_classes}, "
            f"loss={self.loss_name}"
        )
