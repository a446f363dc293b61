"""Height maps as 16-bit (or 8-bit) grayscale PNG/TIFF images, for grayscale lithography and inspection.

One idea: a grey value g stands for the height g · scale above the substrate, with the scale written into the
file (PNG text chunks / TIFF ImageDescription JSON) and returned to the caller.

Scale rule (documented for the facility):
- the scale is a whole number of nanometres per grey value;
- it is the smallest such scale that fits the tallest height into the grey range (2^bits − 1) and, when every
  height is a whole number of nanometres, also divides all of them, so every level is stored exactly;
- in practice: 1 nm/grey whenever the heights are whole nanometres and the tallest is below 65.535 µm
  (16-bit), which covers visible/NIR two-photon masks; THz-scale masks get a coarser integer scale.
When no exact scale exists the heights are rounded to the nearest grey value, an info message is logged, and the
largest rounding error is returned.

Image pixels: each neuron becomes ``pixel_repeat`` × ``pixel_repeat`` image pixels; row 0 of the array is the
top row of the image. Files are written to a temporary name in the same folder, then moved into place.
"""

from __future__ import annotations

import json
import zlib
import logging
import math
import os
from pathlib import Path

import numpy as np
from PIL import Image, PngImagePlugin

from quaton_fab.fileio import atomic_path
from quaton_fab.fab.errors import FabError
from quaton_fab._version import __version__

logger = logging.getLogger(__name__)

_NM = 1e-9
_TIFF_DESCRIPTION_TAG = 270
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


def _to_grey(heights_m: np.ndarray, scale_nm: int, bit_depth: int) -> tuple[np.ndarray, float]:
    """Grey values (uint8/uint16) and the largest rounding error (m; 0 when below 1e-6 nm) for a scale."""
    h_nm = heights_m / _NM
    g = np.rint(h_nm / scale_nm)
    max_grey = 2**bit_depth - 1
    if g.max() > max_grey:
        raise HeightMapError(
            f"tallest height {heights_m.max() * 1e6:.6g} µm needs grey {int(g.max())} > {max_grey} at "
            f"{scale_nm} nm/grey; use a coarser scale or 16 bits"
        )
    err_nm = float(np.max(np.abs(g * scale_nm - h_nm)))
    err_m = 0.0 if err_nm <= _INTEGER_TOL_NM else err_nm * _NM
    return g.astype(np.uint16 if bit_depth == 16 else np.uint8), err_m


def _prepare(
    heights_m: np.ndarray, pixel_repeat: int, bit_depth: int, scale_nm: int | None, pitch_m: float | None
) -> tuple[np.ndarray, dict]:
    """Grey image (rows × cols) and the metadata dict shared by the PNG and TIFF writers."""
    h = _check_heights(heights_m)
    bits = _check_bit_depth(bit_depth)
    if not isinstance(pixel_repeat, (int, np.integer)) or pixel_repeat < 1:
        raise HeightMapError(f"pixel repeat must be an integer ≥ 1, got {pixel_repeat!r}")
    if pitch_m is not None and not (math.isfinite(pitch_m) and pitch_m > 0):
        raise HeightMapError(f"pitch must be a positive length in metres, got {pitch_m!r}")
    if scale_nm is None:
        scale, _ = choose_scale_nm(h, bits)
    elif isinstance(scale_nm, (int, np.integer)) and scale_nm >= 1:
        scale = int(scale_nm)
    else:
        raise HeightMapError(f"scale must be a whole number of nanometres per grey ≥ 1, got {scale_nm!r}")
    grey, err_m = _to_grey(h, scale, bits)
    if err_m > 0:
        logger.info("height map rounded to %d nm per grey value: max error %.3g nm", scale, err_m / _NM)
    grey = np.repeat(np.repeat(grey, pixel_repeat, axis=0), pixel_repeat, axis=1)
    meta = {
        "height_per_grey_nm": scale,
        "height_per_grey_m": scale * _NM,
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


def _atomic_save(image: Image.Image, path: Path, fmt: str, **params: object) -> None:
    """Save ``image`` to a temporary name next to ``path``, then move it into place."""
    with atomic_path(path) as tmp:
        image.save(tmp, format=fmt, **params)


def _image(grey: np.ndarray) -> Image.Image:
    """PIL image of mode "I;16" (16-bit) or "L" (8-bit) from a uint16/uint8 array."""
    if grey.dtype == np.uint16:
        return Image.frombytes("I;16", (grey.shape[1], grey.shape[0]), grey.astype("<u2").tobytes())
    return Image.fromarray(grey)


def _dpi(meta: dict) -> tuple[float, float] | None:
    """Resolution in dots per inch from the image pixel pitch, for viewers that read it."""
    if meta["pitch_um"] is None:
        return None
    d = 0.0254 / (meta["pitch_um"] * 1e-6)
    return (d, d)


def write_height_png(
    path: str | os.PathLike,
    heights_m: np.ndarray,
    *,
    pixel_repeat: int = 1,
    bit_depth: int = 16,
    pitch_m: float | None = None,
    scale_nm: int | None = None,
) -> dict:
    """Write a grayscale PNG whose grey value g means height g · scale (see the module's scale rule).

    Args:
        path: output file.
        heights_m: (N, N) or (H, W) heights above the substrate (m, ≥ 0).
        pixel_repeat: image pixels per neuron along each axis.
        bit_depth: 16 (mode "I;16") or 8 (mode "L").
        pitch_m: neuron pitch (m); stored as the image pixel pitch ``pitch_um`` = pitch / pixel_repeat.
        scale_nm: force a whole-nanometre scale instead of choosing one.

    Returns:
        The metadata dict (also stored as PNG text chunks), plus ``path``.
    """
    grey, meta = _prepare(heights_m, pixel_repeat, bit_depth, scale_nm, pitch_m)
    info = PngImagePlugin.PngInfo()
    for key, value in meta.items():
        info.add_text(key, json.dumps(value))
    params: dict = {"pnginfo": info}
    dpi = _dpi(meta)
    if dpi is not None:
        params["dpi"] = dpi
    out = Path(path)
    _atomic_save(_image(grey), out, "PNG", **params)
    return {**meta, "path": str(out)}


def write_height_tiff(
    path: str | os.PathLike,
    heights_m: np.ndarray,
    *,
    pixel_repeat: int = 1,
    bit_depth: int = 16,
    pitch_m: float | None = None,
    scale_nm: int | None = None,
) -> dict:
    """Same as :func:`write_height_png` but an uncompressed TIFF; metadata as JSON in ImageDescription."""
    grey, meta = _prepare(heights_m, pixel_repeat, bit_depth, scale_nm, pitch_m)
    params: dict = {"description": json.dumps(meta)}
    dpi = _dpi(meta)
    if dpi is not None:
        params["dpi"] = dpi
    out = Path(path)
    _atomic_save(_image(grey), out, "TIFF", **params)
    return {**meta, "path": str(out)}


def _grey_array(image: Image.Image, path: Path) -> np.ndarray:
    """Grey values of a 16-bit or 8-bit single-channel image as int64 (rows × cols)."""
    if image.mode not in ("I;16", "I;16B", "I;16L", "I", "L"):
        raise HeightMapError(f"{path}: not a grayscale height map (image mode {image.mode})")
    return np.asarray(image).astype(np.int64)


def _heights(grey: np.ndarray, meta: dict, path: Path) -> tuple[np.ndarray, dict]:
    """Heights (m) from grey values and metadata; refuses a file without the scale."""
    if "height_per_grey_nm" not in meta:
        raise HeightMapError(f"{path}: no height_per_grey_nm metadata; not written by quaton-fab")
    return grey * (meta["height_per_grey_nm"] * _NM), meta


#: What Pillow raises for a file that is not a readable image (truncated, corrupted, not an image at all).
_IMAGE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, zlib.error, Image.DecompressionBombError)


def _read_height_image(path: str | os.PathLike, kind: str, read_meta) -> tuple[np.ndarray, dict]:
    """Open a height-map image, read its metadata with ``read_meta(image, path)`` and its grey values.

    Anything Pillow cannot read becomes one HeightMapError naming the file; a missing file stays
    FileNotFoundError.
    """
    p = Path(path)
    try:
        with Image.open(p) as im:
            meta = read_meta(im, p)
            grey = _grey_array(im, p)
    except (HeightMapError, FileNotFoundError):
        raise
    except _IMAGE_ERRORS as exc:
        raise HeightMapError(f"{p}: not a readable {kind} height map ({type(exc).__name__}: {exc})") from None
    return _heights(grey, meta, p)


def _png_meta(im: Image.Image, p: Path) -> dict:
    return {k: json.loads(v) for k, v in im.text.items()}


def _tiff_meta(im: Image.Image, p: Path) -> dict:
    try:
        return json.loads(im.tag_v2.get(_TIFF_DESCRIPTION_TAG, "{}"))
    except json.JSONDecodeError:
        raise HeightMapError(f"{p}: ImageDescription is not quaton-fab JSON metadata") from None


def read_height_png(path: str | os.PathLike) -> tuple[np.ndarray, dict]:
    """Read a PNG written by :func:`write_height_png`: (heights (m, rows × cols image pixels), metadata)."""
    return _read_height_image(path, "PNG", _png_meta)


def read_height_tiff(path: str | os.PathLike) -> tuple[np.ndarray, dict]:
    """Read a TIFF written by :func:`write_height_tiff`: (heights (m, rows × cols image pixels), metadata)."""
    return _read_height_image(path, "TIFF", _tiff_meta)
