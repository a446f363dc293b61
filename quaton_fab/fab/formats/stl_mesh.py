"""The closed mesh of one height field (µm): tops above the substrate, z levels, saddle offset, the lattice mesh
(see :mod:`quaton_fab.fab.formats.stl` for frame and method)."""

from __future__ import annotations

import numpy as np

from quaton_fab.printing.printer import grid_um, on_grid, slice_counts
from quaton_fab.fab.rectangles import label_rectangles
from quaton_fab.validate import length_m
from quaton_fab.printing.defaults import DEFAULT_BASE_M
from quaton_fab.fab.formats.stl_faces import (
    _isolated_top_triangles, _rectangle_top_triangles, _saddle_slivers, _walls,
)
from quaton_fab.fab.formats.stl_lattice import (
    _SW, _UM_PER_M, _Z_AXIS, MIN_SADDLE_OFFSET_UM, SADDLE_OFFSET_UM, WELD_TOLERANCE_UM, HeightFieldMesh, StlError,
    _check_heights, _corner_tables, _vertices,
)

# ---------------------------------------------------------------------------------------------- the mesh


def _saddle_offset_um(xs_um: np.ndarray, ys_um: np.ndarray) -> float:
    """Separation used at saddle corners (µm): ``SADDLE_OFFSET_UM`` (2.5 nm), at most 2 % of the smallest cell.

    Weld-safe: the two raised copies of a saddle corner then differ by 2·offset (5 nm) in x and in y, so an
    importer that welds vertices closer than ``WELD_TOLERANCE_UM`` (1 nm) keeps them apart and the mesh stays
    manifold. The price is a wedge of area pitch·offset cut from each raised pixel along its two sides at the
    corner (2·pitch·offset per saddle and slice, 0.6 % of a 0.78 µm pixel), far below any printer's lateral
    resolution (≥ 100 nm); pixel centres and heights are exact.
    """
    smallest_um = float(min(np.min(np.abs(np.diff(xs_um))), np.min(np.abs(np.diff(ys_um)))))
    largest_um = float(max(np.max(np.abs(xs_um)), np.max(np.abs(ys_um))))
    offset_um = min(SADDLE_OFFSET_UM, 0.02 * smallest_um)
    if offset_um < max(MIN_SADDLE_OFFSET_UM, 64.0 * float(np.spacing(np.float32(largest_um)))):
        raise StlError(
            f"pixel size {smallest_um:.6g} um is too small to separate diagonal-only contacts by more than the "
            f"{WELD_TOLERANCE_UM * 1e3:g} nm weld tolerance in float32 STL (coordinates up to {largest_um:.6g} um)"
        )
    return offset_um


def _lattice_mesh(
    z_levels: np.ndarray, zs_um: np.ndarray, xs_um: np.ndarray, ys_um: np.ndarray
) -> HeightFieldMesh:
    """Closed mesh of a level map (R, C) of indices into ``zs_um`` (zs_um[0] = bottom, levels >= 1).

    ``xs_um`` (C+1,) increasing are the x of the column edges; ``ys_um`` (R+1,) decreasing the y of the
    row edges.
    """
    n_rows, n_cols = z_levels.shape
    padded = np.zeros((n_rows + 2, n_cols + 2), dtype=np.int64)
    padded[1:-1, 1:-1] = z_levels
    corners = _corner_tables(padded)
    offset_um = _saddle_offset_um(xs_um, ys_um)

    # Pixels lowered at a saddle get their own 1x1 top polygon (chamfered corners); others are merged.
    saddle_corner = np.flatnonzero(corners.saddle)
    su, sv = np.divmod(saddle_corner, n_cols + 1)
    isolated = np.zeros((n_rows, n_cols), dtype=bool)
    for low in (corners.low1[saddle_corner], corners.low2[saddle_corner]):
        isolated[su - 1 + (low >= _SW), sv - 1 + (low % 2)] = True
    labels = z_levels.astype(np.int64).copy()
    labels[isolated] = int(z_levels.max()) + 1 + np.arange(int(isolated.sum()))
    rects = label_rectangles(labels)
    m = rects.select(~isolated[rects.r0, rects.c0])
    m = m.select(np.argsort(m.r0 * n_cols + m.c0))  # row-major, for memory locality of vertex ids
    iso_rows, iso_cols = np.nonzero(isolated)

    tops = [
        _rectangle_top_triangles(corners, m.r0, m.c0, m.r1, m.c1, z_levels[m.r0, m.c0]),
        _isolated_top_triangles(corners, iso_rows, iso_cols, z_levels[iso_rows, iso_cols]),
    ]
    n_top = sum(t.shape[0] for t in tops)
    walls, wall_normals, tilted = _walls(corners, padded)
    slivers = _saddle_slivers(corners)
    one = np.array([0])
    bottom = _rectangle_top_triangles(corners, one, one, one + n_rows, one + n_cols, one)[:, ::-1]
    faces = np.concatenate([*tops, walls, slivers, bottom])
    normals = np.concatenate(
        [
            np.broadcast_to(_Z_AXIS.astype(np.float32), (n_top, 3)),
            wall_normals,
            np.zeros((slivers.shape[0], 3), dtype=np.float32),
            np.broadcast_to(-_Z_AXIS.astype(np.float32), (bottom.shape[0], 3)),
        ]
    )
    exact = np.zeros(faces.shape[0], dtype=bool)
    exact[n_top : n_top + walls.shape[0]] = tilted
    exact[n_top + walls.shape[0] : n_top + walls.shape[0] + slivers.shape[0]] = True
    vertices = _vertices(corners, xs_um, ys_um, zs_um, offset_um)
    normals[exact] = _unit_normals(vertices[faces[exact]])
    return HeightFieldMesh(vertices, faces, normals, int(saddle_corner.size), offset_um)


def _z_levels(tops_um: np.ndarray, floor_um: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Distinct z values (µm, float32-exact, floor first) and the int level index of each top (>= 1)."""
    tops32_um = tops_um.astype(np.float32)
    zs_um = np.unique(np.concatenate([np.array([floor_um], dtype=np.float32), tops32_um.ravel()]))
    if zs_um[0] != np.float32(floor_um) or tops32_um.min() <= np.float32(floor_um):
        raise StlError("every pixel top must lie above the bottom of the slab")
    return zs_um.astype(np.float64), np.searchsorted(zs_um, tops32_um)


def tops_um(heights_m: np.ndarray, base_m: float, z_grid_m: float | None = None) -> np.ndarray:
    """Pixel tops above the substrate (µm, float64, shape of ``heights_m``): base + height.

    With a slicing grid ``z_grid_m`` (m) every top must be a whole number k of slices (up to float rounding);
    it is then computed once from the integer k (:func:`~quaton_fab.printing.printer.grid_um`), so a top of 24
    slices of 100 nm is 2.4 exactly and its float32 is the float32 nearest to 2.4.

    Raises:
        StlError: a top that is not on the grid (the heights were not snapped to it).
    """
    total_m = float(base_m) + np.asarray(heights_m, dtype=np.float64)
    if z_grid_m is None:
        return total_m * _UM_PER_M
    step_m = length_m(z_grid_m, "z_grid_m", error=StlError)
    off = ~on_grid(total_m, step_m)
    if np.any(off):
        bad = tuple(int(i) for i in np.argwhere(off)[0])
        raise StlError(
            f"top {total_m[bad] * 1e6:.6g} um at pixel {bad} is not a whole number of {step_m * 1e9:.4g} nm slices"
        )
    return grid_um(slice_counts(total_m, step_m), step_m)


def height_field_mesh(
    heights_m: np.ndarray, pitch_m: float, base_m: float = DEFAULT_BASE_M, z_grid_m: float | None = None
) -> HeightFieldMesh:
    """Closed, edge-manifold mesh of one mask (see the module docstring for frame and method).

    Args:
        heights_m: (N, N) or (R, C) heights above the base slab, metres, >= 0.
        pitch_m: pixel pitch, metres, > 0.
        base_m: base slab thickness, metres, > 0.
        z_grid_m: slicing grid (m) every top (base + height) lies on, or None for exact heights
            (see :func:`tops_um`).

    Returns:
        HeightFieldMesh in µm with outward winding.
    """
    heights_m = _check_heights(heights_m)
    pitch_um = length_m(pitch_m, "pitch_m", error=StlError) * _UM_PER_M
    length_m(base_m, "base_m", error=StlError)
    n_rows, n_cols = heights_m.shape
    zs_um, levels = _z_levels(tops_um(heights_m, base_m, z_grid_m))
    xs_um = np.arange(n_cols + 1) * pitch_um
    ys_um = (n_rows - np.arange(n_rows + 1)) * pitch_um
    return _lattice_mesh(levels, zs_um, xs_um, ys_um)


# ---------------------------------------------------------------------------------------------- file I/O


def _unit_normals(triangles: np.ndarray) -> np.ndarray:
    """float32 (F, 3) unit normals of float32 (F, 3, 3) triangles (right-hand rule)."""
    a = triangles[:, 1] - triangles[:, 0]
    b = triangles[:, 2] - triangles[:, 0]
    normals = np.empty_like(a)
    normals[:, 0] = a[:, 1] * b[:, 2] - a[:, 2] * b[:, 1]
    normals[:, 1] = a[:, 2] * b[:, 0] - a[:, 0] * b[:, 2]
    normals[:, 2] = a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]
    length = np.sqrt(np.einsum("ij,ij->i", normals, normals))
    normals /= np.where(length > 0, length, 1.0)[:, None]
    return normals
