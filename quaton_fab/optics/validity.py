"""Where the scalar mask models hold: the measured validity map, and the warning ``train`` gives outside it.

The tables are the output of ``benchmarks/validity_map.py`` (the commands and conditions are in
docs/VALIDITY.md): random 4-level IP-Dip relief patches (heights 0, 0.4, 0.7, 1.1 µm on a 2 µm base, in air,
λ0 = 780 nm) against a rigorous solver (torcwa RCWA), TE/TM mean of the flux-weighted complex order error
(:mod:`quaton_fab.analysis.crosscheck`), mean over the patches, per pixel pitch and model:

* :data:`CONE_MAP` (``benchmarks/results/validity_map_li.json``: 4 × 4-pixel patches, Li's factorisation rules,
  the relief lit from inside an endless base — the scalar models' own error): the error over the orders inside
  the cones ``sin θ <`` :data:`CONES` (the last, 1, is every propagating order). ``train`` judges a geometry by
  it, at the network's acceptance cone (:func:`~quaton_fab.optics.network.acceptance_sin`: light leaving a
  mask more steeply misses the next plane, in the design and in the printed stack alike): inside the validated
  region when the model's interpolated error (linear in the cone's sin θ, then linear in pitch/λ0 between the
  measured pitches; cones below the smallest measured one take its value) is at most :data:`MAX_COMPLEX_ERROR`.
  :data:`VALIDITY_MAP` is its all-orders column.
* :data:`PLATE_MAP` (``benchmarks/results/validity_map.json``; at 2 µm ``validity_map_gpu_plate.json``, 4 × 4
  pixels; Laurent's rule): the free-standing plate (air | base | relief | air), as printed, over every order:
  the base's reflections (Fabry–Pérot, light trapped in the slab and re-emitted by the periodic relief) add to
  the models' error a floor no reflection-free model removes; stated, not judged.

The map was measured for one material and medium; other index contrasts are reported as unmapped, not judged.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from quaton_fab.optics.network import Geometry, acceptance_sin, rule_oversample
from quaton_fab.optics.relief import Relief

__all__ = [
    "MAP_MATERIAL_INDEX",
    "MAP_MEDIUM_INDEX",
    "CONES",
    "CONE_MAP",
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
#: The tables keep pitch/λ0 to 3 decimals: a pitch within half a unit of the last one is on the map (3 µm: 3.8462).
_RATIO_ROUNDING = 5e-4
#: The cones of :data:`CONE_MAP`: the orders with sin θ (in the medium) below each are scored.
CONES = (0.3, 0.5, 0.8, 1.0)
#: pitch/λ0 → complex order error per cone of :data:`CONES` (TE/TM mean, mean over the patches, rounded to 3
#: decimals) per model, relief lit from inside an endless base: benchmarks/results/validity_map_li.json.
CONE_MAP: dict[str, tuple[tuple[float, tuple[float, ...]], ...]] = {
    "thin": (
        (1.000, (0.447, 0.460, 0.651, 0.682)),
        (1.282, (0.250, 0.289, 0.383, 0.462)),
        (1.923, (0.230, 0.283, 0.417, 0.471)),
        (2.564, (0.177, 0.245, 0.349, 0.395)),
        (3.846, (0.135, 0.186, 0.274, 0.323)),
    ),
    "multislice design rule": (
        (1.000, (0.247, 0.241, 0.303, 0.378)),
        (1.282, (0.086, 0.097, 0.143, 0.293)),
        (1.923, (0.094, 0.107, 0.158, 0.238)),
        (2.564, (0.064, 0.087, 0.116, 0.185)),
        (3.846, (0.073, 0.086, 0.118, 0.181)),
    ),
    "multislice in-material rule": (
        (1.000, (0.148, 0.153, 0.272, 0.362)),
        (1.282, (0.067, 0.084, 0.134, 0.290)),
        (1.923, (0.068, 0.081, 0.130, 0.225)),
        (2.564, (0.052, 0.073, 0.106, 0.179)),
        (3.846, (0.057, 0.067, 0.096, 0.166)),
    ),
    "wpm in-material rule": (
        (1.000, (0.159, 0.181, 0.222, 0.295)),
        (1.282, (0.145, 0.152, 0.190, 0.293)),
        (1.923, (0.107, 0.121, 0.174, 0.222)),
        (2.564, (0.089, 0.127, 0.157, 0.200)),
        (3.846, (0.084, 0.102, 0.142, 0.188)),
    ),
}
#: pitch/λ0 → complex order error over every propagating order: :data:`CONE_MAP`'s last column.
VALIDITY_MAP: dict[str, tuple[tuple[float, float], ...]] = {
    model: tuple((ratio, errors[-1]) for ratio, errors in rows) for model, rows in CONE_MAP.items()
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
                table: dict[str, tuple[tuple[float, float], ...]] | None = None, cone_sin: float = 1.0,
                ) -> float | None:
    """Interpolated mean complex order error of ``model`` at ``pitch/λ0``; None outside the measured pitches.

    ``table`` None: :data:`CONE_MAP` at the cone ``sin θ < cone_sin`` (see the module docstring); else a table of
    ``(pitch/λ0, error)`` points such as :data:`PLATE_MAP` (``cone_sin`` ignored).
    """
    if table is None:
        points = [(ratio, float(np.interp(cone_sin, CONES, errors))) for ratio, errors in CONE_MAP[model]]
    else:
        points = list(table[model])
    x = np.array([p for p, _ in points])
    y = np.array([e for _, e in points])
    if pitch_over_wavelength < x[0] - _RATIO_ROUNDING or pitch_over_wavelength > x[-1] + _RATIO_ROUNDING:
        return None
    return float(np.interp(pitch_over_wavelength, x, y))


def _smallest_valid_pitch(model: str, cone_sin: float) -> float | None:
    """Smallest mapped pitch/λ0 from which on every measured point of ``model`` is within the limit at the cone."""
    best = None
    for ratio, _ in reversed(CONE_MAP[model]):
        error = model_error(model, ratio, cone_sin=cone_sin)
        if error is None or error > MAX_COMPLEX_ERROR:
            break
        best = ratio
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
    cone = acceptance_sin(geometry)
    error = model_error(model, ratio, cone_sin=cone)
    valid_from = _smallest_valid_pitch(model, cone)
    if valid_from is None:
        errors = [(r, model_error(model, r, cone_sin=cone) or 0.0) for r, _ in CONE_MAP[model]]
        best_ratio, best = min(errors, key=lambda point: point[1])
        where = f"no mapped pitch is within it at this cone (smallest: {best:.3f} at pitch/λ0 = {best_ratio:.3g})"
    else:
        where = (f"at this cone it holds from pitch/λ0 ≥ {valid_from:.3g} "
                 f"(≈ {valid_from * geometry.wavelength_m * 1e6:.3g} µm)")
    out = []
    if error is None:
        lo = CONE_MAP[model][0][0]
        if ratio < lo:
            out.append(f"pitch/λ0 = {ratio:.3g} lies below the validity map (from {lo:.3g}): the {model} model is "
                       f"not validated there; {where} (docs/VALIDITY.md)")
    elif error > MAX_COMPLEX_ERROR and not math.isclose(error, MAX_COMPLEX_ERROR):
        out.append(f"pitch/λ0 = {ratio:.3g}, acceptance sin θ = {cone:.2f}: the {model} model's complex order error "
                   f"vs a rigorous solver is ≈ {error:.2f} (> {MAX_COMPLEX_ERROR:.2f}), outside its validated "
                   f"region; {where}; a longer spacing narrows the cone (docs/VALIDITY.md)")
    for line in out:
        logger.info(line)
    return out
