"""Figure of a rigorous cross-check: model error bars (mean and worst) and the solver's harmonic convergence.

Takes the fab sheet's ``crosscheck`` entry and the convergence list of
:class:`quaton_fab.analysis.crosscheck.CrosscheckResult`; writes one PNG with matplotlib's Agg backend to a temporary
name and renames it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from quaton_fab.fileio import atomic_path  # noqa: E402

__all__ = ["plot_crosscheck"]


def plot_crosscheck(entry: dict[str, Any], convergence: Sequence[dict[str, float]], path: str | Path) -> Path:
    """Left: complex order error and L1 (TE/TM mean; TE vs TM for the rigorous pair), bars = mean, ticks = worst.
    Right: the rigorous solution at smaller M against the chosen M on the first patch."""
    rows = [r for r in entry["rows"] if r["polarisation"] in ("mean", "TE vs TM")]
    labels = [r["model"] if r["polarisation"] == "mean" else r["model"].replace("rigorous", "rigorous TE vs TM", 1)
              for r in rows]
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.4), layout="constrained",
                                  gridspec_kw={"width_ratios": [2.2, 1]})
    x = np.arange(len(rows))
    w = 0.38
    series = (("complex", "C0", "complex order error"), ("l1", "C1", "L1 of efficiencies"))
    for k, (key, colour, name) in enumerate(series):
        mean = [r[f"{key}_mean"] for r in rows]
        worst = [r[f"{key}_worst"] for r in rows]
        ax.bar(x + (k - 0.5) * w, mean, w, color=colour, label=f"{name} (mean)")
        ax.plot(x + (k - 0.5) * w, worst, "_", color="k", ms=14, mew=2, label="worst patch" if k == 0 else None)
    ax.axhline(0.10, color="C2", ls=":", lw=1, label="0.10")
    ax.set_xticks(x, labels, rotation=30, ha="right", rotation_mode="anchor", fontsize=7)
    ax.set_ylabel("error vs rigorous (TE/TM mean)")
    ax.legend(fontsize=7)
    ax.grid(axis="y", alpha=0.3)
    ax.set_title(f"{entry['patches']} patches of {entry['patch_pixels']}×{entry['patch_pixels']} px; "
                 f"{entry['solver'].split(' (')[0]}, M = {entry['harmonics']}", fontsize=9)
    smaller = [c for c in convergence if c["harmonics"] < entry["harmonics"]]  # M itself differs by 0
    if smaller:
        ms = [c["harmonics"] for c in smaller]
        ax2.semilogy(ms, [max(c["complex"], 1e-6) for c in smaller], "o-", label="complex")
        ax2.semilogy(ms, [max(c["l1"], 1e-6) for c in smaller], "s--", label="L1")
        ax2.legend(fontsize=7)
    else:
        ax2.text(0.5, 0.5, "no smaller M above the\npropagating orders", ha="center", va="center",
                 transform=ax2.transAxes, fontsize=8)
    ax2.set_xlabel("harmonics M ((2M+1)² kept)")
    ax2.set_ylabel(f"difference to M = {entry['harmonics']}")
    ax2.set_title("convergence, patch 1", fontsize=9)
    ax2.grid(alpha=0.3)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
    return Path(path)
