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
from pathlib import Path
from typing import Sequence

import numpy as np
from stl import mesh as stl_mesh

from quaton_fab.fileio import atomic_path
from quaton_fab.validate import length_m
from quaton_fab.printing.defaults import DEFAULT_BASE_M
from quaton_fab.fab.formats.stl_lattice import (
    _UM_PER_M, SADDLE_OFFSET_UM, WELD_TOLERANCE_UM, HeightFieldMesh, StlError, _segments,
)
from quaton_fab.fab.formats.stl_mesh import height_field_mesh, tops_um

__all__ = [
    "StlError",
    "HeightFieldMesh",
    "height_field_mesh",
    "write_stl",
    "read_stl_heights",
    "tops_um",
    "load_triangles_um",
    "WELD_TOLERANCE_UM",
    "SADDLE_OFFSET_UM",
]

logger = logging.getLogger(__name__)

_CHUNK_TRIANGLES = 1 << 20


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
