"""Grayscale height maps as export formats: 16-bit PNG/TIFF (``png``, ``tiff``), 8-bit PNG/BMP (``png8``, ``bmp``).

One map per mask; heights read back within half a grey step (at least ``HEIGHT_TOLERANCE_M``). The 8-bit maps
are always full-scale (the tallest level is the top grey); the 16-bit ones with ``full_scale``, else at the
whole-nm scale of the level table. BMP carries no scale: it is read from the fab sheet (``extra.bmp``).
See :mod:`quaton_fab.fab.formats.heightmap`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from quaton_fab.fab.formats.heightmap import (
    bmp_meta_in_sheet,
    level_greys,
    read_height_bmp,
    read_height_png,
    read_height_tiff,
    write_height_bmp,
    write_height_png,
    write_height_tiff,
)
from quaton_fab.fab.formats.spec import (
    FormatSpec, Reader, ReadBack, ReadJob, WriteJob, grey_tolerance_m, jsonable, read_mask_set,
)

__all__ = ["PNG", "TIFF", "PNG8", "BMP"]

#: A map reader: (path, metadata from the writer or the fab sheet, or None) → (heights (m), metadata).
MapReader = Callable[[Path, "dict | None"], "tuple[np.ndarray, dict]"]


def _files(pattern: str) -> Callable[[int, bool], list[str]]:
    def files(masks: int, stack: bool) -> list[str]:
        return [pattern.format(l) for l in range(1, masks + 1)]

    return files


def _writer(fmt: str, pattern: str, write: Callable[..., dict], read: MapReader, bits: int,
            always_full: bool) -> Callable[[WriteJob], None]:
    def write_maps(job: WriteJob) -> None:
        """One ``bits``-bit map per mask, every mask on the sheet's grey per level; each read back."""
        g, heights = job.design.geometry, job.heights_m
        snapped = np.asarray(job.table.snapped_height_m)
        full = True if always_full else job.full_scale
        greys, scale_nm = level_greys(snapped, bits, full_scale=full, invert=job.invert)
        job.extra.setdefault("grayscale", {})[fmt] = {"bit_depth": bits, "full_scale": bool(full),
                                                      "inverted": job.invert, "height_per_grey_nm": scale_nm,
                                                      "level_greys": greys}
        kwargs: dict[str, Any] = {"pitch_m": g.pitch_m, "invert": job.invert}
        if fmt != "bmp":
            kwargs["bit_depth"] = bits
        if full:  # one scale for every mask: the tallest level is the top grey
            kwargs.update(full_scale=True, top_m=float(snapped.max()))
        else:  # the whole-nm scale of the level table, so every mask's greys are the sheet's level greys
            kwargs["scale_nm"] = int(round(scale_nm))
        for l in range(g.layers):
            path = job.folder / pattern.format(l + 1)
            meta = {**write(path, heights[l], **kwargs), "file": path.name}
            back, _ = read(path, meta)
            error = float(np.max(np.abs(back - heights[l])))
            tolerance = grey_tolerance_m(meta)
            job.checks[f"{fmt} mask {l + 1}: heights read back within {tolerance * 1e9:.3g} nm"] = bool(
                error <= tolerance)
            job.extra.setdefault(fmt, []).append(jsonable(meta))
            job.written.append(path)

    return write_maps


def _reader(pattern: str, label: str, read: MapReader, meta_from_sheet: bool) -> Callable[[ReadJob], ReadBack | None]:
    def read_maps(job: ReadJob) -> ReadBack | None:
        """Every mask's map (the scale from its own metadata, or from the sheet read once for BMP)."""
        def load(path: Path) -> tuple[np.ndarray, float]:
            meta = bmp_meta_in_sheet(job.sheet, path) if meta_from_sheet and job.sheet is not None else None
            heights, meta = read(path, meta)
            return heights, grey_tolerance_m(meta)

        return read_mask_set(job, pattern, label, load)

    return read_maps


def _spec(fmt: str, pattern: str, write: Callable[..., dict], read: MapReader, bits: int, *, always_full: bool,
          label: str, plan_rank: int, write_rank: int, meta_from_sheet: bool = False) -> FormatSpec:
    return FormatSpec(
        name=fmt, files=_files(pattern), write=_writer(fmt, pattern, write, read, bits, always_full),
        readers=(Reader(plan_rank, _reader(pattern, label, read, meta_from_sheet)),),
        tolerance="heights within half a grey step (at least 1 nm)", needs_grid=False,
        sheet_keys=(fmt, "grayscale"), plan_rank=plan_rank, write_rank=write_rank,
    )


def _png(path: Path, meta: dict | None) -> tuple[np.ndarray, dict]:
    return read_height_png(path)


def _tiff(path: Path, meta: dict | None) -> tuple[np.ndarray, dict]:
    return read_height_tiff(path)


PNG = _spec("png", "mask_{}_height.png", write_height_png, _png, 16, always_full=False, label="Pillow",
            plan_rank=3, write_rank=4)
TIFF = _spec("tiff", "mask_{}_height.tif", write_height_tiff, _tiff, 16, always_full=False, label="Pillow",
             plan_rank=4, write_rank=5)
PNG8 = _spec("png8", "mask_{}_height8.png", write_height_png, _png, 8, always_full=True, label="Pillow",
             plan_rank=5, write_rank=6)
BMP = _spec("bmp", "mask_{}_height.bmp", write_height_bmp, read_height_bmp, 8, always_full=True,
            label="Pillow (scale from the fab sheet)", plan_rank=6, write_rank=7, meta_from_sheet=True)
