"""Li's factorisation rules in the rigorous solver: the matrices, the fast S-matrix, and TM convergence.

The TM oracle is grcwa (Laurent's rule) run as a 1D grating with many harmonics (nG = 161), where Laurent's rule
has converged to ~1e-3 in the order efficiencies; the conventions are those of ``tests/test_relief_rcwa.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torcwa

import test_relief_rcwa as oracle
from quaton_fab.optics.rigorous import RigorousError, solve_patch
from quaton_fab.optics.rigorous_li import LiRcwa, laurent_matrix, li_matrices, pixel_coefficients

LAM = 780e-9
N_MAT = 1.543


def test_pixel_coefficients_are_the_indicator_fourier_series():
    c = pixel_coefficients(4, 6)
    assert np.allclose(c.sum(axis=1)[6], 1.0)  # the pixels tile the period: the mean is 1, other orders 0
    assert np.allclose(np.delete(c.sum(axis=1), 6), 0.0)
    x = (np.arange(4000) + 0.5) / 4000  # numerical quadrature of pixel 1 (x in [0.25, 0.5))
    ind = ((x >= 0.25) & (x < 0.5)).astype(float)
    for k in (-3, 1, 2):
        assert c[k + 6, 1] == pytest.approx(np.mean(ind * np.exp(-2j * np.pi * k * x)), abs=1e-6)


def test_uniform_grid_gives_scalar_matrices():
    eps = np.full((3, 3), 2.38 + 0j)
    for m in (laurent_matrix(eps, 2, 3), *li_matrices(eps, 2, 3)):
        assert np.allclose(m, 2.38 * np.eye(35), atol=1e-12)


def test_li_rules_reduce_to_the_1d_inverse_rule():
    """A grid invariant along y: ε_xx is the inverse of the Toeplitz matrix of 1/ε along x (Li's TM rule), ε_yy
    the plain Toeplitz matrix of ε (Laurent's TE rule), both diagonal in the y-orders."""
    row = np.array([1.0, 2.38, 2.38, 1.0, 2.38]) + 0j
    eps = np.tile(row, (5, 1))
    mx, my = 4, 2
    exx, eyy = li_matrices(eps, mx, my)
    c = pixel_coefficients(5, 2 * mx)
    idx = np.arange(2 * mx + 1)
    toe = lambda f: (f @ c.T)[idx[:, None] - idx[None, :] + 2 * mx]  # noqa: E731
    expect_xx = np.kron(np.linalg.inv(toe(1.0 / row)), np.eye(2 * my + 1))
    expect_yy = np.kron(toe(row), np.eye(2 * my + 1))
    assert np.allclose(exx, expect_xx, atol=1e-12)
    assert np.allclose(eyy, expect_yy, atol=1e-12)
    assert np.allclose(laurent_matrix(eps, mx, my), expect_yy, atol=1e-12)


def test_fast_smatrix_equals_torcwa():
    """LiRcwa's layer and global S-matrices are torcwa's, to round-off (same layers through add_layer)."""
    rng = np.random.default_rng(1)
    grids = [1 + (N_MAT**2 - 1) * (rng.random((12, 12)) > 0.5) for _ in range(2)]

    def build(cls):
        sim = cls(freq=1 / 0.78, order=[3, 2], L=[2.0, 1.7], dtype=torch.complex128, device=torch.device("cpu"))
        sim.add_input_layer(eps=N_MAT**2)
        sim.add_output_layer(eps=1.0)
        sim.set_incident_angle(inc_ang=0.0, azi_ang=0.0)
        sim.add_layer(thickness=1.0, eps=torch.tensor(N_MAT**2 + 0j, dtype=torch.complex128))
        for t, g in zip((0.4, 0.3), grids):
            sim.add_layer(thickness=t, eps=torch.from_numpy(g).to(torch.complex128))
        sim.solve_global_smatrix()
        return sim

    ours, theirs = build(LiRcwa), build(torcwa.rcwa)
    for a, b in zip(ours.S, theirs.S):
        assert float((a - b).abs().max()) < 1e-10


def _tm_efficiencies(factorization: str, harmonics: int, pixel: float, h: float, mmax: int) -> np.ndarray:
    out = solve_patch(np.array([[0.0, h], [0.0, h]]), pitch_m=pixel, wavelength_m=LAM, n_material=N_MAT,
                      n_medium=1.0, base_m=0.0, harmonics=harmonics, semi_infinite_base=True,
                      factorization=factorization)
    return np.array([np.sum(np.abs(out.tm[(out.orders == (m, 0)).all(axis=1)]) ** 2) for m in range(-mmax, mmax + 1)])


def test_li_converges_fast_for_tm_on_a_binary_grating():
    """TM (E across the grooves) of a 1D binary grating: Li's rule at M = 8 is within 2e-3 of a converged
    Laurent solution (grcwa, 161 harmonics); torcwa's Laurent rule at the same M is over twice as far."""
    pixel, h = 1.0e-6, LAM / (2 * (N_MAT - 1.0))
    ref, _, _ = oracle.rcwa_efficiencies([0.0, h], pixel, n_orders=161, pol="TM")
    mmax = (len(ref) - 1) // 2
    li = np.max(np.abs(_tm_efficiencies("li", 8, pixel, h, mmax) - ref))
    laurent = np.max(np.abs(_tm_efficiencies("laurent", 8, pixel, h, mmax) - ref))
    assert li < 2e-3, li
    assert laurent > 2 * li, (laurent, li)


def test_li_and_laurent_converge_to_the_same_answer():
    """A 2D patch (walls along x and y): the two rules differ at low M and agree as M grows."""
    rng = np.random.default_rng(3)
    patch = np.asarray([0.0, 0.4e-6, 0.7e-6])[rng.integers(0, 3, (2, 2))]
    kw = dict(pitch_m=0.8e-6, wavelength_m=LAM, n_material=N_MAT, n_medium=1.0, base_m=1e-6)
    gap = {}
    for m in (3, 7):
        a = solve_patch(patch, harmonics=m, factorization="li", **kw)
        b = solve_patch(patch, harmonics=m, factorization="laurent", **kw)
        gap[m] = max(np.max(np.abs(a.te - b.te)), np.max(np.abs(a.tm - b.tm)))
    assert gap[7] < 0.5 * gap[3], gap


def test_unknown_factorization_is_one_line_error():
    with pytest.raises(RigorousError, match="factorization"):
        solve_patch(np.zeros((2, 2)), pitch_m=1e-6, wavelength_m=LAM, n_material=N_MAT, n_medium=1.0,
                    base_m=0.0, harmonics=3, factorization="fast")
