"""Convergence probe of the printed-object reference: does a finer fidelity change the metric beyond the tolerance?

The reference fidelity (:func:`~quaton_fab.simulate.reference_fidelity`) samples at the in-material rule and
slices the relief at most λ0·REFERENCE_SLICE_FRACTION. Whether that is converged *for a given design* is a
question about the metric over the samples the verification judges (the population: by default the design's whole
test split) at a probe fidelity with twice the sampling (half the simulation pitch) and slices half as thick.
The probe fidelity costs about 16 times the reference per sample, so only a budget of ``samples`` is simulated
there, chosen by **stratified sampling** from the reference run of the whole population:

* a decision metric (classification): a prediction changes only where the finer simulation moves the detector
  powers by more than the sample's margin, so the half of the budget with the smallest reference margins is
  simulated as a census (their change is known exactly) and the other half is drawn at random from the rest;
* a continuous metric (SSIM): the whole budget is a random draw.

With d the per-sample change (probe − reference), N the population, C the census, R = N − |C| the rest and n the
draw, the population's change is estimated as Δ = (Σ_C d + R·mean_draw d)/N with standard error
R/N·√(s²/n·(1 − n/R)) (s²: the draw's variance of d). A draw of a decision metric in which no prediction changed
has s² = 0, which would claim more than n samples can show; s² is then taken as if one had changed (1/n). The
verdict, at 95 % confidence (z = 1.96):

* **converged**: |Δ| + z·se ≤ tolerance;
* **not converged**: |Δ| − z·se > tolerance, so a number measured at the reference cannot be trusted to that
  tolerance;
* **undecided**: the interval straddles the tolerance; a larger budget narrows it (as 1/√samples). A budget of
  at least the population simulates every sample (se = 0).

The random draw is seeded by the design's seed, so a probe is reproducible.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from quaton_fab.design import Design
from quaton_fab.simulate import Fidelity, SampleRecord, simulate_design
from quaton_fab.tasks.metrics import primary_metric_name

__all__ = [
    "CONFIDENCE_Z",
    "DEFAULT_PROBE_SAMPLES",
    "ProbeEstimate",
    "ProbePlan",
    "ProbeResult",
    "estimate_change",
    "plan_probe",
    "probe_fidelity",
    "run_probe",
]

#: Test samples the probe simulates at the finer fidelity by default (about 16× the reference's cost each): 750
#: nearest a changed decision and 750 drawn from the rest. On the default MNIST design (10,000 test digits, 1 µm
#: pixels) the predictions that change at the probe fidelity have margins below about 0.02, which the 750 smallest
#: margins cover; a draw of 750 from the rest then bounds their share of the change to about ±0.25 accuracy points
#: (95 %), inside the 0.5-point tolerance (benchmarks/results/probe_margins.json).
DEFAULT_PROBE_SAMPLES = 1500

#: The probe's interval is Δ ± CONFIDENCE_Z·se: 1.96 is 95 % two-sided (normal approximation).
CONFIDENCE_Z = 1.96

VERDICTS = ("converged", "not converged", "undecided")


@dataclass(frozen=True)
class ProbePlan:
    """Which samples of a population of ``population`` the probe simulates.

    Attributes:
        census: positions simulated because they lie nearest a changed decision (every one of them counts).
        draw: positions drawn at random from the rest (they stand for all ``population − len(census)``).
    """

    population: int
    census: np.ndarray
    draw: np.ndarray

    @property
    def indices(self) -> np.ndarray:
        """All positions to simulate, census first, ``(len(census) + len(draw),)`` int64."""
        return np.concatenate([self.census, self.draw]).astype(np.int64)


@dataclass(frozen=True)
class ProbeEstimate:
    """The population's change of the metric (probe − reference, a fraction) and its standard error."""

    difference: float
    standard_error: float
    changed: int

    def verdict(self, tolerance: float, z: float = CONFIDENCE_Z) -> str:
        """``converged``, ``not converged`` or ``undecided`` (see the module docstring)."""
        size, margin = abs(self.difference), z * self.standard_error
        if size + margin <= tolerance + 1e-12:
            return "converged"
        if size - margin > tolerance + 1e-12:
            return "not converged"
        return "undecided"


def plan_probe(reference: SampleRecord, samples: int, seed: int) -> ProbePlan:
    """Choose ``samples`` positions of the population ``reference`` describes (see the module docstring).

    A budget of at least the population is a census of all of it; a record with margins gives half the budget to
    the smallest margins; the rest (or all of a continuous metric's budget) is a seeded random draw.
    """
    population = int(reference.values.shape[0])
    if samples < 1:
        raise ValueError(f"the convergence probe needs at least 1 sample, got {samples}")
    if samples >= population:
        return ProbePlan(population, np.arange(population, dtype=np.int64), np.zeros(0, dtype=np.int64))
    census = np.zeros(0, dtype=np.int64)
    if reference.margins is not None:
        census = np.sort(np.argsort(reference.margins, kind="stable")[: samples // 2]).astype(np.int64)
    rest = np.setdiff1d(np.arange(population, dtype=np.int64), census)
    draw = np.random.default_rng(seed).choice(rest, size=samples - census.size, replace=False)
    return ProbePlan(population, census, np.sort(draw).astype(np.int64))


def estimate_change(plan: ProbePlan, change: np.ndarray, *, decision: bool) -> ProbeEstimate:
    """Stratified estimate of the population's change from the per-sample changes ``change`` (probe − reference,
    ``(len(plan.indices),)`` in the order of :attr:`ProbePlan.indices`).

    Args:
        decision: the metric is a 0/1 decision (a draw with no change then counts as one change in its variance).
    """
    change = np.asarray(change, dtype=np.float64)
    n_census = plan.census.size
    census, draw = change[:n_census], change[n_census:]
    rest = plan.population - n_census
    changed = int(np.count_nonzero(change))
    if draw.size == 0:  # a census of the whole population: exact
        return ProbeEstimate(float(census.sum()) / plan.population, 0.0, changed)
    variance = float(draw.var(ddof=1)) if draw.size > 1 else 0.0
    if decision:
        variance = max(variance, 1.0 / draw.size)
    finite = max(0.0, 1.0 - draw.size / rest)
    difference = (float(census.sum()) + rest * float(draw.mean())) / plan.population
    error = rest / plan.population * math.sqrt(variance / draw.size * finite)
    return ProbeEstimate(difference, error, changed)


@dataclass(frozen=True)
class ProbeResult:
    """One convergence probe (metrics are fractions: accuracy 0…1, SSIM ≤ 1).

    Attributes:
        metric_name: the primary metric compared.
        population: the test samples the verdict is about (their reference metric is ``reference_metric``).
        samples: test samples simulated at the probe fidelity; ``census`` of them nearest a changed decision.
        reference_metric: the metric over the population at the reference fidelity.
        estimate: the population's change at the probe fidelity, with its standard error.
        tolerance: largest accepted |change|.
        reference: :meth:`Fidelity.identifier` of the reference. probe: that of the probe fidelity.
    """

    metric_name: str
    population: int
    samples: int
    census: int
    reference_metric: float
    estimate: ProbeEstimate
    tolerance: float
    reference: dict[str, Any]
    probe: dict[str, Any]

    @property
    def difference(self) -> float:
        """Estimated probe − reference over the population (positive: the finer simulation scores higher)."""
        return self.estimate.difference

    @property
    def probe_metric(self) -> float:
        """The estimated population metric at the probe fidelity."""
        return self.reference_metric + self.difference

    @property
    def half_width(self) -> float:
        """Half-width of the 95 % interval of :attr:`difference`."""
        return CONFIDENCE_Z * self.estimate.standard_error

    @property
    def verdict(self) -> str:
        """``converged``, ``not converged`` or ``undecided``."""
        return self.estimate.verdict(self.tolerance)

    @property
    def converged(self) -> bool | None:
        """True (converged), False (not converged) or None (undecided: the interval straddles the tolerance)."""
        return {"converged": True, "not converged": False}.get(self.verdict)

    def sampling_text(self) -> str:
        """How the probe's samples were chosen, in words."""
        if self.samples >= self.population:
            return f"all {self.population} test samples"
        drawn = self.samples - self.census
        if not self.census:
            return f"{self.samples} of {self.population} test samples drawn at random"
        return (f"{self.samples} of {self.population} test samples: the {self.census} nearest a changed decision "
                f"and {drawn} drawn from the rest")

    def summary(self) -> str:
        """One line for reports."""
        ref, probe = self.reference, self.probe
        judged = {
            "converged": f"within the tolerance {self.tolerance:.4f}",
            "not converged": f"beyond the tolerance {self.tolerance:.4f}",
            "undecided": f"cannot be told from the tolerance {self.tolerance:.4f} (more --probe-samples narrow it)",
        }[self.verdict]
        return (
            f"{self.metric_name} over {self.population} test samples: {self.reference_metric:.4f} at the reference "
            f"(s={ref['oversample']}, slices ≤ {_nm(ref['max_slice_m'])}); at s={probe['oversample']}, slices ≤ "
            f"{_nm(probe['max_slice_m'])} ({self.sampling_text()}) it changes by {self.difference:+.4f} ± "
            f"{self.half_width:.4f} (95 %): {judged}"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record."""
        return {
            "metric": self.metric_name,
            "population": self.population,
            "samples": self.samples,
            "census": self.census,
            "changed": self.estimate.changed,
            "reference_metric": self.reference_metric,
            "probe_metric": self.probe_metric,
            "difference": self.difference,
            "standard_error": self.estimate.standard_error,
            "interval_95": [self.difference - self.half_width, self.difference + self.half_width],
            "tolerance": self.tolerance,
            "verdict": self.verdict,
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
    population: int | None = None,
    reference_run: tuple[float, SampleRecord] | None = None,
) -> ProbeResult:
    """Judge ``reference`` on the population by simulating a budget of ``samples`` at :func:`probe_fidelity`.

    Args:
        heights_m: ``(L, N, N)`` relief heights above the base (m) to simulate (default: the design's levels).
        progress: ``progress(done, total)`` over the simulations together (samples simulated).
        population: test samples the verdict is about (the split drawn at that size; default the design's split).
        reference_run: the reference metric and :class:`SampleRecord` of exactly that population, when already
            simulated (skips that run).
    """
    if samples < 1:
        raise ValueError(f"the convergence probe needs at least 1 sample, got {samples}")
    metric_name = primary_metric_name(design.metrics)
    offset = 0
    if reference_run is None:  # the probe's own run follows: its budget counts in the total from the start
        result = simulate_design(design, samples=population, fidelity=reference, heights_m=heights_m, device=device,
                                 progress=lambda done, total: _report(progress, done, total + min(samples, total)),
                                 per_sample=True)
        reference_run = (float(result[metric_name]), result["per_sample"])
        offset = int(result["samples"])
    reference_metric, record = reference_run
    plan = plan_probe(record, int(samples), int(design.seed))
    finer = probe_fidelity(reference)
    result = simulate_design(design, samples=population, fidelity=finer, heights_m=heights_m, device=device,
                             progress=lambda done, total: _report(progress, offset + done, offset + total),
                             indices=plan.indices, per_sample=True)
    change = result["per_sample"].values - record.values[plan.indices]
    estimate = estimate_change(plan, change, decision=record.margins is not None)
    g = design.geometry
    return ProbeResult(metric_name, plan.population, int(plan.indices.size), int(plan.census.size),
                       float(reference_metric), estimate, float(tolerance), reference.identifier(g),
                       finer.identifier(g))


def _report(progress: Callable[[int, int], None] | None, done: int, total: int) -> None:
    if progress is not None:
        progress(done, total)
