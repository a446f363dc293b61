"""Nanoscribe GWL jobs as an export format: ``mask_<l>.gwl`` per mask and, with ``stack``, ``stack.gwl``.

Needs a printer with a slicing and hatching grid. Heights must read back within ``HEIGHT_TOLERANCE_M`` and the
hatched area of every slice must equal its pixels' area; verify reads every job completely and checks its
header commands and part volume against the sheet's printer (see :mod:`quaton_fab.fab.formats.gwl`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from quaton_fab.design import Design
from quaton_fab.fab.formats import gwl as gwl_io
from quaton_fab.fab.formats import stack as stack_io
from quaton_fab.fab.formats.spec import FormatSpec, Reader, ReadBack, ReadBackError, ReadJob, WriteJob
from quaton_fab.printing.level_table import HEIGHT_TOLERANCE_M, LevelTable, nearest_levels
from quaton_fab.printing.printer import slice_counts

__all__ = ["GWL", "read_gwl_stack"]


def gwl_files(masks: int, stack: bool) -> list[str]:
    """``mask_1.gwl`` … ``mask_<masks>.gwl``, then ``stack.gwl`` with ``stack``."""
    return [f"mask_{l}.gwl" for l in range(1, masks + 1)] + (["stack.gwl"] if stack else [])


def gwl_provenance(design: Design, table: LevelTable) -> list[str]:
    """Header comment lines of a GWL job: where it comes from and what it holds (no timestamp: reproducible)."""
    g = design.geometry
    printed = ", ".join(f"{h * 1e6:.4f}" for h in table.snapped_height_m)
    return [
        f"quaton-fab {design.software_version}: design method {design.method.get('name')}, task "
        f"{design.task.get('kind')}, {g.layers} masks of {g.neurons}x{g.neurons} pixels, "
        f"pitch {g.pitch_m * 1e6:.6g} um",
        f"material {table.material} (n = {table.n_material:.5f} at {table.wavelength_m * 1e9:.4g} nm), medium index "
        f"{table.n_medium:.4f}; base slab {table.base_m * 1e6:.6g} um; level heights above the base (um): {printed}",
    ]


def write_gwl_jobs(job: WriteJob) -> None:
    """Write ``mask_<l>.gwl`` (and ``stack.gwl``), read each back into heights and check them."""
    step_m = float(job.table.z_step_m)
    info: dict[str, Any] = {
        "files": [], "slicing_um": round(step_m * 1e6, 9),
        "hatching_um": round(float(job.printer.hatching_distance_m) * 1e6, 9),
        "lines": {}, "slices": {}, "line_spacing_um": {},
        "convention": "slice k (k·Δz…(k+1)·Δz) written at z = (k + ½)·Δz; lines along +x, each pixel row holding "
        "ceil(pitch/hatching) evenly spaced lines, so the hatched area of a slice equals its region's area",
    }
    provenance = gwl_provenance(job.design, job.table)
    for l in range(job.design.geometry.layers):
        _write_mask_job(job, l, step_m, provenance, info)
    if job.stack:
        _write_stack_job(job, step_m, provenance, info)
    job.extra["gwl"] = info


def _write_mask_job(job: WriteJob, l: int, step_m: float, provenance: list[str], info: dict[str, Any]) -> None:
    """``mask_<l+1>.gwl``: written, read back within 1 nm, every slice's hatched area checked."""
    g, table, heights = job.design.geometry, job.table, job.heights_m
    name = f"mask_{l + 1}.gwl"
    columns = gwl_io.mask_columns(heights[l], g.pitch_m, table.base_m, step_m)
    stats = gwl_io.write_gwl(job.folder / name, columns, job.printer,
                             provenance=[*provenance, f"mask {l + 1} of {g.layers}"])
    read = gwl_io.read_gwl(job.folder / name)
    back = gwl_io.rasterise_tops(read, g.neurons, g.neurons, g.pitch_m, step_m) - table.base_m
    job.checks[f"gwl mask {l + 1}: heights read back within 1 nm"] = bool(
        np.max(np.abs(back - heights[l])) <= HEIGHT_TOLERANCE_M)
    tops = slice_counts(table.base_m + heights[l], step_m)
    pixel_um2 = (g.pitch_m * 1e6) ** 2
    expected = np.array([np.count_nonzero(tops > k) * pixel_um2 for k in range(stats["slices"])])
    job.checks[f"gwl mask {l + 1}: hatched area of every slice = its pixels' area"] = bool(
        np.allclose(read.hatched_area_um2(step_m, stats["line_spacing_um"]), expected, rtol=1e-9, atol=1e-9))
    info["files"].append(name)
    info["lines"][name], info["slices"][name] = stats["lines"], stats["slices"]
    info["line_spacing_um"][name] = stats["line_spacing_um"]
    job.written.append(job.folder / name)


def _write_stack_job(job: WriteJob, step_m: float, provenance: list[str], info: dict[str, Any]) -> None:
    """``stack.gwl``: all plates at the plate pitch on supports; every plate read back within 1 nm."""
    g, table, heights = job.design.geometry, job.table, job.heights_m
    name = "stack.gwl"
    plate_pitch_m, _ = stack_io.stack_plate_pitch_m(g.spacing_m, step_m)
    maps, layout = stack_io.plan_stack(list(heights), g.pitch_m, table.base_m, plate_pitch_m, z_grid_m=step_m)
    columns = gwl_io.stack_columns(maps, g.pitch_m, table.base_m, step_m, layout)
    stats = gwl_io.write_gwl(job.folder / name, columns, job.printer,
                             provenance=[*provenance, f"stack of {g.layers} plates, {layout.plate_pitch_um:.6g} "
                                         f"um apart, on {layout.pillar_xy_um.shape[0]} supports per gap"])
    back = read_gwl_stack(job.folder / name, g.layers, g.neurons, g.pitch_m, table.base_m, step_m,
                          layout.plate_floors_um * 1e-6)
    job.checks["gwl stack: every plate's relief read back within 1 nm"] = bool(
        np.max(np.abs(back - heights)) <= HEIGHT_TOLERANCE_M)
    info["files"].append(name)
    info["lines"][name], info["slices"][name] = stats["lines"], stats["slices"]
    info["stack_plate_floors_um"] = layout.plate_floors_um.tolist()
    job.written.append(job.folder / name)


def read_gwl_stack(
    path: Path, layers: int, neurons: int, pitch_m: float, base_m: float, slicing_m: float, floors_m: np.ndarray,
) -> np.ndarray:
    """Each plate's relief (m, (L, N, N) above its base) from a stack GWL job, plate by plate between floors."""
    job = gwl_io.read_gwl(path)
    out = np.empty((layers, neurons, neurons))
    for l in range(layers):
        ceiling = floors_m[l + 1] if l + 1 < layers else None
        out[l] = gwl_io.rasterise_tops(job, neurons, neurons, pitch_m, slicing_m, floors_m[l], ceiling) - base_m
    return out


def _checked_gwl(path: Path, job: ReadJob, box_um: tuple[float, ...]) -> gwl_io.GwlJob:
    """A GWL job read completely and checked against what the export writes (header commands, part volume)."""
    read = gwl_io.read_gwl(path)
    printer = ((job.sheet or {}).get("extra") or {}).get("printer")
    if not isinstance(printer, dict):
        raise ReadBackError("the fab sheet lists GWL jobs but records no printer profile")
    gwl_io.check_job(read, path, gwl_io.job_settings(printer), box_um)  # type: ignore[arg-type]
    return read


def read_gwl_masks(job: ReadJob) -> ReadBack | None:
    """``mask_*.gwl``: every job read completely and checked, then its tops rasterised at the pixel centres."""
    g, table, snapped = job.design.geometry, job.table, job.snapped
    names = [f"mask_{l}.gwl" for l in range(1, g.layers + 1)]
    if not any(n in job.listed for n in names):
        return None
    if table.z_step_m is None:
        raise ReadBackError("the fab sheet lists GWL jobs but its level table has no slicing distance")
    side_um = g.neurons * g.pitch_m * 1e6
    top_um = (table.base_m + float(np.max(snapped))) * 1e6 + table.z_step_m * 1e6
    box_um = (0.0, side_um, 0.0, side_um, 0.0, top_um)
    heights = np.stack([
        gwl_io.rasterise_tops(_checked_gwl(job.folder / n, job, box_um), g.neurons, g.neurons, g.pitch_m,
                              table.z_step_m) - table.base_m
        for n in names
    ])
    return ReadBack("mask_*.gwl", "quaton-fab GWL reader", nearest_levels(heights, snapped)[0], heights,
                    HEIGHT_TOLERANCE_M)


def read_gwl_stack_job(job: ReadJob) -> ReadBack | None:
    """``stack.gwl``: checked within the stack's frame, each plate read between the sheet's plate floors."""
    if "stack.gwl" not in job.listed:
        return None
    g, table, snapped = job.design.geometry, job.table, job.snapped
    floors_um = job.extra("gwl").get("stack_plate_floors_um")
    if floors_um is None or table.z_step_m is None:
        raise ReadBackError("the fab sheet lists stack.gwl but records no plate floors or slicing distance")
    frame_um = float(job.extra("stack").get("frame_um") or 0.0)
    side_um = g.neurons * g.pitch_m * 1e6
    top_um = (float(np.max(floors_um)) + (table.base_m + float(np.max(snapped)) + table.z_step_m) * 1e6)
    path = job.folder / "stack.gwl"
    _checked_gwl(path, job, (-frame_um, side_um + frame_um, -frame_um, side_um + frame_um, 0.0, top_um))
    heights = read_gwl_stack(path, g.layers, g.neurons, g.pitch_m, table.base_m, table.z_step_m,
                             np.asarray(floors_um) * 1e-6)
    return ReadBack("stack.gwl", "quaton-fab GWL reader (per plate)", nearest_levels(heights, snapped)[0], heights,
                    HEIGHT_TOLERANCE_M)


GWL = FormatSpec(
    name="gwl", files=gwl_files, write=write_gwl_jobs,
    readers=(Reader(8, read_gwl_masks), Reader(9, read_gwl_stack_job)),
    tolerance=f"heights within {HEIGHT_TOLERANCE_M * 1e9:g} nm; every slice's hatched area = its pixels' area",
    needs_grid=True, sheet_keys=("gwl",), plan_rank=7, write_rank=3,
)
