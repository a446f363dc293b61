"""Figure of a tolerance Monte-Carlo: the metric against each error's magnitude (mean and 5th percentile).

Takes the plain result dict of :meth:`quaton_fab.analysis.tolerance.ToleranceRun.to_dict`, writes one PNG with
matplotlib's Agg backend to a temporary name and renames it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from quaton_fab.fileio import atomic_path  # noqa: E402

__all__ = ["plot_tolerance"]


def plot_tolerance(result: dict[str, Any], path: str | Path) -> Path:
    """One panel per error: mean and 5th percentile of the metric vs magnitude, the nominal metric and the
    acceptance line (nominal − allowed loss). The trial count is in the title and each panel's legend."""
    rows = result["rows"]
    errors = list(dict.fromkeys(r["error"] for r in rows))
    cols = min(4, max(1, len(errors)))
    nrows = int(np.ceil(len(errors) / cols)) if errors else 1
    fig, axes = plt.subplots(nrows, cols, figsize=(3.4 * cols, 2.9 * nrows), squeeze=False, layout="constrained")
    metric, nominal, loss = result["metric"], result["nominal"], result["allowed_loss"]
    for ax, name in zip(axes.flat, errors):
        sel = sorted((r for r in rows if r["error"] == name), key=lambda r: r["magnitude"])
        x = np.array([0.0] + [r["magnitude"] for r in sel])
        mean = np.array([nominal] + [r["mean"] for r in sel])
        p5 = np.array([nominal] + [r["p5"] for r in sel])
        trials = max(r["trials"] for r in sel)
        ax.plot(x, mean, "o-", color="C0", label=f"mean ({trials} trial{'s' if trials != 1 else ''})")
        ax.plot(x, p5, "s--", color="C3", label="5th percentile")
        ax.axhline(nominal, color="0.5", lw=0.8)
        ax.axhline(nominal - loss, color="C2", lw=0.8, ls=":", label=f"nominal − {loss:g}")
        ax.set_xlabel(f"{name} ({sel[0]['unit']})")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(errors):]:
        ax.axis("off")
    fig.suptitle(f"{metric} under fabrication errors: {result['trials']} trials per magnitude, "
                 f"{result['samples']} test samples, {result['fidelity']} fidelity", fontsize=10)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return Path(path)
