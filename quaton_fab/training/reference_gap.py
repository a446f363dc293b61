"""The design-vs-reference gap: a design's metric in its own training model and as the printed object.

Training may run coarser than the reference (:func:`~quaton_fab.simulate.reference_fidelity`) when it
must; the gap then says how much of the design metric survives the converged simulation. Both metrics are
computed on the same test samples, so the gap is paired (no sampling noise between the two).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from quaton_fab.design import Design
from quaton_fab.simulate import design_fidelity, reference_fidelity, simulate_design
from quaton_fab.tasks.metrics import primary_metric_name

__all__ = ["ReferenceGap", "DEFAULT_GAP_SAMPLES", "reference_gap"]

#: Test samples the closing summary of a training run simulates at the reference (one MNIST digit = 0.2 points).
DEFAULT_GAP_SAMPLES = 500


@dataclass(frozen=True)
class ReferenceGap:
    """A design's metric at its training fidelity and at the reference, on the same samples.

    Attributes:
        metric_name: the primary metric. samples: test samples simulated (the design's test split drawn at that size).
        design_metric / reference_metric: the metric at each fidelity (fractions).
        design / reference: :meth:`~quaton_fab.simulate.Fidelity.identifier` of each fidelity.
        same_fidelity: True when the design was trained at the reference (the gap is zero by construction).
    """

    metric_name: str
    samples: int
    design_metric: float
    reference_metric: float
    design: dict[str, Any]
    reference: dict[str, Any]
    same_fidelity: bool

    @property
    def gap(self) -> float:
        """reference − design (negative: the printed object scores lower than the training model says)."""
        return self.reference_metric - self.design_metric

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record."""
        return {
            "metric": self.metric_name,
            "samples": self.samples,
            "design_metric": self.design_metric,
            "reference_metric": self.reference_metric,
            "gap": self.gap,
            "same_fidelity": self.same_fidelity,
            "design_fidelity": self.design,
            "reference_fidelity": self.reference,
        }


def reference_gap(
    design: Design,
    *,
    samples: int = DEFAULT_GAP_SAMPLES,
    device: str = "auto",
    progress: Callable[[int, int], None] | None = None,
) -> ReferenceGap:
    """Simulate ``samples`` test samples (the split drawn at that size) at the design's fidelity and at the reference.

    When the two fidelities are the same only one simulation runs. ``progress(done, total)`` counts samples over
    both simulations.
    """
    if samples < 1:
        raise ValueError(f"the design-vs-reference gap needs at least 1 sample, got {samples}")
    split = design.dataset.get("test_samples")
    if split:  # never more than the design's own test split
        samples = min(int(samples), int(split))
    g = design.geometry
    own, ref = design_fidelity(design), reference_fidelity(design)
    same = own.to_dict() | {"label": ""} == ref.to_dict() | {"label": ""}
    runs = [ref] if same else [own, ref]
    name = primary_metric_name(design.metrics)
    values: list[float] = []
    for index, fid in enumerate(runs):

        def step(done: int, total: int, offset: int = index) -> None:
            if progress is not None:
                progress(offset * total + done, len(runs) * total)

        result = simulate_design(design, samples=samples, fidelity=fid, device=device, progress=step)
        values.append(float(result[name]))
        samples = int(result["samples"])
    return ReferenceGap(name, samples, values[0], values[-1], own.identifier(g), ref.identifier(g), same)
