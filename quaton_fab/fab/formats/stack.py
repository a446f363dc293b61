"""The printable stack: all masks as plates on supports, written as ONE closed, manifold, non-self-intersecting solid.

Frame (shared with :mod:`quaton_fab.fab.formats.stl`): µm, z = build direction, z = 0 on the substrate, x = 0, y = 0 the
aperture's lower-left corner. Mask l (0-based) is a plate whose slab spans z = l·P … l·P + base, with its relief
on top, so consecutive relief planes are P apart (P = plate pitch = the design's spacing, measured between the
tops of consecutive bases, exactly as the relief model simulates it). Mask 1 is at the bottom (light travels +z).

Each plate is the mask's height field widened by a flat frame of width ``frame`` (frame top = slab top). Square
pillars of side ``pillar`` stand on the frame centre line between consecutive plates; each reaches ``base/2``
into the slab below and the slab above, and the plates and pillars are united with manifold3d (exact mesh
booleans), so the file holds one body with no internal faces and no overlapping volume.

Support rule (``SPAN_RATIO``): a plate edge between two supports is a beam of the plate's thickness t (its base
slab); neighbouring pillars stand at most ``SPAN_RATIO``·t apart (centre to centre; 25·t = 50 µm for a 2 µm
plate), always at the four frame corners and evenly along each side. This is a conservative rule of thumb for
suspended two-photon-printed polymer bridges, not a measured limit: calibrate it with a test print. The optical
aperture itself cannot carry supports; an aperture wider than ``SPAN_RATIO``·t is reported (thicken the base).
Drainage: every side stays open between neighbouring pillars (gap ≥ one pillar side), so developer reaches and
leaves every gap between plates.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from quaton_fab.fab.formats.stl import _sample_tops, _up_facing, _write_binary_stl, load_triangles_um
from quaton_fab.fab.formats.stl_lattice import HeightFieldMesh, StlError, _check_heights
from quaton_fab.fab.formats.stl_mesh import _lattice_mesh, _unit_normals, _z_levels, tops_um
from quaton_fab.printing.printer import grid_um, slice_counts
from quaton_fab.validate import length_m

__all__ = [
    "SPAN_RATIO", "StackLayout", "stack_layout", "plan_stack", "write_stack_stl", "read_stack_heights", "SUPPORT_RULE",
    "stack_plate_pitch_m",
]

logger = logging.getLogger(__name__)

_UM_PER_M = 1e6
#: Largest distance between neighbouring supports, in plate thicknesses (see the module docstring).
SPAN_RATIO = 25.0
#: Smallest pillar side (µm).
MIN_PILLAR_UM = 5.0
SUPPORT_RULE = (
    f"square pillars on the frame centre line at the four corners and evenly along each side, at most "
    f"{SPAN_RATIO:g} × the plate thickness (base slab) apart centre to centre, side max({MIN_PILLAR_UM:g} µm, 10 % of "
    "the aperture), each reaching half a base into the plates below and above; a conservative rule of thumb for "
    "suspended polymer plates, not a measured limit (calibrate with a test print)"
)


@dataclass(frozen=True)
class StackLayout:
    """Where plates and supports go (all µm).

    Attributes:
        plate_floors_um: (L,) z of each plate's bottom. plate_pitch_um: P. base_um: slab thickness t.
        aperture_um: (width x, height y) of the optical aperture. frame_um: frame width. pillar_um: pillar side.
        pillar_xy_um: (K, 2) pillar centres (the same between every pair of plates).
        gap_um: smallest clear gap between neighbouring pillars along a side (the drainage opening).
    """

    plate_floors_um: np.ndarray
    plate_pitch_um: float
    base_um: float
    aperture_um: tuple[float, float]
    frame_um: float
    pillar_um: float
    pillar_xy_um: np.ndarray
    gap_um: float

    @property
    def max_span_um(self) -> float:
        """Largest support spacing the rule allows (µm)."""
        return SPAN_RATIO * self.base_um


def _side_positions_um(start_um: float, stop_um: float, max_span_um: float) -> np.ndarray:
    """Evenly spaced positions from start to stop (both included), neighbours at most ``max_span_um`` apart."""
    intervals = max(1, math.ceil((stop_um - start_um) / max_span_um - 1e-9))
    return start_um + (stop_um - start_um) * np.arange(intervals + 1) / intervals


def stack_layout(
    layers: int, n_rows: int, n_cols: int, pitch_um: float, base_um: float, plate_pitch_um: float,
    tallest_um: float, pillar_um: float | None = None, frame_um: float | None = None,
) -> StackLayout:
    """Plate floors and support positions for ``layers`` plates (see the module docstring for the rule).

    Raises:
        StlError: plates that would overlap, a frame not wider than its pillars, pillars too close for drainage.
    """
    if layers > 1 and plate_pitch_um <= tallest_um:
        raise StlError(
            f"plate pitch {plate_pitch_um:.6g} um must exceed the tallest plate ({tallest_um:.6g} um incl. base)"
        )
    width_um, height_um = n_cols * pitch_um, n_rows * pitch_um
    pillar = max(MIN_PILLAR_UM, 0.1 * max(width_um, height_um)) if pillar_um is None else float(pillar_um)
    frame = 2.0 * pillar if frame_um is None else float(frame_um)
    if frame <= pillar:
        raise StlError(f"frame ({frame:.6g} um) must be wider than the pillars ({pillar:.6g} um)")
    max_span = SPAN_RATIO * base_um
    xs = _side_positions_um(-frame / 2, width_um + frame / 2, max_span)
    ys = _side_positions_um(-frame / 2, height_um + frame / 2, max_span)
    ring = {(float(x), float(y)) for x in xs for y in (ys[0], ys[-1])} | {
        (float(x), float(y)) for y in ys for x in (xs[0], xs[-1])
    }
    centres = np.array(sorted(ring))
    gap = float(min(np.min(np.diff(xs)), np.min(np.diff(ys))) - pillar)
    if gap < pillar:
        raise StlError(
            f"supports {pillar:.6g} um wide every {gap + pillar:.6g} um leave a drainage gap of {gap:.6g} um, less "
            "than one pillar; use thinner pillars or a thicker base"
        )
    return StackLayout(
        plate_floors_um=np.round(np.arange(layers) * plate_pitch_um, 9),
        plate_pitch_um=float(plate_pitch_um),
        base_um=float(base_um),
        aperture_um=(width_um, height_um),
        frame_um=frame,
        pillar_um=pillar,
        pillar_xy_um=centres,
        gap_um=gap,
    )


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


def plan_stack(
    heights_m: Sequence[np.ndarray],
    pitch_m: float,
    base_m: float,
    plate_pitch_m: float | None = None,
    *,
    z_grid_m: float | None = None,
    pillar_m: float | None = None,
    frame_m: float | None = None,
) -> tuple[list[np.ndarray], StackLayout]:
    """Validate the maps and lay the stack out (shared by the STL and the GWL writers).

    Returns:
        The maps (float64 (R, C) heights above the base, m) and the :class:`StackLayout`.
    """
    if len(heights_m) < 1:
        raise StlError("the stack needs at least one height map")
    maps = [_check_heights(h, f"heights_m[{index}]") for index, h in enumerate(heights_m)]
    if len({m.shape for m in maps}) != 1:
        raise StlError(f"all height maps must have the same shape, got {sorted({m.shape for m in maps})}")
    pitch_um = length_m(pitch_m, "pitch_m", error=StlError) * _UM_PER_M
    base_um = length_m(base_m, "base_m", error=StlError) * _UM_PER_M
    n_rows, n_cols = maps[0].shape
    tallest_um = base_um + max(float(m.max()) for m in maps) * _UM_PER_M
    if plate_pitch_m is None:
        if len(maps) > 1:
            raise StlError("plate_pitch_m is required for a stack of more than one mask")
        plate_pitch_um = round(2 * tallest_um, 9)
    else:
        plate_pitch_um = round(length_m(plate_pitch_m, "plate_pitch_m", error=StlError) * _UM_PER_M, 9)
    if z_grid_m is not None:  # the plates' floors lie on the grid as well (computed from whole slices)
        plate_pitch_um = float(tops_um(np.zeros(1), plate_pitch_um / _UM_PER_M, z_grid_m)[0])
    layout = stack_layout(
        len(maps), n_rows, n_cols, pitch_um, base_um, plate_pitch_um, tallest_um,
        None if pillar_m is None else pillar_m * _UM_PER_M, None if frame_m is None else frame_m * _UM_PER_M,
    )
    return maps, layout


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
    """Write all masks as one printable solid (binary STL, µm); see the module docstring for the layout.

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
    import manifold3d

    maps, layout = plan_stack(heights_m, pitch_m, base_m, plate_pitch_m, z_grid_m=z_grid_m, pillar_m=pillar_m,
                              frame_m=frame_m)
    pitch_um = pitch_m * _UM_PER_M
    base_um = layout.base_um
    plate_pitch_um = layout.plate_pitch_um
    n_rows, n_cols = maps[0].shape
    tallest_um = base_um + max(float(m.max()) for m in maps) * _UM_PER_M
    frame = layout.frame_um
    xs_um = np.concatenate([[-frame], np.arange(n_cols + 1) * pitch_um, [n_cols * pitch_um + frame]])
    ys_um = np.concatenate([[n_rows * pitch_um + frame], (n_rows - np.arange(n_rows + 1)) * pitch_um, [-frame]])
    solids, z_values, plate_volumes, saddles, offset_um = [], [], 0.0, 0, 0.0
    for index, plate_m in enumerate(maps):
        floor_m = float(layout.plate_floors_um[index]) / _UM_PER_M
        padded_m = np.zeros((n_rows + 2, n_cols + 2))
        padded_m[1:-1, 1:-1] = plate_m
        tops = tops_um(padded_m, floor_m + base_um / _UM_PER_M, z_grid_m)
        floor_um = float(layout.plate_floors_um[index])
        zs_um, levels = _z_levels(tops, floor_um=floor_um)
        z_values.append(zs_um)
        part = _lattice_mesh(levels, zs_um, xs_um, ys_um)
        solids.append(_to_manifold(part))
        saddles += part.saddle_corners
        offset_um = part.offset_um
        plate_volumes += float(solids[-1].volume())
    side = layout.pillar_um
    pillar_volumes = 0.0
    for floor_um in layout.plate_floors_um[:-1]:
        z0, z1 = floor_um + base_um / 2, floor_um + plate_pitch_um + base_um / 2
        for x_um, y_um in layout.pillar_xy_um:
            box = manifold3d.Manifold.cube((side, side, z1 - z0)).translate((x_um - side / 2, y_um - side / 2, z0))
            solids.append(box)
            pillar_volumes += side * side * (z1 - z0 - base_um)  # minus the halves inside both slabs
    union = manifold3d.Manifold.batch_boolean(solids, manifold3d.OpType.Add)
    if union.status() != manifold3d.Error.NoError:
        raise StlError(f"the stack union failed in manifold3d: {union.status()}")
    bodies = len(union.decompose())
    out = union.to_mesh64()
    vertices = np.array(out.vert_properties, dtype=np.float64)[:, :3].copy()
    tol = 1e-6 * max(1.0, float(np.abs(vertices).max()))
    vertices[:, 0] = _snap_to(vertices[:, 0], np.concatenate([xs_um, layout.pillar_xy_um[:, 0] + side / 2,
                                                               layout.pillar_xy_um[:, 0] - side / 2]), tol)
    vertices[:, 1] = _snap_to(vertices[:, 1], np.concatenate([ys_um, layout.pillar_xy_um[:, 1] + side / 2,
                                                               layout.pillar_xy_um[:, 1] - side / 2]), tol)
    vertices[:, 2] = _snap_to(vertices[:, 2], np.concatenate(z_values), tol)
    vertices32 = vertices.astype(np.float32)
    faces = np.asarray(out.tri_verts, dtype=np.int64).astype(np.int32)
    distinct = np.unique(vertices32, axis=0).shape[0] == vertices32.shape[0]
    solid = HeightFieldMesh(vertices32, faces, _unit_normals(vertices32[faces]), 0, 0.0)
    watertight = solid.is_watertight() and distinct
    size_bytes = _write_binary_stl(path, [solid], "quaton-fab stack, one solid (um)")
    volume = float(union.volume())
    lo, hi = vertices.min(axis=0), vertices.max(axis=0)
    stats = {
        "path": str(path),
        "watertight": bool(watertight),
        "bodies": bodies,
        "volume_um3": volume,
        "expected_volume_um3": plate_volumes + pillar_volumes,
        "triangles": int(faces.shape[0]),
        "file_bytes": size_bytes,
        "saddle_corners": saddles,
        "saddle_offset_um": offset_um,
        "plate_floors_um": layout.plate_floors_um.tolist(),
        "plate_pitch_um": layout.plate_pitch_um,
        "plate_thickness_um": base_um,
        "frame_um": frame,
        "supports": {
            "rule": SUPPORT_RULE,
            "count": int(layout.pillar_xy_um.shape[0]) * (len(maps) - 1),
            "per_gap": int(layout.pillar_xy_um.shape[0]),
            "size_um": [side, side, plate_pitch_um - base_um],
            "positions_um": layout.pillar_xy_um.tolist(),
            "max_span_um": layout.max_span_um,
        },
        "drainage": (
            f"every side open between neighbouring pillars: clear gaps of at least {layout.gap_um:.4g} µm wide and "
            f"{plate_pitch_um - tallest_um:.4g} µm high between plates"
        ),
        "aperture_span_ok": bool(max(layout.aperture_um) <= layout.max_span_um),
        "size_um": [float(v) for v in hi - lo],
        "units": "um",
    }
    logger.info("wrote stack %s: %d body, %d triangles", path, bodies, stats["triangles"])
    return stats


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


def stack_plate_pitch_m(spacing_m: float, grid_m: float | None) -> tuple[float, str]:
    """Plate pitch of the stack (m) and the reason, in words.

    The design's spacing is measured between the planes where consecutive reliefs start (the top of each base);
    the next plate's base slab lies inside that gap, exactly as the relief model simulates it, so the plates are
    stacked at the spacing itself (snapped to the slicing grid, if any).
    """
    reason = ("plate pitch = the design's spacing: it is measured between the tops of consecutive bases (where "
              "the reliefs start), and the next plate's base slab lies inside the gap, as in the relief model")
    if grid_m is None:
        return float(spacing_m), reason
    pitch_m = float(grid_um(slice_counts(spacing_m, grid_m), grid_m)) * 1e-6
    return pitch_m, reason + f"; a whole number of {grid_m * 1e9:.4g} nm slices"
