"""Watertight binary STL of pixel height maps, for two-photon printing.

Units and frame: coordinates in micrometres (float32), z = build direction, z = 0 on the substrate.
A mask is a base slab from z = 0 to ``base`` plus one flat-topped column per pixel, whose top is
at ``base + heights[i, j]``.

Pixel convention (shared with :mod:`quaton_fab.fab.formats.gds`): pixel (row i, col j) of an (N, N) map covers
x in [j·p, (j+1)·p] and y in [(N-1-i)·p, (N-i)·p], so the origin is the mask's lower-left corner and
the image is upright when viewed from above (+z), row 0 at the top.

Mesh (a conforming, edge-manifold height field, built with numpy on an integer lattice):

* every vertex is (lattice corner u, v; z level k), so coordinates are converted to float once and
  shared vertices are bit-identical in the file;
* top faces: the pixel map is cut into rectangles of one level (:mod:`.rectangles`); each top polygon
  includes every lattice vertex on its boundary, so there are no T-junctions;
* walls: one vertical wall per grid edge whose two pixels differ, split at every distinct height
  present at its two end corners; the outer skirt is the wall against the (zero-height) outside;
* bottom: one polygon at z = 0.

Diagonal-only contacts: where two raised pixels touch only along a vertical corner edge (a "saddle":
the two pixels of one diagonal are both higher than the two of the other, e.g. every interior corner
of a checkerboard), the solid itself is not a manifold, and an STL reader that merges vertices by
position would see four faces on that edge. The exporter therefore separates the two raised pixels
at such a corner by moving their corner edge ``offset`` (2.5 nm, at most 2 % of the pitch) into each
of them along the diagonal, and closes the gap with a narrow vertical face (2·√2·offset wide). The
separation (5 nm in x and in y) is well above the 1 nm at which importers weld vertices (weld-safe:
welding at 1 nm leaves the mesh closed and manifold) and far below any printer's resolution. The base slab
keeps the part connected. Heights are untouched; the volume changes by at most
``saddles · 2·pitch·offset·Δh``; the offset and the number of saddles are in the returned stats.

Triangle count: a closed genus-0 triangulation has exactly F = 2V - 4 triangles, so only the vertex
count matters. Every distinct pixel height at a lattice corner (3.6 on average for 16 random levels)
is a corner of the surface, except where two equal neighbours make the edge straight through it, so
a random 16-level mask needs about 7 triangles per pixel (about 0.6 of 12-triangle boxes) whatever
the triangulation. This mesh is Euler-minimal for its vertices and measures 8.5 per pixel (0.71),
the extra coming from the separated saddles. Flat regions (merged rectangles) lose their interior
vertices and cost far less.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from stl import mesh as stl_mesh

from quaton_fab.fileio import atomic_path
from quaton_fab.errors import FabError
from quaton_fab.printing.printer import grid_um, on_grid, slice_counts
from quaton_fab.fab.rectangles import label_rectangles
from quaton_fab.validate import length_m
from quaton_fab.printing.defaults import DEFAULT_BASE_M

__all__ = [
    "StlError",
    "HeightFieldMesh",
    "height_field_mesh",
    "write_stl",
    "read_stl_heights",
    "tops_um",
]

logger = logging.getLogger(__name__)


_UM_PER_M = 1e6
_CHUNK_TRIANGLES = 1 << 20
#: Vertex weld tolerance of common importers (µm): meshes must stay manifold when vertices closer are merged.
WELD_TOLERANCE_UM = 1e-3
#: Diagonal separation of the raised pixels at a diagonal-only contact (µm), and its smallest accepted value.
SADDLE_OFFSET_UM = 2.5e-3
MIN_SADDLE_OFFSET_UM = 1e-3  # default stack pillar side: max(5 µm, 10 % of the aperture)
# Quadrants of the four pixels around a lattice corner, and the diagonal direction (dx, dy) into each.
_NW, _NE, _SW, _SE = 0, 1, 2, 3
_QUADRANT_DIR = np.array([[-1.0, 1.0], [1.0, 1.0], [-1.0, -1.0], [1.0, -1.0]])
_SENTINEL = np.iinfo(np.int32).max
_Z_AXIS = np.array([0.0, 0.0, 1.0])


class StlError(FabError):
    """Bad input for the STL exporter or an STL file that is not a readable height field."""


@dataclass(frozen=True)
class HeightFieldMesh:
    """A closed triangle mesh.

    Attributes:
        vertices_um: float32 (V, 3) coordinates in µm (some lattice vertices may be unused).
        faces: int32 (F, 3) vertex indices, counter-clockwise seen from outside (outward normals).
        normals: float32 (F, 3) outward unit normals.
        saddle_corners: number of diagonal-only contacts that were separated.
        offset_um: the separation offset used at saddle corners (µm).
    """

    vertices_um: np.ndarray
    faces: np.ndarray
    normals: np.ndarray
    saddle_corners: int
    offset_um: float

    @property
    def triangles(self) -> np.ndarray:
        """float32 (F, 3, 3) triangle corner coordinates in µm."""
        return self.vertices_um[self.faces]

    def is_watertight(self) -> bool:
        """Exact check: every edge is shared by exactly two faces, traversed in opposite directions.

        Works on vertex ids (distinct ids have distinct float32 positions by construction), so it is
        the edge-manifold, consistently-wound condition that trimesh and numpy-stl test on positions.
        One stable sort of the 3F directed edges.
        """
        faces = self.faces
        start = faces.reshape(-1)
        end = np.empty_like(faces)
        end[:, :2], end[:, 2] = faces[:, 1:], faces[:, 0]
        end = end.reshape(-1)
        forward = start < end
        # Key 2*(lo*V + hi) + direction: a closed, consistent surface has each edge once in each direction.
        key = np.where(forward, start, end).astype(np.int64) * (2 * self.vertices_um.shape[0])
        key += 2 * np.where(forward, end, start)
        key += forward
        key.sort(kind="stable")
        first, second = key[0::2], key[1::2]
        return bool(
            key.size % 2 == 0
            and np.all(second - first == 1)
            and np.all(first % 2 == 0)
            and np.all(first[1:] > second[:-1])
        )


# ----------------------------------------------------------------------------------------------- validation


def _check_heights(heights_m: np.ndarray, name: str = "heights_m") -> np.ndarray:
    array = np.asarray(heights_m)
    if array.ndim != 2 or array.shape[0] < 1 or array.shape[1] < 1:
        raise StlError(f"{name} must be a non-empty 2-D array (rows, cols), got shape {array.shape}")
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise StlError(f"{name} must hold real numbers (metres), got dtype {array.dtype}")
    array = array.astype(np.float64)
    if not np.all(np.isfinite(array)):
        raise StlError(f"{name} contains NaN or infinite values")
    if array.min() < 0:
        raise StlError(f"{name} must be >= 0 above the base, got a minimum of {array.min():.6g} m")
    return array


# ------------------------------------------------------------------------------------------ lattice tables


@dataclass(frozen=True)
class _Corners:
    """Per lattice corner (flattened (R+1)*(C+1) = K): saddle data and the vertex copies' height sets.

    Copy 0 is the plain corner (non-saddle corners); copies 1 and 2 exist at saddle corners only and
    sit inside the raised pixel of quadrant ``high1`` / ``high2`` respectively. Row ``3*corner + copy``
    of ``sets`` lists that copy's distinct z levels (unordered, _SENTINEL where unused); its vertices
    have consecutive ids from ``base_id[row]`` in increasing z.
    """

    n_cols1: int  # C + 1
    saddle: np.ndarray  # bool (K,)
    high1: np.ndarray  # int8 (K,) quadrant of copy 1 (top-row quadrant of the raised diagonal)
    low1: np.ndarray  # int8 (K,) the two lowered quadrants at a saddle
    low2: np.ndarray
    quad: np.ndarray  # int32 (K, 4) z level of the NW, NE, SW, SE pixels (0 outside the map)
    copy_table: np.ndarray  # int32 (K*4,) copy used by a face of the pixel in quadrant q: [4*corner + q]
    sets: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # 4 x int32 (3K,)
    base_id: np.ndarray  # int32 (3K,)


def _distinct_columns(values: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Replace repeats across the given 1-D columns by _SENTINEL (first occurrence kept)."""
    out = []
    for k, column in enumerate(values):
        repeat = np.zeros(column.shape, dtype=bool)
        for earlier in values[:k]:
            repeat |= column == earlier
        out.append(np.where(repeat, _SENTINEL, column).astype(np.int32))
    return out


def _corner_tables(padded: np.ndarray) -> _Corners:
    """Build the corner tables from the z-level map padded with one ring of zeros, shape (R+2, C+2)."""
    quad = np.stack(
        [padded[:-1, :-1], padded[:-1, 1:], padded[1:, :-1], padded[1:, 1:]], axis=-1
    ).reshape(-1, 4).astype(np.int32)
    nw, ne, sw, se = quad.T
    saddle_a = np.minimum(nw, se) > np.maximum(ne, sw)  # NW and SE raised
    saddle_b = np.minimum(ne, sw) > np.maximum(nw, se)  # NE and SW raised
    saddle = saddle_a | saddle_b
    high1 = np.where(saddle_a, _NW, _NE).astype(np.int8)
    high2 = np.where(saddle_a, _SE, _SW).astype(np.int8)
    low1 = np.where(saddle_a, _NE, _NW).astype(np.int8)
    low2 = np.where(saddle_a, _SW, _SE).astype(np.int8)
    rows = np.arange(quad.shape[0])
    lo1, lo2 = quad[rows, low1], quad[rows, low2]
    plain = _distinct_columns([np.where(saddle, _SENTINEL, q) for q in quad.T])
    blank = np.full(rows.size, _SENTINEL, dtype=np.int32)
    raised = [
        _distinct_columns([np.where(saddle, col, _SENTINEL) for col in (quad[rows, high], lo1, lo2)]) + [blank]
        for high in (high1, high2)
    ]
    sets = tuple(np.stack([plain[k], raised[0][k], raised[1][k]], axis=1).reshape(-1) for k in range(4))
    counts = sum((column != _SENTINEL).astype(np.int64) for column in sets)
    if int(counts.sum()) >= np.iinfo(np.int32).max:
        raise StlError(f"mesh would need {int(counts.sum())} vertices, more than 32-bit indices allow")
    base_id = (np.cumsum(counts) - counts).astype(np.int32)
    copy_table = np.zeros((rows.size, 4), dtype=np.int32)
    copy_table[rows[saddle], high1[saddle]] = 1
    copy_table[rows[saddle], high2[saddle]] = 2
    return _Corners(
        n_cols1=padded.shape[1] - 1,
        saddle=saddle,
        high1=high1,
        low1=low1,
        low2=low2,
        quad=quad,
        copy_table=copy_table.reshape(-1),
        sets=sets,
        base_id=base_id,
    )


def _copy_of(corners: _Corners, corner: np.ndarray, quadrant: np.ndarray | int) -> np.ndarray:
    """Which vertex copy of ``corner`` a face belonging to the pixel in ``quadrant`` uses (raised or plain)."""
    return corners.copy_table[corner * 4 + quadrant]


def _rank(corners: _Corners, row: np.ndarray, z_level: np.ndarray) -> np.ndarray:
    """Number of distinct z levels of set ``row`` below ``z_level``."""
    s0, s1, s2, s3 = corners.sets
    return (
        (s0[row] < z_level).astype(np.int32)
        + (s1[row] < z_level)
        + (s2[row] < z_level)
        + (s3[row] < z_level)
    )


def _vertex_id(corners: _Corners, corner: np.ndarray, copy: np.ndarray, z_level: np.ndarray) -> np.ndarray:
    """Vertex ids of (corner, copy, z level) triples; the z level must belong to that copy's set."""
    row = corner * 3 + copy
    return corners.base_id[row] + _rank(corners, row, z_level)


def _vertex_id_pair(
    corners: _Corners, row: np.ndarray, z_low: np.ndarray, z_high: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Vertex ids of two z levels in the same copy rows (one gather of the sets for both)."""
    low = corners.base_id[row].copy()
    high = low.copy()
    for column in corners.sets:
        values = column[row]
        low += values < z_low
        high += values < z_high
    return low, high


def _corner_index(corners: _Corners, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return u * corners.n_cols1 + v


def _vertices(
    corners: _Corners, xs_um: np.ndarray, ys_um: np.ndarray, zs_um: np.ndarray, offset_um: float
) -> np.ndarray:
    """float32 (V, 3) coordinates of every vertex copy, in id order (converted to float32 once)."""
    count = int(corners.base_id[-1]) + sum(int(column[-1] != _SENTINEL) for column in corners.sets)
    out = np.empty((count, 3), dtype=np.float32)
    for column in corners.sets:
        row = np.flatnonzero(column != _SENTINEL)
        z_level = column[row]
        ids = corners.base_id[row] + _rank(corners, row, z_level)
        corner, copy = np.divmod(row, 3)
        u, v = np.divmod(corner, corners.n_cols1)
        quadrant = np.where(copy == 1, corners.high1[corner], 3 - corners.high1[corner])
        shift = np.where((copy > 0)[:, None], _QUADRANT_DIR[quadrant] * offset_um, 0.0)
        out[ids, 0] = xs_um[v] + shift[:, 0]
        out[ids, 1] = ys_um[u] + shift[:, 1]
        out[ids, 2] = zs_um[z_level]
    return out


# ---------------------------------------------------------------------------------------------- face builders


def _segments(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For per-item counts (M,), the item index and the position within the item of every entry."""
    item = np.repeat(np.arange(counts.size), counts)
    start = np.concatenate([[0], np.cumsum(counts)[:-1]])
    return item, np.arange(item.size) - start[item]


def _rectangle_top_triangles(
    corners: _Corners, r0: np.ndarray, c0: np.ndarray, r1: np.ndarray, c1: np.ndarray, z_level: np.ndarray
) -> np.ndarray:
    """Triangulate rectangles whose boundary holds every lattice vertex; CCW seen from +z.

    The boundary is cut into chain A (BL, up the left side, TL, along the top, TR) and chain B (BL, along
    the bottom, BR, up the right side, TR). Fan 1 joins the second point of B to every edge of A but
    the last; fan 2 joins the second-to-last point of A to every edge of B but the first. No triangle
    is degenerate because neither apex is collinear with the side it fans over (2(h+w)-2 triangles).
    A corner may be a raised saddle copy moved diagonally into the rectangle; the outline stays convex.
    """
    h, w = r1 - r0, c1 - c0
    n = h + w

    def chain_a(t: np.ndarray, i: np.ndarray) -> np.ndarray:
        left, top = t < h[i], t > h[i]
        u = np.where(left, r1[i] - t, r0[i])
        v = np.where(top, c0[i] + t - h[i], c0[i])
        quadrant = np.where(left, _NE, np.where(top, _SW, _SE))
        corner = _corner_index(corners, u, v)
        return _vertex_id(corners, corner, _copy_of(corners, corner, quadrant), z_level[i])

    def chain_b(t: np.ndarray, i: np.ndarray) -> np.ndarray:
        bottom, right = t < w[i], t > w[i]
        u = np.where(right, r1[i] - (t - w[i]), r1[i])
        v = np.where(bottom, c0[i] + t, c1[i])
        quadrant = np.where(bottom, _NE, np.where(right, _SW, _NW))
        corner = _corner_index(corners, u, v)
        return _vertex_id(corners, corner, _copy_of(corners, corner, quadrant), z_level[i])

    i1, k1 = _segments(n - 1)
    fan1 = _assemble(chain_b(np.ones_like(k1), i1), chain_a(k1 + 1, i1), chain_a(k1, i1))
    i2, k2 = _segments(n - 1)
    k2 = k2 + 1
    fan2 = _assemble(chain_b(k2, i2), chain_b(k2 + 1, i2), chain_a(n[i2] - 1, i2))
    return np.concatenate([fan1, fan2])


def _isolated_top_triangles(corners: _Corners, rows: np.ndarray, cols: np.ndarray, z_level: np.ndarray) -> np.ndarray:
    """Fan-triangulate single pixels that are lowered at one or more saddle corners (CCW from +z).

    At such a corner the pixel's outline takes both raised copies (a tiny chamfer edge through the
    corner), first the copy across the side it arrives on, then the copy across the side it leaves on.
    The outline (slots 0..7: two per corner, BL, BR, TR, TL; odd slots only at lowered corners) is
    strictly convex, so the fan from slot 0 over consecutive present slots is valid.
    """
    # (corner u offset, v offset, pixel quadrant, quadrant across incoming side, across outgoing side)
    walk = ((1, 0, _NE, _NW, _SE), (1, 1, _NW, _SW, _NE), (0, 1, _SW, _SE, _NW), (0, 0, _SE, _NE, _SW))
    slot_ids, lowered = [], []
    for du, dv, own, before, after in walk:
        corner = _corner_index(corners, rows + du, cols + dv)
        low = corners.saddle[corner] & (corners.quad[corner, own] < corners.quad[corner, before])
        first = np.where(low, _copy_of(corners, corner, before), _copy_of(corners, corner, own))
        slot_ids += [
            _vertex_id(corners, corner, first, z_level),
            _vertex_id(corners, corner, _copy_of(corners, corner, after), z_level),
        ]
        lowered.append(low)
    pieces = []
    # Consecutive present slots (t, next t) after slot 0: odd slots exist only where their corner is lowered.
    for corner_k in range(4):
        even, odd = 2 * corner_k, 2 * corner_k + 1
        if corner_k > 0:  # the even slot of corners 1..3 to its successor
            sel = np.flatnonzero(lowered[corner_k])
            pieces.append(_assemble(slot_ids[0][sel], slot_ids[even][sel], slot_ids[odd][sel]))
            if corner_k < 3:
                sel = np.flatnonzero(~lowered[corner_k])
                pieces.append(_assemble(slot_ids[0][sel], slot_ids[even][sel], slot_ids[even + 2][sel]))
        if corner_k < 3:  # the odd slot (when present) to the next corner's even slot
            sel = np.flatnonzero(lowered[corner_k])
            pieces.append(_assemble(slot_ids[0][sel], slot_ids[odd][sel], slot_ids[odd + 1][sel]))
    return np.concatenate(pieces)


def _assemble(a: np.ndarray, b: np.ndarray, c: np.ndarray, flip: np.ndarray | None = None) -> np.ndarray:
    """Stack vertex-id columns into int32 (M, 3) triangles; where ``flip``, b and c swap (reversed winding)."""
    out = np.empty((a.size, 3), dtype=np.int32)
    out[:, 0] = a
    if flip is None:
        out[:, 1], out[:, 2] = b, c
    else:
        out[:, 1] = np.where(flip, c, b)
        out[:, 2] = np.where(flip, b, c)
    return out


def _wall_triangles(
    corners: _Corners,
    end1: np.ndarray,
    quad1: np.ndarray,
    end2: np.ndarray,
    quad2: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
    flip: np.ndarray,
) -> np.ndarray:
    """Triangulate vertical walls between two end corners, spanning z levels [low, high].

    Each end column holds every vertex of its copy between ``low`` and ``high`` (consecutive ids).
    Fan 1 joins the bottom of end 2 to every edge of column 1; fan 2 joins the top of column 1 to every
    edge of column 2. Canonical winding has its normal along (end1 - end2) rotated by -90° about +z;
    ``flip`` reverses it.

    Returns:
        int32 (M, 3) triangles, and for each the wall index and whether the wall is tilted (an end sits at
        a raised saddle copy, so its normal is not exactly along a lattice axis).
    """
    copy1 = _copy_of(corners, end1, quad1)
    copy2 = _copy_of(corners, end2, quad2)
    bottom1, top1 = _vertex_id_pair(corners, end1 * 3 + copy1, low, high)
    bottom2, top2 = _vertex_id_pair(corners, end2 * 3 + copy2, low, high)
    wall1, k = _segments(top1 - bottom1)
    fan1 = _assemble(bottom2[wall1], bottom1[wall1] + k, bottom1[wall1] + k + 1, flip[wall1])
    wall2, k = _segments(top2 - bottom2)
    fan2 = _assemble(top1[wall2], bottom2[wall2] + k + 1, bottom2[wall2] + k, flip[wall2])
    wall = np.concatenate([wall1, wall2])
    tilted = (copy1 != 0) | (copy2 != 0)
    return np.concatenate([fan1, fan2]), wall, tilted[wall]


def _axis_normals(axis: int, negative: np.ndarray) -> np.ndarray:
    """float32 (M, 3) unit vectors along ``axis``, pointing to -axis where ``negative``."""
    out = np.zeros((negative.size, 3), dtype=np.float32)
    out[:, axis] = np.where(negative, -1.0, 1.0)
    return out


def _walls(corners: _Corners, padded: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All vertical walls (interior steps and the outer skirt), outward winding.

    Returns:
        int32 (M, 3) triangles, float32 (M, 3) outward lattice-axis normals, bool (M,) tilted walls whose
        exact normal must be computed from the vertices.
    """
    n_cols = padded.shape[1] - 2
    faces, normals, tilted = [], [], []
    # Walls on vertical grid lines: between pixel (i, j-1) (left) and (i, j) (right), x = xs[j].
    left, right = padded[1:-1, :-1], padded[1:-1, 1:]
    i, j = np.nonzero(left != right)
    lo, hi = left[i, j], right[i, j]
    right_high = hi > lo
    end1 = i * (n_cols + 1) + j  # corner (i, j): the end with larger y
    end2 = (i + 1) * (n_cols + 1) + j
    quads = (np.where(right_high, _SE, _SW), np.where(right_high, _NE, _NW))
    tri, wall, tilt = _wall_triangles(
        corners, end1, quads[0], end2, quads[1], np.minimum(lo, hi), np.maximum(lo, hi), right_high
    )
    faces.append(tri)
    tilted.append(tilt)
    normals.append(_axis_normals(0, right_high[wall]))  # canonical +x; -x where the right pixel is high
    # Walls on horizontal grid lines: between pixel (i-1, j) (above, larger y) and (i, j), y = ys[i].
    above, below = padded[:-1, 1:-1], padded[1:, 1:-1]
    i, j = np.nonzero(above != below)
    up, down = above[i, j], below[i, j]
    up_high = up > down
    end1 = i * (n_cols + 1) + j  # corner (i, j): the end with smaller x
    end2 = i * (n_cols + 1) + j + 1
    quads = (np.where(up_high, _NE, _SE), np.where(up_high, _NW, _SW))
    tri, wall, tilt = _wall_triangles(
        corners, end1, quads[0], end2, quads[1], np.minimum(up, down), np.maximum(up, down), up_high
    )
    faces.append(tri)
    tilted.append(tilt)
    normals.append(_axis_normals(1, up_high[wall]))  # canonical +y; -y where the pixel above is high
    return np.concatenate(faces), np.concatenate(normals), np.concatenate(tilted)


def _saddle_slivers(corners: _Corners) -> np.ndarray:
    """The vertical sliver between the two raised copies of each saddle corner whose lowered pixels differ.

    Its outward normal points into the lower of the two lowered pixels.
    """
    corner = np.flatnonzero(corners.saddle)
    za = corners.quad[corner, corners.low1[corner]]
    zb = corners.quad[corner, corners.low2[corner]]
    keep = za != zb
    corner, za, zb = corner[keep], za[keep], zb[keep]
    z_lo, z_hi = np.minimum(za, zb), np.maximum(za, zb)
    lowest = np.where(za < zb, corners.low1[corner], corners.low2[corner])
    one, two = np.ones_like(corner), np.full_like(corner, 2)
    a0 = _vertex_id(corners, corner, one, z_lo)
    a1 = _vertex_id(corners, corner, one, z_hi)
    b0 = _vertex_id(corners, corner, two, z_lo)
    b1 = _vertex_id(corners, corner, two, z_hi)
    # (a0, b0, b1) has its normal along (copy1 - copy2) rotated by +90°: SW for NW/SE saddles, NW for NE/SW.
    natural = np.where(corners.high1[corner] == _NW, _SW, _NW)
    flip = lowest != natural
    return np.concatenate([_assemble(a0, b0, b1, flip), _assemble(a0, b1, a1, flip)])


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


def _write_binary_stl(path: str | os.PathLike[str], meshes: Sequence[HeightFieldMesh], name: str) -> int:
    """Write the meshes as one binary STL (float32 µm) atomically; return the file size in bytes.

    Binary STL: 80-byte header (never starting with "solid"), uint32 triangle count, then one
    numpy-stl record (normal, 3 vertices, uint16 attribute) per triangle, little-endian. Records are
    written in chunks so that a 10-million-triangle mask never needs a second full copy in memory.
    """
    target = Path(path)
    count = sum(int(m.faces.shape[0]) for m in meshes)
    header = f"binary STL, units um, z up; {name}".encode("ascii")[:80].ljust(80, b" ")
    with atomic_path(target) as temp, open(temp, "wb") as stream:
        stream.write(header)
        stream.write(np.array([count], dtype="<u4").tobytes())
        for part in meshes:
            for start in range(0, part.faces.shape[0], _CHUNK_TRIANGLES):
                stop = min(start + _CHUNK_TRIANGLES, part.faces.shape[0])
                records = np.zeros(stop - start, dtype=stl_mesh.Mesh.dtype)
                records["normals"] = part.normals[start:stop]
                records["vectors"] = part.vertices_um[part.faces[start:stop]]
                records.tofile(stream)
    return target.stat().st_size


def write_stl(
    path: str | os.PathLike[str],
    heights_m: np.ndarray,
    pitch_m: float,
    base_m: float = DEFAULT_BASE_M,
    z_grid_m: float | None = None,
) -> dict:
    """Write one mask as a watertight binary STL in µm (written to a temporary name, then renamed).

    Args:
        path: output file.
        heights_m: (N, N) heights above the base, metres.
        pitch_m: pixel pitch, metres.
        base_m: base slab thickness, metres, > 0 (default 2 µm).
        z_grid_m: slicing grid (m) every top lies on (vertices built from whole slice counts), or None.

    Returns:
        Stats: path, watertight (exact edge check, :meth:`HeightFieldMesh.is_watertight`), triangles,
        naive_triangles (12 per pixel), file_bytes, saddle_corners, saddle_offset_um, size_um (x, y, z
        extent), base_um, units.
    """
    result = height_field_mesh(heights_m, pitch_m, base_m, z_grid_m)
    n_rows, n_cols = np.asarray(heights_m).shape
    watertight = result.is_watertight()
    if not watertight:
        logger.warning("mesh for %s is not watertight", path)
    size_bytes = _write_binary_stl(path, [result], "quaton-fab mask (um)")
    vertices_um = result.vertices_um
    stats = {
        "path": str(path),
        "watertight": watertight,
        "triangles": int(result.faces.shape[0]),
        "naive_triangles": 12 * n_rows * n_cols,
        "file_bytes": size_bytes,
        "saddle_corners": result.saddle_corners,
        "saddle_offset_um": result.offset_um,
        "size_um": [float(v) for v in vertices_um.max(axis=0) - vertices_um.min(axis=0)],
        "base_um": float(base_m) * _UM_PER_M,
        "units": "um",
    }
    logger.info("wrote %s: %d triangles, %d bytes", path, stats["triangles"], size_bytes)
    return stats


def _up_facing(triangles: np.ndarray) -> np.ndarray:
    """Boolean (F,): horizontal triangles whose winding faces +z."""
    flat = (triangles[:, 0, 2] == triangles[:, 1, 2]) & (triangles[:, 1, 2] == triangles[:, 2, 2])
    d1 = triangles[:, 1, :2] - triangles[:, 0, :2]
    d2 = triangles[:, 2, :2] - triangles[:, 0, :2]
    return flat & (d1[:, 0] * d2[:, 1] - d1[:, 1] * d2[:, 0] > 0)


def _sample_tops(
    triangles_um: np.ndarray, n_rows: int, n_cols: int, pitch_um: float
) -> tuple[np.ndarray, np.ndarray]:
    """(pixel index, z in µm) for every up-facing triangle that covers a pixel centre (scanline fill).

    Row i has its centre at y = (n_rows - i - 0.5)·p, column j at x = (j + 0.5)·p. Centres on a shared
    edge may be reported twice; both triangles then belong to the same flat top.
    """
    xy_um = triangles_um[:, :, :2]
    tol_um = 1e-6 * pitch_um
    ymin_um, ymax_um = xy_um[:, :, 1].min(axis=1), xy_um[:, :, 1].max(axis=1)
    first = np.clip(np.ceil(n_rows - 0.5 - (ymax_um + tol_um) / pitch_um), 0, n_rows).astype(np.int64)
    last = np.clip(np.floor(n_rows - 0.5 - (ymin_um - tol_um) / pitch_um), -1, n_rows - 1).astype(np.int64)
    tri, k = _segments(np.maximum(last - first + 1, 0))
    row = first[tri] + k
    y_um = (n_rows - row - 0.5) * pitch_um
    start_um = xy_um[tri]
    end_um = np.roll(start_um, -1, axis=1)
    dy_um = end_um[:, :, 1] - start_um[:, :, 1]
    crosses = ((start_um[:, :, 1] - y_um[:, None]) * (end_um[:, :, 1] - y_um[:, None]) <= 0) & (dy_um != 0)
    slope = (end_um[:, :, 0] - start_um[:, :, 0]) / np.where(dy_um != 0, dy_um, 1.0)
    x_um = start_um[:, :, 0] + (y_um[:, None] - start_um[:, :, 1]) * slope
    left_um = np.where(crosses, x_um, np.inf).min(axis=1)
    right_um = np.where(crosses, x_um, -np.inf).max(axis=1)
    c_first = np.clip(np.ceil((left_um - tol_um) / pitch_um - 0.5), 0, n_cols).astype(np.int64)
    c_last = np.clip(np.floor((right_um + tol_um) / pitch_um - 0.5), -1, n_cols - 1).astype(np.int64)
    span, kc = _segments(np.maximum(c_last - c_first + 1, 0))
    pixel = row[span] * n_cols + c_first[span] + kc
    return pixel, triangles_um[tri[span], 0, 2]


def load_triangles_um(path: str | os.PathLike[str]) -> np.ndarray:
    """The triangles of an STL file read with numpy-stl: float64 (T, 3, 3) vertex coordinates in µm.

    Raises:
        StlError: a file numpy-stl cannot read.
    """
    try:
        solid = stl_mesh.Mesh.from_file(str(path), calculate_normals=False)
    except (OSError, ValueError, AssertionError) as exc:
        raise StlError(f"cannot read STL {str(path)!r}: {exc}") from exc
    return solid.vectors.astype(np.float64)


def read_stl_heights(
    path: str | os.PathLike[str], neurons: int, pitch_m: float, base_m: float = DEFAULT_BASE_M
) -> np.ndarray:
    """Recover the (N, N) pixel heights above the base (metres) from an STL height field.

    Reads with numpy-stl; takes the up-facing (horizontal, +z-wound) triangles, and for each pixel
    centre the z of the triangle(s) covering it. Independent of how the file was triangulated.

    Raises:
        StlError: unreadable file, extent that does not match neurons·pitch, a pixel centre with no top
            face or with two different tops.
    """
    n = int(neurons)
    if n < 1:
        raise StlError(f"neurons must be a positive integer, got {neurons!r}")
    pitch_um = length_m(pitch_m, "pitch_m", error=StlError) * _UM_PER_M
    base_um = length_m(base_m, "base_m", error=StlError) * _UM_PER_M
    triangles_um = load_triangles_um(path)
    if triangles_um.size == 0:
        raise StlError(f"STL {str(path)!r} holds no triangles")
    lo_um, hi_um = triangles_um.reshape(-1, 3).min(axis=0), triangles_um.reshape(-1, 3).max(axis=0)
    size_um = n * pitch_um
    slack_um = 1e-3 * pitch_um
    if np.any(np.abs(lo_um[:2]) > slack_um) or np.any(np.abs(hi_um[:2] - size_um) > slack_um):
        raise StlError(
            f"STL {str(path)!r} spans x {lo_um[0]:.6g}..{hi_um[0]:.6g} um, y {lo_um[1]:.6g}..{hi_um[1]:.6g} um, "
            f"but {n} neurons x {pitch_um:.6g} um = {size_um:.6g} um"
        )
    pixel, z_um = _sample_tops(triangles_um[_up_facing(triangles_um)], n, n, pitch_um)
    order = np.argsort(pixel, kind="stable")
    pixel, z_um = pixel[order], z_um[order]
    starts = np.flatnonzero(np.concatenate([[True], pixel[1:] != pixel[:-1]]))
    if starts.size != n * n:
        missing = np.setdiff1d(np.arange(n * n), pixel)[0]
        raise StlError(f"STL {str(path)!r} has no top face over pixel (row {missing // n}, col {missing % n})")
    low_um, high_um = np.minimum.reduceat(z_um, starts), np.maximum.reduceat(z_um, starts)
    if np.any(high_um - low_um > 1e-6 * max(1.0, float(hi_um[2]))):
        bad = int(pixel[starts[np.argmax(high_um - low_um)]])
        raise StlError(f"STL {str(path)!r} has two different tops over pixel (row {bad // n}, col {bad % n})")
    return (low_um.reshape(n, n) - base_um) / _UM_PER_M
