"""Phase ↔ relief height of a transmissive step: the one home of the formula.

A step of height ``h`` of material index ``n_mat`` in a medium of index ``n_med`` delays the light of vacuum
wavelength λ0 by

    φ = 2π (n_mat − n_med) h / λ0          h = φ λ0 / (2π (n_mat − n_med))

so a full 2π step is ``λ0 / (n_mat − n_med)`` high, and a slice of thickness ``dz`` of the relief is the thin
phase ``k0 (n_mat − n_med) dz`` with ``k0 = 2π/λ0`` (DESIGN.md §2, optics/relief.py).

The expressions are evaluated in one fixed order (the order the level table, the exports and the fab sheet were
recorded with), so every caller gets the same floats to the last bit. Phases in radians, lengths in metres;
array arguments keep their shape (float64).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["TWO_PI", "index_contrast", "height_of_phase", "phase_of_height", "height_2pi_m", "slice_phase_rad"]

#: One full turn of phase (rad).
TWO_PI = 2.0 * math.pi


def index_contrast(n_material: float, n_medium: float) -> float:
    """Index contrast ``n_mat − n_med`` of the relief against the medium around it (dimensionless)."""
    return float(n_material) - float(n_medium)


def height_of_phase(phase_rad: np.ndarray | float, wavelength_m: float, delta_n: float) -> np.ndarray:
    """Relief height (m, float64, shape of ``phase_rad``) of a phase delay (rad): ``φ · λ0 / (2π Δn)``.

    ``delta_n`` is :func:`index_contrast` (> 0).
    """
    return np.asarray(phase_rad, dtype=np.float64) * float(wavelength_m) / (TWO_PI * delta_n)


def phase_of_height(height_m: np.ndarray | float, wavelength_m: float, delta_n: float) -> np.ndarray:
    """Phase delay (rad, float64, shape of ``height_m``) of a relief height (m): ``2π Δn h / λ0``."""
    return TWO_PI * delta_n * np.asarray(height_m, dtype=np.float64) / float(wavelength_m)


def height_2pi_m(wavelength_m: float, delta_n: float) -> float:
    """Height (m) of a full 2π phase step: ``λ0 / Δn``."""
    return wavelength_m / delta_n


def slice_phase_rad(wavelength_m: float, delta_n: float, dz_m: float) -> float:
    """Thin phase (rad) of a relief slice ``dz_m`` thick: ``k0 · Δn · dz`` with ``k0 = 2π/λ0``."""
    k0 = TWO_PI / wavelength_m
    return k0 * delta_n * float(dz_m)
