"""Image → field encoding: resize (checked against Pillow), placement, value rules, oversampling, persistence."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from quaton_fab.data import Encoding, EncodingError


def rand_images(batch: int, side: int, seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).random((batch, side, side)).astype(np.float32))


@pytest.mark.parametrize(("neurons", "obj", "offset"), [(10, 4, 3), (9, 4, 2), (8, 8, 0), (128, 32, 48)])
def test_offset_and_placement(neurons: int, obj: int, offset: int) -> None:
    enc = Encoding(obj)
    assert enc.offset(neurons) == offset
    phase = enc.phase_map(torch.ones(2, obj, obj), neurons)
    expected = np.zeros((neurons, neurons))
    expected[offset:offset + obj, offset:offset + obj] = math.pi
    assert phase.shape == (2, neurons, neurons) and phase.dtype == torch.float32
    np.testing.assert_allclose(phase[1].numpy(), expected, atol=1e-6)
    np.testing.assert_array_equal(enc.amplitude_map(torch.ones(2, obj, obj), neurons).numpy(), 1.0)


def test_phase_is_pi_times_pixel_without_resize() -> None:
    images = rand_images(3, 6)
    phase = Encoding(6).phase_map(images, 10)
    np.testing.assert_allclose(phase[:, 2:8, 2:8].numpy(), math.pi * images.numpy(), rtol=1e-6)
    half = Encoding(6, phase_scale_rad=math.pi / 2).phase_map(images, 10)
    np.testing.assert_allclose(half[:, 2:8, 2:8].numpy(), 0.5 * math.pi * images.numpy(), rtol=1e-6)


def test_phase_dataset_values_used_as_radians() -> None:
    radians = 3.0 * rand_images(2, 5)
    enc = Encoding.for_kind("phase", 5)
    assert enc.input_is_phase
    np.testing.assert_array_equal(enc.phase_map(radians, 7)[:, 1:6, 1:6].numpy(), radians.numpy())
    assert not Encoding.for_kind("intensity", 5).input_is_phase


@pytest.mark.parametrize("obj", [10, 14, 20, 40])
def test_resize_matches_pillow_bilinear(obj: int) -> None:
    """Torch's antialiased bilinear interpolation agrees with Pillow's independent implementation."""
    images = rand_images(2, 28, seed=obj)
    out = Encoding(obj).resize(images)
    assert out.shape == (2, obj, obj)
    for k in range(2):
        ref = np.asarray(Image.fromarray(images[k].numpy()).resize((obj, obj), Image.Resampling.BILINEAR))
        np.testing.assert_allclose(out[k].numpy(), ref, atol=1e-5)
    assert torch.allclose(Encoding(obj).resize(torch.full((1, 28, 28), 0.3)), torch.tensor(0.3))


def test_field_matches_independent_construction_and_oversampling() -> None:
    images = rand_images(2, 4, seed=1)
    neurons, s = 7, 3
    field = Encoding(4).field(images, neurons, oversample=s)
    assert field.dtype == torch.complex64 and field.shape == (2, neurons * s, neurons * s)
    # independent: pad the object's transmission with the plane wave (1), then repeat each neuron s×s
    obj = np.exp(1j * np.pi * images.numpy().astype(np.float64))
    grid = np.pad(obj, ((0, 0), (1, 2), (1, 2)), constant_values=1.0)
    expected = np.kron(grid, np.ones((s, s)))
    np.testing.assert_allclose(field.numpy(), expected, atol=1e-6)
    np.testing.assert_array_equal(field[:, ::s, ::s].numpy(), Encoding(4).field(images, neurons).numpy())


def test_amplitude_mode() -> None:
    images = rand_images(2, 4, seed=2)
    enc = Encoding(4, mode="amplitude")
    assert enc.background == "dark" and enc.background_amplitude == 0.0
    amp = enc.amplitude_map(images, 8)
    expected = np.zeros((2, 8, 8), dtype=np.float32)
    expected[:, 2:6, 2:6] = images.numpy()
    np.testing.assert_array_equal(amp.numpy(), expected)
    assert float(enc.phase_map(images, 8).abs().max()) == 0.0
    field = enc.field(images, 8, oversample=2)
    np.testing.assert_allclose(field.imag.numpy(), 0.0)
    np.testing.assert_allclose(field.real.numpy(), np.kron(expected, np.ones((2, 2))), atol=1e-7)


def test_dark_background_in_phase_mode() -> None:
    enc = Encoding(2, background="dark")
    amp = enc.amplitude_map(torch.zeros(1, 2, 2), 4)
    np.testing.assert_array_equal(amp[0].numpy(), [[0, 0, 0, 0], [0, 1, 1, 0], [0, 1, 1, 0], [0, 0, 0, 0]])


def test_dict_round_trip_is_json_and_complete() -> None:
    for enc in (Encoding(32), Encoding(12, mode="amplitude"), Encoding(9, input_is_phase=True, background="dark"),
                Encoding(5, phase_scale_rad=1.25)):
        data = json.loads(json.dumps(enc.to_dict()))
        assert Encoding.from_dict(data) == enc
        for key in ("resize", "placement", "value_rule", "oversampling", "background_amplitude"):
            assert key in data
    assert Encoding(32).to_dict()["background_amplitude"] == 1.0
    assert "(neurons - object_neurons) // 2" in Encoding(32).to_dict()["placement"]


def test_validation_errors() -> None:
    with pytest.raises(EncodingError, match="neurons=8 must be an integer >= object_neurons=10"):
        Encoding(10).phase_map(torch.zeros(1, 10, 10), 8)
    with pytest.raises(EncodingError, match="object_neurons"):
        Encoding(0)
    with pytest.raises(EncodingError, match="mode"):
        Encoding(4, mode="complex")
    with pytest.raises(EncodingError, match="amplitude mode"):
        Encoding(4, mode="amplitude", input_is_phase=True)
    with pytest.raises(EncodingError, match="floating point"):
        Encoding(4).field(torch.zeros(1, 4, 4, dtype=torch.uint8), 4)
    with pytest.raises(EncodingError, match=r"\(B, H, W\)"):
        Encoding(4).field(torch.zeros(4, 4), 4)
    with pytest.raises(EncodingError, match="oversample"):
        Encoding(4).field(torch.zeros(1, 4, 4), 4, oversample=0)
    with pytest.raises(EncodingError, match="object_neurons"):
        Encoding.from_dict({"mode": "phase"})
    assert issubclass(EncodingError, ValueError)


def test_numpy_input_accepted() -> None:
    images = np.random.default_rng(3).random((1, 3, 3))
    np.testing.assert_allclose(Encoding(3).phase_map(images, 3)[0].numpy(), math.pi * images[0], rtol=1e-6)


def test_field_and_phase_agree_with_the_separate_calls():
    torch.manual_seed(3)
    images = torch.rand(3, 28, 28)
    encoding = Encoding(object_neurons=12)
    field, phase = encoding.field_and_phase(images, 20, 2)
    assert torch.equal(field, encoding.field(images, 20, 2))
    assert torch.equal(phase, encoding.phase_map(images, 20))
