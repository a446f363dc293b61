"""Transfer-curve figure of the quantizers (like Fig. 2D of the QuATON paper): Q(φ) and dQ/dφ.

Uses matplotlib's object API with the Agg canvas (no pyplot, no global backend switch) and writes the PNG
to a temporary name in the target folder, then renames it, so a reader never sees a half-written file.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from quaton_fab.fileio import atomic_path
from quaton_fab.quant.levels import TWO_PI, LevelSet
from quaton_fab.quant.settings import QuantizerError
from quaton_fab.quant.transfer import psq_transfer

logger = logging.getLogger(__name__)


def _display_unwrap(phi: np.ndarray, q: np.ndarray, levels: LevelSet) -> np.ndarray:
    """Add the multiple of 2π that puts a periodic output ``q`` next to its input ``phi`` (display only)."""
    if not levels.periodic:
        return q
    return q + TWO_PI * np.round((phi - q) / TWO_PI)


def transfer_curves(
    levels: LevelSet, slopes: Sequence[float], num_points: int = 2001, alpha: float = 0.01
) -> dict[str, np.ndarray]:
    """Sampled transfer curves (radians) and their derivatives (dimensionless), all shape (num_points,).

    Keys: ``phi`` (latent phase, one step beyond the level range on each side), ``hard`` (nearest level,
    eval/export of every method; derivative 0), and for each k·Δ_min in ``slopes``: ``psq@<kΔ>`` and
    ``dpsq@<kΔ>`` (PSQ training forward and autograd derivative). Periodic outputs are unwrapped next to φ
    for display (Q and Q + 2π are the same phase).
    """
    step = levels.min_step
    if levels.periodic:
        lo, hi = float(levels.phases[0]) - step, float(levels.phases[0]) + TWO_PI + step
    else:
        lo, hi = float(levels.phases[0]) - step, float(levels.phases[-1]) + step
    phi_np = np.linspace(lo, hi, num_points)
    phi = torch.tensor(phi_np, dtype=torch.float64)
    hard = levels.index_to_phase(levels.nearest_index(phi)).numpy()
    curves: dict[str, np.ndarray] = {"phi": phi_np, "hard": _display_unwrap(phi_np, hard, levels)}
    for k_delta in slopes:
        if not (k_delta > 0 and math.isfinite(k_delta)):
            raise QuantizerError(f"figure slopes are k·Δ values and must be positive, got {k_delta!r}")
        x = phi.clone().requires_grad_(True)
        q = psq_transfer(x, levels, k_delta / step, alpha)
        (grad,) = torch.autograd.grad(q.sum(), x)
        curves[f"psq@{k_delta:g}"] = _display_unwrap(phi_np, q.detach().numpy(), levels)
        curves[f"dpsq@{k_delta:g}"] = grad.numpy()
    return curves


def plot_transfer_curves(
    levels: LevelSet, path: str | os.PathLike[str], slopes: Sequence[float] = (2.0, 5.0, 10.0, 30.0)
) -> Path:
    """Write a PNG of each quantizer's transfer curve Q(φ) and gradient dQ/dφ; returns the path written.

    ``slopes`` are PSQ sharpnesses k·Δ_min (dimensionless). Curves: PSQ (training forward) at each slope,
    STE (hard forward, identity gradient) and the hard nearest-level map used in eval/export (zero
    gradient).
    """
    out = Path(path)
    curves = transfer_curves(levels, slopes)
    phi = curves["phi"]
    fig = Figure(figsize=(7.0, 6.8), dpi=110)
    FigureCanvasAgg(fig)
    ax_q, ax_g = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 2]})
    colors = [f"C{i}" for i in range(len(slopes))]
    for k_delta, color in zip(slopes, colors):
        label = f"PSQ, k·Δ = {k_delta:g}"
        ax_q.plot(phi, curves[f"psq@{k_delta:g}"], color=color, lw=1.3, label=label)
        ax_g.plot(phi, curves[f"dpsq@{k_delta:g}"], color=color, lw=1.3)
    ax_q.plot(phi, curves["hard"], color="k", lw=2.2, ls="--", label="hard = STE forward (eval/export)")
    ax_g.plot(phi, np.ones_like(phi), color="k", lw=2.0, ls=":", label="STE backward (identity)")
    ax_g.plot(phi, np.zeros_like(phi), color="k", lw=2.2, ls="--", label="hard (no gradient)")
    for c in levels.thresholds:
        for a in (ax_q, ax_g):
            a.axvline(c, color="0.85", lw=0.8, zorder=0)
    for p in levels.phases:
        ax_q.axhline(p, color="0.85", lw=0.8, zorder=0)
    wrap_note = " (wrap-aware; Q and Q + 2π are one phase)" if levels.periodic else " (clamped range)"
    ax_q.set_title(f"{levels.n} levels, kind '{levels.kind}'{wrap_note}", fontsize=10)
    ax_q.set_ylabel("quantized phase Q(φ) [rad]")
    ax_g.set_ylabel("dQ/dφ")
    ax_g.set_xlabel("latent phase φ [rad]")
    top = max(1.0, *(float(np.max(curves[f"dpsq@{k:g}"])) for k in slopes))
    ax_g.set_yscale("symlog", linthresh=0.01)
    ax_g.set_ylim(0.0, 2.0 * top)
    ax_q.legend(fontsize=8, loc="upper left")
    ax_g.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.32), ncol=2, frameon=False)
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png")
    logger.info("wrote transfer-curve figure %s", out)
    return out
