"""The GDSII/OASIS writer: one cell per mask, one layer per level, marks and labels, a ``TOP`` cell.

See :mod:`quaton_fab.fab.formats.gds` for the file layout.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import gdstk
import numpy as np

from quaton_fab.fab.formats.gds_base import (
    _NM_PER_UM, _PRECISION_M, _UNIT_M, GDS_TIMESTAMP, LABEL_LAYER, MARK_LAYER, GdsError, _check_heights,
    _check_layers, _check_levels, _check_pitch, _lattice_nm, level_layer_names,
)
from quaton_fab.fab.rectangles import label_rectangles
from quaton_fab.fileio import atomic_path

__all__ = ["write_gds", "MARK_MIN_PIXELS"]

logger = logging.getLogger(__name__)


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
    layers = _Layers(n_levels, layer_offset, omit_level0, marks, mark_layer, label_layer)
    library = gdstk.Library("QUATON_FAB", unit=_UNIT_M, precision=_PRECISION_M)
    drawn = _draw_masks(library, levels, pitch_nm, layers)
    if fmt == "oas" and hasattr(library, "layer_names"):  # OASIS LAYERNAME records (gdstk >= 1.0)
        mapping = {(layer_offset + k, 0): (layer_names[k], "") for k in range(n_levels)}
        if marks:
            mapping[(mark_layer, 0)] = ("MARKS", "")
        mapping[(label_layer, 0)] = ("", "LABELS")
        library.layer_names = mapping
    _write_library(library, target, fmt, int(max_points))
    stats = _stats(target, fmt, levels, pitch_nm, heights_m, layer_names, layers, drawn, int(max_points))
    logger.info("wrote %s: %d polygons, %d bytes", target, stats["polygons"], stats["file_bytes"])
    return stats


@dataclass(frozen=True)
class _Layers:
    """Where things go: levels on ``offset + k`` (level 0 drawn unless omitted), marks and labels."""

    n_levels: int
    offset: int
    omit_level0: bool
    marks: bool
    mark_layer: int
    label_layer: int


@dataclass
class _Drawn:
    """What :func:`_draw_masks` put in the library: the mask cells and their counts."""

    cells: list
    per_level: dict[int, list]
    mask_stats: list[dict]
    margin_um: float
    mark_description: dict | None


def _draw_masks(library: gdstk.Library, levels: np.ndarray, pitch_nm: float, layers: _Layers) -> _Drawn:
    """One ``MASK_l`` cell per mask (level rectangles, marks, a label), then ``TOP`` with them side by side."""
    n_masks, n_rows, n_cols = levels.shape
    x_nm = _lattice_nm(n_cols, pitch_nm)
    y_nm = _lattice_nm(n_rows, pitch_nm)[::-1]  # y of row edge u is (N - u)·p
    aperture_um = max(x_nm[-1], y_nm[0]) / _NM_PER_UM
    drawn = _Drawn([], {k: [0, 0.0] for k in range(layers.n_levels)}, [], 0.0, None)
    for index in range(n_masks):
        cell = library.new_cell(f"MASK_{index + 1}")
        polygons, summary = _level_polygons(levels[index], x_nm, y_nm, layers.offset, layers.omit_level0)
        cell.add(*polygons)
        for k, (count, area_um2) in summary.items():
            drawn.per_level[k][0] += count
            drawn.per_level[k][1] += area_um2
        if layers.marks:
            mark_polygons, drawn.margin_um, drawn.mark_description = _marks(
                aperture_um, pitch_nm / _NM_PER_UM, layers.mark_layer)
            cell.add(*mark_polygons)
        info = (
            f"quaton-fab {cell.name} levels={layers.n_levels} layer_offset={layers.offset} "
            f"level0={'omitted' if layers.omit_level0 else 'drawn'} pitch_nm={pitch_nm:.6g} neurons={n_rows}x{n_cols}"
        )
        cell.add(gdstk.Label(info, (0.0, 0.0), layer=layers.label_layer))
        drawn.cells.append(cell)
        drawn.mask_stats.append({"cell": cell.name, "polygons": int(sum(c for c, _ in summary.values()))})
    top = library.new_cell("TOP")
    margin_um = drawn.margin_um
    step_um = aperture_um + 2 * margin_um + _mark_geometry_um(aperture_um, pitch_nm / _NM_PER_UM)[0]
    for index, cell in enumerate(drawn.cells):
        x_um = index * step_um
        top.add(gdstk.Reference(cell, (x_um, 0.0)))
        top.add(gdstk.Label(cell.name, (x_um + aperture_um / 2, -margin_um - 1.0), anchor="n",
                            layer=layers.label_layer))
    return drawn


def _stats(target: Path, fmt: str, levels: np.ndarray, pitch_nm: float, heights_m: np.ndarray,
           layer_names: list[str], layers: _Layers, drawn: _Drawn, max_points: int) -> dict:
    """The JSON-ready stats of a written layout (see :func:`write_gds`)."""
    omit_level0, label_layer = layers.omit_level0, layers.label_layer
    rows = [
        {
            "level": k,
            "layer": layers.offset + k,
            "datatype": 0,
            "name": layer_names[k],
            "height_um": float(heights_m[k] * 1e6),
            "drawn": not (omit_level0 and k == 0),
            "polygons": drawn.per_level[k][0],
            "area_um2": drawn.per_level[k][1],
        }
        for k in range(layers.n_levels)
    ]
    return {
        "path": str(target),
        "format": fmt,
        "file_bytes": target.stat().st_size,
        "unit_m": _UNIT_M,
        "precision_m": _PRECISION_M,
        "pitch_nm": pitch_nm,
        "pitch_on_grid": bool(abs(pitch_nm - round(pitch_nm)) < 1e-6),
        "cells": [c.name for c in drawn.cells] + ["TOP"],
        "layers": rows,
        "polygons": int(sum(m["polygons"] for m in drawn.mask_stats)),
        "naive_polygons": int(levels.size - (np.count_nonzero(levels == 0) if omit_level0 else 0)),
        "masks": drawn.mask_stats,
        "omit_level0": bool(omit_level0),
        "mark_layer": layers.mark_layer if layers.marks else None,
        "label_layer": label_layer,
        "marks": drawn.mark_description,
        "labels": "layer %d: one text label per MASK_l cell at its origin (quaton-fab, cell, levels, layer offset, "
        "level-0 handling, pitch, neurons) and one name label per mask below it in TOP" % label_layer,
        "max_points": int(max_points),
        "convention": "pixel (row i, col j) covers x in [j*p, (j+1)*p], y in [(N-1-i)*p, (N-i)*p]; origin lower-left",
    }
