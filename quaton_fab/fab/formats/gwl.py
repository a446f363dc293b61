"""Nanoscribe GWL jobs written straight from the height field (no STL, no slicer), and a reader for them.

One idea: a part made of flat-topped columns is, slice by slice, a set of rectangles; a GWL job writes each slice
as straight hatch lines over those rectangles. Coordinates are in µm (x, y in the frame of :mod:`.stl`: x =
column·pitch, y = (N − row)·pitch at a row's top edge, origin at the aperture's lower-left; z = height above
the substrate interface, build direction).

Slicing (printer profile, :mod:`.printer`): slice k spans kΔz … (k+1)Δz and is written at its mid-slice plane
z = (k + ½)Δz; it is filled wherever the part's top is at or above (k+1)Δz (the convention recorded in the fab
sheet). Hatching: lines along +x; each row of cells (a pixel row, or a frame/support row of the stack) of height
H carries ceil(H/h) lines at its (q + ½)·H/n heights, so the line spacing is at most the hatching distance h and
the hatched area of a slice, Σ line length × line spacing, equals the area of its region exactly. Each line runs
over a maximal run of filled cells of its row, from the run's left edge to its right edge (the beam centre; the
voxel width adds the same ± half-voxel on every edge, which the facility's dose test calibrates).

GWL commands used (Nanoscribe GWL, as documented in DeScribe/NanoWrite and in nanodescript's command list):
``GalvoScanMode``, ``ContinuousMode``, ``PowerScaling``, ``LaserPower`` (% of the power scale), ``ScanSpeed``
(µm/s), ``InvertZAxis 1`` (z positive from the substrate into the resin, as in DeScribe dip-in jobs), point lines
``x y z`` ended by ``Write``; ``%`` starts a comment. The header comment records the provenance.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from quaton_fab.fab.formats.gwl_job import (
    GwlError, GwlJob, check_job, fmt_um, job_settings, rasterise_tops, read_gwl,
)
from quaton_fab.printing.printer import PrinterProfile, grid_um, slice_counts
from quaton_fab.fileio import atomic_path

__all__ = [
    "GwlError",
    "CellColumns",
    "mask_columns",
    "write_gwl",
    "read_gwl",
    "GwlJob",
    "rasterise_tops",
    "stack_columns",
    "job_settings",
    "check_job",
]

_UM_PER_M = 1e6


@dataclass(frozen=True)
class CellColumns:
    """A part as columns over a rectilinear grid of cells; each column is filled over slice intervals.

    Attributes:
        xs_um: (C+1,) increasing x of the cell edges (µm). ys_um: (R+1,) decreasing y of the row edges (µm).
        intervals: list of (start, stop) int64 (R, C) arrays: the cell is filled for slices start <= k < stop
            (empty where stop <= start). Several intervals express several plates and supports.
    """

    xs_um: np.ndarray
    ys_um: np.ndarray
    intervals: tuple[tuple[np.ndarray, np.ndarray], ...]

    @property
    def n_slices(self) -> int:
        """Slices up to the top of the part."""
        return int(max(int(stop.max()) for _, stop in self.intervals))

    def filled(self, k: int) -> np.ndarray:
        """bool (R, C): cells filled in slice k."""
        out = np.zeros(self.intervals[0][0].shape, dtype=bool)
        for start, stop in self.intervals:
            out |= (start <= k) & (k < stop)
        return out


def mask_columns(heights_m: np.ndarray, pitch_m: float, base_m: float, slicing_m: float) -> CellColumns:
    """One mask as columns: pixel (i, j) filled from slice 0 to its top (base + height) in slices.

    Raises:
        GwlError: a top that is not a whole number of slices (the heights were not snapped to the grid).
    """
    heights = np.asarray(heights_m, dtype=np.float64)
    tops_m = base_m + heights
    k = slice_counts(tops_m, slicing_m)
    if np.any(np.abs(tops_m / slicing_m - k) > 1e-6 * np.maximum(1.0, k)):
        raise GwlError(f"pixel tops are not whole numbers of {slicing_m * 1e9:.4g} nm slices; snap the heights first")
    n_rows, n_cols = heights.shape
    pitch_um = pitch_m * _UM_PER_M
    return CellColumns(
        xs_um=np.arange(n_cols + 1) * pitch_um,
        ys_um=(n_rows - np.arange(n_rows + 1)) * pitch_um,
        intervals=((np.zeros_like(k), k),),
    )


def _row_lines(ys_um: np.ndarray, hatching_um: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each cell row: line y positions (µm), the row of each line, and the line spacing of each row."""
    heights = ys_um[:-1] - ys_um[1:]
    counts = np.maximum(1, np.ceil(heights / hatching_um - 1e-9).astype(np.int64))
    spacing = heights / counts
    row = np.repeat(np.arange(heights.size), counts)
    q = np.arange(row.size) - np.repeat(np.cumsum(counts) - counts, counts)
    y = ys_um[row + 1] + (q + 0.5) * spacing[row]
    return y, row, spacing


def _runs(filled_row: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and stop (exclusive) cell indices of the runs of True in a 1-D bool array."""
    padded = np.concatenate([[False], filled_row, [False]]).astype(np.int8)
    change = np.diff(padded)
    return np.flatnonzero(change == 1), np.flatnonzero(change == -1)


def _ascii(text: str) -> str:
    """A header line in plain ASCII (GWL interpreters expect it): × → x, µ → u, other symbols → ?."""
    text = text.replace("×", "x").replace("µ", "u").replace("μ", "u").replace("Δ", "d").replace("·", "*")
    return text.encode("ascii", "replace").decode("ascii")


def _header(printer: PrinterProfile, provenance: Sequence[str], spacing_um: float, n_slices: int) -> list[str]:
    """The job's header lines: provenance and conventions as comments, then the settings commands."""
    slicing_m = printer.slicing_distance_m
    hatching_um = printer.hatching_distance_m * _UM_PER_M
    power = printer.laser_power_percent
    return [
        "% quaton-fab GWL job (Nanoscribe), written directly from the height field",
        *[f"% {line}" for line in provenance],
        f"% printer profile: {printer.name} ({printer.description}); objective {printer.objective}; "
        f"resin {printer.resin}",
        f"% slicing {fmt_um(slicing_m * _UM_PER_M)} um, hatching <= {fmt_um(hatching_um)} um (lines along +x, "
        f"{fmt_um(spacing_um)} um apart at most), {n_slices} slices",
        "% units um; x, y in the mask frame (origin at the aperture's lower-left); z = height above the substrate",
        "% slice k spans k*dz..(k+1)*dz and is written at its mid-slice plane z = (k + 0.5)*dz",
        f"% laser power and scan speed are starting values ({printer.laser_power}); calibrate with a dose array",
        "GalvoScanMode",
        "ContinuousMode",
        "InvertZAxis 1",
        "PowerScaling 1.0",
        f"LaserPower {fmt_um(power if power is not None else 50.0)}",
        f"ScanSpeed {fmt_um(printer.scan_speed_m_per_s * _UM_PER_M if printer.scan_speed_m_per_s else 10000.0)}",
    ]


def _slice_lines(filled: np.ndarray, z_text: str, xs: np.ndarray, y_lines: np.ndarray, line_row: np.ndarray,
                 spacing: np.ndarray) -> tuple[str, int, float]:
    """One slice's hatch lines (``x y z`` pairs ended by ``Write``), their count and hatched area (µm²).

    ``filled`` (R, C) are the slice's filled cells; each line ``y_lines[i]`` runs over the filled runs of row
    ``line_row[i]``, ``spacing[row]`` apart.
    """
    count, area = 0, 0.0
    chunks = []
    for y_um, row in zip(y_lines, line_row):
        starts, stops = _runs(filled[row])
        if starts.size == 0:
            continue
        y_text = fmt_um(float(y_um))
        for a, b in zip(starts, stops):
            chunks.append(
                f"{fmt_um(float(xs[a]))} {y_text} {z_text}\n{fmt_um(float(xs[b]))} {y_text} {z_text}\nWrite\n"
            )
        count += starts.size
        area += float(np.sum(xs[stops] - xs[starts])) * float(spacing[row])
    return "".join(chunks), count, area


def write_gwl(
    path: str | os.PathLike[str],
    columns: CellColumns,
    printer: PrinterProfile,
    *,
    provenance: Sequence[str] = (),
) -> dict:
    """Write a GWL job for ``columns`` with the printer's slicing and hatching (atomic; see the module docstring).

    Returns:
        Stats: path, slices, lines (Write commands), lines_per_slice (list), hatched_area_um2 (list per slice),
        slicing_um, hatching_um, line_spacing_um (largest used), file_bytes.

    Raises:
        GwlError: a printer without a slicing grid or hatching distance (grayscale).
    """
    if printer.slicing_distance_m is None or printer.hatching_distance_m is None:
        raise GwlError(f"printer profile {printer.name!r} has no slicing/hatching grid; a GWL job needs one")
    slicing_m = printer.slicing_distance_m
    hatching_um = printer.hatching_distance_m * _UM_PER_M
    y_lines, line_row, spacing = _row_lines(columns.ys_um, hatching_um)
    xs = columns.xs_um
    n_slices = columns.n_slices
    z_mid_um = grid_um(2 * np.arange(n_slices) + 1, slicing_m / 2)  # (k + ½)Δz, exact where Δz/2 is whole nm
    header = _header(printer, provenance, float(spacing.max()), n_slices)
    lines_per_slice: list[int] = []
    areas: list[float] = []
    target = Path(path)
    with atomic_path(target) as temp, open(temp, "w", encoding="ascii", newline="\n") as stream:
        stream.write("\n".join(_ascii(line) for line in header) + "\n")
        for k in range(n_slices):
            z_text = fmt_um(float(z_mid_um[k]))
            stream.write(f"% slice {k} z = {z_text}\n")
            text, count, area = _slice_lines(columns.filled(k), z_text, xs, y_lines, line_row, spacing)
            stream.write(text)
            lines_per_slice.append(count)
            areas.append(area)
    return {
        "path": str(path),
        "slices": n_slices,
        "lines": int(sum(lines_per_slice)),
        "lines_per_slice": lines_per_slice,
        "hatched_area_um2": areas,
        "slicing_um": slicing_m * _UM_PER_M,
        "hatching_um": hatching_um,
        "line_spacing_um": float(spacing.max()),
        "file_bytes": target.stat().st_size,
    }


def stack_columns(
    heights_m: Iterable[np.ndarray], pitch_m: float, base_m: float, slicing_m: float, layout
) -> CellColumns:
    """The stack (plates with frames, supports between them; :mod:`.stack` layout) as columns."""
    maps = [np.asarray(h, dtype=np.float64) for h in heights_m]
    n_rows, n_cols = maps[0].shape
    pitch_um = pitch_m * _UM_PER_M
    frame, side = layout.frame_um, layout.pillar_um
    px, py = layout.pillar_xy_um[:, 0], layout.pillar_xy_um[:, 1]
    xs = np.unique(np.round(np.concatenate([[-frame, n_cols * pitch_um + frame], np.arange(n_cols + 1) * pitch_um,
                                            px - side / 2, px + side / 2]), 9))
    ys = np.unique(np.round(np.concatenate([[-frame, n_rows * pitch_um + frame], np.arange(n_rows + 1) * pitch_um,
                                            py - side / 2, py + side / 2]), 9))[::-1]
    cx, cy = (xs[:-1] + xs[1:]) / 2, (ys[:-1] + ys[1:]) / 2
    col = np.floor(cx / pitch_um).astype(np.int64)
    row = np.floor(n_rows - cy / pitch_um).astype(np.int64)
    in_x, in_y = (col >= 0) & (col < n_cols), (row >= 0) & (row < n_rows)
    aperture = in_y[:, None] & in_x[None, :]
    base_k = int(slice_counts(base_m, slicing_m))
    intervals = []
    for index, plate in enumerate(maps):
        floor_k = int(slice_counts(layout.plate_floors_um[index] / _UM_PER_M, slicing_m))
        relief_k = slice_counts(plate, slicing_m)
        stop = np.full((ys.size - 1, xs.size - 1), floor_k + base_k, dtype=np.int64)
        stop[aperture] = (floor_k + base_k + relief_k[np.clip(row, 0, n_rows - 1)[:, None],
                                                      np.clip(col, 0, n_cols - 1)[None, :]])[aperture]
        intervals.append((np.full_like(stop, floor_k), stop))
    pillar_cells = np.zeros((ys.size - 1, xs.size - 1), dtype=bool)
    for x_um, y_um in layout.pillar_xy_um:
        pillar_cells |= (np.abs(cy - y_um) < side / 2)[:, None] & (np.abs(cx - x_um) < side / 2)[None, :]
    for index in range(len(maps) - 1):
        start_k = int(slice_counts(layout.plate_floors_um[index] / _UM_PER_M, slicing_m)) + base_k
        stop_k = int(slice_counts(layout.plate_floors_um[index + 1] / _UM_PER_M, slicing_m))
        intervals.append((np.where(pillar_cells, start_k, 0), np.where(pillar_cells, stop_k, 0)))
    return CellColumns(xs_um=xs, ys_um=ys, intervals=tuple(intervals))
