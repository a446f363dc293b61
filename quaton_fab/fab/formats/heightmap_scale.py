"""Grey scales of the height maps: which height a grey value stands for, and the grey image with its metadata.

Two scale rules:

* **whole-nanometre** (default for 16-bit maps): see below; grey value = height in nm whenever the heights are
  whole nanometres, so 16-bit maps are exact but use only top/65535 of the range (1.6 % for a 1.08 µm relief);
* **full-scale** (``full_scale=True``; the 8-bit ``png8``/``bmp`` exports): scale = tallest height / max_grey
  (a real number of nm per grey), so the tallest height is the top grey value and every grey step is used.
  Uniform levels land exactly on greys when n − 1 divides max_grey (4 levels: 0, 85, 170, 255); otherwise they
  are rounded by at most half a grey step, and n ≤ max_grey + 1 levels always stay distinct greys.

Whole-nanometre scale rule (documented for the facility):
- the scale is a whole number of nanometres per grey value;
- it is the smallest such scale that fits the tallest height into the grey range (2^bits − 1) and, when every
  height is a whole number of nanometres, also divides all of them, so every level is stored exactly;
- in practice: 1 nm/grey whenever the heights are whole nanometres and the tallest is below 65.535 µm
  (16-bit), which covers visible/NIR two-photon masks; THz-scale masks get a coarser integer scale.
When no exact scale exists the heights are rounded to the nearest grey value, an info message is logged, and the
largest rounding error is returned.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from quaton_fab.errors import FabError
from quaton_fab._version import __version__

__all__ = ["HeightMapError", "choose_scale_nm", "full_scale_nm", "level_greys"]

logger = logging.getLogger(__name__)

_NM = 1e-9
_INTEGER_TOL_NM = 1e-6  # a height within this of a whole nanometre counts as whole


class HeightMapError(FabError):
    """A height map, pixel repeat, bit depth or image file that cannot be written or read."""


def _check_heights(heights_m: np.ndarray) -> np.ndarray:
    """Validate a 2-D, finite, non-negative height map (m). Returns float64 (H, W)."""
    h = np.asarray(heights_m, dtype=np.float64)
    if h.ndim != 2 or h.size == 0:
        raise HeightMapError(f"height map must be a non-empty 2-D array, got shape {h.shape}")
    bad = ~np.isfinite(h) | (h < 0)
    if np.any(bad):
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise HeightMapError(f"height map value {h[idx]!r} m at {idx} is not a finite height ≥ 0")
    return h


def _check_bit_depth(bit_depth: int) -> int:
    """Accept 8 or 16 bits per pixel."""
    if bit_depth not in (8, 16):
        raise HeightMapError(f"bit depth must be 8 or 16, got {bit_depth!r}")
    return int(bit_depth)


def choose_scale_nm(heights_m: np.ndarray, bit_depth: int = 16) -> tuple[int, bool]:
    """Whole-nanometre grey scale for ``heights_m`` (m, any shape) following the module's scale rule.

    Returns:
        (nm per grey value, exact) where exact says every height is stored without rounding.
    """
    max_grey = 2 ** _check_bit_depth(bit_depth) - 1
    h_nm = np.asarray(heights_m, dtype=np.float64) / _NM
    top_nm = float(np.max(h_nm)) if h_nm.size else 0.0
    s_min = max(1, math.ceil(top_nm / max_grey - 1e-9))
    whole = np.rint(h_nm)
    if not np.all(np.abs(h_nm - whole) <= _INTEGER_TOL_NM):
        return s_min, False
    g = int(np.gcd.reduce(np.unique(whole).astype(np.int64)))
    if g == 0:  # all heights zero
        return 1, True
    fits = [d for d in _divisors(g) if d >= s_min]
    return (min(fits), True) if fits else (s_min, False)


def _divisors(g: int) -> list[int]:
    """All positive divisors of the positive integer ``g``."""
    small = [d for d in range(1, math.isqrt(g) + 1) if g % d == 0]
    return small + [g // d for d in small]


def _to_grey(heights_m: np.ndarray, scale_nm: float, bit_depth: int) -> tuple[np.ndarray, float]:
    """Grey values (uint8/uint16) and the largest rounding error (m; 0 when below 1e-6 nm) for a scale."""
    h_nm = heights_m / _NM
    g = np.rint(h_nm / scale_nm)
    max_grey = 2**bit_depth - 1
    if g.max() > max_grey:
        raise HeightMapError(
            f"tallest height {heights_m.max() * 1e6:.6g} µm needs grey {int(g.max())} > {max_grey} at "
            f"{scale_nm:.6g} nm/grey; use a coarser scale, full scale or 16 bits"
        )
    err_nm = float(np.max(np.abs(g * scale_nm - h_nm)))
    err_m = 0.0 if err_nm <= _INTEGER_TOL_NM else err_nm * _NM
    return g.astype(np.uint16 if bit_depth == 16 else np.uint8), err_m


def full_scale_nm(heights_m: np.ndarray, bit_depth: int) -> float:
    """Full-scale grey step (nm per grey): the tallest height over the top grey value (1 nm when all are 0).

    Pass the level table's heights (not one mask's) so that every mask of a design shares one grey per level.
    """
    top_nm = float(np.max(heights_m)) / _NM
    return top_nm / (2 ** _check_bit_depth(bit_depth) - 1) if top_nm > 0 else 1.0


def level_greys(
    level_heights_m: np.ndarray, bit_depth: int, *, full_scale: bool, invert: bool = False
) -> tuple[list[int], float]:
    """Grey value of every level (the dose-table column) and the scale (nm per grey) a map of them uses.

    Raises:
        HeightMapError: two different levels would share one grey value (the map could not tell them apart).
    """
    h = _check_heights(np.asarray(level_heights_m, dtype=np.float64)[None, :])
    bits = _check_bit_depth(bit_depth)
    scale = full_scale_nm(h, bits) if full_scale else choose_scale_nm(h, bits)[0]
    grey, _ = _to_grey(h, scale, bits)
    values = grey[0].astype(np.int64)
    if invert:
        values = (2**bits - 1) - values
    heights = h[0]
    for a in range(values.size):
        for b in range(a):
            if values[a] == values[b] and heights[a] != heights[b]:
                raise HeightMapError(
                    f"levels {b} and {a} ({heights[b] * 1e9:.4g} nm, {heights[a] * 1e9:.4g} nm) share grey {values[a]} "
                    f"at {scale:.6g} nm per grey; use 16 bits"
                )
    return values.tolist(), float(scale)


def _prepare(
    heights_m: np.ndarray,
    pixel_repeat: int,
    bit_depth: int,
    scale_nm: int | None,
    pitch_m: float | None,
    full_scale: bool = False,
    invert: bool = False,
    top_m: float | None = None,
) -> tuple[np.ndarray, dict]:
    """Grey image (rows × cols) and the metadata dict shared by the PNG, TIFF and BMP writers."""
    h = _check_heights(heights_m)
    bits = _check_bit_depth(bit_depth)
    if not isinstance(pixel_repeat, (int, np.integer)) or pixel_repeat < 1:
        raise HeightMapError(f"pixel repeat must be an integer ≥ 1, got {pixel_repeat!r}")
    if pitch_m is not None and not (math.isfinite(pitch_m) and pitch_m > 0):
        raise HeightMapError(f"pitch must be a positive length in metres, got {pitch_m!r}")
    if full_scale and scale_nm is not None:
        raise HeightMapError("give either a scale or full_scale=True, not both")
    if top_m is not None and not (full_scale and math.isfinite(top_m) and top_m >= float(h.max())):
        raise HeightMapError(f"top_m = {top_m!r} needs full_scale=True and must be ≥ the tallest height {h.max()!r} m")
    if full_scale:
        scale: float = full_scale_nm(np.array([top_m]) if top_m is not None else h, bits)
    elif scale_nm is None:
        scale, _ = choose_scale_nm(h, bits)
    elif isinstance(scale_nm, (int, np.integer)) and scale_nm >= 1:
        scale = int(scale_nm)
    else:
        raise HeightMapError(f"scale must be a whole number of nanometres per grey ≥ 1, got {scale_nm!r}")
    grey, err_m = _to_grey(h, scale, bits)
    if err_m > 0:
        logger.info("height map rounded to %.6g nm per grey value: max error %.3g nm", scale, err_m / _NM)
    max_grey = 2**bits - 1
    if invert:
        grey = (max_grey - grey.astype(np.int64)).astype(grey.dtype)
    grey = np.repeat(np.repeat(grey, pixel_repeat, axis=0), pixel_repeat, axis=1)
    meta = {
        "height_per_grey_nm": scale,
        "height_per_grey_m": scale * _NM,
        "scale_rule": "full-scale" if full_scale else "whole-nm",
        "inverted": bool(invert),
        "height_of_grey": (f"height = ({max_grey} - grey) * height_per_grey" if invert
                           else "height = grey * height_per_grey"),
        "range_used": float(h.max()) / (max_grey * scale * _NM),
        "top_grey_height_m": max_grey * scale * _NM,
        "bit_depth": bits,
        "pixel_repeat": int(pixel_repeat),
        "pitch_um": None if pitch_m is None else _clean(pitch_m / pixel_repeat * 1e6),
        "neuron_pitch_um": None if pitch_m is None else _clean(pitch_m * 1e6),
        "width_px": int(grey.shape[1]),
        "height_px": int(grey.shape[0]),
        "max_grey": int(grey.max()),
        "max_height_m": float(h.max()),
        "exact": err_m == 0.0,
        "max_error_m": err_m,
        "software": f"quaton-fab {__version__}",
    }
    return grey, meta


def _clean(x: float) -> float:
    """``x`` rounded to 12 significant digits (drops binary noise such as 0.39999999999999997)."""
    return float(f"{x:.12g}")
