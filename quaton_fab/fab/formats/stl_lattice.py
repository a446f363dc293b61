"""The integer lattice of an STL height field: the mesh type, the corner tables and the vertex ids.

Every vertex is (lattice corner u, v; z level k); a corner holds one vertex per distinct height of its four
pixels, and a second copy where a diagonal-only contact is separated (see :mod:`quaton_fab.fab.formats.stl`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from quaton_fab.errors import FabError

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


def _segments(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For per-item counts (M,), the item index and the position within the item of every entry."""
    item = np.repeat(np.arange(counts.size), counts)
    start = np.concatenate([[0], np.cumsum(counts)[:-1]])
    return item, np.arange(item.size) - start[item]
