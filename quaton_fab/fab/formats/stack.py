"""The printable stack as ONE binary STL solid: the plates and pillars of :mod:`~quaton_fab.fab.formats.stack_layout`
united with manifold3d (exact mesh booleans: one body, no internal faces, no overlapping volume), and its reader.

Frame: µm, z = build direction, z = 0 on the substrate (shared with :mod:`quaton_fab.fab.formats.stl`).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from quaton_fab.fab.formats.stack_layout import (
    MIN_PILLAR_UM, SPAN_RATIO, SUPPORT_RULE, StackLayout, plan_stack, stack_layout, stack_plate_pitch_m,
)
from quaton_fab.fab.formats.stl import _sample_tops, _up_facing, _write_binary_stl, load_triangles_um
from quaton_fab.fab.formats.stl_lattice import HeightFieldMesh, StlError
from quaton_fab.fab.formats.stl_mesh import _lattice_mesh, _unit_normals, _z_levels, tops_um
from quaton_fab.validate import length_m

__all__ = [
    "SPAN_RATIO", "MIN_PILLAR_UM", "StackLayout", "stack_layout", "plan_stack", "write_stack_stl",
    "read_stack_heights", "SUPPORT_RULE", "stack_plate_pitch_m",
]

logger = logging.getLogger(__name__)

_UM_PER_M = 1e6


def _to_manifold(part: HeightFieldMesh):
    import manifold3d

    used = np.unique(part.faces)
    remap = np.zeros(part.vertices_um.shape[0], dtype=np.int64)
    remap[used] = np.arange(used.size)
    mesh = manifold3d.Mesh64(
        vert_properties=np.ascontiguousarray(part.vertices_um[used], dtype=np.float64),
        tri_verts=np.ascontiguousarray(remap[part.faces], dtype=np.uint64),
    )
    solid = manifold3d.Manifold(mesh)
    if solid.status() != manifold3d.Error.NoError:
        raise StlError(f"a plate mesh is not a manifold for manifold3d: {solid.status()}")
    return solid


def _snap_to(values: np.ndarray, grid: np.ndarray, tol: float) -> np.ndarray:
    """Replace values within ``tol`` of a grid value by that grid value (exact lattice coordinates back)."""
    grid = np.unique(grid)
    idx = np.clip(np.searchsorted(grid, values), 1, grid.size - 1)
    lo, hi = grid[idx - 1], grid[idx]
    nearest = np.where(np.abs(values - lo) <= np.abs(hi - values), lo, hi)
    return np.where(np.abs(values - nearest) <= tol, nearest, values)


def write_stack_stl(
    path: str | os.PathLike[str],
    heights_m: Sequence[np.ndarray],
    pitch_m: float,
    base_m: float,
    plate_pitch_m: float | None = None,
    *,
    z_grid_m: float | None = None,
    pillar_m: float | None = None,
    frame_m: float | None = None,
) -> dict:
    """Write all masks as one printable solid (binary STL, µm); see :mod:`.stack_layout` for the layout.

    Args:
        heights_m: L maps (R, C) of heights above the base (m). pitch_m: pixel pitch (m). base_m: slab (m).
        plate_pitch_m: z distance between consecutive plates (m); required for more than one plate.
        z_grid_m: slicing grid every top lies on (m) or None; the plate pitch must then be on it too.
        pillar_m, frame_m: pillar side and frame width (m); defaults in :func:`stack_layout`.

    Returns:
        Stats: path, watertight (exact edge check), bodies (connected components; 1), volume_um3,
        expected_volume_um3 (plates + pillars − their overlaps, computed apart), triangles, file_bytes,
        plate_floors_um, plate_pitch_um, plate_thickness_um, frame_um, supports {rule, count, size_um,
        positions_um}, drainage, size_um, units.
    """
    maps, layout = plan_stack(heights_m, pitch_m, base_m, plate_pitch_m, z_grid_m=z_grid_m, pillar_m=pillar_m,
                              frame_m=frame_m)
    pitch_um = pitch_m * _UM_PER_M
    n_rows, n_cols = maps[0].shape
    frame = layout.frame_um
    xs_um = np.concatenate([[-frame], np.arange(n_cols + 1) * pitch_um, [n_cols * pitch_um + frame]])
    ys_um = np.concatenate([[n_rows * pitch_um + frame], (n_rows - np.arange(n_rows + 1)) * pitch_um, [-frame]])
    plates = _plates(maps, layout, xs_um, ys_um, z_grid_m)
    pillars, pillar_volumes = _pillars(layout)
    union = _unite(plates.solids + pillars)
    solid, extent_um = _union_mesh(union, layout, xs_um, ys_um, np.concatenate(plates.z_values))
    watertight = solid.is_watertight() and np.unique(solid.vertices_um, axis=0).shape[0] == solid.vertices_um.shape[0]
    size_bytes = _write_binary_stl(path, [solid], "quaton-fab stack, one solid (um)")
    tallest_um = layout.base_um + max(float(m.max()) for m in maps) * _UM_PER_M
    stats = {
        "path": str(path),
        "watertight": bool(watertight),
        "bodies": len(union.decompose()),
        "volume_um3": float(union.volume()),
        "expected_volume_um3": plates.volume_um3 + pillar_volumes,
        "triangles": int(solid.faces.shape[0]),
        "file_bytes": size_bytes,
        "saddle_corners": plates.saddles,
        "saddle_offset_um": plates.offset_um,
        **_layout_stats(layout, len(maps), tallest_um),
        "size_um": [float(v) for v in extent_um],
        "units": "um",
    }
    logger.info("wrote stack %s: %d body, %d triangles", path, stats["bodies"], stats["triangles"])
    return stats


@dataclass
class _Plates:
    """The plates as manifold3d solids, the z values of their vertices (µm), their volume and saddle counts."""

    solids: list
    z_values: list[np.ndarray]
    volume_um3: float
    saddles: int
    offset_um: float


def _plates(maps: list[np.ndarray], layout: StackLayout, xs_um: np.ndarray, ys_um: np.ndarray,
            z_grid_m: float | None) -> _Plates:
    """Each map as a plate: its height field widened by the flat frame, standing on its floor."""
    n_rows, n_cols = maps[0].shape
    base_um = layout.base_um
    out = _Plates([], [], 0.0, 0, 0.0)
    for index, plate_m in enumerate(maps):
        floor_m = float(layout.plate_floors_um[index]) / _UM_PER_M
        padded_m = np.zeros((n_rows + 2, n_cols + 2))
        padded_m[1:-1, 1:-1] = plate_m
        tops = tops_um(padded_m, floor_m + base_um / _UM_PER_M, z_grid_m)
        floor_um = float(layout.plate_floors_um[index])
        zs_um, levels = _z_levels(tops, floor_um=floor_um)
        out.z_values.append(zs_um)
        part = _lattice_mesh(levels, zs_um, xs_um, ys_um)
        out.solids.append(_to_manifold(part))
        out.saddles += part.saddle_corners
        out.offset_um = part.offset_um
        out.volume_um3 += float(out.solids[-1].volume())
    return out


def _pillars(layout: StackLayout) -> tuple[list, float]:
    """The support pillars between consecutive plates (manifold3d boxes) and their volume outside the slabs."""
    import manifold3d

    side, base_um = layout.pillar_um, layout.base_um
    solids, volume = [], 0.0
    for floor_um in layout.plate_floors_um[:-1]:
        z0, z1 = floor_um + base_um / 2, floor_um + layout.plate_pitch_um + base_um / 2
        for x_um, y_um in layout.pillar_xy_um:
            box = manifold3d.Manifold.cube((side, side, z1 - z0)).translate((x_um - side / 2, y_um - side / 2, z0))
            solids.append(box)
            volume += side * side * (z1 - z0 - base_um)  # minus the halves inside both slabs
    return solids, volume


def _unite(solids: list):
    """The union of the plates and pillars (manifold3d exact booleans)."""
    import manifold3d

    union = manifold3d.Manifold.batch_boolean(solids, manifold3d.OpType.Add)
    if union.status() != manifold3d.Error.NoError:
        raise StlError(f"the stack union failed in manifold3d: {union.status()}")
    return union


def _union_mesh(union, layout: StackLayout, xs_um: np.ndarray, ys_um: np.ndarray,
                zs_um: np.ndarray) -> tuple[HeightFieldMesh, np.ndarray]:
    """The union's mesh, its coordinates snapped back onto the exact lattice values; and its extent (µm, (3,))."""
    out = union.to_mesh64()
    side = layout.pillar_um
    vertices = np.array(out.vert_properties, dtype=np.float64)[:, :3].copy()
    tol = 1e-6 * max(1.0, float(np.abs(vertices).max()))
    vertices[:, 0] = _snap_to(vertices[:, 0], np.concatenate([xs_um, layout.pillar_xy_um[:, 0] + side / 2,
                                                               layout.pillar_xy_um[:, 0] - side / 2]), tol)
    vertices[:, 1] = _snap_to(vertices[:, 1], np.concatenate([ys_um, layout.pillar_xy_um[:, 1] + side / 2,
                                                               layout.pillar_xy_um[:, 1] - side / 2]), tol)
    vertices[:, 2] = _snap_to(vertices[:, 2], zs_um, tol)
    vertices32 = vertices.astype(np.float32)
    faces = np.asarray(out.tri_verts, dtype=np.int64).astype(np.int32)
    solid = HeightFieldMesh(vertices32, faces, _unit_normals(vertices32[faces]), 0, 0.0)
    return solid, vertices.max(axis=0) - vertices.min(axis=0)


def _layout_stats(layout: StackLayout, plates: int, tallest_um: float) -> dict:
    """The stack's stats that come from its layout: floors, pitch, thickness, frame, supports, drainage."""
    side, plate_pitch_um = layout.pillar_um, layout.plate_pitch_um
    return {
        "plate_floors_um": layout.plate_floors_um.tolist(),
        "plate_pitch_um": layout.plate_pitch_um,
        "plate_thickness_um": layout.base_um,
        "frame_um": layout.frame_um,
        "supports": {
            "rule": SUPPORT_RULE,
            "count": int(layout.pillar_xy_um.shape[0]) * (plates - 1),
            "per_gap": int(layout.pillar_xy_um.shape[0]),
            "size_um": [side, side, plate_pitch_um - layout.base_um],
            "positions_um": layout.pillar_xy_um.tolist(),
            "max_span_um": layout.max_span_um,
        },
        "drainage": (
            f"every side open between neighbouring pillars: clear gaps of at least {layout.gap_um:.4g} µm wide and "
            f"{plate_pitch_um - tallest_um:.4g} µm high between plates"
        ),
        "aperture_span_ok": bool(max(layout.aperture_um) <= layout.max_span_um),
    }


def read_stack_heights(
    path: str | os.PathLike[str], layers: int, neurons: int, pitch_m: float, base_m: float
) -> tuple[np.ndarray, np.ndarray]:
    """Read a stack STL back: each plate's relief at the pixel centres and the plate floors.

    Plate floors are the z of the down-facing horizontal faces (the slabs' bottoms: nothing else in the stack
    faces down); plate l's relief is sampled from the up-facing faces between its floor and the next one.

    Returns:
        ``(heights_m (L, N, N) above each plate's base, floors_m (L,))``.

    Raises:
        StlError: unreadable file, a number of plate floors other than ``layers``, a pixel without a top.
    """
    n = int(neurons)
    pitch_um = length_m(pitch_m, "pitch_m", error=StlError) * _UM_PER_M
    base_um = length_m(base_m, "base_m", error=StlError) * _UM_PER_M
    triangles = load_triangles_um(path)
    flat = (triangles[:, 0, 2] == triangles[:, 1, 2]) & (triangles[:, 1, 2] == triangles[:, 2, 2])
    up = _up_facing(triangles)
    down_z = triangles[flat & ~up, 0, 2]
    floors_um = np.unique(np.round(down_z, 6))
    if floors_um.size != layers:
        raise StlError(f"stack {str(path)!r} has {floors_um.size} plate bottoms, expected {layers}")
    bounds = np.concatenate([floors_um, [np.inf]])
    heights = np.empty((layers, n, n))
    for plate in range(layers):
        z = triangles[:, 0, 2]
        sel = up & (z > bounds[plate]) & (z < bounds[plate + 1])
        pixel, z_um = _sample_tops(triangles[sel], n, n, pitch_um)
        order = np.argsort(pixel, kind="stable")
        pixel, z_um = pixel[order], z_um[order]
        starts = np.flatnonzero(np.concatenate([[True], pixel[1:] != pixel[:-1]]))
        if starts.size != n * n:
            raise StlError(f"stack {str(path)!r}: plate {plate + 1} has pixels without a top face")
        low, high = np.minimum.reduceat(z_um, starts), np.maximum.reduceat(z_um, starts)
        if np.any(high - low > 1e-6 * max(1.0, float(high.max()))):
            raise StlError(f"stack {str(path)!r}: plate {plate + 1} has two different tops over a pixel")
        heights[plate] = (low.reshape(n, n) - floors_um[plate] - base_um) / _UM_PER_M
    return heights, floors_um / _UM_PER_M
