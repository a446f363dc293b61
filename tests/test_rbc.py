"""Synthetic red blood cells: Evans–Fung geometry, phase formula, randomisation and determinism.

Physics references checked here: Evans & Fung (1972) report a centre thickness of 0.81 µm, a rim maximum of
about 2.5 µm, a diameter of 7.82 µm and a mean cell volume of about 94 µm³ for their mean constants.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.integrate import quad

from quaton_fab.data import DataError, RBCConfig, load_dataset
from quaton_fab.data.rbc import (
    evans_fung_profile_m,
    evans_fung_thickness_m,
    phase_from_thickness_rad,
    rbc_phase_images,
)

UM = 1e-6
NOMINAL = RBCConfig(size_jitter=0.0, min_aspect=1.0, max_tilt=0.0, position_jitter_m=0.0)


def test_evans_fung_profile_values() -> None:
    assert evans_fung_thickness_m(np.array(0.0)) == pytest.approx(0.81 * UM)          # centre dimple
    # by hand at x = 0.5: sqrt(0.75) * (0.81 + 7.83/4 - 4.39/16) µm
    by_hand = math.sqrt(0.75) * (0.81 + 7.83 * 0.25 - 4.39 * 0.0625) * UM
    assert evans_fung_thickness_m(np.array(0.5 * 3.91 * UM)) == pytest.approx(by_hand, rel=1e-12)
    x = np.linspace(0.0, 1.0, 20001)
    profile = evans_fung_profile_m(x)
    assert 2.4 * UM <= profile.max() <= 2.6 * UM                                        # rim
    assert 0.6 <= x[profile.argmax()] <= 0.8
    assert evans_fung_thickness_m(np.array([3.91, 4.5, 10.0]) * UM).tolist() == [0.0, 0.0, 0.0]


def test_phase_from_thickness_by_hand() -> None:
    # 2 µm of contrast 0.06 at 632.8 nm: 2π · 0.06 · 2 / 0.6328 = 1.19150 rad
    phase = phase_from_thickness_rad(2.0 * UM, delta_n=0.06, wavelength_m=632.8e-9)
    assert phase == pytest.approx(2 * math.pi * 0.12 / 0.6328, rel=1e-12)
    assert phase == pytest.approx(1.19150, abs=1e-5)


def test_nominal_cell_image_is_symmetric_with_right_size_and_phases() -> None:
    image = rbc_phase_images(1, seed=0, split="train", config=NOMINAL)[0].astype(np.float64)
    assert image.shape == (28, 28)
    np.testing.assert_allclose(image, image.T, atol=1e-6)
    np.testing.assert_allclose(image, image[::-1, ::-1], atol=1e-6)
    # support: a disc of radius 3.91 µm = 9.775 px (edge pixels partly covered)
    area_px = int((image > 0).sum())
    assert math.pi * (9.775 - 0.71) ** 2 <= area_px <= math.pi * (9.775 + 0.71) ** 2
    assert image[0].max() == 0.0 and image[:, 0].max() == 0.0                           # background 0 rad
    dimple = 2 * math.pi * 0.06 * 0.81 / 0.6328                                         # 0.4826 rad
    assert image[13:15, 13:15].mean() == pytest.approx(dimple, abs=0.05)
    rim = 2 * math.pi * 0.06 * 2.566 / 0.6328                                           # 1.529 rad
    assert rim - 0.1 <= image.max() <= rim


def test_cell_volume_matches_evans_fung_under_shape_randomisation() -> None:
    """Ellipticity is area-preserving and the tilt ramp is odd, so every cell keeps the nominal volume."""
    integral, _ = quad(lambda x: math.sqrt(1 - x * x) * (0.81 + 7.83 * x * x - 4.39 * x**4) * x, 0.0, 1.0)
    volume_um3 = 2 * math.pi * 3.91**2 * integral
    assert volume_um3 == pytest.approx(94.0, abs=1.0)                                   # Evans & Fung's 94 µm³
    config = RBCConfig(size_jitter=0.0)
    images = rbc_phase_images(40, seed=1, split="train", config=config).astype(np.float64)
    volumes = images.sum(axis=(1, 2)) * 0.4**2 * 0.6328 / (2 * math.pi * 0.06)          # phase -> µm³
    np.testing.assert_allclose(volumes, volume_um3, rtol=2e-3)
    assert images.std(axis=0).max() > 0.1                                               # yet the cells differ


def test_size_randomisation_scales_volume_with_radius_squared() -> None:
    images = rbc_phase_images(200, seed=2, split="val").astype(np.float64)
    volumes = images.sum(axis=(1, 2)) * 0.4**2 * 0.6328 / (2 * math.pi * 0.06)
    assert 94.1 * 0.9**2 * 0.99 <= volumes.min() < 90 and 98 < volumes.max() <= 94.1 * 1.1**2 * 1.01


def test_rbc_dataset_is_deterministic_and_phase_kind() -> None:
    a = load_dataset("rbc", train_samples=30, val_samples=5, test_samples=6, seed=7)
    b = load_dataset("rbc", train_samples=10, val_samples=5, test_samples=6, seed=7)
    c = load_dataset("rbc", train_samples=10, val_samples=5, test_samples=6, seed=8)
    assert torch.equal(a.train.images[:10], b.train.images)
    assert not torch.equal(b.train.images, c.train.images)
    assert not torch.equal(a.val.images[:5], a.test.images[:5])                          # splits are independent
    assert a.kind == "phase" and a.num_classes == 1 and a.image_shape == (28, 28)
    assert int(a.train.labels.abs().sum()) == 0
    assert (len(a.train), len(a.val), len(a.test)) == (30, 5, 6)
    assert 1.3 < a.info["max_phase_rad"] < math.pi                                      # no phase wrapping
    assert a.info["nominal_peak_thickness_m"] == pytest.approx(2.566e-6, rel=1e-3)
    assert a.info["config"]["pixel_m"] == 0.4e-6 and "Evans" in a.info["reference"]
    assert float(a.train.images.min()) == 0.0


def test_rbc_config_validation() -> None:
    with pytest.raises(DataError, match="field of view"):
        RBCConfig(side_px=16)
    with pytest.raises(DataError, match="wavelength_m"):
        RBCConfig(wavelength_m=-1.0)
    assert rbc_phase_images(2, seed=0, split="test", config=RBCConfig(side_px=40, pixel_m=0.3e-6)).shape == (2, 40, 40)
