"""Height maps as 16-bit or 8-bit grayscale PNG/TIFF/BMP images, for grayscale lithography and inspection.

One idea: a grey value g stands for the height g · scale above the substrate (or, for an *inverted* map made
for a positive resist, (max_grey − g) · scale, so the tallest level is black), with the scale written into the
file (PNG text chunks / TIFF ImageDescription JSON; BMP has no metadata, its scale is in the fab sheet) and
returned to the caller.

The two scale rules (whole-nanometre, full-scale) are in :mod:`quaton_fab.fab.formats.heightmap_scale`.

Image pixels: each neuron becomes ``pixel_repeat`` × ``pixel_repeat`` image pixels; row 0 of the array is the
top row of the image. Files are written to a temporary name in the same folder, then moved into place.
"""

from __future__ import annotations

import json
import zlib
import logging
import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np
from PIL import Image, PngImagePlugin

from quaton_fab.bounded import load_json_file, loads_json
from quaton_fab.fileio import atomic_path
from quaton_fab.fab.formats.heightmap_scale import (
    _NM, HeightMapError, _prepare, choose_scale_nm, full_scale_nm, level_greys,
)
from quaton_fab.fab.sheet_names import JSON_NAME

__all__ = ["HeightMapError", "choose_scale_nm", "full_scale_nm", "level_greys", "write_height_png",
           "write_height_tiff", "write_height_bmp", "read_height_png", "read_height_tiff", "read_height_bmp",
           "read_height_map", "bmp_meta_in_sheet"]

logger = logging.getLogger(__name__)

_TIFF_DESCRIPTION_TAG = 270


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



def _save_map(grey: np.ndarray, meta: dict, path: str | os.PathLike, fmt: str, params: dict) -> dict:
    """Save the grey map atomically as ``fmt`` (with the pitch as dpi when known); the metadata plus ``path``."""
    dpi = _dpi(meta)
    if dpi is not None:
        params = {**params, "dpi": dpi}
    out = Path(path)
    _atomic_save(_image(grey), out, fmt, **params)
    return {**meta, "path": str(out)}

def write_height_png(
    path: str | os.PathLike,
    heights_m: np.ndarray,
    *,
    pixel_repeat: int = 1,
    bit_depth: int = 16,
    pitch_m: float | None = None,
    scale_nm: int | None = None,
    full_scale: bool = False,
    invert: bool = False,
    top_m: float | None = None,
) -> dict:
    """Write a grayscale PNG whose grey value g means height g · scale (see the module's scale rule).

    Args:
        path: output file.
        heights_m: (N, N) or (H, W) heights above the substrate (m, ≥ 0).
        pixel_repeat: image pixels per neuron along each axis.
        bit_depth: 16 (mode "I;16") or 8 (mode "L").
        pitch_m: neuron pitch (m); stored as the image pixel pitch ``pitch_um`` = pitch / pixel_repeat.
        scale_nm: force a whole-nanometre scale instead of choosing one.
        full_scale: use the full grey range (scale = tallest height / max grey; see the module docstring).
        invert: store max_grey − grey (tallest level black), for positive resists.
        top_m: with ``full_scale``, the height that maps to the top grey (default: the tallest in the map; the
            export passes the tallest level, so all masks share one grey per level).

    Returns:
        The metadata dict (also stored as PNG text chunks), plus ``path``.
    """
    grey, meta = _prepare(heights_m, pixel_repeat, bit_depth, scale_nm, pitch_m, full_scale, invert, top_m)
    info = PngImagePlugin.PngInfo()
    for key, value in meta.items():
        info.add_text(key, json.dumps(value))
    params: dict = {"pnginfo": info}
    return _save_map(grey, meta, path, "PNG", params)


def write_height_tiff(
    path: str | os.PathLike,
    heights_m: np.ndarray,
    *,
    pixel_repeat: int = 1,
    bit_depth: int = 16,
    pitch_m: float | None = None,
    scale_nm: int | None = None,
    full_scale: bool = False,
    invert: bool = False,
    top_m: float | None = None,
) -> dict:
    """Same as :func:`write_height_png` but an uncompressed TIFF; metadata as JSON in ImageDescription."""
    grey, meta = _prepare(heights_m, pixel_repeat, bit_depth, scale_nm, pitch_m, full_scale, invert, top_m)
    params: dict = {"description": json.dumps(meta)}
    return _save_map(grey, meta, path, "TIFF", params)


def _grey_array(image: Image.Image, path: Path) -> np.ndarray:
    """Grey values of a 16-bit or 8-bit single-channel image as int64 (rows × cols)."""
    if image.mode not in ("I;16", "I;16B", "I;16L", "I", "L"):
        raise HeightMapError(f"{path}: not a grayscale height map (image mode {image.mode})")
    return np.asarray(image).astype(np.int64)


def _heights(grey: np.ndarray, meta: dict, path: Path) -> tuple[np.ndarray, dict]:
    """Heights (m) from grey values and metadata (inverted maps undone); refuses a file without the scale."""
    if "height_per_grey_nm" not in meta:
        raise HeightMapError(f"{path}: no height_per_grey_nm metadata; not written by quaton-fab")
    if meta.get("inverted"):
        bits = meta.get("bit_depth")
        if bits not in (8, 16):
            raise HeightMapError(f"{path}: an inverted map needs bit_depth 8 or 16 in its metadata, got {bits!r}")
        grey = (2**bits - 1) - grey
    return grey * (float(meta["height_per_grey_nm"]) * _NM), meta


#: What Pillow raises for a file that is not a readable image (truncated, corrupted, not an image at all).
_IMAGE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, zlib.error, Image.DecompressionBombError)


def _read_height_image(path: str | os.PathLike, kind: str, read_meta) -> tuple[np.ndarray, dict]:
    """Open a height-map image, read its metadata with ``read_meta(image, path)`` and its grey values.

    Anything Pillow cannot read becomes one HeightMapError naming the file; a missing file stays
    FileNotFoundError.
    """
    p = Path(path)
    try:
        with Image.open(p, formats=[kind]) as im:  # the type by content (magic bytes), not by the file's suffix
            meta = read_meta(im, p)
            grey = _grey_array(im, p)
    except (HeightMapError, FileNotFoundError):
        raise
    except _IMAGE_ERRORS as exc:
        raise HeightMapError(f"{p}: not a readable {kind} height map ({type(exc).__name__}: {exc})") from None
    return _heights(grey, meta, p)


def _png_meta(im: Image.Image, p: Path) -> dict:
    return {k: loads_json(v, f"{p}: text chunk {k!r}", HeightMapError) for k, v in im.text.items()}


def _tiff_meta(im: Image.Image, p: Path) -> dict:
    text = im.tag_v2.get(_TIFF_DESCRIPTION_TAG, "{}")
    if not isinstance(text, str):
        raise HeightMapError(f"{p}: ImageDescription is not quaton-fab JSON metadata")
    try:
        return loads_json(text, f"{p}: ImageDescription", HeightMapError)
    except HeightMapError:
        raise HeightMapError(f"{p}: ImageDescription is not quaton-fab JSON metadata") from None


def read_height_png(path: str | os.PathLike) -> tuple[np.ndarray, dict]:
    """Read a PNG written by :func:`write_height_png`: (heights (m, rows × cols image pixels), metadata)."""
    return _read_height_image(path, "PNG", _png_meta)


def read_height_tiff(path: str | os.PathLike) -> tuple[np.ndarray, dict]:
    """Read a TIFF written by :func:`write_height_tiff`: (heights (m, rows × cols image pixels), metadata)."""
    return _read_height_image(path, "TIFF", _tiff_meta)


def write_height_bmp(
    path: str | os.PathLike,
    heights_m: np.ndarray,
    *,
    pixel_repeat: int = 1,
    pitch_m: float | None = None,
    full_scale: bool = True,
    invert: bool = False,
    top_m: float | None = None,
) -> dict:
    """Write an 8-bit grayscale BMP (mode "L"), full-scale by default, for mask writers that take bitmaps.

    BMP holds no metadata: the returned dict (scale, inversion, pitch) must be kept with the file — the export
    records it in the fab sheet under ``extra.bmp``, where :func:`read_height_bmp` finds it.
    """
    grey, meta = _prepare(heights_m, pixel_repeat, 8, None, pitch_m, full_scale, invert, top_m)
    params: dict = {}
    return _save_map(grey, meta, path, "BMP", params)


def _bmp_meta_from_sheet(path: Path) -> dict:
    """Metadata of ``path`` from the fab sheet next to it (``extra.bmp`` entry whose ``file`` is its name)."""
    sheet_path = path.parent / JSON_NAME
    try:
        sheet = load_json_file(sheet_path, "fab sheet", HeightMapError)
    except FileNotFoundError:
        raise HeightMapError(f"{path}: a BMP carries no scale and there is no {JSON_NAME} next to it") from None
    except OSError as exc:
        raise HeightMapError(f"{sheet_path}: cannot read the BMP scale from it ({exc})") from None
    if not isinstance(sheet, dict):
        raise HeightMapError(f"{sheet_path}: a fab sheet is a JSON object")
    return bmp_meta_in_sheet(sheet, path)


def bmp_meta_in_sheet(sheet: Mapping[str, Any], path: str | os.PathLike) -> dict:
    """Metadata of the BMP ``path`` recorded in a fab sheet already read (its ``extra.bmp`` entry by file name)."""
    p = Path(path)
    for entry in (sheet.get("extra") or {}).get("bmp") or []:
        if isinstance(entry, dict) and entry.get("file") == p.name:
            return entry
    raise HeightMapError(f"{p}: the fab sheet next to it records no scale for this BMP")


def read_height_bmp(path: str | os.PathLike, meta: dict | None = None) -> tuple[np.ndarray, dict]:
    """Read an 8-bit BMP written by :func:`write_height_bmp`: (heights (m, rows × cols), metadata).

    Args:
        meta: the metadata returned by the writer; default: looked up in ``fab_sheet.json`` next to the file.
    """
    p = Path(path)
    return _read_height_image(p, "BMP", lambda im, q: dict(meta) if meta is not None else _bmp_meta_from_sheet(q))


def read_height_map(path: str | os.PathLike, meta: dict | None = None) -> tuple[np.ndarray, dict]:
    """Read any height map written here, by file suffix (``.png``, ``.tif``/``.tiff``, ``.bmp``).

    ``meta`` is only used for BMP (which carries none); see :func:`read_height_bmp`.
    """
    suffix = Path(path).suffix.lower()
    if suffix == ".png":
        return read_height_png(path)
    if suffix in (".tif", ".tiff"):
        return read_height_tiff(path)
    if suffix == ".bmp":
        return read_height_bmp(path, meta)
    raise HeightMapError(f"{path}: unknown height-map suffix {suffix!r}; use .png, .tif or .bmp")
