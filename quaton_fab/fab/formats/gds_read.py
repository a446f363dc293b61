"""The GDSII/OASIS reader: rebuilds the (L, N, N) level map from a layout written by
:func:`~quaton_fab.fab.formats.gds_write.write_gds` (see :mod:`quaton_fab.fab.formats.gds`)."""

from __future__ import annotations

import os
from pathlib import Path

import gdstk
import numpy as np

from quaton_fab.fab.formats.gds_base import _NM_PER_UM, _OASIS_MAGIC, _PRECISION_M, _UNIT_M, GdsError, _check_pitch

__all__ = ["read_gds_levels"]


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
