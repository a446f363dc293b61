"""Band-limited angular-spectrum propagation as an exact linear convolution on a small padded grid.

Model (``PROPAGATION_MODEL``). A field sampled on an ``H×W`` grid of pitch ``dx`` is propagated by ``z`` in a
medium of index ``n`` (λm = λ0/n) with the transfer function ``exp(i·2π·z·sqrt(1/λm² − fx² − fy²))``,
evaluated in float64 on the exact ``fftfreq`` grid of a *synthesis window* of ``L`` pixels per axis,
evanescent components cut, band-limited after Matsushima & Shimobaba (Opt. Express 17, 19662, 2009, Eq. 13)
for that window. Its inverse DFT is the impulse response. By stationary phase its light stays inside the cone
``|x| ≤ |z|·tanθ`` reached by the band corner (``kernel_spread_px``); beyond, the band-limited kernel only
carries ringing from the hard spectral edge of the grid (Nyquist) that decays like 1/distance. The kernel is
kept at full weight on ``|m| ≤ spread + 48`` px, tapered to zero by a raised cosine over the next 16 px and
dropped beyond; offsets beyond ``N − 1`` never matter, so once the cone (+48 px) covers the grid the kernel
is used uncut. ``L`` depends on the geometry only, so the compact kernel, and the result, do not depend on
the padding. Convolving on ``M ≥ N + K`` pixels (``K`` the kernel radius) is then an *exact* linear
convolution: default and twice-padded results agree to rounding, and the grid is a hard aperture.

Why not the plain method (H sampled on the padded grid): its kernel is periodic and the 1/distance ringing
wraps around, so it is no linear convolution at any affordable padding. Measured on the standard D2NN
(``benchmarks/bench_propagation.py``, white fields, 6 hops): at our 288² grid it differs from its own 2×
padding by 4.5e-3, and it needs ~N per side (600², ~10× the cost) to come within 1.5e-3 of its limit.
Cost of the window: smooth fields (Gaussian beams, Fresnel apertures) agree with that limit to < 1e-5
(tests); white pixel-random fields differ from it by ~8e-3 per hop, 1.2e-2 after the 6 hops (the plain
method at the same grid: 9.9e-3). Both s=1 models differ from a 3–5× oversampled flat-topped-pixel
simulation by 35–60 % on such fields, ~100× more than from each other.

The kernel (its reach, radius, padding and synthesis) is in :mod:`quaton_fab.optics.kernel`, the argument
checks and :class:`OpticsError` in :mod:`quaton_fab.optics.checks`; their public names are importable from here.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Sequence

import numpy as np
import torch

from quaton_fab.optics.checks import (  # OpticsError is importable from here too
    OpticsError,
    check_distance,
    check_index,
    check_padding,
    check_pixels,
    check_positive_length,
)
from quaton_fab.optics.kernel import (  # importable from here too
    KERNEL_FLAT_MARGIN_PX,
    KERNEL_TAPER_PX,
    SYNTHESIS_OVERSIZE,
    auto_padding,
    band_limit_frequency,
    compact_kernel,
    kernel_radius_px,
    kernel_spread_px,
    next_fast_length,
)

__all__ = [
    "PROPAGATION_MODEL",
    "OpticsError",
    "AngularSpectrum",
    "auto_padding",
    "complex_dtype_for",
    "band_limit_frequency",
    "get_angular_spectrum",
    "kernel_radius_px",
    "kernel_spread_px",
    "next_fast_length",
    "propagate",
    "KERNEL_FLAT_MARGIN_PX",
    "KERNEL_TAPER_PX",
    "SYNTHESIS_OVERSIZE",
]

logger = logging.getLogger(__name__)

#: Identifier of the propagation model above; record it with anything that must be re-simulated.
PROPAGATION_MODEL = "bl-asm-cone-kernel/1"

_SUPPORTED_COMPLEX = (torch.complex64, torch.complex128)
_ANGULAR_SPECTRUM_CACHE_SIZE = 32

def complex_dtype_for(dtype: torch.dtype) -> torch.dtype:
    """The complex dtype a field of ``dtype`` is propagated in (complex128 for 64-bit input, else complex64)."""
    if dtype in _SUPPORTED_COMPLEX:
        return dtype
    if dtype == torch.float64:
        return torch.complex128
    if dtype in (torch.float32, torch.float16, torch.bfloat16) or not (dtype.is_floating_point or dtype.is_complex):
        return torch.complex64
    raise OpticsError(f"field dtype must be complex64 or complex128 (or real), got {dtype}")


# ---------------------------------------------------------------------------------------------- propagator
class AngularSpectrum:
    """Propagator for one geometry: holds the padded transfer function ``transfer`` (dtype, device given).

    Args:
        shape: ``(H, W)`` grid size in pixels.
        pitch_m: sampling pitch (m). wavelength_m: vacuum wavelength (m). distance_m: propagation distance
            (m, negative propagates backwards). n_medium: refractive index of the medium.
        padding: ``"auto"`` (``auto_padding`` per axis, padded size rounded up to a 2,3,5-smooth length) or an
            int: exactly that many zero pixels per side (0 gives a circular, periodic-boundary convolution).
        dtype: complex64 or complex128. device: where ``transfer`` lives.
        slab_m, slab_index: an optional homogeneous slab of thickness ``slab_m`` (m) and refractive index
            ``slab_index`` crossed on the way, in addition to ``distance_m`` of medium (e.g. the base slab of a
            printed mask; its transfer function multiplies the medium's, evanescent waves cut as in the medium).

    Attributes: ``shape``, ``padded_shape`` ``(My, Mx)``, ``kernel_radius`` ``(Ky, Kx)`` (pixels),
    ``transfer`` (``(My, Mx)`` tensor, or None when ``distance_m == 0``: the identity).
    """

    def __init__(
        self,
        shape: Sequence[int],
        *,
        pitch_m: float,
        wavelength_m: float,
        distance_m: float,
        n_medium: float = 1.0,
        padding: str | int = "auto",
        dtype: torch.dtype = torch.complex64,
        device: torch.device | str | None = None,
        slab_m: float = 0.0,
        slab_index: float = 1.0,
    ) -> None:
        if len(shape) != 2:
            raise OpticsError(f"shape must be (H, W), got {tuple(shape)!r}")
        self.shape = (check_pixels("H", shape[0]), check_pixels("W", shape[1]))
        self.pitch_m = check_positive_length("pitch", pitch_m)
        self.wavelength_m = check_positive_length("wavelength", wavelength_m)
        self.distance_m = check_distance(distance_m)
        self.n_medium = check_index(n_medium)
        self.padding = check_padding(padding)
        if dtype not in _SUPPORTED_COMPLEX:
            raise OpticsError(f"dtype must be torch.complex64 or torch.complex128, got {dtype}")
        self.dtype = dtype
        self.device = torch.device("cpu") if device is None else torch.device(device)

        self.slab_m = 0.0 if slab_m == 0 else check_positive_length("slab thickness", slab_m)
        self.slab_index = check_index(slab_index)
        self.spread_px, self.kernel_radius = self._kernel_reach()
        self.padded_shape = self._padded_shape()
        self.transfer = None if self.distance_m == 0.0 and not self.slab_m else self._build_transfer()
        logger.debug(
            "AngularSpectrum %s -> padded %s, kernel radius %s px, spread %.1f px",
            self.shape,
            self.padded_shape,
            self.kernel_radius,
            self.spread_px,
        )

    def _kernel_reach(self) -> tuple[float, tuple[int, int]]:
        """(light-cone spread in pixels, kernel radius ``(Ky, Kx)`` in pixels) of the medium and the slab."""
        optics = dict(
            pitch_m=self.pitch_m, wavelength_m=self.wavelength_m, distance_m=self.distance_m, n_medium=self.n_medium
        )
        spread_px = kernel_spread_px(**optics)
        kernel_radius = tuple(kernel_radius_px(n, **optics) for n in self.shape)
        if self.slab_m:
            slab_spread = kernel_spread_px(
                pitch_m=self.pitch_m, wavelength_m=self.wavelength_m, distance_m=self.slab_m, n_medium=self.slab_index
            )
            spread_px += slab_spread
            kernel_radius = tuple(
                n - 1 if math.isinf(spread_px) else min(n - 1, k + math.ceil(slab_spread))
                for n, k in zip(self.shape, kernel_radius)
            )
        return spread_px, kernel_radius

    def _padded_shape(self) -> tuple[int, int]:
        """The FFT grid ``(My, Mx)``: auto (kernel radius, 2,3,5-smooth) or the given padding per side."""
        if self.padding == "auto":
            return tuple(next_fast_length(n + 2 * ((k + 1) // 2)) for n, k in zip(self.shape, self.kernel_radius))
        if self.distance_m != 0.0 and any(2 * self.padding < k for k in self.kernel_radius):
            logger.warning(
                "padding=%d per side is below half the kernel radius %s px: the convolution wraps around "
                "(periodic boundaries)",
                self.padding,
                self.kernel_radius,
            )
        return tuple(n + 2 * self.padding for n in self.shape)

    def _build_transfer(self) -> torch.Tensor:
        """The padded transfer function: DFT (size ``padded_shape``) of the compact kernel, folded if needed."""
        kernel = compact_kernel(
            self.kernel_radius,  # type: ignore[arg-type]
            pitch_m=self.pitch_m,
            wavelength_medium_m=self.wavelength_m / self.n_medium,
            distance_m=self.distance_m,
            spread_px=self.spread_px,
            slab_m=self.slab_m,
            slab_ratio=self.slab_index / self.n_medium,
        )
        rows_m, cols_m = self.padded_shape
        ky, kx = self.kernel_radius
        embedded = np.zeros((rows_m, cols_m), dtype=np.complex128)
        rows = (np.arange(-ky, ky + 1) % rows_m)[:, None]
        cols = (np.arange(-kx, kx + 1) % cols_m)[None, :]
        np.add.at(embedded, (rows, cols), kernel)  # sums overlapping offsets when the padding is too small
        transfer = np.fft.fft2(embedded)
        return torch.from_numpy(transfer).to(dtype=self.dtype, device=self.device)

    def __call__(self, field: torch.Tensor) -> torch.Tensor:
        """Propagate ``field`` (complex, ``(..., H, W)``, this dtype and device); returns the same shape."""
        if tuple(field.shape[-2:]) != self.shape:
            raise OpticsError(f"field grid {tuple(field.shape[-2:])} does not match the propagator's {self.shape}")
        if field.dtype != self.dtype:
            raise OpticsError(f"field dtype {field.dtype} does not match the propagator's {self.dtype}")
        if self.transfer is None:
            return field
        rows, cols = self.shape
        # One multi-axis FFT of the zero-filled field: with torch 2.13 on CPU this is faster than transforming
        # only the H nonzero rows first (separate per-axis calls force strided copies; measured 43 vs 58 ms per
        # hop forward+backward at 32×200² → 256², one thread).
        spectrum = torch.fft.fft2(field, s=self.padded_shape)
        spectrum.mul_(self.transfer)  # in place: the FFT's backward does not need its output
        return torch.fft.ifft2(spectrum)[..., :rows, :cols]


@functools.lru_cache(maxsize=_ANGULAR_SPECTRUM_CACHE_SIZE)
def get_angular_spectrum(
    shape: tuple[int, int],
    pitch_m: float,
    wavelength_m: float,
    distance_m: float,
    n_medium: float,
    padding: str | int,
    dtype: torch.dtype,
    device: torch.device,
    slab_m: float = 0.0,
    slab_index: float = 1.0,
) -> AngularSpectrum:
    """Cached :class:`AngularSpectrum` (bounded LRU, keyed by every argument). Arguments as its constructor."""
    return AngularSpectrum(
        shape,
        pitch_m=pitch_m,
        wavelength_m=wavelength_m,
        distance_m=distance_m,
        n_medium=n_medium,
        padding=padding,
        dtype=dtype,
        device=device,
        slab_m=slab_m,
        slab_index=slab_index,
    )


def propagate(
    field: torch.Tensor,
    *,
    pitch: float,
    wavelength: float,
    distance: float,
    n_medium: float = 1.0,
    padding: str | int = "auto",
) -> torch.Tensor:
    """Propagate a sampled field by ``distance`` with the band-limited angular spectrum (linear convolution).

    Args:
        field: complex tensor ``(..., H, W)`` (any leading batch dims, CPU or CUDA). complex128 stays complex128;
            complex64 stays complex64; real input is promoted (float64 → complex128, else complex64).
        pitch: grid pitch (m). wavelength: vacuum wavelength (m). distance: propagation distance (m, may be
            negative or 0; 0 returns the field). n_medium: refractive index of the medium (λm = λ0/n).
        padding: ``"auto"`` (default, see ``auto_padding``: the light cone of the band-limited kernel plus a
            64-pixel margin, at most a full linear-convolution padding, rounded to a 2,3,5-smooth FFT size) or
            an int number of zero pixels per side.

    Returns the field on the same grid, ``(..., H, W)``; differentiable with respect to ``field``. The grid is
    a hard aperture: nothing outside it is propagated or returned. Model and accuracy: see the module
    docstring. Sign convention ``exp(i(kz − ωt))``: the transfer function is ``exp(+i·kz·z)``.
    """
    if not isinstance(field, torch.Tensor):
        raise OpticsError(f"field must be a torch.Tensor, got {type(field).__name__}")
    if field.ndim < 2:
        raise OpticsError(f"field must have shape (..., H, W), got {tuple(field.shape)}")
    dtype = complex_dtype_for(field.dtype)
    field = field.to(dtype)
    spectrum = get_angular_spectrum(
        (int(field.shape[-2]), int(field.shape[-1])),
        check_positive_length("pitch", pitch),
        check_positive_length("wavelength", wavelength),
        check_distance(distance),
        check_index(n_medium),
        check_padding(padding),
        dtype,
        field.device,
    )
    return spectrum(field)
