"""Convergence probe of the printed-object reference: the same metric at a finer fidelity, on a subset.

The reference fidelity (:func:`~quaton_fab.simulate.reference_fidelity`) samples at the in-material
rule and slices the relief at most λ0·REFERENCE_SLICE_FRACTION. Whether that is converged *for a given design*
is checked by simulating ``samples`` test samples (the design's split drawn at that size) twice — at the
reference and at a probe fidelity with twice the sampling (half the simulation pitch) and slices half as thick —
and comparing the two metrics on the same samples. When they differ by more than the tolerance the reference is
**not converged** and a number measured at it cannot be trusted to that tolerance.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from quaton_fab.design import Design
from quaton_fab.simulate import Fidelity, simulate_design
from quaton_fab.tasks.metrics import primary_metric_name

__all__ = ["DEFAULT_PROBE_SAMPLES", "ProbeResult", "probe_fidelity", "run_probe"]

#: Test samples the probe simulates by default: one MNIST digit is then 0.2 accuracy points, well below the
#: default 0.5-point tolerance, while the probe (2·s, half slices: ~8× the cost per sample) stays a fraction of
#: a 10,000-digit verification.
DEFAULT_PROBE_SAMPLES = 500


@dataclass(frozen=True)
class ProbeResult:
    """One convergence probe (metrics are fractions: accuracy 0…1, SSIM ≤ 1).

    Attributes:
        metric_name: the primary metric compared.
        samples: number of test samples both fidelities were simulated on (the design's test split drawn at that size).
        reference_metric: the metric at the reference fidelity on those samples.
        probe_metric: the metric at the finer probe fidelity on the same samples.
        tolerance: largest accepted |probe − reference|.
        reference: :meth:`Fidelity.identifier` of the reference. probe: that of the probe fidelity.
    """

    metric_name: str
    samples: int
    reference_metric: float
    probe_metric: float
    tolerance: float
    reference: dict[str, Any]
    probe: dict[str, Any]

    @property
    def difference(self) -> float:
        """probe − reference (positive: the finer simulation scores higher)."""
        return self.probe_metric - self.reference_metric

    @property
    def converged(self) -> bool:
        """True when the finer fidelity changes the metric by no more than the tolerance."""
        return abs(self.difference) <= self.tolerance + 1e-12

    def summary(self) -> str:
        """One line for reports."""
        ref, probe = self.reference, self.probe
        return (
            f"{self.metric_name} on {self.samples} test samples: {self.reference_metric:.4f} at the "
            f"reference (s={ref['oversample']}, slices ≤ {_nm(ref['max_slice_m'])}), {self.probe_metric:.4f} at "
            f"s={probe['oversample']}, slices ≤ {_nm(probe['max_slice_m'])}: difference {self.difference:+.4f} "
            f"({'within' if self.converged else 'beyond'} the tolerance {self.tolerance:.4f})"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record."""
        return {
            "metric": self.metric_name,
            "samples": self.samples,
            "reference_metric": self.reference_metric,
            "probe_metric": self.probe_metric,
            "difference": self.difference,
            "tolerance": self.tolerance,
            "converged": self.converged,
            "reference_fidelity": self.reference,
            "probe_fidelity": self.probe,
        }


def _nm(value_m: float | None) -> str:
    return "level steps" if value_m is None else f"{value_m * 1e9:.4g} nm"


def probe_fidelity(reference: Fidelity) -> Fidelity:
    """The probe's finer fidelity: twice the sampling and (relief model) slices no thicker than half the
    reference's thickest slice."""
    relief = reference.relief
    if relief is not None:
        thickest_m = float(np.diff(relief.slice_edges_m()).max(initial=0.0))
        if thickest_m > 0:
            relief = dataclasses.replace(relief, max_slice_m=0.5 * thickest_m)
    return Fidelity(2 * reference.oversample, relief, "probe")


def run_probe(
    design: Design,
    reference: Fidelity,
    *,
    samples: int = DEFAULT_PROBE_SAMPLES,
    tolerance: float,
    heights_m: np.ndarray | None = None,
    device: str = "auto",
    progress: Callable[[int, int], None] | None = None,
    reference_metric: float | None = None,
) -> ProbeResult:
    """Simulate ``samples`` test samples (the split drawn at that size) at ``reference`` and at
    :func:`probe_fidelity`, and compare.

    Args:
        heights_m: ``(L, N, N)`` relief heights above the base (m) to simulate (default: the design's levels).
        progress: ``progress(done, total)`` over both simulations together (samples simulated).
        reference_metric: the reference metric on exactly these samples, when already known (skips that run).
    """
    if samples < 1:
        raise ValueError(f"the convergence probe needs at least 1 sample, got {samples}")
    split = design.dataset.get("test_samples")
    if split:  # never more than the design's own test split (a larger count would load other samples)
        samples = min(int(samples), int(split))
    metric_name = primary_metric_name(design.metrics)
    finer = probe_fidelity(reference)
    runs = [finer] if reference_metric is not None else [reference, finer]
    values: list[float] = []
    for index, fid in enumerate(runs):
        offset = index * samples

        def step(done: int, total: int, offset: int = offset) -> None:
            if progress is not None:
                progress(offset + done, len(runs) * total)

        result = simulate_design(design, samples=samples, fidelity=fid, heights_m=heights_m, device=device,
                                 progress=step)
        values.append(float(result[metric_name]))
        samples = int(result["samples"])  # a split smaller than asked: both runs use what it holds
    ref_value = reference_metric if reference_metric is not None else values[0]
    g = design.geometry
    return ProbeResult(metric_name, samples, float(ref_value), values[-1], float(tolerance),
                       reference.identifier(g), finer.identifier(g))
