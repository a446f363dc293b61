"""The tolerance Monte-Carlo: how far each fabrication error may go before the printed design fails.

Each trial draws one print from the perturbation model of :mod:`quaton_fab.optics.perturbation` (seeded, common
random numbers across errors and magnitudes) and re-simulates the design at the chosen fidelity; the result
says, per error, the largest magnitude whose metric stays within the allowed loss.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import numbers
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from quaton_fab.optics.network import DiffractiveNetwork
from quaton_fab.optics.perturbation import (
    ERRORS,
    PERTURBATION_MODEL,
    ErrorMagnitudes,
    PerturbationDraw,
    check_magnitude,
    ToleranceError,
    draw_perturbation,
    perturb_heights,
    perturbed_network,
    trial_generator,
)
from quaton_fab.resources import check_simulation, fidelity_option
from quaton_fab.data import Encoding
from quaton_fab.tasks import task_from_dict
from quaton_fab.simulate import evaluate_network, load_design_split, reference_fidelity, resolve_device
from quaton_fab.tasks.metrics import metric_spec, primary_metric_name
from quaton_fab.vocabulary import CRITERIA

__all__ = ["ToleranceRun", "run_tolerance", "tolerance_markdown", "tolerance_sheet_entry"]

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------------- Monte-Carlo
@dataclass
class ToleranceRun:
    """Result of :func:`run_tolerance`. ``rows``: one per (error, magnitude) with the per-trial metrics."""

    metric: str
    allowed_loss: float
    criterion: str
    trials: int
    samples: int
    seed: int
    fidelity: str
    fidelity_description: str
    nominal: float
    rows: list[dict[str, Any]]
    time_s: float = 0.0

    def limits(self) -> list[dict[str, Any]]:
        """Per error: the largest swept magnitude whose metric (criterion) stays within the allowed loss, with
        every smaller swept magnitude passing too; None when the smallest already fails."""
        out = []
        for name in dict.fromkeys(row["error"] for row in self.rows):
            rows = sorted((r for r in self.rows if r["error"] == name), key=lambda r: r["magnitude"])
            best = None
            for row in rows:
                if not row["within"]:
                    break
                best = row["magnitude"]
            spec = ERRORS.get(name)
            out.append({
                "error": name,
                "unit": spec.unit if spec else "× set",
                "max_magnitude": best,
                "swept_max": rows[-1]["magnitude"],
                "source": spec.source if spec else "every error at once, each at its magnitude × this factor",
            })
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready result (magnitudes in display units)."""
        return {
            "model": PERTURBATION_MODEL,
            "metric": self.metric,
            "allowed_loss": self.allowed_loss,
            "criterion": self.criterion,
            "trials": self.trials,
            "samples": self.samples,
            "seed": self.seed,
            "fidelity": self.fidelity,
            "fidelity_description": self.fidelity_description,
            "nominal": self.nominal,
            "time_s": round(self.time_s, 2),
            "rows": self.rows,
            "limits": self.limits(),
        }


def _summary(values: Sequence[float]) -> dict[str, float]:
    arr = np.asarray(values, dtype=np.float64)
    return {"mean": float(arr.mean()), "p5": float(np.percentile(arr, 5)), "min": float(arr.min()),
            "std": float(arr.std(ddof=1)) if arr.size > 1 else 0.0}


def run_tolerance(
    design: Any,
    sweeps: Mapping[str, Sequence[float]],
    *,
    trials: int = 4,
    seed: int = 0,
    samples: int | None = 300,
    fidelity: Any = None,
    allowed_loss: float | None = None,
    criterion: str = "p5",
    combined: ErrorMagnitudes | None = None,
    combined_factors: Sequence[float] = (),
    batch_size: int = 256,
    device: str = "auto",
    progress: Callable[[int, int, str], None] | None = None,
) -> ToleranceRun:
    """Monte-Carlo re-simulation of ``design`` printed with fabrication errors.

    Args:
        design: a :class:`~quaton_fab.design.Design`.
        sweeps: error name → magnitudes (field units, see :class:`ErrorMagnitudes`); each error is swept alone.
        trials: prints drawn per magnitude (a deterministic error, blur, is simulated once).
        seed: Monte-Carlo seed (trial ``t`` uses ``SeedSequence([seed, t])`` for every error and magnitude).
        samples: test samples (the design's test split, first ``samples``); None: all of them.
        fidelity: a :class:`~quaton_fab.simulate.Fidelity` with a relief; default the reference.
        allowed_loss: largest accepted drop of the metric from the nominal (default 0.01 accuracy, 0.02 SSIM).
        criterion: ``p5`` (5th percentile of the trials) or ``mean`` must stay within the loss.
        combined / combined_factors: also sweep every error at once, at ``combined × factor``.
        progress: called as ``progress(done, total, label)`` after each simulation.
    """
    primary, allowed_loss = _checked_inputs(design, sweeps, trials, seed, samples, allowed_loss, criterion,
                                            combined_factors)
    fid = fidelity if fidelity is not None else reference_fidelity(design)
    if fid.relief is None:
        raise ToleranceError("tolerance analysis simulates the printed relief; the chosen fidelity has thin masks")

    t0 = time.perf_counter()
    sim = _Simulation.build(design, fid, samples, batch_size, device)
    plan = _plan(sweeps, trials, combined, combined_factors)
    total = 1 + sum(count for *_, count in plan)
    L, N = sim.geometry.layers, sim.geometry.neurons
    nominal = sim.metric(draw_perturbation(ErrorMagnitudes(), L, N, trial_generator(seed, 0)), primary)
    if progress is not None:
        progress(sim.done, total, "nominal")
    rows = []
    for name, value, mags, count in plan:
        values = []
        for t in range(count):
            values.append(sim.metric(draw_perturbation(mags, L, N, trial_generator(seed, t)), primary))
            if progress is not None:
                progress(sim.done, total, f"{name} {value:g}")
        rows.append(_row(name, value, count, values, nominal - allowed_loss, criterion))
    return ToleranceRun(
        metric=primary, allowed_loss=float(allowed_loss), criterion=criterion, trials=trials,
        samples=int(sim.images.shape[0]), seed=int(seed), fidelity=fid.label or "custom",
        fidelity_description=fid.describe(design.geometry), nominal=nominal, rows=rows,
        time_s=time.perf_counter() - t0,
    )


def _checked_inputs(design: Any, sweeps: Mapping[str, Sequence[float]], trials: Any, seed: Any, samples: Any,
                    allowed_loss: Any, criterion: Any, combined_factors: Sequence[float]) -> tuple[str, float]:
    """Refuse bad arguments of :func:`run_tolerance` (one line naming the value); returns ``(primary metric,
    allowed loss)`` with the loss defaulting to the metric's (:mod:`quaton_fab.tasks.metrics`)."""
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise ToleranceError(f"trials must be an integer >= 1, got {trials!r}")
    if samples is not None and (isinstance(samples, bool) or not isinstance(samples, int) or samples < 1):
        raise ToleranceError(f"samples must be an integer >= 1, got {samples!r}")
    if criterion not in CRITERIA:
        raise ToleranceError(f"criterion must be {' or '.join(CRITERIA)}, got {criterion!r}")
    for name, values in sweeps.items():
        if name not in ERRORS:
            raise ToleranceError(f"unknown error {name!r}; use one of {', '.join(ERRORS)}")
        for value in values:
            check_magnitude(ERRORS[name], value)
    for factor in combined_factors:
        if not (isinstance(factor, numbers.Real) and math.isfinite(factor) and factor >= 0):
            raise ToleranceError(f"combined factor must be a finite number >= 0, got {factor!r}")
    primary = primary_metric_name(design.metrics, design.task.get("kind"))
    if allowed_loss is None:
        allowed_loss = metric_spec(primary).tolerance_loss
    if not (isinstance(allowed_loss, numbers.Real) and math.isfinite(allowed_loss) and 0 <= allowed_loss <= 1):
        raise ToleranceError(f"allowed loss must be a number in [0, 1], got {allowed_loss!r}")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ToleranceError(f"--seed {seed!r}: the Monte-Carlo seed must be a non-negative integer")
    return primary, allowed_loss


def _plan(sweeps: Mapping[str, Sequence[float]], trials: int, combined: ErrorMagnitudes | None,
          combined_factors: Sequence[float]) -> list[tuple[str, float, ErrorMagnitudes, int]]:
    """``(error, magnitude, magnitudes drawn, trials)`` of every simulation after the nominal one: each error
    alone, then every error at once (``"all"``) at ``combined × factor``; a deterministic or zero error once."""
    plan: list[tuple[str, float, ErrorMagnitudes, int]] = []
    for name, values in sweeps.items():
        for value in values:
            plan.append((name, float(value), ErrorMagnitudes().only(name, float(value)),
                         trials if ERRORS[name].random and value > 0 else 1))
    for factor in combined_factors:
        mags = (combined or ErrorMagnitudes.defaults()).scaled(float(factor))
        plan.append(("all", float(factor), mags, trials if not mags.is_zero else 1))
    return plan


@dataclass
class _Simulation:
    """The printed-object simulation every draw reuses: the network at the fidelity, the test split, the
    design's relief heights ((L, N, N) m); ``done`` counts the simulations run."""

    geometry: Any
    network: DiffractiveNetwork
    task: Any
    encoding: Encoding
    images: torch.Tensor
    labels: torch.Tensor
    heights: torch.Tensor
    batch_size: int
    done: int = 0

    @classmethod
    def build(cls, design: Any, fid: Any, samples: int | None, batch_size: int, device: str) -> "_Simulation":
        dev = resolve_device(device)
        images, labels = load_design_split(design, "test", samples=samples)
        geometry = dataclasses.replace(design.geometry, oversample=fid.oversample)
        check_simulation(geometry, fid.relief, batch=max(1, min(batch_size, int(images.shape[0]))),
                         option=fidelity_option(fid.oversample, fid.relief))
        network = DiffractiveNetwork(geometry, relief=fid.relief).to(dev)
        task = task_from_dict(design.task, geometry.neurons, geometry.oversample).to(dev)
        encoding = Encoding.from_dict(design.encoding)
        phases = torch.as_tensor(design.phases_rad(), dtype=torch.float32, device=dev)
        heights = fid.relief.heights_of_phases(phases, geometry.wavelength_m, geometry.n_medium)
        return cls(geometry, network, task, encoding, images, labels, heights, batch_size)

    def metric(self, draw: PerturbationDraw, name: str) -> float:
        """The metric ``name`` of the print drawn as ``draw``."""
        g = self.geometry
        sim = perturb_heights(self.heights, draw, oversample=g.oversample, sim_pitch_m=g.sim_pitch_m)
        net = perturbed_network(self.network, draw, float(sim.max()))
        metrics = evaluate_network(net, self.task, self.encoding, self.images, self.labels,
                                   batch_size=self.batch_size, heights_m=sim)
        self.done += 1
        return float(metrics[name])


def _row(name: str, value: float, count: int, values: list[float], floor: float, criterion: str) -> dict[str, Any]:
    """One table row: the error, its magnitude in display units, the trials' values and statistics, and whether
    the criterion statistic stays at or above ``floor`` (nominal − allowed loss)."""
    stats = _summary(values)
    spec = ERRORS.get(name)
    return {
        "error": name,
        "magnitude": spec.display(value) if spec else value,
        "unit": spec.unit if spec else "× set",
        "trials": count,
        "values": values,
        **stats,
        "within": stats[criterion] >= floor,
    }


def tolerance_markdown(run: ToleranceRun, title: str = "Fabrication tolerances") -> str:
    """The result as Markdown: the sweep table and the acceptance tolerances."""
    m = run.metric
    lines = [
        f"# {title}", "",
        f"Nominal {m}: {run.nominal:.4f} on {run.samples} test samples, {run.trials} trials per magnitude "
        f"(seed {run.seed}); fidelity: {run.fidelity} ({run.fidelity_description}). Allowed loss {run.allowed_loss:g} "
        f"{m}, criterion: the {'5th percentile' if run.criterion == 'p5' else 'mean'} of the trials. "
        f"Magnitudes are the σ of each random draw (blur: the Gaussian σ itself). Time {run.time_s:.0f} s.", "",
        f"| error | magnitude | trials | mean {m} | 5th pct | min | within loss |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in run.rows:
        lines.append(f"| {r['error']} | {r['magnitude']:g} {r['unit']} | {r['trials']} | {r['mean']:.4f} | "
                     f"{r['p5']:.4f} | {r['min']:.4f} | {'yes' if r['within'] else 'no'} |")
    lines += ["", "## Acceptance tolerances", "", "| error | largest magnitude within the loss | source |",
              "|---|---|---|"]
    for lim in run.limits():
        value = lim["max_magnitude"]
        if value is None:
            text = f"< smallest swept ({lim['unit']})"
        else:
            text = f"{value:g} {lim['unit']}" + (" (all swept passed)" if value == lim["swept_max"] else "")
        lines.append(f"| {lim['error']} | {text} | {lim['source']} |")
    return "\n".join(lines) + "\n"


def tolerance_sheet_entry(run: ToleranceRun) -> dict[str, Any]:
    """The fab sheet's ``tolerance`` key: ``{metric, allowed_loss, trials, samples, seed, fidelity, rows, nominal,
    curves}`` (``curves``: mean, 5th percentile and minimum of the metric per error and magnitude, for plots)."""
    return {
        "metric": run.metric,
        "allowed_loss": run.allowed_loss,
        "trials": run.trials,
        "samples": run.samples,
        "seed": run.seed,
        "fidelity": f"{run.fidelity}: {run.fidelity_description}",
        "rows": [{k: lim[k] for k in ("error", "unit", "max_magnitude", "source")} for lim in run.limits()],
        "nominal": run.nominal,
        "curves": [{k: r.get(k) for k in ("error", "magnitude", "unit", "mean", "p5", "min", "within")}
                   for r in sorted(run.rows, key=lambda r: (r["error"], r["magnitude"]))],
    }
