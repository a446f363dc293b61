"""Figure of the quantizers' schedules per mask over a run: sharpness k·Δ, PSQ-LT's |κ|, GS's temperature.

One idea: what each mask's quantizer did epoch by epoch, from the run's history (``quantizer_per_mask``, one
``status()`` dict per mask per epoch, values at the last step of the epoch). Written as ``quantizer.png`` beside
the other run figures when the history has per-mask records with a schedule in them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from quaton_fab.fileio import atomic_path  # noqa: E402

__all__ = ["PANELS", "schedule_series", "plot_quantizer_history"]

#: status() keys plotted, with their axis labels (one panel each, for the keys the history holds).
PANELS = {
    "k_delta": "sharpness k·Δ_min",
    "kappa_abs": "|κ| (PSQ-LT)",
    "reg_weight": "regulariser weight λ",
    "temperature": "GS temperature τ",
}


def schedule_series(history: list[dict[str, Any]]) -> dict[str, list[list[float]]]:
    """``{key: [[value of mask m at epoch e for e] for m]}`` for every PANELS key the per-mask records hold.

    Epochs without a per-mask record (histories written before it existed) are skipped; empty when none has one.
    """
    records = [h["quantizer_per_mask"] for h in history if h.get("quantizer_per_mask")]
    if not records:
        return {}
    masks = len(records[0])
    out: dict[str, list[list[float]]] = {}
    for key in PANELS:
        if all(key in r for rec in records for r in rec):
            out[key] = [[float(rec[m][key]) for rec in records] for m in range(masks)]
    return out


def plot_quantizer_history(history: list[dict[str, Any]], path: str | Path) -> Path | None:
    """One panel per schedule value, one line per mask, against the epoch; None when there is nothing to plot."""
    series = schedule_series(history)
    if not series:
        return None
    epochs = [h["epoch"] for h in history if h.get("quantizer_per_mask")]
    fig, axes = plt.subplots(1, len(series), figsize=(4.0 * len(series), 3.2), squeeze=False, layout="constrained")
    for ax, (key, per_mask) in zip(axes[0], series.items()):
        for m, values in enumerate(per_mask):
            ax.plot(epochs, values, "o-", ms=3, lw=1.2, label=f"mask {m + 1}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(PANELS[key])
        if key in ("k_delta", "reg_weight") and min(min(v) for v in per_mask) > 0:
            ax.set_yscale("log")
    axes[0][0].legend(fontsize=7)
    fig.suptitle("quantizer schedules per mask (value at the end of each epoch)")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    plt.close(fig)
    return Path(path)
