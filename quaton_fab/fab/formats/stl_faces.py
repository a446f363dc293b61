"""The faces of an STL height field on the lattice: tops (merged rectangles, isolated pixels), walls, saddle
slivers (see :mod:`quaton_fab.fab.formats.stl` for the method)."""

from __future__ import annotations

import numpy as np

from quaton_fab.fab.formats.stl_lattice import (
    _NE, _NW, _SE, _SW, _Corners, _copy_of, _corner_index, _segments, _vertex_id, _vertex_id_pair,
)

# ---------------------------------------------------------------------------------------------- face builders


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
