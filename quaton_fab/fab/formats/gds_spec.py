"""GDSII and OASIS as export formats: ``design.gds`` / ``design.oas``, written, read back, and read by verify.

The level map must read back exactly (every pixel's level); see :mod:`quaton_fab.fab.formats.gds` for the
layer mapping.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from quaton_fab.fab.formats import gds as gds_io
from quaton_fab.fab.formats.spec import FormatSpec, Reader, ReadBack, ReadJob, WriteJob, jsonable
from quaton_fab.printing.level_table import HEIGHT_TOLERANCE_M

__all__ = ["GDS", "OAS"]


def _files(fmt: str) -> Callable[[int, bool], list[str]]:
    def files(masks: int, stack: bool) -> list[str]:
        return [f"design.{fmt}"]

    return files


def _writer(fmt: str) -> Callable[[WriteJob], None]:
    def write(job: WriteJob) -> None:
        """``design.<fmt>``: one cell per mask, one layer per level; the level map read back exactly."""
        g, idx, table = job.design.geometry, job.design.level_indices, job.table
        path = job.folder / f"design.{fmt}"
        stats = gds_io.write_gds(path, idx, g.pitch_m, np.asarray(table.snapped_height_m), fmt=fmt,
                                 omit_level0=job.omit_level0)
        back = gds_io.read_gds_levels(path, g.neurons, g.pitch_m, table.n)
        job.checks[f"{fmt}: level map read back exactly"] = bool(np.array_equal(back, idx))
        job.extra[fmt] = jsonable(stats)
        job.extra["layer_map"] = job.extra[fmt]["layers"]
        job.written.append(path)
        if not job.extra[fmt].get("pitch_on_grid", True):
            job.warnings.append(
                f"{fmt}: the pitch {g.pitch_m * 1e9:.4g} nm is not a whole number of nm; pixel "
                "edges are rounded to the 1 nm database grid (by at most 0.5 nm)"
            )

    return write


def _reader(fmt: str, library: str) -> Callable[[ReadJob], ReadBack | None]:
    def read(job: ReadJob) -> ReadBack | None:
        """The level map of ``design.<fmt>`` (None when the sheet does not list it)."""
        name = f"design.{fmt}"
        if name not in job.listed:
            return None
        g = job.design.geometry
        levels = gds_io.read_gds_levels(job.folder / name, g.neurons, g.pitch_m, job.table.n)
        return ReadBack(name, library, levels, job.snapped[levels], HEIGHT_TOLERANCE_M, exact_levels=True)

    return read


def _spec(fmt: str, library: str, rank: int) -> FormatSpec:
    return FormatSpec(
        name=fmt, files=_files(fmt), write=_writer(fmt), readers=(Reader(rank, _reader(fmt, library)),),
        tolerance="the level map exactly", needs_grid=False, sheet_keys=(fmt, "layer_map"),
        plan_rank=rank, write_rank=rank,
    )


GDS = _spec("gds", "gdstk.read_gds", 0)
OAS = _spec("oas", "gdstk.read_oas", 1)
