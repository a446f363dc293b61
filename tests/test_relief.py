"""The printed relief as a thick element: physics of the multislice model and its place in the network."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from quaton_fab.optics.network import DiffractiveNetwork, Geometry, rule_oversample
from quaton_fab.optics.relief import Relief, ReliefError, ReliefPropagator

LAMBDA = 780e-9
N_IPDIP = 1.543


def four_levels(n_mat: float = N_IPDIP, base_m: float = 0.0, **kw) -> Relief:
    h2pi = LAMBDA / (n_mat - 1.0)
    return Relief(
        n_material=n_mat,
        level_phases_rad=tuple(k * math.pi / 2 for k in range(4)),
        level_heights_m=tuple(k * h2pi / 4 for k in range(4)),
        base_m=base_m,
        **kw,
    )


# --------------------------------------------------------------------------------------------- sampling rule
@pytest.mark.parametrize(
    ("pitch_m", "n_med", "expected"),
    [(1e-6, 1.0, 3), (0.78e-6, 1.0, 2), (0.39e-6, 1.0, 1), (0.5e-6, 1.0, 2), (1e-6, 1.33, 4)],
)
def test_rule_oversample_is_ceil_2_p_n_over_lambda(pitch_m, n_med, expected):
    s = rule_oversample(pitch_m, LAMBDA, n_med)
    assert s == expected
    assert pitch_m / s <= LAMBDA / (2 * n_med) * (1 + 1e-9)  # the rule holds at s …
    if s > 1:
        assert pitch_m / (s - 1) > LAMBDA / (2 * n_med)  # … and s is the smallest that meets it


def test_geometry_reports_whether_it_meets_the_rule():
    g = Geometry(wavelength_m=LAMBDA, neurons=8, pitch_m=1e-6, layers=1, d_in_m=1e-5, spacing_m=1e-5,
                 d_out_m=1e-5, oversample=1)
    assert g.rule_oversample == 3 and not g.meets_sampling_rule
    assert Geometry(**{**g.to_dict(), "oversample": 3}).meets_sampling_rule


# --------------------------------------------------------------------------------------------- the relief itself
def test_uniform_slab_gives_the_exact_plane_wave_phase_delay():
    relief = four_levels(base_m=1.3e-6)
    prop = ReliefPropagator(relief, (16, 16), sim_pitch_m=0.39e-6, wavelength_m=LAMBDA, n_medium=1.0,
                            dtype=torch.complex128, padding=0)
    for level in range(4):
        h = relief.level_heights_m[level]
        out = prop(torch.ones(16, 16, dtype=torch.complex128), torch.full((16, 16), h, dtype=torch.float64))
        # base + pillar of material, the rest of the relief region (top − h) of medium
        expected = 2 * math.pi / LAMBDA * (N_IPDIP * (relief.base_m + h) + 1.0 * (relief.top_m - h))
        np.testing.assert_allclose(out.abs().numpy(), 1.0, atol=1e-12)
        np.testing.assert_allclose(np.angle(out.numpy()), math.remainder(expected, 2 * math.pi), atol=1e-9)


def test_thin_model_is_the_limit_of_vanishing_height():
    g = Geometry(wavelength_m=LAMBDA, neurons=12, pitch_m=0.78e-6, layers=2, d_in_m=15e-6, spacing_m=15e-6,
                 d_out_m=15e-6, oversample=2)
    gen = torch.Generator().manual_seed(1)
    phases = torch.randint(0, 4, (2, 12, 12), generator=gen).double() * math.pi / 2
    field = torch.randn(2, 24, 24, generator=gen, dtype=torch.complex128)
    thin = DiffractiveNetwork(g).detector_field(field, phases)
    errors = []
    for scale in (1e-1, 1e-2, 1e-3):
        relief = four_levels(n_mat=1.0 + (N_IPDIP - 1.0) / scale)  # same phases, heights × scale
        thick = DiffractiveNetwork(g, relief=relief).detector_field(field, phases)
        errors.append(float((thick - thin).norm() / thin.norm()))
    assert errors[-1] < 2e-3
    assert errors[0] / errors[1] > 5 and errors[1] / errors[2] > 5  # converges linearly in the height


def test_level_aligned_slices_and_subdivision():
    relief = four_levels()
    h = relief.level_heights_m
    np.testing.assert_allclose(relief.slice_edges_m(), [0.0, h[1], h[2], h[3]], rtol=1e-12)
    fine = four_levels(max_slice_m=h[1] / 2.5)
    edges = fine.slice_edges_m()
    assert len(edges) == 1 + 3 * 3 and np.all(np.diff(edges) <= h[1] / 2.5 + 1e-18)
    assert all(np.any(np.isclose(edges, level)) for level in h)  # every level height stays an edge


def test_heights_of_phases_hits_levels_exactly_and_is_continuous_across_the_wrap():
    relief = four_levels()
    levels = torch.tensor(relief.level_phases_rad, dtype=torch.float64)
    np.testing.assert_array_equal(relief.heights_of_phases(levels, LAMBDA, 1.0).numpy(),
                                  np.asarray(relief.level_heights_m))
    # just below 2π a periodic level set is back at level 0 (a low pillar), continuous across the wrap
    near = torch.tensor([2 * math.pi - 1e-9, 2 * math.pi + 1e-9, -1e-9], dtype=torch.float64)
    np.testing.assert_allclose(relief.heights_of_phases(near, LAMBDA, 1.0).numpy(), 0.0, atol=1e-15)
    # differentiable: the soft quantizer's gradient reaches the latent phase
    phi = torch.tensor([0.3, 2.0, 5.5], dtype=torch.float64, requires_grad=True)
    relief.heights_of_phases(phi, LAMBDA, 1.0).sum().backward()
    assert torch.all(phi.grad != 0)
    continuous = four_levels(continuous=True)
    np.testing.assert_allclose(continuous.heights_of_phases(torch.tensor([math.pi]), LAMBDA, 1.0).numpy(),
                               0.5 * LAMBDA / (N_IPDIP - 1.0), rtol=1e-6)


def test_distances_hold_the_printed_part_under_both_orientations():
    relief = four_levels(base_m=2e-6)
    top = relief.top_m
    free = relief.free_distances_m((10e-6, 20e-6, 30e-6))
    np.testing.assert_allclose(free, (10e-6 - 2e-6, 20e-6 - top - 2e-6, 30e-6 - top))
    flipped = four_levels(base_m=2e-6, orientation="relief-first")
    np.testing.assert_allclose(flipped.free_distances_m((10e-6, 20e-6, 30e-6)),
                               (10e-6, 20e-6 - top - 2e-6, 30e-6 - top - 2e-6))
    with pytest.raises(ReliefError, match="spacing = 2 µm is shorter than the printed part"):
        relief.free_distances_m((10e-6, 2e-6, 30e-6))


def test_network_with_merged_ends_equals_the_full_relief_propagator():
    """The network folds the base slab and the outer half slices into its hops; the physics must not change.

    Compared a few µm beyond the part, where the only difference left (evanescent waves: cut by the hops,
    decaying in the standalone relief) has died out.
    """
    from quaton_fab.optics.propagation import propagate

    relief = four_levels(base_m=1.5e-6)
    m = 48
    g = Geometry(wavelength_m=LAMBDA, neurons=m // 2, pitch_m=0.78e-6, layers=1, d_in_m=1.5e-6 + 3e-6,
                 spacing_m=10e-6, d_out_m=relief.top_m + 5e-6, oversample=2, padding=48)
    gen = torch.Generator().manual_seed(3)
    heights = torch.tensor(relief.level_heights_m, dtype=torch.float64)[torch.randint(0, 4, (1, m // 2, m // 2),
                                                                                      generator=gen)]
    y, x = torch.meshgrid(torch.arange(float(m)), torch.arange(float(m)), indexing="ij")
    field = (torch.exp(-((x - m / 2) ** 2 + (y - m / 2) ** 2) / 30.0) * torch.exp(0.3j * x)).to(torch.complex128)
    net = DiffractiveNetwork(g, relief=relief).detector_field(field, heights_m=heights)
    full = ReliefPropagator(relief, (m, m), sim_pitch_m=0.39e-6, wavelength_m=LAMBDA, n_medium=1.0,
                            dtype=torch.complex128, padding=48)
    hop = dict(pitch=0.39e-6, wavelength=LAMBDA, padding=48)
    direct = propagate(field, distance=3e-6, **hop)
    direct = full(direct, heights[0].repeat_interleave(2, 0).repeat_interleave(2, 1))
    direct = propagate(direct, distance=5e-6, **hop)
    assert float((net - direct).norm() / direct.norm()) < 5e-3


def test_relief_conserves_power_of_a_field_inside_the_aperture():
    relief = four_levels(base_m=2e-6)
    prop = ReliefPropagator(relief, (48, 48), sim_pitch_m=0.39e-6, wavelength_m=LAMBDA, n_medium=1.0,
                            dtype=torch.complex128)
    y, x = torch.meshgrid(torch.arange(48.0), torch.arange(48.0), indexing="ij")
    field = torch.exp(-((x - 23.5) ** 2 + (y - 23.5) ** 2) / 60.0).to(torch.complex128)  # smooth, well inside
    gen = torch.Generator().manual_seed(0)
    idx = torch.randint(0, 4, (24, 24), generator=gen).repeat_interleave(2, 0).repeat_interleave(2, 1)
    heights = torch.tensor(relief.level_heights_m, dtype=torch.float64)[idx]  # 2×2 samples per printed pixel
    out = prop(field, heights)
    ratio = float(out.abs().square().sum() / field.abs().square().sum())
    # nothing is created; what is lost is light scattered beyond n_med/λ0 (evanescent in the medium, decaying)
    assert 0.95 < ratio <= 1.0 + 1e-9
    flat = prop(field, torch.zeros(48, 48, dtype=torch.float64))
    assert abs(float(flat.abs().square().sum() / field.abs().square().sum()) - 1.0) < 1e-8


def test_bad_relief_values_name_the_value():
    with pytest.raises(ReliefError, match="n_material"):
        Relief(n_material=float("nan"), level_phases_rad=(0, 1), level_heights_m=(0, 1e-7))
    with pytest.raises(ReliefError, match="one height per level"):
        Relief(n_material=1.5, level_phases_rad=(0, 1), level_heights_m=(0,))
    with pytest.raises(ReliefError, match="orientation"):
        four_levels(orientation="sideways")
    with pytest.raises(ReliefError, match="unknown relief key"):
        Relief.from_dict({**four_levels().to_dict(), "colour": "red"})
    assert Relief.from_dict(four_levels(base_m=1e-6).to_dict()) == four_levels(base_m=1e-6)
