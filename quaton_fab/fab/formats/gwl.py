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

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from quaton_fab.errors import FabError
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
]

_UM_PER_M = 1e6
_DIGITS = 4  # coordinates written to 0.1 nm


class GwlError(FabError):
    """A GWL job that cannot be written (no slicing grid) or a file that is not a job this module wrote."""


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


def _fmt(value: float) -> str:
    text = f"{value:.{_DIGITS}f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


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
    power = printer.laser_power_percent
    header = [
        "% quaton-fab GWL job (Nanoscribe), written directly from the height field",
        *[f"% {line}" for line in provenance],
        f"% printer profile: {printer.name} ({printer.description}); objective {printer.objective}; "
        f"resin {printer.resin}",
        f"% slicing {_fmt(slicing_m * _UM_PER_M)} um, hatching <= {_fmt(hatching_um)} um (lines along +x, "
        f"{_fmt(float(spacing.max()))} um apart at most), {n_slices} slices",
        "% units um; x, y in the mask frame (origin at the aperture's lower-left); z = height above the substrate",
        "% slice k spans k*dz..(k+1)*dz and is written at its mid-slice plane z = (k + 0.5)*dz",
        f"% laser power and scan speed are starting values ({printer.laser_power}); calibrate with a dose array",
        "GalvoScanMode",
        "ContinuousMode",
        "InvertZAxis 1",
        "PowerScaling 1.0",
        f"LaserPower {_fmt(power if power is not None else 50.0)}",
        f"ScanSpeed {_fmt(printer.scan_speed_m_per_s * _UM_PER_M if printer.scan_speed_m_per_s else 10000.0)}",
    ]
    lines_per_slice: list[int] = []
    areas: list[float] = []
    target = Path(path)
    with atomic_path(target) as temp, open(temp, "w", encoding="ascii", newline="\n") as stream:
        stream.write("\n".join(_ascii(line) for line in header) + "\n")
        for k in range(n_slices):
            filled = columns.filled(k)
            z_text = _fmt(float(z_mid_um[k]))
            stream.write(f"% slice {k} z = {z_text}\n")
            count, area = 0, 0.0
            chunks = []
            for y_um, row in zip(y_lines, line_row):
                starts, stops = _runs(filled[row])
                if starts.size == 0:
                    continue
                y_text = _fmt(float(y_um))
                for a, b in zip(starts, stops):
                    chunks.append(
                        f"{_fmt(float(xs[a]))} {y_text} {z_text}\n{_fmt(float(xs[b]))} {y_text} {z_text}\nWrite\n"
                    )
                count += starts.size
                area += float(np.sum(xs[stops] - xs[starts])) * float(spacing[row])
            stream.write("".join(chunks))
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


@dataclass(frozen=True)
class GwlJob:
    """A GWL job read back: its settings and its lines.

    Attributes:
        settings: command → value text (last one wins), e.g. ``{"ScanSpeed": "10000"}``.
        segments: float64 (M, 5): x0, x1, y, z of each written straight line along x, and its line in the file.
        commands: every command other than ``Write`` in file order: (line number, name, value text).
        first_point_line: line number of the first point (None: no points).
    """

    settings: dict[str, str]
    segments: np.ndarray
    commands: tuple[tuple[int, str, str], ...] = ()
    first_point_line: int | None = None

    def slice_index(self, slicing_m: float) -> np.ndarray:
        """int64 (M,): slice k of each segment, from z = (k + ½)Δz.

        Raises:
            GwlError: a segment whose z is not a mid-slice plane.
        """
        dz_um = slicing_m * _UM_PER_M
        ratio = self.segments[:, 3] / dz_um - 0.5
        k = np.round(ratio).astype(np.int64)
        if np.any(np.abs(ratio - k) > 1e-3):
            bad = int(np.argmax(np.abs(ratio - k)))
            raise GwlError(f"line at z = {self.segments[bad, 3]:.6g} um is not on a mid-slice plane of {dz_um:g} um")
        return k

    def hatched_area_um2(self, slicing_m: float, line_spacing_um: np.ndarray | float) -> np.ndarray:
        """Hatched area per slice (µm², (K,)): Σ line length × line spacing (spacing per line or one value)."""
        k = self.slice_index(slicing_m)
        lengths = (self.segments[:, 1] - self.segments[:, 0]) * np.broadcast_to(line_spacing_um, k.shape)
        return np.bincount(k, weights=lengths, minlength=int(k.max()) + 1 if k.size else 0)


def read_gwl(path: str | os.PathLike[str]) -> GwlJob:
    """Parse a GWL job into straight line segments (our own reader; independent of the writer's data).

    Accepts point lines of 3 numbers ended by ``Write``, commands ``Name value``, ``%`` comments and blank lines.

    Raises:
        GwlError: unreadable file, a malformed point line, a polyline that is not one straight line at constant
            y and z, or points left without ``Write``.
    """
    settings: dict[str, str] = {}
    commands: list[tuple[int, str, str]] = []
    first_point: int | None = None
    segments: list[tuple[float, float, float, float, float]] = []
    points: list[tuple[float, float, float]] = []
    try:
        text = Path(path).read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise GwlError(f"cannot read GWL {str(path)!r}: {exc}") from None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("%", 1)[0].strip()
        if not line:
            continue
        head = line.split()
        if head[0][0].isalpha():
            if head[0] == "Write":
                if len(points) != 2:
                    raise GwlError(f"GWL {str(path)!r} line {number}: Write after {len(points)} points, expected 2")
                (x0, y0, z0), (x1, y1, z1) = points
                if y0 != y1 or z0 != z1:
                    raise GwlError(f"GWL {str(path)!r} line {number}: a line that is not along x")
                segments.append((min(x0, x1), max(x0, x1), y0, z0, float(number)))
                points = []
            else:
                settings[head[0]] = " ".join(head[1:])
                commands.append((number, head[0], " ".join(head[1:])))
            continue
        try:
            values = tuple(float(v) for v in head)
        except ValueError:
            raise GwlError(f"GWL {str(path)!r} line {number}: cannot read {raw.strip()!r}") from None
        if len(values) != 3 or not all(math.isfinite(v) for v in values):
            raise GwlError(f"GWL {str(path)!r} line {number}: expected 'x y z', got {raw.strip()!r}")
        points.append(values)  # type: ignore[arg-type]
        first_point = number if first_point is None else first_point
    if points:
        raise GwlError(f"GWL {str(path)!r} ends with {len(points)} points and no Write")
    return GwlJob(settings, np.array(segments, dtype=np.float64).reshape(-1, 5), tuple(commands), first_point)


def job_settings(printer: dict) -> dict[str, str]:
    """The commands :func:`write_gwl` puts in a job's header for a printer profile (``PrinterProfile.to_dict()``),
    each with its value text: a job read back must hold exactly these, each once, before its first line."""
    power = printer.get("laser_power_percent")
    speed = printer.get("scan_speed_m_per_s")
    return {
        "GalvoScanMode": "", "ContinuousMode": "", "InvertZAxis": "1", "PowerScaling": "1.0",
        "LaserPower": _fmt(float(power) if power is not None else 50.0),
        "ScanSpeed": _fmt(float(speed) * _UM_PER_M if speed else 10000.0),
    }


def check_job(job: GwlJob, path: str | os.PathLike[str], settings: dict[str, str],
              box_um: tuple[float, float, float, float, float, float]) -> None:
    """Refuse a job that holds anything :func:`write_gwl` would not write for this part.

    Every command must be one of ``settings`` with exactly its value, each once and before the first line (no
    ``include``, no changed power, speed or scaling, nothing after the lines); every line must lie in
    ``box_um`` = (x_min, x_max, y_min, y_max, z_min, z_max) in µm. The error names the line number.
    """
    name = Path(path).name
    seen: set[str] = set()
    for number, command, value in job.commands:
        if command not in settings:
            raise GwlError(f"{name} line {number}: command {command!r} is not one quaton-fab writes")
        if value != settings[command]:
            raise GwlError(f"{name} line {number}: {command} {value!r} differs from the fab sheet's "
                           f"{settings[command]!r}")
        if command in seen:
            raise GwlError(f"{name} line {number}: {command} set a second time")
        if job.first_point_line is not None and number > job.first_point_line:
            raise GwlError(f"{name} line {number}: {command} after the first written line")
        seen.add(command)
    missing = sorted(set(settings) - seen)
    if missing:
        raise GwlError(f"{name}: the header lacks {missing[0]}")
    seg = job.segments
    if seg.size:
        x0, x1, y0, y1, z0, z1 = box_um
        eps = 1e-6
        outside = ((seg[:, 0] < x0 - eps) | (seg[:, 1] > x1 + eps) | (seg[:, 2] < y0 - eps) | (seg[:, 2] > y1 + eps)
                   | (seg[:, 3] < z0 - eps) | (seg[:, 3] > z1 + eps))
        if np.any(outside):
            i = int(np.argmax(outside))
            raise GwlError(
                f"{name} line {int(seg[i, 4])}: a line at x {seg[i, 0]:.6g}..{seg[i, 1]:.6g}, y {seg[i, 2]:.6g}, "
                f"z {seg[i, 3]:.6g} um lies outside the part ({x0:.6g}..{x1:.6g}, {y0:.6g}..{y1:.6g}, "
                f"{z0:.6g}..{z1:.6g} um)"
            )


def rasterise_tops(
    job: GwlJob, n_rows: int, n_cols: int, pitch_m: float, slicing_m: float, floor_m: float = 0.0,
    ceiling_m: float | None = None,
) -> np.ndarray:
    """Top of the written part above ``floor_m`` at each pixel centre (m, (R, C)), from the job's lines.

    A pixel is filled in slice k when a line of slice k lies in its row band and covers its centre in x. The
    filled slices from the floor slice upwards (below ``ceiling_m``, e.g. the next plate of a stack) must form
    one run; the top is where it ends.

    Raises:
        GwlError: a pixel with a hole below its top, or a pixel with nothing written at the floor.
    """
    pitch_um = pitch_m * _UM_PER_M
    k = job.slice_index(slicing_m)
    k0 = int(slice_counts(floor_m, slicing_m))
    seg = job.segments
    row = np.floor(n_rows - seg[:, 2] / pitch_um).astype(np.int64)
    inside = (row >= 0) & (row < n_rows) & (k >= k0)
    if ceiling_m is not None:
        inside &= k < int(slice_counts(ceiling_m, slicing_m))
    seg, row, k = seg[inside], row[inside], k[inside] - k0
    if k.size == 0:
        raise GwlError("the GWL job writes nothing over the aperture")
    n_k = int(k.max()) + 1
    filled = np.zeros((n_k, n_rows, n_cols), dtype=bool)
    first = np.clip(np.ceil(seg[:, 0] / pitch_um - 0.5 - 1e-9), 0, n_cols).astype(np.int64)
    last = np.clip(np.floor(seg[:, 1] / pitch_um - 0.5 + 1e-9), -1, n_cols - 1).astype(np.int64)
    counts = np.maximum(last - first + 1, 0)
    item = np.repeat(np.arange(counts.size), counts)
    col = first[item] + np.arange(item.size) - np.repeat(np.cumsum(counts) - counts, counts)
    filled[k[item], row[item], col] = True
    top = np.argmin(np.concatenate([filled, np.zeros((1, n_rows, n_cols), dtype=bool)]), axis=0)  # first empty
    holes = filled & (np.arange(n_k)[:, None, None] >= top[None])
    if np.any(holes):
        _, i, j = (int(v[0]) for v in np.nonzero(holes))
        raise GwlError(f"pixel (row {i}, col {j}) has unwritten slices below written ones: not a height field")
    if np.any(top == 0):
        i, j = (int(v[0]) for v in np.nonzero(top == 0))
        raise GwlError(f"pixel (row {i}, col {j}) has nothing written at z = {floor_m * 1e6:.6g} um")
    return grid_um(top, slicing_m) / _UM_PER_M


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
