"""A GWL job read back: the parser, the checks of its header and volume, and its tops rasterised per pixel.

Reads only jobs as :mod:`quaton_fab.fab.formats.gwl` writes them (the commands listed there).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from quaton_fab.errors import FabError
from quaton_fab.printing.printer import grid_um, slice_counts

__all__ = ["GwlError", "GwlJob", "read_gwl", "job_settings", "check_job", "rasterise_tops", "fmt_um"]

_UM_PER_M = 1e6
_DIGITS = 4  # coordinates written to 0.1 nm


class GwlError(FabError):
    """A GWL job that cannot be written (no slicing grid) or a file that is not a job this module wrote."""


def fmt_um(value: float) -> str:
    """A coordinate as the job writes it: at most 0.1 nm digits, no trailing zeros (``-0`` → ``0``)."""
    text = f"{value:.{_DIGITS}f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


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
        "LaserPower": fmt_um(float(power) if power is not None else 50.0),
        "ScanSpeed": fmt_um(float(speed) * _UM_PER_M if speed else 10000.0),
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
