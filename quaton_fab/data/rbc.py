"""``rbc``: synthetic red blood cells (discocytes) as quantitative-phase images, for the QPI task.

No real RBC phase data ships offline, so cells are generated from the Evans–Fung thickness model
(E. A. Evans and Y.-C. Fung, "Improved measurements of the erythrocyte geometry", Microvasc. Res. 4, 335–347
(1972)), the full cell thickness at normalised radius x = r/R:

    T(x) = sqrt(1 − x²) · (C0 + C1·x² + C2·x⁴),   0 ≤ x < 1 (T = 0 outside),

with their mean constants R = 3.91 µm, C0 = 0.81 µm, C1 = 7.83 µm, C2 = −4.39 µm. This gives 0.81 µm at the
centre (the dimple) and a peak ≈ 2.57 µm at x ≈ 0.70 (the rim), diameter 7.82 µm.

Phase: φ = 2π·Δn·T/λ0 with λ0 = 632.8 nm (HeNe, the lab's QPI wavelength) and Δn = 0.06. Δn is an assumption:
the cytoplasm index n ≈ 1.40 (haemoglobin at ≈ 33 g/dL times its specific refraction increment ≈ 0.19 mL/g,
over water 1.333) minus plasma/PBS ≈ 1.34. With these defaults the nominal peak phase is
2π·0.06·2.57 µm / 0.6328 µm ≈ 1.53 rad (≈ 0.49π; ≈ 1.65 rad with the largest tilt), safely below π, so
nothing wraps. Background (outside the cell) is 0 rad.

Per cell, from uniforms drawn as ``numpy.random.default_rng([seed, split_id]).random((K, 6))`` (split_id:
train 0, val 1, test 2; the first k cells do not depend on K):

* size: R × U(1 − 0.1, 1 + 0.1) (thickness constants unchanged);
* ellipticity: axis ratio q = b/a ∈ U(0.85, 1), area-preserving (a = R/√q, b = R·√q);
* in-plane rotation of the major axis ∈ U(0, π);
* tilt: φ × (1 + τ·u/a), τ ∈ U(−0.1, 0.1), u the coordinate along the major axis: a small linear phase ramp
  confined to the cell, so the background stays at 0 rad;
* position: centre offset ∈ U(−0.5 µm, 0.5 µm) on each axis.

Images: 28×28 pixels (``RBCConfig.side_px``) of 0.4 µm (``RBCConfig.pixel_m``), i.e. an 11.2 µm field of view;
each pixel is the mean of 4×4 sub-samples (area average, no aliasing at the steep rim). Values are phase in
radians (``kind = "phase"``); labels are all 0 (``num_classes = 1``). Default sizes 5000 / 500 / 1000.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from .errors import DataError
from .splits import SPLIT_IDS, SPLIT_NAMES, DatasetSplits, check_count, make_split

EVANS_FUNG_REFERENCE = "E. A. Evans and Y.-C. Fung, Microvasc. Res. 4, 335-347 (1972)"
DEFAULT_SIZES: dict[str, int] = {"train": 5000, "val": 500, "test": 1000}
_CHUNK = 256  # cells rendered at once (bounds the temporary arrays to a few MB)


@dataclass(frozen=True)
class RBCConfig:
    """Physical constants and randomisation ranges of the synthetic cells (SI units)."""

    side_px: int = 28
    pixel_m: float = 0.4e-6
    wavelength_m: float = 632.8e-9
    delta_n: float = 0.06
    radius_m: float = 3.91e-6
    c0_m: float = 0.81e-6
    c1_m: float = 7.83e-6
    c2_m: float = -4.39e-6
    size_jitter: float = 0.10
    min_aspect: float = 0.85
    max_tilt: float = 0.10
    position_jitter_m: float = 0.5e-6
    supersample: int = 4

    def __post_init__(self) -> None:
        positive = {"pixel_m": self.pixel_m, "wavelength_m": self.wavelength_m, "radius_m": self.radius_m}
        for name, value in positive.items():
            if not (math.isfinite(value) and value > 0):
                raise DataError(f"RBCConfig.{name} must be a positive length, got {value!r}")
        if self.side_px < 4 or self.supersample < 1:
            raise DataError(
                f"RBCConfig needs side_px >= 4 and supersample >= 1, got {self.side_px} and {self.supersample}"
            )
        if not 0.0 <= self.size_jitter < 1.0 or not 0.0 < self.min_aspect <= 1.0 or not 0.0 <= self.max_tilt < 1.0:
            raise DataError(
                f"RBCConfig ranges out of bounds: size_jitter={self.size_jitter}, min_aspect={self.min_aspect}, "
                f"max_tilt={self.max_tilt}"
            )
        reach_m = self.radius_m * (1.0 + self.size_jitter) / math.sqrt(self.min_aspect) + self.position_jitter_m
        if reach_m > self.side_px * self.pixel_m / 2.0:
            raise DataError(
                f"RBC cells reach {reach_m * 1e6:.2f} um from the centre but the {self.side_px}-pixel field of view "
                f"is only {self.side_px * self.pixel_m * 1e6:.2f} um wide"
            )


def evans_fung_profile_m(
    x: np.ndarray, *, c0_m: float = 0.81e-6, c1_m: float = 7.83e-6, c2_m: float = -4.39e-6,
) -> np.ndarray:
    """Thickness T (m) at normalised radius ``x`` = r/R (any shape).

    T = sqrt(1 − x²)(C0 + C1·x² + C2·x⁴) for x < 1, 0 for x ≥ 1; float32 input stays float32.
    """
    x = np.asarray(x)
    x2 = np.square(x if np.issubdtype(x.dtype, np.floating) else x.astype(np.float64))
    inside = x2 < 1.0
    x2c = np.where(inside, x2, 0.0)
    return np.where(inside, np.sqrt(1.0 - x2c) * (c0_m + c1_m * x2c + c2_m * x2c**2), 0.0)


def evans_fung_thickness_m(
    r_m: np.ndarray, *, radius_m: float = 3.91e-6, c0_m: float = 0.81e-6, c1_m: float = 7.83e-6, c2_m: float = -4.39e-6,
) -> np.ndarray:
    """Cell thickness T (m) at radial distance ``r_m`` (m, any shape) of a cell of radius ``radius_m``."""
    return evans_fung_profile_m(np.asarray(r_m, dtype=np.float64) / radius_m, c0_m=c0_m, c1_m=c1_m, c2_m=c2_m)


def phase_from_thickness_rad(thickness_m: np.ndarray, *, delta_n: float, wavelength_m: float) -> np.ndarray:
    """Phase delay φ = 2π·Δn·T/λ0 (rad) of a layer of thickness ``thickness_m`` (m) and index contrast Δn."""
    return (2.0 * np.pi * delta_n / wavelength_m) * np.asarray(thickness_m)


def cell_parameters(count: int, *, seed: int, split: str, config: RBCConfig) -> dict[str, np.ndarray]:
    """Per-cell random parameters (arrays of shape (count,)): semi-axes (m), rotation (rad), tilt, shift (m)."""
    u = np.random.default_rng([seed, SPLIT_IDS[split]]).random((count, 6))
    radius_m = config.radius_m * (1.0 + config.size_jitter * (2.0 * u[:, 0] - 1.0))
    aspect = config.min_aspect + (1.0 - config.min_aspect) * u[:, 1]
    return {
        "a_m": radius_m / np.sqrt(aspect),
        "b_m": radius_m * np.sqrt(aspect),
        "rotation_rad": np.pi * u[:, 2],
        "tilt": config.max_tilt * (2.0 * u[:, 3] - 1.0),
        "dx_m": config.position_jitter_m * (2.0 * u[:, 4] - 1.0),
        "dy_m": config.position_jitter_m * (2.0 * u[:, 5] - 1.0),
    }


def _sample_coordinates_m(config: RBCConfig) -> np.ndarray:
    """Sub-sample coordinates (m) along one axis, centred on the image centre: (side·s,)."""
    s = config.supersample
    fine = (np.arange(config.side_px * s) + 0.5) / s - config.side_px / 2.0
    return fine * config.pixel_m


def render_cells(params: dict[str, np.ndarray], config: RBCConfig) -> np.ndarray:
    """Phase images (rad) float32 (K, side, side) of the cells described by ``params`` (computed in float32)."""
    coords_m = _sample_coordinates_m(config).astype(np.float32)
    s, side = config.supersample, config.side_px
    p = {key: value.astype(np.float32)[:, None, None] for key, value in params.items()}
    dx_m = coords_m[None, None, :] - p["dx_m"]   # along columns
    dy_m = coords_m[None, :, None] - p["dy_m"]   # along rows
    cos_t, sin_t = np.cos(p["rotation_rad"]), np.sin(p["rotation_rad"])
    u_norm = (cos_t * dx_m + sin_t * dy_m) / p["a_m"]    # major-axis coordinate / a
    v_norm = (cos_t * dy_m - sin_t * dx_m) / p["b_m"]    # minor-axis coordinate / b
    x = np.sqrt(u_norm**2 + v_norm**2)                   # normalised radius of the elliptical cell
    thickness_m = evans_fung_profile_m(x, c0_m=config.c0_m, c1_m=config.c1_m, c2_m=config.c2_m)
    phase = phase_from_thickness_rad(thickness_m, delta_n=config.delta_n, wavelength_m=config.wavelength_m)
    phase = phase * (1.0 + p["tilt"] * np.clip(u_norm, -1.0, 1.0))
    return phase.reshape(-1, side, s, side, s).mean(axis=(2, 4), dtype=np.float64).astype(np.float32)


def rbc_phase_images(count: int, *, seed: int, split: str, config: RBCConfig = RBCConfig()) -> np.ndarray:
    """``count`` synthetic RBC phase images (rad), float32 (count, side, side), of one split."""
    check_count(count, f"{split}_samples")
    params = cell_parameters(count, seed=seed, split=split, config=config)
    chunks = [
        render_cells({key: value[start:start + _CHUNK] for key, value in params.items()}, config)
        for start in range(0, count, _CHUNK)
    ]
    return np.concatenate(chunks)


def nominal_peak_thickness_m(config: RBCConfig = RBCConfig()) -> float:
    """Maximum of the Evans–Fung profile with the config's constants (m), found on a fine radial grid."""
    x = np.linspace(0.0, 1.0, 100_001)
    return float(evans_fung_profile_m(x, c0_m=config.c0_m, c1_m=config.c1_m, c2_m=config.c2_m).max())


def load_rbc(counts: dict[str, int | None], seed: int, config: RBCConfig = RBCConfig()) -> DatasetSplits:
    """Synthetic RBC phase images with the requested (or default 5000/500/1000) split sizes."""
    splits = {}
    sizes = {}
    max_phase = 0.0
    for split in SPLIT_NAMES:
        requested = counts.get(split)
        count = DEFAULT_SIZES[split] if requested is None else requested
        images = rbc_phase_images(count, seed=seed, split=split, config=config)
        max_phase = max(max_phase, float(images.max()))
        splits[split] = make_split(images, np.zeros(count, dtype=np.int64))
        sizes[split] = count
    peak_m = nominal_peak_thickness_m(config)
    info = {
        "source": "rbc", "spec": "rbc", "seed": int(seed), "sizes": sizes,
        "model": "Evans-Fung discocyte T(x) = sqrt(1-x^2)(C0 + C1 x^2 + C2 x^4), phase = 2 pi dn T / lambda0",
        "reference": EVANS_FUNG_REFERENCE, "config": asdict(config),
        "image_shape": [config.side_px, config.side_px], "pixel_m": config.pixel_m, "unit": "rad",
        "nominal_peak_thickness_m": peak_m,
        "nominal_peak_phase_rad": float(phase_from_thickness_rad(peak_m, delta_n=config.delta_n,
                                                                 wavelength_m=config.wavelength_m)),
        "max_phase_rad": max_phase,
        "split_rule": "generated per split: parameters default_rng([seed, split_id]).random((K, 6)), split_id 0/1/2",
        "class_names": ["rbc"],
    }
    return DatasetSplits(name="rbc", kind="phase", num_classes=1, info=info,
                         train=splits["train"], val=splits["val"], test=splits["test"])
