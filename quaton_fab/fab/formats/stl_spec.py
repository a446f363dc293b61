"""STL as an export format: ``mask_<l>.stl`` per mask and, with ``stack``, ``stack.stl`` (all plates, one solid).

Heights must read back within ``HEIGHT_TOLERANCE_M`` (1 nm); the stack's plates must also lie one plate pitch
apart. See :mod:`quaton_fab.fab.formats.stl` and :mod:`quaton_fab.fab.formats.stack`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from quaton_fab.fab.formats import stack as stack_io
from quaton_fab.fab.formats import stl as stl_io
from quaton_fab.fab.formats.spec import (
    FormatSpec, Reader, ReadBack, ReadJob, WriteJob, jsonable, read_mask_set,
)
from quaton_fab.printing.level_table import HEIGHT_TOLERANCE_M, nearest_levels

__all__ = ["STL"]


def stl_files(masks: int, stack: bool) -> list[str]:
    """``mask_1.stl`` … ``mask_<masks>.stl``, then ``stack.stl`` with ``stack``."""
    return [f"mask_{l}.stl" for l in range(1, masks + 1)] + (["stack.stl"] if stack else [])


def write_stl_files(job: WriteJob) -> None:
    """One watertight height field per mask (and the stack), each read back within 1 nm."""
    g, table, heights = job.design.geometry, job.table, job.heights_m
    for l in range(g.layers):
        path = job.folder / f"mask_{l + 1}.stl"
        stats = stl_io.write_stl(path, heights[l], g.pitch_m, table.base_m, z_grid_m=job.grid_m)
        back = stl_io.read_stl_heights(path, g.neurons, g.pitch_m, table.base_m)
        error = float(np.max(np.abs(back - heights[l])))
        job.checks[f"stl mask {l + 1}: heights read back within 1 nm"] = bool(error <= HEIGHT_TOLERANCE_M)
        job.checks[f"stl mask {l + 1}: watertight volume"] = bool(stats.get("watertight", False))
        job.extra.setdefault("stl", []).append(jsonable(stats))
        job.written.append(path)
    if job.stack:
        _write_stack(job)


def _write_stack(job: WriteJob) -> None:
    """``stack.stl``: all plates at the plate pitch on supports, one manifold body; checked as read back."""
    g, table, heights, grid_m = job.design.geometry, job.table, job.heights_m, job.grid_m
    path = job.folder / "stack.stl"
    plate_pitch_m, reason = stack_io.stack_plate_pitch_m(g.spacing_m, grid_m)
    if grid_m is not None and abs(plate_pitch_m - g.spacing_m) > 1e-12:
        job.warnings.append(
            f"stack: the spacing {g.spacing_m * 1e6:.6g} µm is not a whole number of "
            f"{grid_m * 1e9:.4g} nm slices; plates are stacked {plate_pitch_m * 1e6:.6g} µm apart"
        )
    stats = stack_io.write_stack_stl(path, list(heights), g.pitch_m, table.base_m, plate_pitch_m, z_grid_m=grid_m)
    back, floors_m = stack_io.read_stack_heights(path, g.layers, g.neurons, g.pitch_m, table.base_m)
    error = float(np.max(np.abs(back - heights)))
    spacing_error = float(np.max(np.abs(np.diff(floors_m) - plate_pitch_m))) if g.layers > 1 else 0.0
    job.checks["stl stack: one closed manifold body (manifold3d union)"] = bool(
        stats["watertight"] and stats["bodies"] == 1)
    job.checks["stl stack: volume = plates + supports (no overlapping volume)"] = bool(
        abs(stats["volume_um3"] - stats["expected_volume_um3"]) <= 1e-6 * stats["expected_volume_um3"])
    job.checks["stl stack: every plate's relief read back within 1 nm"] = bool(error <= HEIGHT_TOLERANCE_M)
    job.checks["stl stack: plates spaced by the plate pitch within 1 nm"] = bool(spacing_error <= 1e-9)
    if not stats["aperture_span_ok"]:
        job.warnings.append(
            f"stack: the {g.neurons * g.pitch_m * 1e6:.4g} µm aperture spans more than "
            f"{stack_io.SPAN_RATIO:g} × the {table.base_m * 1e6:.4g} µm plate thickness without support; "
            "the plates may sag (use a thicker --base)"
        )
    job.extra["stack"] = {
        **jsonable(stats),
        "plate_pitch_m": plate_pitch_m,
        "pitch_reason": reason,
        "optics": "d_in and d_out are not part of the part",
    }
    job.written.append(path)


def read_stl_masks(job: ReadJob) -> ReadBack | None:
    """``mask_*.stl``: the heights at the pixel centres (numpy-stl), within 1 nm."""
    g, base_m = job.design.geometry, job.table.base_m

    def load(path: Path) -> tuple[np.ndarray, float]:
        return stl_io.read_stl_heights(path, g.neurons, g.pitch_m, base_m), HEIGHT_TOLERANCE_M

    return read_mask_set(job, "mask_{}.stl", "numpy-stl", load)


def read_stack(job: ReadJob) -> ReadBack | None:
    """``stack.stl``: each plate's relief at the pixel centres, and the plate spacing against the sheet's."""
    if "stack.stl" not in job.listed:
        return None
    g, path = job.design.geometry, job.folder / "stack.stl"
    heights, floors_m = stack_io.read_stack_heights(path, g.layers, g.neurons, g.pitch_m, job.table.base_m)
    item = ReadBack(path.name, "numpy-stl (stack, per plate)", nearest_levels(heights, job.snapped)[0], heights,
                    HEIGHT_TOLERANCE_M)
    pitch_m = job.extra("stack").get("plate_pitch_m")
    if pitch_m is None:
        item.problems.append(f"{path.name}: the fab sheet does not record the plate pitch")
    elif g.layers > 1:
        error_m = float(np.max(np.abs(np.diff(floors_m) - float(pitch_m))))
        if error_m > HEIGHT_TOLERANCE_M:
            item.problems.append(
                f"{path.name}: plates are not {float(pitch_m) * 1e6:.6g} µm apart (off by up to {error_m * 1e9:.3g} nm)"
            )
    return item


STL = FormatSpec(
    name="stl", files=stl_files, write=write_stl_files,
    readers=(Reader(2, read_stl_masks), Reader(7, read_stack)),
    tolerance=f"heights within {HEIGHT_TOLERANCE_M * 1e9:g} nm (the stack: also its plate pitch)",
    needs_grid=False, sheet_keys=("stack",), plan_rank=2, write_rank=2, other_keys=("stl",),
)
