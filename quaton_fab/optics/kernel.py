"""The band-limited angular-spectrum kernel: its light cone, its radius, the padding it needs and its synthesis.

The model is described in :mod:`quaton_fab.optics.propagation` (``PROPAGATION_MODEL``): the band-limited
transfer function (Matsushima & Shimobaba) on a synthesis window fixed by the geometry, its inverse DFT cut to
the stationary-phase cone plus a flat margin and a raised-cosine taper. Lengths in metres, sizes in pixels.
"""

from __future__ import annotations

import math

import numpy as np

from quaton_fab.optics.checks import check_distance, check_index, check_pixels, check_positive_length

__all__ = [
    "KERNEL_FLAT_MARGIN_PX",
    "KERNEL_TAPER_PX",
    "SYNTHESIS_OVERSIZE",
    "next_fast_length",
    "band_limit_frequency",
    "kernel_spread_px",
    "kernel_radius_px",
    "auto_padding",
    "cone_window",
    "band_limited_transfer",
    "compact_kernel",
]

#: Pixels kept at full weight beyond the stationary-phase cone of the band-limited kernel.
KERNEL_FLAT_MARGIN_PX = 48
#: Pixels over which the kernel is then tapered to zero (raised cosine).
KERNEL_TAPER_PX = 16
#: The synthesis window is at least this many kernel widths (2K+1) wide (controls wrap-around in synthesis).
SYNTHESIS_OVERSIZE = 2


def next_fast_length(n: int) -> int:
    """Smallest 2,3,5-smooth integer >= ``n`` (an FFT-friendly length), for ``n >= 1``."""
    candidate = check_pixels("length", n)
    while True:
        rest = candidate
        for prime in (2, 3, 5):
            while rest % prime == 0:
                rest //= prime
        if rest == 1:
            return candidate
        candidate += 1


def band_limit_frequency(window_m: float, *, wavelength_m: float, distance_m: float) -> float:
    """Matsushima–Shimobaba band limit (1/m) for a sampling window ``window_m`` wide (one axis).

    ``f_limit = 1 / (λm·sqrt((2·Δf·z)² + 1))`` with ``Δf = 1/window_m``: beyond it the transfer function,
    sampled at Δf, aliases; equivalently the kernel's stationary point would leave ``±window_m/2``.
    ``wavelength_m`` is the wavelength in the medium. Returns ``1/λm`` for ``distance_m == 0``.
    """
    return 1.0 / (wavelength_m * math.hypot(2.0 * distance_m / window_m, 1.0))


def kernel_spread_px(*, pitch_m: float, wavelength_m: float, distance_m: float, n_medium: float = 1.0) -> float:
    """Lateral reach (pixels, one side, per axis) of the band-limited kernel's light cone.

    By stationary phase the spatial frequency ``(fx, fy)`` lands at ``x = z·λm·fx / sqrt(1 − λm²(fx² + fy²))``.
    Over the square band ``|fx|, |fy| ≤ 1/(2·pitch)`` the farthest point is the band corner, so the spread is
    ``|z|·a / sqrt(1 − 2a²) / pitch`` with ``a = λm/(2·pitch)``. Returns ``inf`` when the corner is evanescent
    (``2a² ≥ 1``): grazing waves then exist and reach arbitrarily far. Lengths in metres.
    """
    pitch_m = check_positive_length("pitch", pitch_m)
    wavelength_m = check_positive_length("wavelength", wavelength_m)
    distance_m = check_distance(distance_m)
    n_medium = check_index(n_medium)
    if distance_m == 0.0:
        return 0.0
    a = (wavelength_m / n_medium) / (2.0 * pitch_m)
    if 2.0 * a * a >= 1.0:
        return math.inf
    return abs(distance_m) * a / math.sqrt(1.0 - 2.0 * a * a) / pitch_m


def kernel_radius_px(
    pixels: int, *, pitch_m: float, wavelength_m: float, distance_m: float, n_medium: float = 1.0
) -> int:
    """Radius K (pixels) of the compact kernel along an axis of ``pixels`` samples.

    ``K = min(ceil(spread) + KERNEL_FLAT_MARGIN_PX + KERNEL_TAPER_PX, pixels − 1)``: kernel offsets beyond
    ``pixels − 1`` never connect two points of the grid, so capping there loses nothing. 0 for ``z = 0``.
    """
    pixels = check_pixels("pixels", pixels)
    spread = kernel_spread_px(pitch_m=pitch_m, wavelength_m=wavelength_m, distance_m=distance_m, n_medium=n_medium)
    if spread == 0.0:
        return 0
    if math.isinf(spread):
        return pixels - 1
    return min(math.ceil(spread) + KERNEL_FLAT_MARGIN_PX + KERNEL_TAPER_PX, pixels - 1)


def auto_padding(
    pixels: int, *, pitch_m: float, wavelength_m: float, distance_m: float, n_medium: float = 1.0
) -> int:
    """Default zero padding (pixels per side) that makes propagation along one axis a linear convolution.

    Rule: a kernel of radius K (``kernel_radius_px``: the light cone ``|z|·tanθ_max/pitch`` with
    ``sinθ_max = λm/(2·pitch)`` taken at the band corner, plus a 48-pixel flat margin and a 16-pixel taper,
    capped at ``pixels − 1``) needs a period ``M ≥ pixels + K``, i.e. ``ceil(K/2)`` pixels per side. The cap
    makes the largest padding the full linear-convolution one (total ``2·pixels − 1`` or more). The
    propagator further rounds ``pixels + 2·padding`` up to a 2,3,5-smooth FFT length.
    """
    radius = kernel_radius_px(
        pixels, pitch_m=pitch_m, wavelength_m=wavelength_m, distance_m=distance_m, n_medium=n_medium
    )
    return (radius + 1) // 2


def cone_window(radius: int, spread_px: float) -> np.ndarray:
    """Weights (float64, shape ``(2·radius+1,)``) for kernel offsets ``−radius..radius``.

    1 up to ``spread_px + KERNEL_FLAT_MARGIN_PX``, then a raised-cosine fall to 0 over ``KERNEL_TAPER_PX``.
    """
    offsets = np.abs(np.arange(-radius, radius + 1, dtype=np.float64))
    if math.isinf(spread_px):
        return np.ones_like(offsets)
    t = np.clip((offsets - spread_px - KERNEL_FLAT_MARGIN_PX) / KERNEL_TAPER_PX, 0.0, 1.0)
    return 0.5 * (1.0 + np.cos(np.pi * t))


def band_limited_transfer(
    shape: tuple[int, int],
    *,
    pitch_m: float,
    wavelength_medium_m: float,
    distance_m: float,
    slab_m: float = 0.0,
    slab_ratio: float = 1.0,
) -> np.ndarray:
    """Band-limited angular-spectrum transfer function (complex128, ``shape``) on the ``fftfreq`` grid.

    The phase ``2π·z·kz`` is formed in float64; evanescent waves and frequencies beyond the
    Matsushima–Shimobaba limit of this window (``shape × pitch``) are set to 0. An optional homogeneous slab
    (thickness ``slab_m``, index ``slab_ratio`` times the medium's) adds ``2π·slab_m·sqrt((ratio/λm)² − f²)``.
    """
    rows, cols = shape
    fy = np.fft.fftfreq(rows, d=pitch_m)[:, None]
    fx = np.fft.fftfreq(cols, d=pitch_m)[None, :]
    arg = 1.0 / wavelength_medium_m**2 - fx**2 - fy**2
    limit_y = band_limit_frequency(rows * pitch_m, wavelength_m=wavelength_medium_m, distance_m=distance_m)
    limit_x = band_limit_frequency(cols * pitch_m, wavelength_m=wavelength_medium_m, distance_m=distance_m)
    keep = (arg > 0.0) & (np.abs(fy) <= limit_y) & (np.abs(fx) <= limit_x)
    phase = (2.0 * np.pi * distance_m) * np.sqrt(np.where(keep, arg, 0.0))
    if slab_m:
        slab_arg = (slab_ratio / wavelength_medium_m) ** 2 - fx**2 - fy**2
        phase = phase + (2.0 * np.pi * slab_m) * np.sqrt(np.where(keep, np.maximum(slab_arg, 0.0), 0.0))
    return np.where(keep, np.exp(1j * phase), 0.0)


def compact_kernel(
    radii: tuple[int, int],
    *,
    pitch_m: float,
    wavelength_medium_m: float,
    distance_m: float,
    spread_px: float,
    slab_m: float = 0.0,
    slab_ratio: float = 1.0,
) -> np.ndarray:
    """The windowed band-limited impulse response, complex128 of shape ``(2Ky+1, 2Kx+1)``, centre at the middle.

    Synthesised by an inverse FFT of the band-limited transfer function on a window of
    ``next_fast_length(SYNTHESIS_OVERSIZE·(2K+1))`` pixels per axis (fixed by the geometry alone, so the
    kernel, and hence the result, does not depend on the padding of the field).
    """
    synth = tuple(next_fast_length(SYNTHESIS_OVERSIZE * (2 * k + 1)) for k in radii)
    transfer = band_limited_transfer(
        synth, pitch_m=pitch_m, wavelength_medium_m=wavelength_medium_m, distance_m=distance_m, slab_m=slab_m,
        slab_ratio=slab_ratio,
    )
    impulse = np.fft.ifft2(transfer)
    rows = np.arange(-radii[0], radii[0] + 1) % synth[0]
    cols = np.arange(-radii[1], radii[1] + 1) % synth[1]
    kernel = impulse[np.ix_(rows, cols)]
    return kernel * cone_window(radii[0], spread_px)[:, None] * cone_window(radii[1], spread_px)[None, :]
