"""Structural similarity (SSIM) in torch, differentiable, one value per image.

Definition (Wang et al., IEEE TIP 13, 600, 2004), exactly as skimage's
``structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1)``
and ``pytorch_msssim.ssim``: local statistics are taken with a normalised separable Gaussian window
(``win_size`` taps, standard deviation ``sigma`` pixels), only where the window fits inside the image
('valid' convolution, no padding), population (not sample) variances, and

    SSIM = (2 μx μy + C1)(2 σxy + C2) / ((μx² + μy² + C1)(σx² + σy² + C2)),
    C1 = (k1 · data_range)², C2 = (k2 · data_range)²,

averaged over the valid positions of each image (and over channels, for 4-D input).
The QuATON lab reports two variants: "RD" (k1, k2 = 0.01, 0.03, the default here) and
"RI" (k1 = k2 = 1e-6, see ``RI_CONSTANTS``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from quaton_fab.errors import QuatonFabError

__all__ = ["SSIMError", "ssim", "gaussian_window", "RD_CONSTANTS", "RI_CONSTANTS"]

#: (k1, k2) of the standard ("RD") SSIM.
RD_CONSTANTS: tuple[float, float] = (0.01, 0.03)
#: (k1, k2) of the practically constant-free ("RI") SSIM used by the QuATON lab code.
RI_CONSTANTS: tuple[float, float] = (1e-6, 1e-6)


class SSIMError(QuatonFabError):
    """Inputs or settings for which SSIM is not defined (shape mismatch, window larger than the image, …)."""


def gaussian_window(
    win_size: int, sigma: float, *, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None
) -> torch.Tensor:
    """The normalised 1-D Gaussian window, shape ``(win_size,)``, centred on its middle tap.

    ``sigma`` is in pixels; the taps sum to 1.
    """
    if isinstance(win_size, bool) or not isinstance(win_size, int) or win_size < 1 or win_size % 2 == 0:
        raise SSIMError(f"win_size must be a positive odd integer, got {win_size!r}")
    if not sigma > 0:
        raise SSIMError(f"sigma must be positive, got {sigma!r}")
    coords = torch.arange(win_size, dtype=torch.float64) - (win_size - 1) / 2
    weights = torch.exp(-(coords**2) / (2.0 * sigma**2))
    return (weights / weights.sum()).to(dtype=dtype, device=device)


def _valid_gaussian_filter(images: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """Separable 'valid' Gaussian filtering of every channel: ``(B, C, H, W) -> (B, C, H-w+1, W-w+1)``."""
    channels = images.shape[1]
    size = window.numel()
    rows = window.view(1, 1, size, 1).expand(channels, 1, size, 1)
    cols = window.view(1, 1, 1, size).expand(channels, 1, 1, size)
    return F.conv2d(F.conv2d(images, rows, groups=channels), cols, groups=channels)


def ssim(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    data_range: float = 1.0,
    win_size: int = 11,
    sigma: float = 1.5,
    k1: float = RD_CONSTANTS[0],
    k2: float = RD_CONSTANTS[1],
) -> torch.Tensor:
    """SSIM of each image pair, shape ``(B,)``; differentiable in both arguments.

    Args:
        x, y: real tensors of the same shape, ``(B, H, W)`` or ``(B, C, H, W)`` (channels are averaged).
        data_range: the dynamic range of the pixel values (1 for images in [0, 1]).
        win_size: taps of the Gaussian window (odd, at most min(H, W)).
        sigma: standard deviation of the window, pixels.
        k1, k2: stabilising constants, C1 = (k1·data_range)², C2 = (k2·data_range)².

    Raises:
        SSIMError: mismatched or unsupported shapes, complex input, or a window larger than the image.
    """
    if x.shape != y.shape:
        raise SSIMError(f"ssim: x and y must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    if x.dim() not in (3, 4):
        raise SSIMError(f"ssim: expected (B, H, W) or (B, C, H, W), got shape {tuple(x.shape)}")
    if x.is_complex() or y.is_complex() or not x.is_floating_point() or not y.is_floating_point():
        raise SSIMError(f"ssim: expected real floating-point images, got {x.dtype} and {y.dtype}")
    if not data_range > 0:
        raise SSIMError(f"ssim: data_range must be positive, got {data_range!r}")
    height, width = x.shape[-2:]
    if isinstance(win_size, int) and win_size > min(height, width):
        raise SSIMError(f"ssim: win_size {win_size} is larger than the image ({height}×{width})")
    dtype = torch.promote_types(x.dtype, y.dtype)
    x4 = (x if x.dim() == 4 else x.unsqueeze(1)).to(dtype)
    y4 = (y if y.dim() == 4 else y.unsqueeze(1)).to(dtype)
    window = gaussian_window(win_size, sigma, dtype=dtype, device=x.device)
    channels = x4.shape[1]
    # One grouped convolution for the five local moments: μx, μy, E[x²], E[y²], E[xy].
    stacked = torch.cat([x4, y4, x4 * x4, y4 * y4, x4 * y4], dim=1)
    moments = _valid_gaussian_filter(stacked, window)
    mu_x, mu_y, e_xx, e_yy, e_xy = moments.split(channels, dim=1)
    var_x = e_xx - mu_x**2
    var_y = e_yy - mu_y**2
    cov_xy = e_xy - mu_x * mu_y
    c1 = (k1 * data_range) ** 2
    c2 = (k2 * data_range) ** 2
    numerator = (2.0 * mu_x * mu_y + c1) * (2.0 * cov_xy + c2)
    denominator = (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
    return (numerator / denominator).flatten(1).mean(dim=1)
