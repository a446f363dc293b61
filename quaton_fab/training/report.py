"""Write a design's figures and ``metrics.json`` (used after training and by ``quaton-fab inspect``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from quaton_fab.data import Encoding
from quaton_fab.design import Design
from quaton_fab.fileio import atomic_write_bytes
from quaton_fab.optics.network import DiffractiveNetwork
from quaton_fab.training import figures
from quaton_fab.simulate import load_design_split
from quaton_fab.training.schedule_figure import plot_quantizer_history, schedule_series
from quaton_fab.tasks.metrics import primary_metric_name

__all__ = ["write_metrics", "write_figures", "example_outputs", "FIGURE_NAMES", "planned_figures",
           "remove_stale_figures"]

#: Every figure file name :func:`write_figures` can write.
#: The run's metrics file (beside design.json).
METRICS_JSON = "metrics.json"
FIGURE_NAMES = ("masks.png", "training.png", "quantizer.png", "confusion.png", "examples.png")


def planned_figures(design: Design) -> list[str]:
    """Names of the figures :func:`write_figures` writes for ``design`` (to check for files in the way)."""
    names = ["masks.png"]
    if design.training.get("history"):
        names.append("training.png")
    if schedule_series(design.training.get("history") or []):
        names.append("quantizer.png")
    if design.metrics.get("test", {}).get("confusion"):
        names.append("confusion.png")
    if design.dataset.get("spec"):
        names.append("examples.png")
    return names


def remove_stale_figures(out_dir: str | Path, written: list[Path]) -> list[Path]:
    """Delete figures of an earlier run (names in FIGURE_NAMES) that this run did not write; return them."""
    out = Path(out_dir)
    keep = {Path(p).name for p in written}
    stale = [out / name for name in FIGURE_NAMES if name not in keep and (out / name).is_file()]
    for path in stale:
        path.unlink()
    return stale


def write_metrics(design: Design, out_dir: str | Path) -> Path:
    """``metrics.json``: the design's metrics plus the per-epoch history when it has one."""
    payload: dict[str, Any] = {"metrics": design.metrics, "history": design.training.get("history", [])}
    return atomic_write_bytes(Path(out_dir) / METRICS_JSON, json.dumps(payload, indent=2).encode("utf-8"))


@torch.no_grad()
def example_outputs(design: Design, count: int = 4) -> dict[str, np.ndarray]:
    """Simulate the first ``count`` test samples: input phase, detector intensity per neuron, labels.

    Returns arrays ``input_phase`` (K, N, N) rad, ``intensity`` (K, N, N) (summed over each neuron's s×s
    pixels) and ``labels`` (K,).
    """
    images, labels = load_design_split(design, "test", samples=None)
    images, labels = images[:count], labels[:count]
    g = design.geometry
    encoding = Encoding.from_dict(design.encoding)
    network = DiffractiveNetwork(g)
    phases = torch.as_tensor(design.phases_rad(), dtype=torch.float32)
    field, input_phase = encoding.field_and_phase(images, g.neurons, g.oversample)
    intensity = network(field, phases=phases)
    s = g.oversample
    per_neuron = intensity.reshape(-1, g.neurons, s, g.neurons, s).sum(dim=(2, 4))
    return {
        "input_phase": input_phase.numpy(),
        "intensity": per_neuron.numpy(),
        "labels": labels.numpy(),
    }


def write_figures(design: Design, out_dir: str | Path, *, examples: int = 4) -> list[Path]:
    """Write masks.png, training.png (if a history exists), confusion.png (classification) and examples.png."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = [figures.plot_masks(design, out / "masks.png")]
    history = design.training.get("history") or []
    primary = primary_metric_name(design.metrics)
    if history:
        written.append(figures.plot_history(history, primary, out / "training.png"))
        schedules = plot_quantizer_history(history, out / "quantizer.png")
        if schedules is not None:
            written.append(schedules)
    confusion = design.metrics.get("test", {}).get("confusion")
    if confusion:
        written.append(figures.plot_confusion(confusion, out / "confusion.png"))
    if design.dataset.get("spec"):
        ex = example_outputs(design, examples)
        task = design.task
        if task.get("kind") == "classify":
            regions = task.get("regions")
            sums = np.stack(
                [ex["intensity"][:, r0:r1, c0:c1].sum(axis=(1, 2)) for r0, c0, r1, c1 in regions], axis=1
            )
            written.append(figures.plot_examples(
                ex["input_phase"], ex["intensity"], out / "examples.png",
                regions=regions, labels=ex["labels"], predictions=sums.argmax(axis=1),
            ))
        else:
            # QPI: show what the metric compares — gain × mean intensity per neuron vs phase/φ_max, on the crop.
            r0, c0, r1, c1 = task["crop_box"]
            s2 = design.geometry.oversample**2
            prediction = float(task["gain"]) * ex["intensity"][:, r0:r1, c0:c1] / s2
            target = np.clip(ex["input_phase"][:, r0:r1, c0:c1] / float(task["phase_max_rad"]), 0.0, 1.0)
            written.append(figures.plot_examples(ex["input_phase"], prediction, out / "examples.png",
                                                 target=target))
    return written
