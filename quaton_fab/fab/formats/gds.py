"""GDSII / OASIS export of quantised phase masks, and the reader that rebuilds the level map.

File layout (library unit 1 µm, precision 1 nm, written with gdstk):

* one cell per mask, ``MASK_1`` .. ``MASK_L``, each with its origin at the mask's lower-left corner;
* one layer per level: level k -> layer ``layer_offset + k``, datatype 0 (default: level 0 -> layer 1).
  With ``omit_level0`` the level-0 pixels (the unexposed / base top) are not drawn, and a reader
  treats every pixel covered by no level polygon as level 0;
* geometry: the exact rectangle decomposition of each level (:mod:`.rectangles`), 4 vertices each,
  so every vertex limit (GDSII 199, 8190) is met without fracturing. Rectangles of one size and
  level share one polygon with an explicit repetition: OASIS stores it compactly, GDSII expands it
  to one BOUNDARY per rectangle;
* marks (``marks=True``) on ``mark_layer`` (100): an outline frame and four alignment crosses, all
  outside the aperture, at least 2 pixels wide and at least 2 pixels away from it; a text label on
  ``label_layer`` (101) records levels, layer offset, level-0 handling and pitch;
* a ``TOP`` cell placing all masks side by side (left to right, mask 1 first) with a text label each.

OASIS files also carry layer names ``LVLkk_h=<height>um`` (gdstk ``Library.layer_names``); GDSII has
no layer names, so the same mapping is returned in the stats for the fab sheet.

Pixel convention (shared with :mod:`quaton_fab.fab.formats.stl`): pixel (row i, col j) of an (N, N) map
covers x in [j·p, (j+1)·p], y in [(N-1-i)·p, (N-i)·p]; the image is upright seen from above, row 0
at the top. Lattice positions are rounded once to the 1 nm database grid (x = round(j·p / 1 nm)).
"""

from __future__ import annotations

import logging
import datetime
import math
import os
from pathlib import Path
from typing import Sequence

import gdstk
import numpy as np

from quaton_fab.fileio import atomic_path
from quaton_fab.errors import FabError
from quaton_fab.fab.rectangles import label_rectangles

__all__ = ["GdsError", "MARK_LAYER", "LABEL_LAYER", "level_layer_names", "write_gds", "read_gds_levels"]

logger = logging.getLogger(__name__)

#: Layer of the outline frame and alignment crosses.
MARK_LAYER = 100
#: Layer of the text labels.
LABEL_LAYER = 101

#: Modification/access time written into GDSII headers. Fixed (not "now") so that exporting the same design twice
#: gives byte-identical files with the same SHA-256.
GDS_TIMESTAMP = datetime.datetime(2000, 1, 1, 0, 0, 0)

_UNIT_M = 1e-6
_PRECISION_M = 1e-9
_NM_PER_UM = 1000.0
_MAX_LAYER = 65535
_OASIS_MAGIC = b"%SEMI-OASIS"


class GdsError(FabError):
    """Bad input for the GDSII/OASIS exporter, or a layout file that is not a valid level map."""


# ----------------------------------------------------------------------------------------------- validation


def _check_pitch(pitch_m: float) -> float:
    try:
        value_m = float(pitch_m)
    except (TypeError, ValueError):
        raise GdsError(f"pitch_m must be a length in metres, got {pitch_m!r}") from None
    if not math.isfinite(value_m) or value_m <= 0:
        raise GdsError(f"pitch_m must be a positive finite length in metres, got {pitch_m!r}")
    if value_m < 2 * _PRECISION_M:
        raise GdsError(f"pitch_m = {value_m:.3g} m is below the 1 nm database grid")
    return value_m


def _check_levels(level_indices: np.ndarray, n_levels: int) -> np.ndarray:
    array = np.asarray(level_indices)
    if array.ndim != 3 or min(array.shape) < 1:
        raise GdsError(f"level_indices must be a non-empty (L, N, N) array, got shape {array.shape}")
    if np.issubdtype(array.dtype, np.floating):
        bad = ~np.isfinite(array) | (array != np.round(array))
        if bad.any():
            raise GdsError(f"level_indices must be integers, got {array[bad].flat[0]!r}")
    elif not np.issubdtype(array.dtype, np.integer):
        raise GdsError(f"level_indices must be integers, got dtype {array.dtype}")
    array = array.astype(np.int64)
    if array.min() < 0 or array.max() >= n_levels:
        bad = array.min() if array.min() < 0 else array.max()
        raise GdsError(f"level index {bad} is out of range for {n_levels} levels (0..{n_levels - 1})")
    return array


def _check_heights(level_heights_m: Sequence[float]) -> np.ndarray:
    heights = np.asarray(level_heights_m, dtype=np.float64)
    if heights.ndim != 1 or heights.size < 1:
        raise GdsError(f"level_heights_m must be a non-empty 1-D sequence, got shape {heights.shape}")
    if not np.all(np.isfinite(heights)) or heights.min() < 0:
        raise GdsError(f"level_heights_m must be finite and >= 0, got {heights.tolist()!r}")
    return heights


def level_layer_names(level_heights_m: Sequence[float]) -> list[str]:
    """Default layer names ``LVLkk_h=<height in µm, 3 decimals>um`` for levels k = 0..n-1."""
    width = max(2, len(str(len(level_heights_m) - 1)))
    return [f"LVL{k:0{width}d}_h={h * 1e6:.3f}um" for k, h in enumerate(level_heights_m)]


def _check_layers(n_levels: int, layer_offset: int, marks: bool, mark_layer: int, label_layer: int) -> None:
    if int(layer_offset) != layer_offset or layer_offset < 0:
        raise GdsError(f"layer_offset must be a non-negative integer, got {layer_offset!r}")
    last = layer_offset + n_levels - 1
    if last > _MAX_LAYER:
        raise GdsError(f"levels use layers {layer_offset}..{last}, beyond the GDSII maximum {_MAX_LAYER}")
    for name, layer in (("label_layer", label_layer), ("mark_layer", mark_layer)):
        if name == "mark_layer" and not marks:
            continue
        if layer_offset <= layer <= last:
            raise GdsError(f"{name} {layer} collides with the level layers {layer_offset}..{last}")


# ---------------------------------------------------------------------------------------------------- writer


def _lattice_nm(count: int, pitch_nm: float) -> np.ndarray:
    """Positions (int64 nm) of the count+1 pixel edges 0, p, 2p, … rounded once to the 1 nm grid."""
    return np.round(np.arange(count + 1) * pitch_nm).astype(np.int64)


def _level_polygons(
    levels: np.ndarray, x_nm: np.ndarray, y_nm: np.ndarray, layer_offset: int, omit_level0: bool
) -> tuple[list[gdstk.Polygon], dict[int, tuple[int, float]]]:
    """Rectangles of one mask as gdstk polygons (one per level and size, with explicit repetitions).

    ``x_nm`` are the column edges, ``y_nm`` the row edges (``y_nm[u]`` = y of row edge u, decreasing).

    Returns:
        The polygons and, per level, (rectangle count, area in µm²).
    """
    rects = label_rectangles(levels)
    if omit_level0:
        rects = rects.select(rects.label != 0)
    x0_nm, y0_nm = x_nm[rects.c0], y_nm[rects.r1]  # lower-left corners
    w_nm, h_nm = x_nm[rects.c1] - x0_nm, y_nm[rects.r0] - y0_nm
    order = np.lexsort((h_nm, w_nm, rects.label))
    label, x0_nm, y0_nm, w_nm, h_nm = rects.label[order], x0_nm[order], y0_nm[order], w_nm[order], h_nm[order]
    new = np.ones(label.size, dtype=bool)
    new[1:] = (label[1:] != label[:-1]) | (w_nm[1:] != w_nm[:-1]) | (h_nm[1:] != h_nm[:-1])
    starts = np.flatnonzero(new)
    stops = np.append(starts[1:], label.size)
    polygons = []
    for start, stop in zip(starts.tolist(), stops.tolist()):
        corner_nm = np.array([x0_nm[start], y0_nm[start]])
        size_nm = np.array([w_nm[start], h_nm[start]])
        polygon = gdstk.rectangle(
            tuple(corner_nm / _NM_PER_UM),
            tuple((corner_nm + size_nm) / _NM_PER_UM),
            layer=layer_offset + int(label[start]),
            datatype=0,
        )
        if stop - start > 1:
            offsets_nm = np.stack([x0_nm[start + 1 : stop], y0_nm[start + 1 : stop]], axis=1) - corner_nm
            polygon.repetition = gdstk.Repetition(offsets=offsets_nm / _NM_PER_UM)
        polygons.append(polygon)
    summary: dict[int, tuple[int, float]] = {}
    area_um2 = (w_nm * h_nm).astype(np.float64) / _NM_PER_UM**2
    for k in np.unique(label).tolist():
        sel = label == k
        summary[int(k)] = (int(sel.sum()), float(area_um2[sel].sum()))
    return polygons, summary


#: Marks are at least this many pixels wide and at least this many pixels away from the aperture.
MARK_MIN_PIXELS = 2


def _mark_geometry_um(aperture_um: float, pitch_um: float) -> tuple[float, float, float]:
    """(cross size, bar/arm width, clearance) in µm for an aperture of side ``aperture_um``.

    Width and clearance: a tenth of the cross size, but at least ``MARK_MIN_PIXELS`` pixels each; the cross
    size: a tenth of the aperture clamped to 5..200 µm, but at least five arm widths (so it stays a cross).
    """
    size_um = min(max(0.1 * aperture_um, 5.0), 200.0)
    width_um = max(size_um / 10.0, MARK_MIN_PIXELS * pitch_um)
    size_um = max(size_um, 5.0 * width_um)
    return size_um, width_um, width_um


def _marks(aperture_um: float, pitch_um: float, layer: int) -> tuple[list[gdstk.Polygon], float, dict]:
    """Outline frame and four corner crosses around [0, A]², all outside it; the total margin (µm); description.

    The frame (4 bars of width w) starts w outside the aperture (clearance w ≥ 2 pixels); cross centres sit
    w + w + s outside each aperture corner, diagonally, so crosses and frame never touch.
    """
    size_um, width_um, gap_um = _mark_geometry_um(aperture_um, pitch_um)
    a_um = aperture_um
    inner_um, outer_um = -gap_um, -gap_um - width_um
    frame = [
        gdstk.rectangle((outer_um, outer_um), (inner_um, a_um - outer_um), layer=layer),  # left bar
        gdstk.rectangle((a_um - inner_um, outer_um), (a_um - outer_um, a_um - outer_um), layer=layer),  # right
        gdstk.rectangle((inner_um, outer_um), (a_um - inner_um, inner_um), layer=layer),  # bottom, between
        gdstk.rectangle((inner_um, a_um - inner_um), (a_um - inner_um, a_um - outer_um), layer=layer),  # top
    ]
    centre_um = gap_um + width_um + size_um
    centres_um = [(x_um, y_um) for x_um in (-centre_um, a_um + centre_um) for y_um in (-centre_um, a_um + centre_um)]
    crosses = [gdstk.cross(c, size_um, width_um, layer=layer) for c in centres_um]
    description = {
        "layer": layer,
        "datatype": 0,
        "frame": {
            "shape": "square outline of 4 rectangular bars around the aperture",
            "bar_width_um": width_um,
            "clearance_um": gap_um,
            "inner_square_um": [inner_um, inner_um, a_um - inner_um, a_um - inner_um],
            "outer_square_um": [outer_um, outer_um, a_um - outer_um, a_um - outer_um],
        },
        "crosses": {
            "shape": "plus-shaped cross (two bars crossing at their centres)",
            "size_um": size_um,
            "arm_width_um": width_um,
            "centres_um": [list(c) for c in centres_um],
        },
        "bar_width_px": width_um / pitch_um,
        "clearance_px": gap_um / pitch_um,
        "frame_of_reference": "µm in each MASK_l cell: origin at the aperture's lower-left corner, aperture [0, A]²",
    }
    return frame + crosses, centre_um + size_um / 2.0, description


def _write_library(library: gdstk.Library, target: Path, fmt: str, max_points: int) -> None:
    with atomic_path(target) as temp:
        if fmt == "gds":
            library.write_gds(str(temp), max_points=max_points, timestamp=GDS_TIMESTAMP)
        else:
            library.write_oas(str(temp))


def write_gds(
    path: str | os.PathLike[str],
    level_indices: np.ndarray,
    pitch_m: float,
    level_heights_m: Sequence[float],
    *,
    fmt: str = "gds",
    omit_level0: bool = False,
    layer_offset: int = 1,
    names: Sequence[str] | None = None,
    max_points: int = 199,
    marks: bool = True,
    mark_layer: int = MARK_LAYER,
    label_layer: int = LABEL_LAYER,
) -> dict:
    """Write all masks to one GDSII (``fmt="gds"``) or OASIS (``fmt="oas"``) file.

    Args:
        path: output file (written to a temporary name in the same folder, then renamed).
        level_indices: int (L, N, N) level of every pixel (mask l, row i, col j).
        pitch_m: pixel pitch, metres.
        level_heights_m: (n,) height above the base of each level, metres (for layer names and stats).
        fmt: "gds" or "oas".
        omit_level0: do not draw level 0 (the base top); readers take uncovered pixels as level 0.
        layer_offset: level k goes to layer ``layer_offset + k``, datatype 0.
        names: optional layer name per level (default :func:`level_layer_names`).
        max_points: GDSII vertex limit per polygon (rectangles have 4; marks are fractured if needed).
        marks: draw the outline frame and alignment crosses on ``mark_layer``.

    Returns:
        Stats (JSON-ready): path, format, file_bytes, unit_m, precision_m, pitch_nm, cells, layers
        (per level: level, layer, datatype, name, height_um, drawn, polygons, area_um2), polygons,
        naive_polygons, masks (per cell polygon counts), mark_layer, label_layer, convention.
    """
    if fmt not in ("gds", "oas"):
        raise GdsError(f"fmt must be 'gds' or 'oas', got {fmt!r}")
    heights_m = _check_heights(level_heights_m)
    n_levels = heights_m.size
    levels = _check_levels(level_indices, n_levels)
    pitch_nm = _check_pitch(pitch_m) / _PRECISION_M
    _check_layers(n_levels, layer_offset, marks, mark_layer, label_layer)
    if int(max_points) < 4:
        raise GdsError(f"max_points must be at least 4, got {max_points!r}")
    layer_names = list(names) if names is not None else level_layer_names(heights_m.tolist())
    if len(layer_names) != n_levels or not all(isinstance(n, str) and n.isascii() for n in layer_names):
        raise GdsError(f"names must be {n_levels} ASCII strings, one per level")
    target = Path(path)

    n_masks, n_rows, n_cols = levels.shape
    x_nm = _lattice_nm(n_cols, pitch_nm)
    y_nm = _lattice_nm(n_rows, pitch_nm)[::-1]  # y of row edge u is (N - u)·p
    aperture_um = max(x_nm[-1], y_nm[0]) / _NM_PER_UM
    library = gdstk.Library("QUATON_FAB", unit=_UNIT_M, precision=_PRECISION_M)
    per_level = {k: [0, 0.0] for k in range(n_levels)}
    mask_stats = []
    cells = []
    margin_um = 0.0
    mark_description: dict | None = None
    for index in range(n_masks):
        cell = library.new_cell(f"MASK_{index + 1}")
        polygons, summary = _level_polygons(levels[index], x_nm, y_nm, layer_offset, omit_level0)
        cell.add(*polygons)
        for k, (count, area_um2) in summary.items():
            per_level[k][0] += count
            per_level[k][1] += area_um2
        if marks:
            mark_polygons, margin_um, mark_description = _marks(aperture_um, pitch_nm / _NM_PER_UM, mark_layer)
            cell.add(*mark_polygons)
        info = (
            f"quaton-fab {cell.name} levels={n_levels} layer_offset={layer_offset} "
            f"level0={'omitted' if omit_level0 else 'drawn'} pitch_nm={pitch_nm:.6g} neurons={n_rows}x{n_cols}"
        )
        cell.add(gdstk.Label(info, (0.0, 0.0), layer=label_layer))
        cells.append(cell)
        mask_stats.append({"cell": cell.name, "polygons": int(sum(c for c, _ in summary.values()))})

    top = library.new_cell("TOP")
    step_um = aperture_um + 2 * margin_um + _mark_geometry_um(aperture_um, pitch_nm / _NM_PER_UM)[0]
    for index, cell in enumerate(cells):
        x_um = index * step_um
        top.add(gdstk.Reference(cell, (x_um, 0.0)))
        top.add(gdstk.Label(cell.name, (x_um + aperture_um / 2, -margin_um - 1.0), anchor="n", layer=label_layer))
    if fmt == "oas" and hasattr(library, "layer_names"):  # OASIS LAYERNAME records (gdstk >= 1.0)
        mapping = {(layer_offset + k, 0): (layer_names[k], "") for k in range(n_levels)}
        if marks:
            mapping[(mark_layer, 0)] = ("MARKS", "")
        mapping[(label_layer, 0)] = ("", "LABELS")
        library.layer_names = mapping
    _write_library(library, target, fmt, int(max_points))

    layers = [
        {
            "level": k,
            "layer": layer_offset + k,
            "datatype": 0,
            "name": layer_names[k],
            "height_um": float(heights_m[k] * 1e6),
            "drawn": not (omit_level0 and k == 0),
            "polygons": per_level[k][0],
            "area_um2": per_level[k][1],
        }
        for k in range(n_levels)
    ]
    drawn_pixels = int(levels.size - (np.count_nonzero(levels == 0) if omit_level0 else 0))
    stats = {
        "path": str(target),
        "format": fmt,
        "file_bytes": target.stat().st_size,
        "unit_m": _UNIT_M,
        "precision_m": _PRECISION_M,
        "pitch_nm": pitch_nm,
        "pitch_on_grid": bool(abs(pitch_nm - round(pitch_nm)) < 1e-6),
        "cells": [c.name for c in cells] + ["TOP"],
        "layers": layers,
        "polygons": int(sum(m["polygons"] for m in mask_stats)),
        "naive_polygons": drawn_pixels,
        "masks": mask_stats,
        "omit_level0": bool(omit_level0),
        "mark_layer": mark_layer if marks else None,
        "label_layer": label_layer,
        "marks": mark_description,
        "labels": "layer %d: one text label per MASK_l cell at its origin (quaton-fab, cell, levels, layer offset, "
        "level-0 handling, pitch, neurons) and one name label per mask below it in TOP" % label_layer,
        "max_points": int(max_points),
        "convention": "pixel (row i, col j) covers x in [j*p, (j+1)*p], y in [(N-1-i)*p, (N-i)*p]; origin lower-left",
    }
    logger.info("wrote %s: %d polygons, %d bytes", target, stats["polygons"], stats["file_bytes"])
    return stats


# ---------------------------------------------------------------------------------------------------- reader


def _read_library(path: Path) -> gdstk.Library:
    try:
        with open(path, "rb") as stream:
            magic = stream.read(len(_OASIS_MAGIC))
    except OSError as exc:
        raise GdsError(f"cannot read layout {str(path)!r}: {exc}") from exc
    try:
        if magic == _OASIS_MAGIC:
            return gdstk.read_oas(str(path), unit=_UNIT_M)
        return gdstk.read_gds(str(path), unit=_UNIT_M)
    except (OSError, RuntimeError, ValueError) as exc:
        raise GdsError(f"cannot parse layout {str(path)!r}: {exc}") from exc


def _mask_cells(library: gdstk.Library, path: Path) -> list[gdstk.Cell]:
    found = {}
    for cell in library.cells:
        prefix, _, number = cell.name.partition("_")
        if prefix == "MASK" and number.isdigit():
            found[int(number)] = cell
    if not found:
        raise GdsError(f"layout {str(path)!r} has no MASK_<n> cells")
    if sorted(found) != list(range(1, len(found) + 1)):
        raise GdsError(f"layout {str(path)!r} has mask cells {sorted(found)}, expected 1..{len(found)}")
    return [found[k] for k in range(1, len(found) + 1)]


def _label_settings(cell: gdstk.Cell) -> dict[str, str]:
    for label in cell.labels:
        if label.text.startswith("quaton-fab "):
            return dict(token.split("=", 1) for token in label.text.split()[2:] if "=" in token)
    return {}


def _polygon_points(polygons: list[gdstk.Polygon]) -> list[np.ndarray]:
    """Vertex arrays (M, k, 2) in µm grouped by vertex count k, repetitions expanded."""
    groups: dict[int, list[np.ndarray]] = {}
    plain: dict[int, list[np.ndarray]] = {}
    for polygon in polygons:
        points = polygon.points
        if polygon.repetition.size > 1:
            offsets = polygon.repetition.get_offsets()
            groups.setdefault(points.shape[0], []).append(points[None, :, :] + offsets[:, None, :])
        else:
            plain.setdefault(points.shape[0], []).append(points)
    for k, items in plain.items():
        groups.setdefault(k, []).append(np.asarray(items))
    return [np.concatenate(items) for items in groups.values()]


def _to_lattice(values_um: np.ndarray, pitch_nm: float, count: int, what: str) -> np.ndarray:
    """Map coordinates (µm) to pixel-edge indices 0..count; error if off the grid by more than 1 nm."""
    values_nm = values_um * _NM_PER_UM
    index = np.round(values_nm / pitch_nm).astype(np.int64)
    off_nm = np.abs(values_nm - np.round(index * pitch_nm))
    if np.any(off_nm > 1.0 + 1e-6):
        bad_um = values_um.flat[int(np.argmax(off_nm))]
        raise GdsError(f"{what} coordinate {bad_um:.6g} um is off the {pitch_nm:g} nm pixel grid by more than 1 nm")
    if index.min() < 0 or index.max() > count:
        raise GdsError(f"{what} polygon reaches outside the {count}-pixel aperture")
    return index


def _coverage(groups_um: list[np.ndarray], pitch_nm: float, n: int, what: str) -> np.ndarray:
    """How many polygons cover each pixel centre (int (N, N)); polygons must be Manhattan and on-grid.

    Winding numbers from vertical edges: a 2-D difference array, summed down the rows and along the
    columns, so arbitrary Manhattan polygons (also with holes) are handled, not only rectangles.
    """
    diff = np.zeros((n + 1) * (n + 1), dtype=np.float64)
    for points_um in groups_um:
        col = _to_lattice(points_um[:, :, 0], pitch_nm, n, what)
        row = n - _to_lattice(points_um[:, :, 1], pitch_nm, n, what)  # row edge index u = N - y/p
        col_next, row_next = np.roll(col, -1, axis=1), np.roll(row, -1, axis=1)
        if np.any((col != col_next) & (row != row_next)):
            raise GdsError(f"{what} holds a polygon that is not Manhattan (axis-parallel edges only)")
        # Signed area in lattice units (rows grow downward, so this is +area for clockwise-in-xy).
        area = (col * row_next - col_next * row).sum(axis=1)
        sign = np.where(area < 0, 1, -1)  # +1 for polygons counter-clockwise in x, y
        vertical = (col == col_next) & (row != row_next)
        # A downward edge (row increasing) counts +1 for a counter-clockwise polygon.
        weight = np.where(row_next > row, 1, -1) * sign[:, None]
        top = np.minimum(row, row_next)[vertical]
        bottom = np.maximum(row, row_next)[vertical]
        c, w = col[vertical], weight[vertical]
        diff += np.bincount(top * (n + 1) + c, weights=w, minlength=diff.size)
        diff -= np.bincount(bottom * (n + 1) + c, weights=w, minlength=diff.size)
    winding = np.cumsum(np.cumsum(np.round(diff).astype(np.int64).reshape(n + 1, n + 1), axis=0), axis=1)
    return winding[:n, :n]


def read_gds_levels(
    path: str | os.PathLike[str], neurons: int, pitch_m: float, level_count: int, *, layer_offset: int = 1
) -> np.ndarray:
    """Rebuild the (L, N, N) level map from a GDSII or OASIS file written by :func:`write_gds`.

    Reads cells ``MASK_1..MASK_L`` with gdstk, rasterises the polygons of layers
    ``layer_offset + k`` (datatype 0, k < level_count) onto the pixel grid (pixel centres, winding
    number), and checks the result.

    Raises:
        GdsError: no mask cells, polygons off the pitch grid by more than 1 nm or outside the aperture,
            non-Manhattan polygons, a pixel covered twice, a pixel covered by nothing while level 0
            is drawn, or a label that disagrees with ``level_count`` / ``layer_offset``.
    """
    n = int(neurons)
    if n < 1:
        raise GdsError(f"neurons must be a positive integer, got {neurons!r}")
    pitch_nm = _check_pitch(pitch_m) / _PRECISION_M
    if int(level_count) < 1:
        raise GdsError(f"level_count must be a positive integer, got {level_count!r}")
    source = Path(path)
    library = _read_library(source)
    masks = []
    for cell in _mask_cells(library, source):
        settings = _label_settings(cell)
        if "levels" in settings and int(settings["levels"]) != level_count:
            raise GdsError(f"{cell.name} was written with {settings['levels']} levels, not {level_count}")
        if "layer_offset" in settings and int(settings["layer_offset"]) != layer_offset:
            raise GdsError(f"{cell.name} was written with layer_offset={settings['layer_offset']}, not {layer_offset}")
        by_layer: dict[int, list[gdstk.Polygon]] = {}
        for polygon in cell.get_polygons(apply_repetitions=False, include_paths=True, depth=0):
            k = polygon.layer - layer_offset
            if polygon.datatype == 0 and 0 <= k < level_count:
                by_layer.setdefault(k, []).append(polygon)
        omitted = settings.get("level0", "omitted" if 0 not in by_layer else "drawn") == "omitted"
        levels = np.zeros((n, n), dtype=np.int64)
        total = np.zeros((n, n), dtype=np.int64)
        for k, polygons in sorted(by_layer.items()):
            covered = _coverage(_polygon_points(polygons), pitch_nm, n, f"{cell.name} layer {layer_offset + k}")
            total += covered
            levels += k * covered
        if np.any(total > 1) or np.any(total < 0):
            i, j = np.argwhere((total > 1) | (total < 0))[0]
            raise GdsError(f"{cell.name}: pixel (row {i}, col {j}) is covered {total[i, j]} times")
        if not omitted and np.any(total == 0):
            i, j = np.argwhere(total == 0)[0]
            raise GdsError(f"{cell.name}: pixel (row {i}, col {j}) is covered by no level polygon")
        masks.append(levels)
    return np.stack(masks)
