"""SSIM against an independent numpy/scipy implementation and against its known properties."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from quaton_fab.tasks.ssim import RI_CONSTANTS, SSIMError, gaussian_window, ssim


def reference_ssim(x: np.ndarray, y: np.ndarray, *, data_range=1.0, sigma=1.5, k1=0.01, k2=0.03) -> float:
    """SSIM of one image pair as skimage computes it (gaussian_weights, population covariance), via scipy.

    scipy's Gaussian filter with truncate=3.5 has radius int(3.5·1.5 + 0.5) = 5, i.e. the 11-tap window; the
    border of 5 pixels is dropped so only positions where the window fits (the 'valid' region) are averaged.
    """
    pad = int(3.5 * sigma + 0.5)

    def blur(a: np.ndarray) -> np.ndarray:
        return ndimage.gaussian_filter(a, sigma=sigma, truncate=3.5, mode="reflect")

    ux, uy = blur(x), blur(y)
    vx = blur(x * x) - ux * ux
    vy = blur(y * y) - uy * uy
    vxy = blur(x * y) - ux * uy
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux**2 + uy**2 + c1) * (vx + vy + c2))
    return float(s[pad:-pad, pad:-pad].mean())


def _pair(seed: int, shape=(3, 24, 31), noise=0.2):
    rng = np.random.default_rng(seed)
    x = ndimage.gaussian_filter(rng.random(shape), sigma=(0, 2, 2))  # some structure
    x = (x - x.min()) / (x.max() - x.min())
    y = np.clip(x + noise * rng.standard_normal(shape), 0, 1)
    return x, y


@pytest.mark.parametrize("constants", [(0.01, 0.03), RI_CONSTANTS])
def test_matches_scipy_reference_float64(constants):
    x, y = _pair(0)
    got = ssim(torch.from_numpy(x), torch.from_numpy(y), k1=constants[0], k2=constants[1]).numpy()
    want = [reference_ssim(x[i], y[i], k1=constants[0], k2=constants[1]) for i in range(x.shape[0])]
    assert got.shape == (3,)
    np.testing.assert_allclose(got, want, atol=1e-10, rtol=0)


def test_matches_scipy_reference_float32_and_other_range():
    x, y = _pair(1, shape=(2, 32, 32), noise=0.1)
    got = ssim(torch.from_numpy(x * 255).float(), torch.from_numpy(y * 255).float(), data_range=255.0).numpy()
    want = [reference_ssim(x[i] * 255, y[i] * 255, data_range=255.0) for i in range(2)]
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


def test_four_dim_input_averages_channels():
    x, y = _pair(2, shape=(4, 20, 20))
    xt, yt = torch.from_numpy(x).view(2, 2, 20, 20), torch.from_numpy(y).view(2, 2, 20, 20)
    per_image = ssim(torch.from_numpy(x), torch.from_numpy(y))
    np.testing.assert_allclose(ssim(xt, yt).numpy(), per_image.view(2, 2).mean(dim=1).numpy(), atol=1e-12)


def test_window_is_the_normalised_gaussian():
    w = gaussian_window(11, 1.5, dtype=torch.float64).numpy()
    taps = np.exp(-(np.arange(-5, 6) ** 2) / (2 * 1.5**2))
    np.testing.assert_allclose(w, taps / taps.sum(), atol=1e-15)


def test_identity_symmetry_and_noise_monotonicity():
    x, _ = _pair(3, shape=(2, 28, 28))
    xt = torch.from_numpy(x)
    np.testing.assert_allclose(ssim(xt, xt).numpy(), 1.0, atol=1e-12)
    rng = np.random.default_rng(4)
    noise = torch.from_numpy(rng.standard_normal(x.shape))
    values = [float(ssim(xt, xt + a * noise).mean()) for a in (0.01, 0.05, 0.2, 0.5)]
    assert all(a > b for a, b in zip(values, values[1:])), values
    y = xt + 0.1 * noise
    np.testing.assert_allclose(ssim(xt, y).numpy(), ssim(y, xt).numpy(), atol=1e-12)


def test_structure_inversion_is_negative():
    x, _ = _pair(5, shape=(1, 24, 24))
    xt = torch.from_numpy(x)
    assert float(ssim(xt, 1.0 - xt)) < 0


def test_differentiable():
    x, y = _pair(6, shape=(1, 16, 16))
    yt = torch.from_numpy(y).requires_grad_(True)
    ssim(torch.from_numpy(x), yt).sum().backward()
    assert yt.grad is not None and torch.isfinite(yt.grad).all() and yt.grad.abs().sum() > 0


@pytest.mark.parametrize(
    "x_shape, y_shape, kwargs, fragment",
    [
        ((1, 16, 16), (1, 16, 17), {}, "same shape"),
        ((16, 16), (16, 16), {}, "(B, H, W)"),
        ((1, 8, 8), (1, 8, 8), {}, "larger than the image"),
        ((1, 16, 16), (1, 16, 16), {"win_size": 4}, "odd"),
        ((1, 16, 16), (1, 16, 16), {"data_range": 0.0}, "data_range"),
    ],
)
def test_bad_input_raises_one_line_value_error(x_shape, y_shape, kwargs, fragment):
    with pytest.raises(SSIMError, match=None) as info:
        ssim(torch.zeros(x_shape), torch.zeros(y_shape), **kwargs)
    assert isinstance(info.value, ValueError)
    assert fragment in str(info.value) and "\n" not in str(info.value)
