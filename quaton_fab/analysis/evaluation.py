"""Re-simulating a saved design at planned fidelities, and the hooks every analysis call reports through.

One idea: which simulations ``quaton-fab evaluate`` runs and what they give. :func:`plan_fidelities` decides
them (the design's own training model, the printed-object reference, both, or one custom fidelity when the
mask model, sampling, material, base or slicing is overridden); :func:`evaluate_design` runs them. Nothing is
printed: progress goes to an :class:`AnalysisHooks` object.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable
from contextlib import AbstractContextManager as ContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quaton_fab.design import Design
from quaton_fab.simulate import (
    Fidelity,
    default_relief,
    design_fidelity,
    reference_fidelity,
    reference_oversample,
    simulate_design,
)
from quaton_fab.tasks.metrics import primary_metric_name

__all__ = ["AnalysisHooks", "Evaluation", "evaluate_design", "load_design", "plan_fidelities"]

Update = Callable[[int, int], None]


class AnalysisHooks:
    """What an analysis call reports, in order; every method does nothing here. A renderer overrides them."""

    def fidelity(self, label: str, description: str) -> None:
        """A fidelity about to be simulated (``label``: design, reference, custom …), in words."""

    def progress(self, label: str) -> ContextManager[Update | None]:
        """Wraps one simulation; yields ``update(done, total)`` (None: no progress)."""
        return contextlib.nullcontext()

    def result(self, value: Any) -> None:
        """The computed result, before any file is written or recorded (so it can be shown even if that fails)."""

    def written(self, paths: list[Path]) -> None:
        """Result files written (before the fab sheet is updated)."""


def load_design(design: Design | str | Path) -> Design:
    """``design`` itself, or the design saved in that directory."""
    return design if isinstance(design, Design) else Design.load(design)


@dataclass
class Evaluation:
    """What :func:`evaluate_design` simulated: one metrics dict per fidelity (same order), and the report.

    ``reported`` is the design's own recorded primary metric (None if absent); ``comparable`` is true when the
    re-simulation used the design's own test split (no other dataset, no other sample count), so the values can
    be compared with ``reported``.
    """

    design: Design
    fidelities: list[Fidelity]
    results: list[dict[str, Any]]
    primary: str
    reported: float | None
    comparable: bool

    @property
    def metrics(self) -> dict[str, Any]:
        """The first fidelity's metrics (the table ``quaton-fab evaluate`` shows)."""
        return self.results[0]

    def reference_gap(self) -> float | None:
        """Reference − design primary metric on the same samples, when both fidelities ran (else None)."""
        if len(self.fidelities) < 2 or self.fidelities[0].label != "design":
            return None
        for fid, values in zip(self.fidelities[1:], self.results[1:]):
            if fid.label == "reference":
                return float(values[self.primary] - self.metrics[self.primary])
        return None

    def reported_gaps(self) -> list[float] | None:
        """Per fidelity: re-simulated − reported primary metric (None when not comparable or nothing reported)."""
        if self.reported is None or not self.comparable:
            return None
        return [float(values[self.primary] - self.reported) for values in self.results]


def plan_fidelities(
    design: Design,
    *,
    fidelity: str | None = None,
    model: str | None = None,
    oversample: int | str | None = None,
    material: str | None = None,
    base_m: float | None = None,
    max_slice_m: float | None = None,
) -> list[Fidelity]:
    """The fidelities ``quaton-fab evaluate`` simulates, in order.

    Any override (``model`` relief/thin, ``oversample`` an integer or ``"auto"`` for the rule of the simulated
    part, ``material``, ``base_m``, ``max_slice_m``) gives one ``custom`` fidelity: with ``fidelity="reference"``
    and no ``model``, the reference made finer (its slicing and sampling, never coarser; material and base as
    given), else the design's own model and sampling with the overrides. Otherwise ``fidelity`` (``design``,
    ``reference`` or ``both``, the default): the design's own training model and/or the printed-object reference;
    when both are the same, one run labelled ``design = reference``.
    """
    custom = any(v is not None for v in (model, oversample, material, base_m, max_slice_m))
    if custom and fidelity == "reference" and model is None:
        relief = default_relief(design, material=material, base_m=base_m)
        finer = reference_fidelity(design, relief=relief, oversample=None if oversample == "auto" else oversample,
                                   max_slice_m=max_slice_m)
        return [dataclasses.replace(finer, label="custom")]
    if custom:
        return [_custom_fidelity(design, model, oversample, material, base_m, max_slice_m)]
    which = fidelity or "both"
    runs: list[Fidelity] = []
    if which in ("design", "both"):
        runs.append(design_fidelity(design))
    if which in ("reference", "both"):
        ref = reference_fidelity(design)
        if not runs or ref.to_dict() | {"label": ""} != runs[0].to_dict() | {"label": ""}:
            runs.append(ref)
        else:
            runs[0] = dataclasses.replace(runs[0], label="design = reference")
    return runs


def _custom_fidelity(design: Design, model: str | None, oversample: int | str | None, material: str | None,
                     base_m: float | None, max_slice_m: float | None) -> Fidelity:
    """One fidelity from the overrides (the design's own mask model and sampling where not overridden)."""
    g = design.geometry
    relief = None
    if (model or design.model) == "relief":
        relief = default_relief(design, material=material, base_m=base_m)
        if max_slice_m is not None:
            relief = dataclasses.replace(relief, max_slice_m=max_slice_m)
    s_value = reference_oversample(g, relief) if oversample == "auto" else oversample  # the simulated part's rule
    return Fidelity(int(s_value or g.oversample), relief, "custom")


def evaluate_design(
    design: Design | str | Path,
    *,
    dataset: str | None = None,
    samples: int | None = None,
    fidelity: str | None = None,
    model: str | None = None,
    oversample: int | str | None = None,
    material: str | None = None,
    base_m: float | None = None,
    max_slice_m: float | None = None,
    device: str = "auto",
    hooks: AnalysisHooks | None = None,
) -> Evaluation:
    """Re-simulate a saved design at the fidelities :func:`plan_fidelities` chooses.

    Args:
        design: a design, or its directory (design.json + masks.npz).
        dataset: another dataset spec (default: the design's own test split). samples: test samples.
        fidelity, model, oversample, material, base_m, max_slice_m: see :func:`plan_fidelities` (metres).
        hooks: for each fidelity, ``fidelity(label, description)`` then ``progress("simulating test split
            (LABEL)")`` around its simulation.
    """
    hooks = hooks or AnalysisHooks()
    design = load_design(design)
    runs = plan_fidelities(design, fidelity=fidelity, model=model, oversample=oversample, material=material,
                           base_m=base_m, max_slice_m=max_slice_m)
    results = []
    for fid in runs:
        hooks.fidelity(fid.label, fid.describe(design.geometry))
        with hooks.progress(f"simulating test split ({fid.label})") as update:
            results.append(simulate_design(design, dataset=dataset, samples=samples, fidelity=fid, device=device,
                                           progress=update))
    primary = primary_metric_name(design.metrics)
    reported = design.metrics.get("test", {}).get(primary)
    return Evaluation(design, runs, results, primary, reported, dataset is None and samples is None)
