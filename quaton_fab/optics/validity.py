"""Where the scalar mask models hold: the measured validity map, and the warning ``train`` gives outside it.

The tables are the output of ``benchmarks/validity_map.py`` (the commands and conditions are in
docs/VALIDITY.md): random 4-level IP-Dip relief patches (heights 0, 0.4, 0.7, 1.1 µm on a 2 µm base, in air,
λ0 = 780 nm) against a rigorous solver (torcwa RCWA), TE/TM mean of the flux-weighted complex order error
(:mod:`quaton_fab.analysis.crosscheck`), mean over the patches, per pixel pitch and model:

* :data:`VALIDITY_MAP` (``benchmarks/results/validity_map_no_bottom_face.json``, 2 × 2-pixel patches; at 1.5, 2
  and 3 µm ``benchmarks/results/validity_map_gpu.json``, 4 × 4-pixel patches sliced at the current reference, the
  more representative measurement): the relief lit from inside an endless base — the scalar models' own error
  (diffraction inside the relief, polarisation), which a better model can reduce. ``train`` judges a geometry by
  it: inside the validated region when the model's interpolated error (linear in pitch/λ0 between the measured
  pitches) is at most :data:`MAX_COMPLEX_ERROR`.
* :data:`PLATE_MAP` (``benchmarks/results/validity_map.json``; at 2 µm ``validity_map_gpu_plate.json``, 4 × 4
  pixels): the free-standing plate (air | base | relief | air), as printed: the base's reflections (Fabry–Pérot,
  light trapped in the slab and re-emitted by the periodic relief) add to the models' error a floor no
  reflection-free model removes; stated, not judged.

The map was measured for one material and medium; other index contrasts are reported as unmapped, not judged.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from quaton_fab.optics.network import Geometry, rule_oversample
from quaton_fab.optics.relief import Relief

__all__ = [
    "MAP_MATERIAL_INDEX",
    "MAP_MEDIUM_INDEX",
    "MAX_COMPLEX_ERROR",
    "PLATE_MAP",
    "VALIDITY_MAP",
    "model_error",
    "validity_warnings",
]

logger = logging.getLogger(__name__)

#: The largest TE/TM-mean complex order error (vs rigorous) a validated geometry may have.
MAX_COMPLEX_ERROR = 0.10
#: Material and medium indices the map was measured with (IP-Dip at 780 nm, air).
MAP_MATERIAL_INDEX = 1.543
MAP_MEDIUM_INDEX = 1.0
_INDEX_MATCH = 0.05
#: pitch/λ0 → mean complex order error (TE/TM mean, over the patches) per model, relief lit from inside an
#: endless base, rounded to 3 decimals: benchmarks/results/validity_map_no_bottom_face.json (2 × 2-pixel patches),
#: except pitch/λ0 1.923, 2.564, 3.846 (1.5, 2, 3 µm): benchmarks/results/validity_map_gpu.json (4 × 4 pixels).
VALIDITY_MAP: dict[str, tuple[tuple[float, float], ...]] = {
    "thin": (
        (1.000, 0.549), (1.282, 0.395), (1.603, 0.654), (1.923, 0.426), (2.564, 0.358), (3.846, 0.293),
    ),
    "multislice design rule": (
        (1.000, 0.261), (1.282, 0.254), (1.603, 0.464), (1.923, 0.221), (2.564, 0.199), (3.846, 0.166),
    ),
    "multislice in-material rule": (
        (1.000, 0.210), (1.282, 0.250), (1.603, 0.467), (1.923, 0.212), (2.564, 0.195), (3.846, 0.154),
    ),
    "wpm in-material rule": (
        (1.000, 0.152), (1.282, 0.210), (1.603, 0.459), (1.923, 0.194), (2.564, 0.193), (3.846, 0.158),
    ),
}
#: The same for the free-standing plate (air | 2 µm base | relief | air): benchmarks/results/validity_map.json,
#: except pitch/λ0 2.564 (2 µm): benchmarks/results/validity_map_gpu_plate.json (4 × 4 pixels).
PLATE_MAP: dict[str, tuple[tuple[float, float], ...]] = {
    "thin": (
        (1.000, 0.501), (1.282, 0.375), (1.603, 0.663), (1.923, 0.491), (2.564, 0.388), (3.846, 0.297),
    ),
    "multislice design rule": (
        (1.000, 0.349), (1.282, 0.257), (1.603, 0.488), (1.923, 0.174), (2.564, 0.247), (3.846, 0.193),
    ),
    "multislice in-material rule": (
        (1.000, 0.306), (1.282, 0.254), (1.603, 0.492), (1.923, 0.176), (2.564, 0.244), (3.846, 0.183),
    ),
    "wpm in-material rule": (
        (1.000, 0.213), (1.282, 0.222), (1.603, 0.470), (1.923, 0.180), (2.564, 0.237), (3.846, 0.184),
    ),
}


def model_error(model: str, pitch_over_wavelength: float,
                table: dict[str, tuple[tuple[float, float], ...]] | None = None) -> float | None:
    """Interpolated mean complex order error of ``model`` at ``pitch/λ0`` (``table`` default :data:`VALIDITY_MAP`);
    None outside the measured range."""
    points = (VALIDITY_MAP if table is None else table)[model]
    x = np.array([p for p, _ in points])
    y = np.array([e for _, e in points])
    if pitch_over_wavelength < x[0] - 1e-9 or pitch_over_wavelength > x[-1] + 1e-9:
        return None
    return float(np.interp(pitch_over_wavelength, x, y))


def _smallest_valid_pitch(model: str) -> float | None:
    """Smallest mapped pitch/λ0 from which on every measured point of ``model`` is within the limit."""
    points = VALIDITY_MAP[model]  # judged on the models' own error (see the module docstring)
    best = None
    for p, e in reversed(points):
        if e > MAX_COMPLEX_ERROR:
            break
        best = p
    return best


def map_model(relief: Relief | None, geometry: Geometry) -> str:
    """The map's row for a simulation: thin, or multislice at the design rule or at the in-material rule."""
    if relief is None:
        return "thin"
    s_mat = rule_oversample(geometry.pitch_m, geometry.wavelength_m, relief.n_material)
    return "multislice in-material rule" if geometry.oversample >= s_mat else "multislice design rule"


def validity_warnings(geometry: Geometry, relief: Relief | None) -> list[str]:
    """Warnings (one line each) when the geometry lies outside the validated region of its mask model.

    Empty when inside. Logged at INFO only: the caller shows the lines (the CLI prints them once). See the module
    docstring for the criterion.
    """
    model = map_model(relief, geometry)
    ratio = geometry.pitch_m / geometry.wavelength_m
    n_mat = relief.n_material if relief is not None else MAP_MATERIAL_INDEX
    if abs(n_mat - MAP_MATERIAL_INDEX) > _INDEX_MATCH or abs(geometry.n_medium - MAP_MEDIUM_INDEX) > _INDEX_MATCH:
        logger.info("validity map not measured for n_material %.3f in n_medium %.3f", n_mat, geometry.n_medium)
        return []
    error = model_error(model, ratio)
    valid_from = _smallest_valid_pitch(model)
    if valid_from is None:
        best_ratio, best = min(VALIDITY_MAP[model], key=lambda point: point[1])
        where = f"no mapped pitch is within it (smallest: {best:.3f} at pitch/λ0 = {best_ratio:.3g})"
    else:
        where = f"it holds from pitch/λ0 ≥ {valid_from:.3g} (≈ {valid_from * geometry.wavelength_m * 1e6:.3g} µm)"
    out = []
    if error is None:
        lo = VALIDITY_MAP[model][0][0]
        if ratio < lo:
            out.append(f"pitch/λ0 = {ratio:.3g} lies below the validity map (from {lo:.3g}): the {model} model is "
                       f"not validated there; {where} (docs/VALIDITY.md)")
    elif error > MAX_COMPLEX_ERROR and not math.isclose(error, MAX_COMPLEX_ERROR):
        out.append(f"pitch/λ0 = {ratio:.3g}: the {model} model's complex order error vs a rigorous solver is "
                   f"≈ {error:.2f} (> {MAX_COMPLEX_ERROR:.2f}), outside its validated region; {where} "
                   "(docs/VALIDITY.md)")
    for line in out:
        logger.info(line)
    return out
