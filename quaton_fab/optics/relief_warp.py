"""Moving, turning and blurring a relief height map on the simulation grid (heights in metres).

Pure, differentiable tensor operations on ``(..., M, M)`` height maps, in simulation samples: a shift is the
area-weighted (bilinear) resampling of the moved relief (exact for whole-sample shifts, bare base shifted in), a
rotation a bilinear resampling about the grid centre, the blur a Gaussian integrated over each sample (circular
boundary, so the mean height is kept). The perturbation model (:mod:`quaton_fab.optics.perturbation`) uses them.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from quaton_fab.optics.error_magnitudes import ToleranceError

__all__ = ["shift_relief", "rotate_relief", "gaussian_sample_kernel", "blur_relief"]


def _shift_int(x: torch.Tensor, n: int, dim: int) -> torch.Tensor:
    """``x`` moved by ``n`` whole samples along ``dim`` (towards larger indices for n > 0), zeros shifted in."""
    size = x.shape[dim]
    if n == 0:
        return x
    if abs(n) >= size:
        return torch.zeros_like(x)
    zeros_shape = list(x.shape)
    zeros_shape[dim] = abs(n)
    zeros = x.new_zeros(zeros_shape)
    if n > 0:
        return torch.cat([zeros, x.narrow(dim, 0, size - n)], dim=dim)
    return torch.cat([x.narrow(dim, -n, size + n), zeros], dim=dim)


def _shift_axis(x: torch.Tensor, shift_px: float, dim: int) -> torch.Tensor:
    """Area-weighted shift by ``shift_px`` samples along ``dim``: exact for whole samples, linear in between."""
    nearest = round(shift_px)
    if abs(shift_px - nearest) < 1e-9:  # whole samples up to rounding (e.g. a pixel of s samples)
        shift_px = float(nearest)
    whole = math.floor(shift_px)
    frac = shift_px - whole
    moved = _shift_int(x, whole, dim)
    if frac == 0.0:
        return moved
    return (1.0 - frac) * moved + frac * _shift_int(x, whole + 1, dim)


def shift_relief(heights_m: torch.Tensor, dy_px: float, dx_px: float) -> torch.Tensor:
    """A relief ``(..., M, M)`` (heights, m) moved by ``(dy, dx)`` simulation samples (bare base shifted in).

    The moved piecewise-constant relief averaged over each sample: whole-sample shifts move the array, the
    fractional part blends neighbours linearly (the exact area average). Differentiable in the heights.
    """
    out = _shift_axis(heights_m, float(dy_px), heights_m.ndim - 2)
    return _shift_axis(out, float(dx_px), heights_m.ndim - 1)


def rotate_relief(heights_m: torch.Tensor, angle_deg: float) -> torch.Tensor:
    """A relief ``(M, M)`` turned by ``angle_deg`` about the grid centre (bilinear resampling, base outside)."""
    if angle_deg == 0.0:
        return heights_m
    theta = math.radians(angle_deg)
    c, s = math.cos(theta), math.sin(theta)
    # output (x, y) samples the input at R(−θ)·(x, y); normalised coordinates of a square grid
    matrix = torch.tensor([[c, s, 0.0], [-s, c, 0.0]], dtype=heights_m.dtype, device=heights_m.device)
    image = heights_m[None, None]
    grid = torch.nn.functional.affine_grid(matrix[None], list(image.shape), align_corners=False)
    out = torch.nn.functional.grid_sample(image, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out[0, 0]


def gaussian_sample_kernel(sigma_px: float) -> np.ndarray:
    """1-D kernel of a Gaussian of std ``sigma_px`` (samples) integrated over each sample; sums to 1.

    ``w_k = Φ((k + ½)/σ) − Φ((k − ½)/σ)`` for ``|k| ≤ ceil(4σ) + 1``, renormalised.
    """
    radius = int(math.ceil(4.0 * sigma_px)) + 1
    k = np.arange(-radius, radius + 1, dtype=np.float64)
    cdf = lambda x: 0.5 * (1.0 + np.vectorize(math.erf)(x / (sigma_px * math.sqrt(2.0))))  # noqa: E731
    weights = cdf(k + 0.5) - cdf(k - 0.5)
    return weights / weights.sum()


def blur_relief(heights_m: torch.Tensor, sigma_px: float) -> torch.Tensor:
    """Pixel rounding: the relief ``(..., M, M)`` convolved with a Gaussian of ``sigma_px`` samples.

    Separable, circular boundary (the mean height is kept exactly); ``sigma_px = 0`` returns the input.
    """
    if sigma_px == 0.0:
        return heights_m
    weights = torch.as_tensor(gaussian_sample_kernel(sigma_px), dtype=heights_m.dtype, device=heights_m.device)
    radius = (weights.numel() - 1) // 2
    lead = heights_m.shape[:-2]
    rows, cols = heights_m.shape[-2:]
    x = heights_m.reshape(-1, 1, rows, cols)
    if radius >= min(rows, cols):
        raise ToleranceError(f"blur of {sigma_px:g} samples is wider than the {rows}×{cols} grid")
    x = torch.nn.functional.pad(x, (radius, radius, 0, 0), mode="circular")
    x = torch.nn.functional.conv2d(x, weights.view(1, 1, 1, -1))
    x = torch.nn.functional.pad(x, (0, 0, radius, radius), mode="circular")
    x = torch.nn.functional.conv2d(x, weights.view(1, 1, -1, 1))
    return x.reshape(*lead, rows, cols)
