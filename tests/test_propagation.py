"""Physics checks of the band-limited angular-spectrum propagator (quaton_fab.optics.propagation).

Oracles are independent of the implementation: the analytic Fresnel-integral solution of a square aperture
(scipy), Parseval, the semigroup property, geometric walk-off of a tilted beam, and a textbook float64 numpy
BL-ASM with very large padding.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.special import fresnel

from quaton_fab.optics import AngularSpectrum, OpticsError, auto_padding, propagate
from quaton_fab.optics.propagation import (
    get_angular_spectrum,
    kernel_radius_px,
    kernel_spread_px,
    next_fast_length,
)

LAMBDA_M = 0.5e-6


# ------------------------------------------------------------------------------------------------- helpers
def rel_l2(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor) -> float:
    """Relative L2 distance ||a − b|| / ||b||."""
    a, b = np.asarray(a), np.asarray(b)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def intensity(field: torch.Tensor) -> np.ndarray:
    return (field.abs() ** 2).detach().cpu().numpy()


def centred_coords_m(pixels: int, pitch_m: float) -> np.ndarray:
    """Pixel-centre coordinates (m), symmetric about 0."""
    return (np.arange(pixels) - (pixels - 1) / 2) * pitch_m


def gaussian(pixels: int, pitch_m: float, waist_m: float, *, tilt_rad: tuple[float, float] = (0.0, 0.0),
             wavelength_m: float = LAMBDA_M, centre_m: tuple[float, float] = (0.0, 0.0)) -> torch.Tensor:
    """Complex128 Gaussian beam exp(−r²/w²), tilted by (θy, θx): phase 2π·sinθ·x/λm (λm given)."""
    y = centred_coords_m(pixels, pitch_m)[:, None] - centre_m[0]
    x = centred_coords_m(pixels, pitch_m)[None, :] - centre_m[1]
    amp = np.exp(-(x**2 + y**2) / waist_m**2)
    phase = 2 * np.pi * (math.sin(tilt_rad[0]) * y + math.sin(tilt_rad[1]) * x) / wavelength_m
    return torch.tensor(amp * np.exp(1j * phase), dtype=torch.complex128)


def fresnel_square_1d(x_m: np.ndarray, width_m: float, wavelength_m: float, distance_m: float) -> np.ndarray:
    """Analytic 1-D Fresnel intensity of a slit of ``width_m`` (unit plane wave), via Fresnel integrals."""
    scale = math.sqrt(2.0 / (wavelength_m * distance_m))
    s1, c1 = fresnel(scale * (-width_m / 2 - x_m))
    s2, c2 = fresnel(scale * (width_m / 2 - x_m))
    return 0.5 * ((c2 - c1) ** 2 + (s2 - s1) ** 2)


def textbook_bl_asm(field: np.ndarray, pitch_m: float, wavelength_m: float, distance_m: float,
                    padded: int) -> np.ndarray:
    """Independent reference: plain band-limited ASM (float64 numpy) on a ``padded``² grid, then cropped."""
    rows, cols = field.shape[-2:]
    f = np.fft.fftfreq(padded, d=pitch_m)
    fy, fx = f[:, None], f[None, :]
    arg = 1 / wavelength_m**2 - fx**2 - fy**2
    limit = 1 / (wavelength_m * math.sqrt((2 * distance_m / (padded * pitch_m)) ** 2 + 1))
    keep = (arg > 0) & (np.abs(fx) <= limit) & (np.abs(fy) <= limit)
    h = np.where(keep, np.exp(2j * np.pi * distance_m * np.sqrt(np.where(keep, arg, 0))), 0)
    return np.fft.ifft2(np.fft.fft2(field, s=(padded, padded)) * h)[..., :rows, :cols]


# ----------------------------------------------------------------------------------------------- analytic
@pytest.mark.parametrize(
    "pixels, pitch_m, wavelength_m, n_medium, aperture_px, distance_m",
    [
        (256, 4e-6, 0.5e-6, 1.0, 64, 8e-3),  # Fresnel number 4.1, compact kernel (K < N − 1)
        (256, 4e-6, 0.75e-6, 1.5, 64, 8e-3),  # same in a medium: λm = 0.5 µm
        (128, 2e-6, 0.5e-6, 1.0, 32, 3e-3),  # F = 0.68, kernel capped at full linear convolution
        (128, 2e-6, 0.5e-6, 1.0, 40, 10e-3),  # F = 0.32, long distance: the band limit bites
    ],
)
def test_square_aperture_matches_fresnel_integrals(pixels, pitch_m, wavelength_m, n_medium, aperture_px,
                                                   distance_m):
    x = centred_coords_m(pixels, pitch_m)
    slit = (np.abs(x) < aperture_px * pitch_m / 2).astype(float)  # edges on pixel boundaries
    field = torch.tensor(np.outer(slit, slit), dtype=torch.complex128)
    out = propagate(field, pitch=pitch_m, wavelength=wavelength_m, distance=distance_m, n_medium=n_medium)
    profile = fresnel_square_1d(x, aperture_px * pitch_m, wavelength_m / n_medium, distance_m)
    assert rel_l2(intensity(out), np.outer(profile, profile)) < 0.02


def test_matches_textbook_bl_asm_with_large_padding_for_smooth_fields():
    pixels, pitch_m, distance_m = 96, 1e-6, 150e-6
    field = gaussian(pixels, pitch_m, 12e-6, tilt_rad=(0.02, -0.05)).numpy()
    reference = textbook_bl_asm(field, pitch_m, LAMBDA_M, distance_m, padded=6 * pixels)
    out = propagate(torch.tensor(field), pitch=pitch_m, wavelength=LAMBDA_M, distance=distance_m)
    assert rel_l2(out.numpy(), reference) < 1e-5


# --------------------------------------------------------------------------------------------- invariants
@pytest.mark.parametrize("dtype, tol", [(torch.complex128, 1e-6), (torch.complex64, 1e-4)])
def test_energy_conserved_for_band_limited_field(dtype, tol):
    pixels, pitch_m = 128, 1e-6
    field = gaussian(pixels, pitch_m, 4e-6, tilt_rad=(0.03, 0.05)).to(dtype)  # well inside band and window
    out = propagate(field, pitch=pitch_m, wavelength=LAMBDA_M, distance=150e-6)  # 1.5 Rayleigh ranges
    ratio = float((out.abs() ** 2).sum() / (field.abs() ** 2).sum())
    assert abs(ratio - 1.0) < tol
    assert out.abs().max() < 0.9 * field.abs().max()  # it did diffract


def test_two_steps_equal_one_step():
    pixels, pitch_m = 128, 1e-6
    field = gaussian(pixels, pitch_m, 6e-6, tilt_rad=(0.0, 0.04))
    kw = dict(pitch=pitch_m, wavelength=LAMBDA_M)
    two = propagate(propagate(field, distance=40e-6, **kw), distance=70e-6, **kw)
    one = propagate(field, distance=110e-6, **kw)
    assert rel_l2(two.numpy(), one.numpy()) < 1e-3
    assert rel_l2(one.numpy(), field.numpy()) > 0.5  # the distance matters


def test_backward_propagation_undoes_forward():
    pixels, pitch_m = 96, 1e-6
    field = gaussian(pixels, pitch_m, 8e-6, tilt_rad=(0.03, 0.0))
    kw = dict(pitch=pitch_m, wavelength=LAMBDA_M)
    back = propagate(propagate(field, distance=80e-6, **kw), distance=-80e-6, **kw)
    assert rel_l2(back.numpy(), field.numpy()) < 1e-4


@pytest.mark.parametrize("axis", [-1, -2])
@pytest.mark.parametrize("sign", [1, -1])
@pytest.mark.parametrize("n_medium", [1.0, 1.5])
def test_tilted_beam_walks_off_by_z_tan_theta(axis, sign, n_medium):
    pixels, pitch_m, distance_m = 128, 1e-6, 200e-6
    theta = sign * math.radians(8.0)  # propagation angle in the medium
    tilt = (theta, 0.0) if axis == -2 else (0.0, theta)
    field = gaussian(pixels, pitch_m, 8e-6, tilt_rad=tilt, wavelength_m=LAMBDA_M / n_medium)
    out = intensity(propagate(field, pitch=pitch_m, wavelength=LAMBDA_M, distance=distance_m, n_medium=n_medium))
    coords_px = np.arange(pixels) - (pixels - 1) / 2
    profile = out.sum(axis=-1 if axis == -2 else -2)
    centroid_px = float((profile * coords_px).sum() / profile.sum())
    expected_px = distance_m * math.tan(theta) / pitch_m  # ±28.1 px, toward +index for a positive tilt
    assert abs(centroid_px - expected_px) < 1.0


def test_evanescent_waves_are_cut():
    pixels, pitch_m, wavelength_m = 64, 0.2e-6, 0.6e-6  # checkerboard: |f| = √2/(2·pitch) > 1/λ
    idx = np.arange(pixels)
    field = torch.tensor((-1.0) ** (idx[:, None] + idx[None, :]), dtype=torch.complex128)
    out = propagate(field, pitch=pitch_m, wavelength=wavelength_m, distance=3e-6)
    assert float((out.abs() ** 2).sum() / (field.abs() ** 2).sum()) < 1e-3


def test_zero_distance_is_identity():
    field = gaussian(32, 1e-6, 5e-6, tilt_rad=(0.1, 0.2)).to(torch.complex64)
    out = propagate(field, pitch=1e-6, wavelength=LAMBDA_M, distance=0.0)
    assert torch.equal(out, field)


# ---------------------------------------------------------------------------------------------- padding
def _whole_grid_field(pixels: int, seed: int) -> torch.Tensor:
    """Random amplitude and phase on every pixel: white spectrum, touches all four edges."""
    gen = torch.Generator().manual_seed(seed)
    amp = torch.rand(pixels, pixels, generator=gen, dtype=torch.float64)
    phase = 2 * math.pi * torch.rand(pixels, pixels, generator=gen, dtype=torch.float64)
    return torch.polar(amp, phase)


@pytest.mark.parametrize(
    "pixels, pitch_m, wavelength_m, distance_m",
    [
        (160, 2e-6, 0.532e-6, 300e-6),  # the standard hop, compact kernel
        (128, 1e-6, 0.5e-6, 50e-6),  # wider cone (sin θmax = 0.25), compact kernel
        (80, 2e-6, 0.532e-6, 3e-3),  # long distance: cone ≫ grid, band limit bites
        (64, 0.3e-6, 0.5e-6, 2e-6),  # sub-λ pitch: band corner evanescent, grazing waves
    ],
)
def test_default_padding_is_a_linear_convolution(pixels, pitch_m, wavelength_m, distance_m):
    field = _whole_grid_field(pixels, seed=pixels)
    kw = dict(pitch=pitch_m, wavelength=wavelength_m, distance=distance_m)
    default = propagate(field, **kw)
    pad = auto_padding(pixels, pitch_m=pitch_m, wavelength_m=wavelength_m, distance_m=distance_m)
    doubled = propagate(field, padding=2 * pad, **kw)
    assert rel_l2(intensity(default), intensity(doubled)) <= 1e-3
    # the check is sensitive: no padding (circular convolution) is far off
    circular = propagate(field, padding=0, **kw)
    assert rel_l2(intensity(circular), intensity(doubled)) > 1e-2


def test_auto_padding_rule():
    pitch_m, wavelength_m, distance_m = 2e-6, 0.532e-6, 300e-6
    a = wavelength_m / (2 * pitch_m)
    spread = kernel_spread_px(pitch_m=pitch_m, wavelength_m=wavelength_m, distance_m=distance_m)
    assert spread == pytest.approx(distance_m * a / math.sqrt(1 - 2 * a * a) / pitch_m, rel=1e-12)
    assert 20 < spread < 21  # z·tanθ at the band corner: 20.3 px
    assert auto_padding(200, pitch_m=pitch_m, wavelength_m=wavelength_m, distance_m=distance_m) == 43
    # the medium shortens the wavelength, hence the cone
    assert kernel_spread_px(pitch_m=pitch_m, wavelength_m=wavelength_m, distance_m=distance_m,
                            n_medium=1.5) < spread / 1.4
    # long distances: capped at full linear convolution (total ≥ 2N − 1)
    assert 64 + 2 * auto_padding(64, pitch_m=pitch_m, wavelength_m=wavelength_m, distance_m=1e-2) >= 127
    assert kernel_radius_px(64, pitch_m=pitch_m, wavelength_m=wavelength_m, distance_m=1e-2) == 63
    assert auto_padding(64, pitch_m=pitch_m, wavelength_m=wavelength_m, distance_m=0.0) == 0
    spectrum = AngularSpectrum((200, 200), pitch_m=pitch_m, wavelength_m=wavelength_m, distance_m=distance_m)
    assert spectrum.padded_shape == (288, 288)  # 286 rounded up to a 2,3,5-smooth length


def test_next_fast_length():
    def smooth(n: int) -> bool:
        for p in (2, 3, 5):
            while n % p == 0:
                n //= p
        return n == 1

    for n in range(1, 400):
        m = next_fast_length(n)
        assert m >= n and smooth(m) and not any(smooth(k) for k in range(n, m))


# ---------------------------------------------------------------------------------------- precision, API
def test_complex64_keeps_float64_phase_accuracy():
    # kz·z ≈ 6e4 rad here: a float32 phase would be off by ~4e-3 rad; the kernel covers the whole grid
    field = gaussian(64, 2e-6, 20e-6, tilt_rad=(0.01, 0.02))
    reference = textbook_bl_asm(field.numpy(), 2e-6, LAMBDA_M, 5e-3, padded=8 * 64)
    kw = dict(pitch=2e-6, wavelength=LAMBDA_M, distance=5e-3)
    low = propagate(field.to(torch.complex64), **kw)
    assert low.dtype == torch.complex64
    assert rel_l2(low.to(torch.complex128).numpy(), reference) < 1e-5
    assert rel_l2(propagate(field, **kw).numpy(), reference) < 1e-5


def test_dtypes_batches_and_rectangular_grids():
    kw = dict(pitch=1e-6, wavelength=LAMBDA_M, distance=30e-6)
    gen = torch.Generator().manual_seed(3)
    batch = torch.polar(torch.rand(2, 3, 24, 40, generator=gen), 6.3 * torch.rand(2, 3, 24, 40, generator=gen))
    out = propagate(batch, **kw)
    assert out.shape == batch.shape and out.dtype == torch.complex64
    single = propagate(batch[1, 2], **kw)
    assert torch.allclose(out[1, 2], single, atol=1e-6)
    # x ↔ y symmetry of free space on a rectangular grid
    transposed = propagate(batch[1, 2].T.contiguous(), **kw)
    assert torch.allclose(transposed.T, single, atol=1e-5)
    assert propagate(batch.to(torch.complex128), **kw).dtype == torch.complex128
    assert propagate(torch.ones(8, 8, dtype=torch.float64), **kw).dtype == torch.complex128
    assert propagate(torch.ones(8, 8), **kw).dtype == torch.complex64


def test_transfer_function_is_cached_per_geometry():
    field = torch.ones(20, 20, dtype=torch.complex64)
    kw = dict(pitch=1e-6, wavelength=LAMBDA_M, distance=12.5e-6)
    propagate(field, **kw)
    hits = get_angular_spectrum.cache_info().hits
    propagate(field * 2, **kw)
    assert get_angular_spectrum.cache_info().hits == hits + 1
    assert get_angular_spectrum.cache_info().maxsize is not None  # bounded


def test_differentiable_wrt_field():
    gen = torch.Generator().manual_seed(0)
    field = torch.polar(torch.rand(6, 7, generator=gen, dtype=torch.float64),
                        torch.rand(6, 7, generator=gen, dtype=torch.float64)).requires_grad_(True)

    def loss(u: torch.Tensor) -> torch.Tensor:
        return propagate(u, pitch=1e-6, wavelength=LAMBDA_M, distance=4e-6).abs().square()

    assert torch.autograd.gradcheck(loss, (field,))


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        (dict(pitch=-1e-6), "pitch"),
        (dict(pitch=0.0), "pitch"),
        (dict(wavelength=float("nan")), "wavelength"),
        (dict(distance=float("inf")), "distance"),
        (dict(n_medium=0.0), "n_medium"),
        (dict(padding=-1), "padding"),
        (dict(padding=True), "padding"),
        (dict(padding="big"), "padding"),
    ],
)
def test_bad_arguments_raise_one_line_value_errors(kwargs, fragment):
    args = dict(pitch=1e-6, wavelength=LAMBDA_M, distance=1e-5) | kwargs
    with pytest.raises(OpticsError, match=fragment) as info:
        propagate(torch.ones(8, 8, dtype=torch.complex64), **args)
    assert isinstance(info.value, ValueError) and "\n" not in str(info.value)


def test_bad_fields_raise():
    kw = dict(pitch=1e-6, wavelength=LAMBDA_M, distance=1e-5)
    with pytest.raises(OpticsError, match="shape"):
        propagate(torch.ones(8, dtype=torch.complex64), **kw)
    with pytest.raises(OpticsError, match="Tensor"):
        propagate(np.ones((8, 8)), **kw)
    spectrum = AngularSpectrum((8, 8), pitch_m=1e-6, wavelength_m=LAMBDA_M, distance_m=1e-5)
    with pytest.raises(OpticsError, match="grid"):
        spectrum(torch.ones(8, 9, dtype=torch.complex64))
