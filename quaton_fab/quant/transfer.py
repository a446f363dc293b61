"""The quantizers' transfer functions: PSQ's soft staircase, the straight-through trick and Gumbel-softmax.

Pure functions of tensors (phases in radians, slopes in rad⁻¹); the methods in
:mod:`quaton_fab.quant.quantizers` combine them with their schedules.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from quaton_fab.quant.levels import TWO_PI, LevelSet
from quaton_fab.quant.settings import QuantizerError

#: Sigmoid tails beyond k·|φ − c| > TAIL are dropped when the periodic staircase is truncated (σ(−20) ≈ 2e-9).
TAIL = 20.0
#: At most this many 2π periods of thresholds are added on each side of the wrap window (very small slopes).
MAX_PAD_PERIODS = 16


def soft_staircase(
    phi: torch.Tensor,
    base: float,
    thresholds: torch.Tensor,
    steps: torch.Tensor,
    slope: torch.Tensor | float,
) -> torch.Tensor:
    """Sum of sigmoids: ``base + Σ_i Δ_i·[σ(k(φ − c_i)) − 1(c_i < base)]``, elementwise in φ (radians).

    ``thresholds`` c_i and ``steps`` Δ_i have shape (m,) (rad); ``slope`` k (rad⁻¹) is a float or a scalar
    tensor (it may carry a gradient). Thresholds below ``base`` count as already passed (their step is
    subtracted back), which lets a periodic staircase include the steps just below its window. Written as
    ``s·Δ·σ(s·x)`` with ``s = ±1`` so neither branch loses precision. Returns a tensor shaped like ``phi``.
    """
    sign = torch.where(thresholds < base, -1.0, 1.0).to(phi.dtype)
    x = slope * (phi.unsqueeze(-1) - thresholds)
    return base + (sign * steps * torch.sigmoid(sign * x)).sum(dim=-1)


def _periodic_thresholds(levels: LevelSet, slope_value: float) -> tuple[np.ndarray, np.ndarray]:
    """Thresholds and steps (rad) of a periodic level set, repeated every 2π as far as the sigmoid tails reach.

    Keeps every threshold within ``TAIL/k`` of the wrap window [φ_0, φ_0 + 2π), so the truncated staircase
    is continuous across the wrap to ~σ(−TAIL). Shapes (m,), (m,).
    """
    reach_rad = TAIL / slope_value
    periods = min(MAX_PAD_PERIODS, math.ceil(reach_rad / TWO_PI))
    shifts = TWO_PI * np.arange(-periods, periods + 1, dtype=np.float64)
    c = (levels.thresholds[None, :] + shifts[:, None]).reshape(-1)
    d = np.tile(levels.steps, len(shifts))
    lo = levels.phases[0]
    keep = (c > lo - reach_rad) & (c < lo + TWO_PI + reach_rad)
    return c[keep], d[keep]


def psq_transfer(phi: torch.Tensor, levels: LevelSet, slope: torch.Tensor | float, alpha: float = 0.01) -> torch.Tensor:
    """PSQ's soft transfer Q(φ) (radians, same shape as ``phi``) at slope k (rad⁻¹; float or scalar tensor).

    ``range`` sets (lab form): ``Q = lo + Σ_{i=0}^{n−2} Δ_i·σ(k(φ − c_i)) + α·(φ − clamp(φ, lo, hi))``,
    the last term giving out-of-range latents the restoring slope α (the lab adds α·φ outside the range; the
    clamp form has the same gradient and no jump at lo/hi).

    Periodic sets (``circle``, ``list``): φ is wrapped into the window [φ_0, φ_0 + 2π), whose edges sit on
    level 0, and the staircase includes the step from the top level back to level 0 + 2π and its 2π repeats
    as far as the sigmoid tails reach, so Q(φ + 2π) ≡ Q(φ) (mod 2π) and the soft curve is continuous across
    the wrap. Outputs near φ_0 + 2π are level 0 (same phase). No α term: no latent is out of range.
    """
    k = float(slope.detach()) if isinstance(slope, torch.Tensor) else float(slope)
    if not (k > 0 and math.isfinite(k)):
        raise QuantizerError(f"PSQ slope must be a positive finite number (rad⁻¹), got {k!r}")
    as_t = {"dtype": phi.dtype, "device": phi.device}
    if not levels.periodic:
        lo, hi = float(levels.phases[0]), float(levels.phases[-1])
        c = torch.as_tensor(levels.thresholds, **as_t)
        d = torch.as_tensor(levels.steps, **as_t)
        return soft_staircase(phi, lo, c, d, slope) + alpha * (phi - torch.clamp(phi, lo, hi))
    lo = float(levels.phases[0])
    wrapped = lo + torch.remainder(phi - lo, TWO_PI)
    c_np, d_np = _periodic_thresholds(levels, k)
    return soft_staircase(wrapped, lo, torch.as_tensor(c_np, **as_t), torch.as_tensor(d_np, **as_t), slope)


def straight_through(hard: torch.Tensor, surrogate: torch.Tensor) -> torch.Tensor:
    """Value of ``hard`` exactly, gradient of ``surrogate`` (``surrogate − surrogate.detach()`` is exactly 0)."""
    return hard + (surrogate - surrogate.detach())


def gumbel_noise(shape: Sequence[int], seed: int, *, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Standard Gumbel noise −log(−log U) of ``shape`` from a private generator seeded with ``seed``."""
    gen = torch.Generator(device=device)
    gen.manual_seed(int(seed) % (2**63))
    u = torch.rand(tuple(shape), generator=gen, dtype=dtype, device=device)
    tiny = torch.finfo(dtype).tiny
    return -torch.log(-torch.log(u.clamp(min=tiny, max=1.0 - torch.finfo(dtype).eps)))


def gumbel_softmax_st(logits: torch.Tensor, noise: torch.Tensor, tau: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Hard Gumbel-softmax sample and its soft relaxation, over the last dim (levels).

    Returns ``(index, soft)``: ``index = argmax(logits + noise)`` (int64, shape ``logits.shape[:-1]``) and
    ``soft = softmax((logits + noise)/τ)`` (shape of ``logits``). As τ → 0, ``soft`` tends to the one-hot of
    ``index``.
    """
    perturbed = logits + noise
    return torch.argmax(perturbed, dim=-1), torch.softmax(perturbed / tau, dim=-1)


def level_offsets(levels: LevelSet) -> np.ndarray:
    """(n, n) matrix D[j, i] = φ_i − φ_j (rad), wrapped into [−π, π) for periodic sets.

    GS's soft phase around the sampled level j is ``φ_j + Σ_i p_i·D[j, i]``; for ``range`` sets this equals
    the lab's ``Σ_i p_i·φ_i``, for periodic sets it mixes levels along the short way round the circle.
    """
    d = levels.phases[None, :] - levels.phases[:, None]
    if levels.periodic:
        d = np.mod(d + math.pi, TWO_PI) - math.pi
    return d
