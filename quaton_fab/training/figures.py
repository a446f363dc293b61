"""Figures of a trained design: phase masks, training curves, confusion matrix, input/output examples.

All functions take plain data (a Design, a history list, arrays), write one PNG with matplotlib's Agg backend
to a temporary name and rename it, and return the path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from quaton_fab.design import Design  # noqa: E402
from quaton_fab.fileio import atomic_path  # noqa: E402

__all__ = ["plot_masks", "plot_history", "plot_confusion", "plot_examples"]


def _save(fig: Any, path: str | Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    plt.close(fig)
    return Path(path)


def plot_masks(design: Design, path: str | Path) -> Path:
    """One panel per mask: the level index of every neuron (colour = level, with its phase in the colour bar)."""
    idx = design.level_indices
    n_masks, n = idx.shape[0], design.levels.n
    cols = min(n_masks, 4)
    rows = int(np.ceil(n_masks / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.0 * rows), squeeze=False, layout="constrained")
    pitch_um = design.geometry.pitch_m * 1e6
    extent = [0, idx.shape[2] * pitch_um, 0, idx.shape[1] * pitch_um]
    image = None
    for k, ax in enumerate(axes.ravel()):
        if k >= n_masks:
            ax.axis("off")
            continue
        image = ax.imshow(idx[k], cmap="twilight" if design.levels.kind == "circle" else "viridis",
                          vmin=-0.5, vmax=n - 0.5, extent=extent, interpolation="nearest")
        ax.set_title(f"mask {k + 1}")
        ax.set_xlabel("x (µm)")
        if k % cols == 0:
            ax.set_ylabel("y (µm)")
    if image is not None:
        bar = fig.colorbar(image, ax=axes.ravel().tolist(), ticks=range(n), shrink=0.8)
        bar.ax.set_yticklabels([f"{k}: {p:.2f} rad" for k, p in enumerate(design.levels.phases)], fontsize=7)
    fig.suptitle(f"{design.method.get('name', '?')} · {n} levels")
    return _save(fig, path)


def plot_history(history: list[dict[str, Any]], metric: str, path: str | Path) -> Path:
    """Training loss and the validation metric (hard-quantized masks) per epoch."""
    epochs = [h["epoch"] for h in history]
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    ax.plot(epochs, [h["train_loss"] for h in history], "o-", color="tab:blue", label="train loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("train loss", color="tab:blue")
    ax2 = ax.twinx()
    ax2.plot(epochs, [h["val"].get(metric, np.nan) for h in history], "s-", color="tab:red",
             label=f"val {metric} (hard)")
    ax2.set_ylabel(f"validation {metric} (quantized)", color="tab:red")
    ax.set_title("training curves")
    return _save(fig, path)


def plot_confusion(confusion: list[list[int]], path: str | Path) -> Path:
    """Confusion matrix (rows: true class, columns: predicted), with counts."""
    cm = np.asarray(confusion)
    fig, ax = plt.subplots(figsize=(4.8, 4.2))
    ax.imshow(cm, cmap="Blues")
    for (i, j), value in np.ndenumerate(cm):
        ax.text(j, i, str(value), ha="center", va="center", fontsize=7,
                color="white" if value > cm.max() / 2 else "black")
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_xticks(range(cm.shape[1]))
    ax.set_yticks(range(cm.shape[0]))
    acc = np.trace(cm) / max(cm.sum(), 1)
    ax.set_title(f"test confusion matrix (accuracy {acc:.2%})")
    return _save(fig, path)


def plot_examples(
    input_phase: np.ndarray,
    intensity: np.ndarray,
    path: str | Path,
    *,
    regions: list[list[int]] | None = None,
    labels: np.ndarray | None = None,
    predictions: np.ndarray | None = None,
    target: np.ndarray | None = None,
) -> Path:
    """A few inputs (phase, rad) and detector intensities; detector regions outlined, or QPI target vs output.

    Args:
        input_phase: ``(K, N, N)`` radians; intensity: ``(K, N, N)`` detector intensity per neuron, or for QPI
            the prediction (gain × intensity) on the crop, shown on the target's [0, 1] scale.
        regions: classification detector rectangles ``[r0, c0, r1, c1]`` (half-open, neuron units).
        target: QPI target (normalised phase) on the crop, shown as a third row.
    """
    k = input_phase.shape[0]
    rows = 3 if target is not None else 2
    fig, axes = plt.subplots(rows, k, figsize=(2.2 * k, 2.2 * rows), squeeze=False)
    for i in range(k):
        axes[0, i].imshow(input_phase[i], cmap="magma")
        title = f"input, label {labels[i]}" if labels is not None else "input phase"
        axes[0, i].set_title(title, fontsize=8)
        if target is not None:
            axes[1, i].imshow(intensity[i], cmap="magma", vmin=0, vmax=1)
            axes[1, i].set_title("gain × intensity (crop)", fontsize=8)
        else:
            axes[1, i].imshow(intensity[i], cmap="inferno")
            title = f"output → {predictions[i]}" if predictions is not None else "output intensity"
            axes[1, i].set_title(title, fontsize=8)
        for r0, c0, r1, c1 in regions or []:
            axes[1, i].add_patch(plt.Rectangle((c0 - 0.5, r0 - 0.5), c1 - c0, r1 - r0, fill=False, ec="cyan", lw=0.8))
        if target is not None:
            axes[2, i].imshow(target[i], cmap="magma", vmin=0, vmax=1)
            axes[2, i].set_title("target: phase / φ_max (crop)", fontsize=8)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    return _save(fig, path)
