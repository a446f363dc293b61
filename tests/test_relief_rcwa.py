"""The multislice relief model (quaton_fab.optics.relief) against rigorous coupled-wave analysis (grcwa).

Oracle: grcwa 0.1.2 (https://github.com/weiliangjinca/grcwa), a rigorous Maxwell solver for layered periodic
structures. Test structures are 1D-periodic printed gratings at normal incidence: a period of ``P`` relief
pixels, each a flat-topped pillar of one level height ``h_k = k·λ0/(K·(n_mat − n_med))`` on the base slab of
IP-Dip (n = 1.543 at λ0 = 780 nm) in air, light entering through the base (``orientation="base-first"``).

Conventions (all three models):

* **Geometry in RCWA.** Incidence half-space = the base material (a semi-infinite base slab, so the base/air
  Fabry–Pérot of a finite slab is left out; at normal incidence a uniform slab adds only a global phase in the
  scalar models, so their ``base_m`` does not matter); one patterned layer per level step (material where the
  pillar reaches the step's top); exit half-space = the medium. A tiny absorption ``Im ε = 1e-6`` in the
  patterned layers makes grcwa's branch choice of the layer eigenmodes (``Im q ≥ 0``) unambiguous: without it
  round-off flips some propagating modes and the S-matrix blows up (R ≫ 1); it absorbs < 1e-5 of the power.
* **Polarisation: TE** (E along the grooves, grcwa's s-polarisation). grcwa builds the permittivity
  convolution matrix by Laurent's rule, which converges fast for TE (shown below) but slowly for TM. TM is
  used only to show how large the polarisation dependence, invisible to any scalar model, is.
* **Efficiencies.** Transmitted power of each propagating order ``|m| < n_med·P/λ0`` (RCWA: the z-flux per
  order; scalar models: ``|c_m|²·cos θ_m``, the z-flux of a plane wave of amplitude ``c_m`` at angle
  ``θ_m``), **normalised to the total transmitted power**, which removes the Fresnel reflection (8–20 %) the
  scalar models ignore. Errors: L1 (sum over orders) and max abs difference of these normalised efficiencies.
* Multislice: ``ReliefPropagator(..., padding=0)`` on one period (periodic boundaries), complex128, 16
  simulation pixels per relief pixel, plane wave in; exit-face field → FFT → order amplitudes. Thin: the
  exact Fourier coefficients of the piecewise-constant screen ``exp(iφ)``, ``φ = 2π(n_mat − n_med)h/λ0``.

Measured (TE, nG = 41, default slicing = one slice per level step unless stated; L1 / max):

====================================  ==============  ==============
case                                   multislice      thin
====================================  ==============  ==============
4-level staircase, pixel 1.0 µm        0.098 / 0.034   0.287 / 0.136
8-level staircase, pixel 1.0 µm        0.061 / 0.015   0.182 / 0.085
4-level random, 8 × 1.0 µm pixels      0.107 / 0.016   0.317 / 0.087
4-level staircase, pixel 2.0 µm        0.064 / 0.015   0.181 / 0.075
binary, pixel 1.0 µm, 50 nm slices     0.089 / 0.022   0.312 / 0.078
4-level staircase, pixel 0.4 µm        0.372 / 0.164   1.032 / 0.516
binary, pixel 0.4 µm, 50 nm slices     0.737 / 0.369   1.234 / 0.617
====================================  ==============  ==============

For pixels ≥ ~1.3 λ0 the multislice model is ~3× closer to RCWA than the thin model; for pixels ≈ λ0/2 (the
last two rows) no scalar model is trustworthy: the error is several tenths, as large as the TE/TM difference
itself. ``benchmarks/relief_rcwa.py`` sweeps more cases (slicing, index contrast, TM, unpolarised).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import grcwa
import numpy as np
import pytest
import torch

from quaton_fab.optics.relief import Relief, ReliefPropagator

WAVELENGTH_M = 780e-9
N_IPDIP = 1.543  # IP-Dip at 780 nm
N_AIR = 1.0
BASE_M = 0.5e-6
RCWA_ORDERS = 41  # grcwa truncation (nG); 39 retained orders for a 1D grating (see the convergence test)
RCWA_LOSS = 1e-6  # Im ε in the patterned layers (see the module docstring)
SIM_SUB = 16  # multislice simulation pixels per relief pixel
RCWA_GRID = 4096  # permittivity samples per period for grcwa's FFT (≫ orders: negligible aliasing)

grcwa.set_backend("numpy")


@pytest.fixture(autouse=True, scope="module")
def _single_threaded_blas():
    """Run numpy's bundled OpenBLAS on one thread for this module, restored afterwards (best effort).

    grcwa's eigen-solves are small (≤ 160×160): on 2 busy cores OpenBLAS's spinning threads made them ~5× slower
    (measured 29 s vs 5 s for this module under load). No-op when numpy's OpenBLAS is not found.
    """
    import ctypes
    import glob
    import os

    setter = getter = None
    for path in glob.glob(os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs", "*openblas*")):
        try:
            lib = ctypes.CDLL(path)
            setter = lib.scipy_openblas_set_num_threads64_
            getter = lib.scipy_openblas_get_num_threads64_
            break
        except (OSError, AttributeError):
            continue
    previous = getter() if getter is not None else None
    if setter is not None:
        setter(1)
    yield
    if setter is not None and previous:
        setter(previous)


# ------------------------------------------------------------------------------------------------- helpers
def level_heights(levels: int, n_mat: float = N_IPDIP, n_med: float = N_AIR, lam: float = WAVELENGTH_M) -> list[float]:
    """Heights (m) of ``levels`` equally spaced phase levels ``k·2π/levels``: ``k·λ0/(levels·(n_mat − n_med))``."""
    return [k * lam / (levels * (n_mat - n_med)) for k in range(levels)]


def max_order(period_m: float, n_med: float = N_AIR, lam: float = WAVELENGTH_M) -> int:
    """Largest |m| of a propagating transmitted order (``|m|·λ0/P < n_med``)."""
    return int(math.floor(n_med * period_m / lam - 1e-9))


def scalar_efficiencies(coeffs: np.ndarray, period_m: float, n_med: float, lam: float) -> np.ndarray:
    """z-flux ``|c_m|²·cos θ_m`` of orders ``m = −M … M`` from order amplitudes ``coeffs[m]`` (numpy FFT order)."""
    mmax = max_order(period_m, n_med, lam)
    m = np.arange(-mmax, mmax + 1)
    cos = np.sqrt(1.0 - (m * lam / (n_med * period_m)) ** 2)
    return np.abs(coeffs[m % coeffs.size]) ** 2 * cos


def rcwa_efficiencies(
    heights_m: Sequence[float],
    pixel_m: float,
    *,
    n_mat: float = N_IPDIP,
    n_med: float = N_AIR,
    lam: float = WAVELENGTH_M,
    n_orders: int = RCWA_ORDERS,
    pol: str = "TE",
) -> tuple[np.ndarray, float, float]:
    """grcwa: transmitted power per order ``m = −M … M`` (fraction of the incident power), total R and total T.

    One period of ``len(heights_m)`` pixels along x (invariant along y: the second lattice vector is made so
    short that its orders are far evanescent and circular truncation keeps only (m, 0) orders). Lengths in µm.
    Cached (the tests share reference solutions).
    """
    eff, refl, trans = _rcwa(tuple(float(h) for h in heights_m), float(pixel_m), n_mat, n_med, lam, n_orders, pol)
    return eff.copy(), refl, trans


@functools.lru_cache(maxsize=64)
def _rcwa(
    heights_m: tuple[float, ...], pixel_m: float, n_mat: float, n_med: float, lam: float, n_orders: int, pol: str
) -> tuple[np.ndarray, float, float]:
    um = 1e6
    heights = np.asarray(heights_m, dtype=float) * um
    period = len(heights) * pixel_m * um
    sub = RCWA_GRID // len(heights)
    profile = np.repeat(heights, sub)
    sim = grcwa.obj(n_orders, [period, 0.0], [0.0, period * 1e-2], 1.0 / (lam * um), 0.0, 0.0, verbose=0)
    sim.Add_LayerUniform(0.0, n_mat**2)  # incidence: the base material
    steps = [0.0, *sorted({float(h) for h in heights if h > 0})]
    grids = []
    for lo, hi in zip(steps[:-1], steps[1:]):
        sim.Add_LayerGrid(hi - lo, profile.size, 1)
        filled = profile >= hi * (1 - 1e-12)
        grids.append(np.where(filled, n_mat**2, n_med**2) + 1j * RCWA_LOSS)
    sim.Add_LayerUniform(0.0, n_med**2)  # exit: the medium
    sim.Init_Setup(Gmethod=0)
    sim.GridLayer_geteps(np.concatenate(grids))
    if pol == "TE":
        sim.MakeExcitationPlanewave(0.0, 0.0, 1.0, 0.0, order=0)  # s: E ∥ y, along the grooves
    elif pol == "TM":
        sim.MakeExcitationPlanewave(1.0, 0.0, 0.0, 0.0, order=0)
    else:
        raise ValueError(pol)
    refl, trans = sim.RT_Solve(normalize=1, byorder=1)
    mmax = max_order(len(heights) * pixel_m, n_med, lam)
    out = np.zeros(2 * mmax + 1)
    for index, (gx, gy) in enumerate(sim.G):
        if gy == 0 and abs(gx) <= mmax:
            out[gx + mmax] = trans[index]
    return out, float(np.sum(refl)), float(np.sum(trans))


def multislice_efficiencies(
    heights_m: Sequence[float],
    pixel_m: float,
    levels_m: Sequence[float],
    *,
    n_mat: float = N_IPDIP,
    n_med: float = N_AIR,
    lam: float = WAVELENGTH_M,
    max_slice_m: float | None = None,
    base_m: float = BASE_M,
) -> np.ndarray:
    """Relief multislice model on one period (periodic boundaries): z-flux per propagating order."""
    period = len(heights_m) * pixel_m
    size = len(heights_m) * SIM_SUB
    phases = tuple(2 * math.pi * (n_mat - n_med) * h / lam for h in levels_m)
    relief = Relief(
        n_material=n_mat, level_phases_rad=phases, level_heights_m=tuple(levels_m), base_m=base_m,
        max_slice_m=max_slice_m,
    )
    prop = ReliefPropagator(
        relief, (size, size), sim_pitch_m=period / size, wavelength_m=lam, n_medium=n_med,
        dtype=torch.complex128, ends=True, padding=0,
    )
    row = torch.from_numpy(np.repeat(np.asarray(heights_m, dtype=np.float64), SIM_SUB))
    exit_field = prop(torch.ones(size, size, dtype=torch.complex128), row.expand(size, size).contiguous())
    coeffs = np.fft.fft(exit_field[size // 2].numpy()) / size
    return scalar_efficiencies(coeffs, period, n_med, lam)


def thin_efficiencies(
    heights_m: Sequence[float], pixel_m: float, *, n_mat: float = N_IPDIP, n_med: float = N_AIR,
    lam: float = WAVELENGTH_M,
) -> np.ndarray:
    """Thin screen ``exp(iφ)``: exact Fourier coefficients of the piecewise-constant screen, z-flux per order."""
    count = len(heights_m)
    period = count * pixel_m
    screen = np.exp(2j * math.pi * (n_mat - n_med) * np.asarray(heights_m) / lam)
    mmax = max_order(period, n_med, lam)
    m = np.arange(-mmax, mmax + 1)
    dft = np.exp(-2j * math.pi * np.outer(m, np.arange(count)) / count) @ screen / count
    coeffs_m = dft * np.sinc(m / count) * np.exp(-1j * math.pi * m / count)  # one pixel's box, centred
    coeffs = np.zeros(2 * mmax + 1, dtype=complex)
    coeffs[m % coeffs.size] = coeffs_m
    return scalar_efficiencies(coeffs, period, n_med, lam)


def normalised(eff: np.ndarray) -> np.ndarray:
    """Efficiencies as fractions of the total transmitted power (removes the Fresnel losses)."""
    return eff / eff.sum()


def errors(model: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    """(L1, max abs) difference of the normalised efficiencies."""
    diff = np.abs(normalised(model) - normalised(reference))
    return float(diff.sum()), float(diff.max())


def grating(name: str) -> tuple[list[float], float, list[float]]:
    """(pillar heights of one period, pixel pitch, level heights) of a named test grating."""
    pixel_um, levels, pattern = GRATINGS[name]
    lv = level_heights(levels)
    return [lv[k] for k in pattern], pixel_um * 1e-6, lv


GRATINGS = {
    "stair4_px1.0": (1.0, 4, [0, 1, 2, 3]),
    "stair8_px1.0": (1.0, 8, list(range(8))),
    "rand4_px1.0": (1.0, 4, [0, 2, 1, 3, 3, 0, 2, 1]),
    "stair4_px2.0": (2.0, 4, [0, 1, 2, 3]),
    "bin_px1.0": (1.0, 2, [0, 1]),
    "stair4_px0.4": (0.4, 4, [0, 1, 2, 3]),
    "bin_px0.4": (0.4, 2, [0, 1]),
}


# ------------------------------------------------------------------------------------------------- the oracle
def test_rcwa_oracle_is_converged_and_conserves_energy() -> None:
    """grcwa on the 4-level, 1 µm-pixel grating: nG = 41 agrees with nG = 81 to < 1e-3 per order; R + T = 1."""
    heights, pixel, _ = grating("stair4_px1.0")
    coarse, _, _ = rcwa_efficiencies(heights, pixel, n_orders=21)
    eff41, r41, t41 = rcwa_efficiencies(heights, pixel, n_orders=41)
    eff81, r81, t81 = rcwa_efficiencies(heights, pixel, n_orders=81)
    # measured: |Δ| ≤ 1.2e-3 from 21 → 41 orders, ≤ 2e-4 from 41 → 81 orders
    assert np.max(np.abs(eff41 - eff81)) < 1e-3
    assert np.max(np.abs(coarse - eff81)) > np.max(np.abs(eff41 - eff81))
    for r, t in ((r41, t41), (r81, t81)):
        assert abs(r + t - 1.0) < 1e-4  # lossless but for Im ε = 1e-6
    assert 0.05 < r81 < 0.15  # Fresnel reflection of IP-Dip/air (≈ 4.5 % flat, more with the relief)
    # the blazed staircase sends most light into order +1, in every model (same sign conventions)
    mmax = max_order(4 * pixel)
    assert int(np.argmax(eff81)) - mmax == 1


# ------------------------------------------------------------------------------------------------- where it holds
# (name, max_slice_m, multislice L1 bound, multislice max bound, thin L1 floor, thin max floor); measured values
# in the module docstring.
AGREEMENT = [
    ("stair4_px1.0", None, 0.13, 0.05, 0.22, 0.10),
    ("stair8_px1.0", None, 0.09, 0.025, 0.14, 0.06),
    ("rand4_px1.0", None, 0.15, 0.03, 0.25, 0.06),
    ("stair4_px2.0", None, 0.09, 0.025, 0.14, 0.05),
    ("bin_px1.0", 50e-9, 0.12, 0.035, 0.24, 0.06),
]


@pytest.mark.parametrize(("name", "max_slice_m", "ms_l1", "ms_max", "thin_l1", "thin_max"), AGREEMENT)
def test_multislice_agrees_with_rcwa_better_than_thin(
    name: str, max_slice_m: float | None, ms_l1: float, ms_max: float, thin_l1: float, thin_max: float
) -> None:
    heights, pixel, levels = grating(name)
    reference, _, _ = rcwa_efficiencies(heights, pixel)
    ms = errors(multislice_efficiencies(heights, pixel, levels, max_slice_m=max_slice_m), reference)
    thin = errors(thin_efficiencies(heights, pixel), reference)
    assert ms[0] < ms_l1 and ms[1] < ms_max, ms
    assert thin[0] > thin_l1 and thin[1] > thin_max, thin
    assert ms[0] < 0.5 * thin[0], (ms, thin)


def test_binary_relief_needs_sub_slices() -> None:
    """With one slice per level step a binary relief is one phase screen between two homogeneous half steps:
    its order efficiencies are exactly the thin model's. ``max_slice_m`` brings the thickness back."""
    heights, pixel, levels = grating("bin_px1.0")
    thin = thin_efficiencies(heights, pixel)
    one_slice = multislice_efficiencies(heights, pixel, levels)
    np.testing.assert_allclose(normalised(one_slice), normalised(thin), atol=1e-9)
    reference, _, _ = rcwa_efficiencies(heights, pixel)
    sliced = errors(multislice_efficiencies(heights, pixel, levels, max_slice_m=100e-9), reference)
    assert sliced[0] < 0.35 * errors(one_slice, reference)[0]  # measured 0.093 vs 0.312


# ------------------------------------------------------------------------------------------------- where it fails
def test_scalar_model_fails_for_half_wavelength_pixels() -> None:
    """Pixels ≈ λ0/2 (0.4 µm at 780 nm): the relief is a sub-wavelength-featured, vectorial structure.

    Measured (TE): 4-level staircase (period 1.6 µm, orders −2…2) multislice L1 0.372 / max 0.164;
    binary (period 0.8 µm, orders −1…1, 50 nm slices) L1 0.737 / max 0.369; TE and TM (RCWA) differ by
    L1 0.22 and 0.11 there, polarisation effects no scalar model represents. Compare ≤ 0.11 at 1 µm pixels.
    """
    heights, pixel, levels = grating("stair4_px0.4")
    te, _, _ = rcwa_efficiencies(heights, pixel)
    tm, _, _ = rcwa_efficiencies(heights, pixel, pol="TM")
    ms = errors(multislice_efficiencies(heights, pixel, levels), te)
    assert ms[0] > 0.3 and ms[1] > 0.12, ms
    assert errors(te, tm)[0] > 0.15  # polarisation matters: measured 0.222
    assert errors(thin_efficiencies(heights, pixel), te)[0] > 0.8  # measured 1.03

    heights, pixel, levels = grating("bin_px0.4")
    te, _, _ = rcwa_efficiencies(heights, pixel)
    ms = errors(multislice_efficiencies(heights, pixel, levels, max_slice_m=50e-9), te)
    assert ms[0] > 0.6 and ms[1] > 0.3, ms
