"""Checks of the diffractive network (quaton_fab.optics.network): geometry, mask stacking, physics, gradients."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from quaton_fab.optics import DiffractiveNetwork, FreePhase, Geometry, GeometryError, propagate

LAMBDA_M = 0.5e-6


def geometry(**changes) -> Geometry:
    """A tiny geometry (16 neurons, 1 µm pitch, 3 masks, 20 µm hops), with ``changes`` applied."""
    base = dict(wavelength_m=LAMBDA_M, neurons=16, pitch_m=1e-6, layers=3, d_in_m=20e-6, spacing_m=20e-6,
                d_out_m=20e-6)
    return Geometry(**(base | changes))


def random_field(shape: tuple[int, ...], seed: int = 0, dtype: torch.dtype = torch.complex64) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    amp = torch.rand(shape, generator=gen, dtype=torch.float64)
    phase = 2 * math.pi * torch.rand(shape, generator=gen, dtype=torch.float64)
    return torch.polar(amp, phase).to(dtype)


def random_phases(g: Geometry, seed: int = 1, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return (2 * math.pi * torch.rand(g.layers, g.neurons, g.neurons, generator=gen, dtype=torch.float64)).to(dtype)


# ------------------------------------------------------------------------------------------------ geometry
def test_geometry_derived_values_and_round_trip_through_json():
    g = geometry(oversample=3, n_medium=1.5, padding=7)
    assert g.sim_pixels == 48 and g.sim_pitch_m == pytest.approx(1e-6 / 3)
    assert g.distances_m() == (20e-6, 20e-6, 20e-6, 20e-6)
    data = json.loads(json.dumps(g.to_dict()))
    assert all(key.endswith("_m") for key in data if key in {"wavelength_m", "pitch_m", "d_in_m"})
    assert Geometry.from_dict(data) == g
    assert Geometry.from_dict(geometry().to_dict()).padding == "auto"


def test_geometry_normalises_numpy_scalars():
    g = geometry(neurons=np.int64(16), pitch_m=np.float32(1e-6), padding=np.int64(4))
    assert type(g.neurons) is int and type(g.pitch_m) is float and type(g.padding) is int
    json.dumps(g.to_dict())


@pytest.mark.parametrize(
    "changes, fragment",
    [
        (dict(wavelength_m=0.0), "wavelength_m"),
        (dict(pitch_m=-1e-6), "pitch_m"),
        (dict(pitch_m=float("nan")), "pitch_m"),
        (dict(d_in_m=-1e-6), "d_in_m"),
        (dict(spacing_m=float("inf")), "spacing_m"),
        (dict(neurons=0), "neurons"),
        (dict(neurons=2.5), "neurons"),
        (dict(layers=0), "layers"),
        (dict(oversample=0), "oversample"),
        (dict(n_medium=-1.0), "n_medium"),
        (dict(padding="lots"), "padding"),
        (dict(padding=-2), "padding"),
    ],
)
def test_geometry_rejects_bad_values(changes, fragment):
    with pytest.raises(GeometryError, match=fragment) as info:
        geometry(**changes)
    assert isinstance(info.value, ValueError) and "\n" not in str(info.value)


def test_geometry_from_dict_rejects_unknown_and_missing_keys():
    data = geometry().to_dict()
    with pytest.raises(GeometryError, match="pitch"):
        Geometry.from_dict({**data, "pitch": 1e-6})
    del data["spacing_m"]
    with pytest.raises(GeometryError, match="spacing_m"):
        Geometry.from_dict(data)


# ------------------------------------------------------------------------------------------------ network
def test_free_phase_init_is_seeded_and_in_range():
    a = FreePhase(8, generator=torch.Generator().manual_seed(5))().detach()
    b = FreePhase(8, generator=torch.Generator().manual_seed(5))().detach()
    assert a.shape == (8, 8) and torch.equal(a, b)
    assert float(a.min()) >= 0.0 and float(a.max()) < 2 * math.pi
    net = DiffractiveNetwork(geometry(), generator=torch.Generator().manual_seed(0))
    assert net.current_phases().shape == (3, 16, 16)
    assert sum(p.numel() for p in net.parameters()) == 3 * 16 * 16


def test_fixed_phases_override_equals_modules():
    g = geometry(oversample=2)
    net = DiffractiveNetwork(g, generator=torch.Generator().manual_seed(0))
    field = random_field((2, g.sim_pixels, g.sim_pixels))
    from_modules = net(field)
    overridden = net(field, phases=net.current_phases().detach())
    assert torch.equal(from_modules, overridden)
    other = net(field, phases=random_phases(g))
    assert not torch.allclose(other, from_modules)


def test_zero_phases_and_zero_distances_leave_the_field_unchanged():
    g = geometry(d_in_m=0.0, spacing_m=0.0, d_out_m=0.0, oversample=2)
    net = DiffractiveNetwork(g)
    field = random_field((g.sim_pixels, g.sim_pixels))
    zeros = torch.zeros(g.layers, g.neurons, g.neurons)
    assert torch.equal(net.detector_field(field, phases=zeros), field)


def test_masks_multiply_by_exp_plus_i_phi_repeated_per_neuron():
    s = 3
    g = geometry(d_in_m=0.0, spacing_m=0.0, d_out_m=0.0, oversample=s)
    phases = random_phases(g, dtype=torch.float64)
    net = DiffractiveNetwork(g)
    out = net.detector_field(torch.ones(g.sim_pixels, g.sim_pixels, dtype=torch.complex128), phases=phases)
    expected = np.kron(np.exp(1j * phases.sum(0).numpy()), np.ones((s, s)))  # t = exp(+iφ), s×s blocks
    assert np.allclose(out.numpy(), expected, atol=1e-12)
    blocks = out.reshape(g.neurons, s, g.neurons, s)
    assert torch.equal(blocks, blocks[:, :1, :, :1].expand_as(blocks))


def test_zero_phases_chain_equals_one_propagation():
    g = geometry(neurons=48, layers=3, d_in_m=15e-6, spacing_m=10e-6, d_out_m=25e-6, oversample=2)
    net = DiffractiveNetwork(g)
    y = (np.arange(g.sim_pixels) - (g.sim_pixels - 1) / 2) * g.sim_pitch_m
    beam = torch.tensor(np.exp(-(y[:, None] ** 2 + y[None, :] ** 2) / (4e-6) ** 2), dtype=torch.complex128)
    out = net.detector_field(beam, phases=torch.zeros(g.layers, g.neurons, g.neurons, dtype=torch.float64))
    total_m = g.d_in_m + 2 * g.spacing_m + g.d_out_m
    one = propagate(beam, pitch=g.sim_pitch_m, wavelength=g.wavelength_m, distance=total_m)
    assert float((out - one).norm() / one.norm()) < 1e-3
    assert float((one - beam).norm() / beam.norm()) > 0.3


def test_phase_ramp_mask_steers_light_towards_positive_x():
    # φ = +2π·sinθ·x/λ on the mask with t = exp(+iφ) tilts the beam toward +x by d_out·tanθ
    g = geometry(neurons=96, layers=1, d_in_m=0.0, d_out_m=150e-6, n_medium=1.0)
    x = (np.arange(g.neurons) - (g.neurons - 1) / 2) * g.pitch_m
    theta = math.radians(6.0)
    ramp = torch.tensor(2 * math.pi * math.sin(theta) * np.tile(x, (g.neurons, 1)) / g.wavelength_m)
    beam = torch.tensor(np.exp(-(x[:, None] ** 2 + x[None, :] ** 2) / (6e-6) ** 2), dtype=torch.complex128)
    intensity = DiffractiveNetwork(g)(beam, phases=ramp[None]).numpy()
    profile = intensity.sum(axis=0)
    centroid_m = float((profile * x).sum() / profile.sum())
    assert abs(centroid_m - g.d_out_m * math.tan(theta)) < g.pitch_m


def test_batch_dimensions():
    g = geometry(oversample=2)
    net = DiffractiveNetwork(g, generator=torch.Generator().manual_seed(0))
    field = random_field((2, 3, g.sim_pixels, g.sim_pixels))
    out = net(field)
    assert out.shape == field.shape and out.dtype == torch.float32
    assert torch.allclose(out[1, 2], net(field[1, 2]), atol=1e-6)


def test_complex128_in_complex128_out():
    g = geometry()
    net = DiffractiveNetwork(g, generator=torch.Generator().manual_seed(0))
    field = random_field((g.sim_pixels, g.sim_pixels), dtype=torch.complex128)
    assert net.detector_field(field).dtype == torch.complex128
    assert net(field).dtype == torch.float64
    low = net(field.to(torch.complex64))
    assert low.dtype == torch.float32
    assert torch.allclose(low.double(), net(field), rtol=1e-4, atol=1e-5)


def test_intensity_is_abs_squared_of_detector_field():
    g = geometry()
    net = DiffractiveNetwork(g, generator=torch.Generator().manual_seed(0))
    field = random_field((g.sim_pixels, g.sim_pixels), dtype=torch.complex128)
    assert torch.allclose(net(field), net.detector_field(field).abs() ** 2, atol=1e-12)


def test_gradient_wrt_phases_matches_finite_differences():
    g = geometry(neurons=6, layers=2, d_in_m=3e-6, spacing_m=4e-6, d_out_m=5e-6, oversample=2)
    net = DiffractiveNetwork(g)
    field = random_field((g.sim_pixels, g.sim_pixels), dtype=torch.complex128)
    weights = torch.rand(g.sim_pixels, g.sim_pixels, generator=torch.Generator().manual_seed(2),
                         dtype=torch.float64)

    def loss(phases: torch.Tensor) -> torch.Tensor:
        return (net(field, phases=phases) * weights).sum()

    phases = random_phases(g, dtype=torch.float64).requires_grad_(True)
    (grad,) = torch.autograd.grad(loss(phases), phases)
    step = 1e-6
    for index in [(0, 0, 0), (0, 2, 3), (1, 5, 1), (1, 3, 3)]:
        plus, minus = phases.detach().clone(), phases.detach().clone()
        plus[index] += step
        minus[index] -= step
        numeric = float(loss(plus) - loss(minus)) / (2 * step)
        assert abs(float(grad[index]) - numeric) <= 1e-6 * max(1.0, abs(numeric))
    assert float(grad.abs().max()) > 1e-3


def test_custom_phase_modules_are_used():
    class Constant(nn.Module):
        def __init__(self, value: float) -> None:
            super().__init__()
            self.value = value

        def forward(self) -> torch.Tensor:
            return torch.full((16, 16), self.value)

    g = geometry(d_in_m=0.0, spacing_m=0.0, d_out_m=0.0)
    net = DiffractiveNetwork(g, [Constant(0.5), Constant(0.25), Constant(1.0)])
    out = net.detector_field(torch.ones(16, 16, dtype=torch.complex64))
    assert torch.allclose(torch.angle(out), torch.full((16, 16), 1.75), atol=1e-6)


def test_bad_network_inputs_raise():
    g = geometry()
    with pytest.raises(GeometryError, match="3 layers"):
        DiffractiveNetwork(g, [FreePhase(16), FreePhase(16)])
    net = DiffractiveNetwork(g, [FreePhase(16), FreePhase(16), FreePhase(8)])
    with pytest.raises(GeometryError, match="phase module 2 returned"):
        net(torch.ones(16, 16, dtype=torch.complex64))
    net = DiffractiveNetwork(g)
    with pytest.raises(GeometryError, match="input field shape"):
        net(torch.ones(15, 16, dtype=torch.complex64))
    with pytest.raises(GeometryError, match="phases"):
        net(torch.ones(16, 16, dtype=torch.complex64), phases=torch.zeros(2, 16, 16))
