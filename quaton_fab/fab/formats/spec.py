"""What one export format is: its spec, the write job its writer gets and what its read-back gives.

A :class:`FormatSpec` holds everything the export and ``verify`` need to know about one format: the file names
it writes, its writer, its readers (each giving one :class:`ReadBack`), its read-back tolerance in words,
whether it needs a slicing grid, and the fab-sheet ``extra`` sections it fills. The specs themselves live in
:mod:`quaton_fab.fab.formats.registry`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from quaton_fab.design import Design
from quaton_fab.errors import FabError
from quaton_fab.printing.level_table import HEIGHT_TOLERANCE_M, LevelTable, nearest_levels
from quaton_fab.printing.printer import PrinterProfile

__all__ = ["FormatSpec", "Reader", "ReadBack", "ReadBackError", "ReadJob", "WriteJob", "grey_tolerance_m",
           "jsonable", "read_mask_set"]


class ReadBackError(FabError):
    """The fab sheet lists files that cannot be read back as one format (a partial set, a missing record)."""


@dataclass
class WriteJob:
    """What a format's writer gets, and where it puts what it wrote.

    Attributes:
        design, table, printer: the design, its level table and the printer profile of the export.
        folder: the folder the files go into (the export's staging folder).
        stack, omit_level0, invert, full_scale: the export options of the same names.
        written: files written so far (paths in ``folder``), in fab-sheet order.
        checks: read-back checks, name → passed.
        extra: the fab sheet's ``extra`` sections (each format fills its own, see ``FormatSpec.sheet_keys``).
        warnings: warnings for the user raised while writing.
    """

    design: Design
    table: LevelTable
    printer: PrinterProfile
    folder: Path
    stack: bool = False
    omit_level0: bool = False
    invert: bool = False
    full_scale: bool = False
    written: list[Path] = field(default_factory=list)
    checks: dict[str, bool | str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @cached_property
    def heights_m(self) -> np.ndarray:
        """Printed relief above the base of every pixel (m, (L, N, N)): the snapped level heights."""
        return np.asarray(self.table.snapped_height_m)[self.design.level_indices]

    @property
    def grid_m(self) -> float | None:
        """The slicing grid every z lies on (m; None: exact heights)."""
        return self.table.z_step_m


@dataclass(frozen=True)
class ReadJob:
    """What a format's reader gets: the export folder, the level table and the fab sheet as read (once).

    Attributes:
        listed: the file names the fab sheet lists (only those are read).
        sheet: the fab sheet (None: not given; readers needing it then read what lies next to the files).
    """

    design: Design
    folder: Path
    table: LevelTable
    listed: frozenset[str]
    sheet: Mapping[str, Any] | None = None

    @property
    def snapped(self) -> np.ndarray:
        """The printed level heights above the base (m, (n,))."""
        return np.asarray(self.table.snapped_height_m)

    def extra(self, key: str) -> dict[str, Any]:
        """The fab sheet's ``extra[key]`` section ({} when absent or no sheet)."""
        value = ((self.sheet or {}).get("extra") or {}).get(key)
        return value if isinstance(value, dict) else {}


@dataclass
class ReadBack:
    """One exported format read back: level map and relief heights above the base, both (L, N, N).

    Attributes:
        label: the file (or the per-mask pattern, ``*`` for the mask number).
        reader: the library or reader that read it, in words.
        tolerance_m: largest accepted height error (m).
        exact_levels: the level map itself must equal the design's (GDS/OASIS, the report).
    """

    label: str
    reader: str
    levels: np.ndarray
    heights_m: np.ndarray
    tolerance_m: float
    problems: list[str] = field(default_factory=list)
    exact_levels: bool = False


@dataclass(frozen=True)
class Reader:
    """One read-back of a format: ``read(job)`` gives a :class:`ReadBack`, or None when its files are not listed.

    ``rank`` places its row among all formats' rows (verify's table keeps the order of earlier versions).
    """

    rank: int
    read: Callable[[ReadJob], ReadBack | None]


@dataclass(frozen=True)
class FormatSpec:
    """Everything the export and verify know about one format.

    Attributes:
        name: the format's name (``--format``).
        files: ``files(masks, stack)`` → the file names it writes, in the order the export lists them.
        write: ``write(job)`` writes them into ``job.folder``, reads each back and records the checks.
        readers: its read-backs for verify.
        tolerance: the read-back tolerance, in words.
        needs_grid: it needs a printer with a slicing (and hatching) grid.
        sheet_keys: the fab sheet's ``extra`` sections it fills that the fab sheet renders as sections.
        plan_rank: its place in the list of planned files (the CLI's "wrote" lines).
        write_rank: its place in the write order (the fab sheet's file list and sections).
        other_keys: ``extra`` sections it fills that the fab sheet lists under "Other" (pointing to the JSON).
    """

    name: str
    files: Callable[[int, bool], list[str]]
    write: Callable[[WriteJob], None]
    readers: tuple[Reader, ...]
    tolerance: str
    needs_grid: bool
    sheet_keys: tuple[str, ...]
    plan_rank: int
    write_rank: int
    other_keys: tuple[str, ...] = ()


def grey_tolerance_m(meta: Mapping[str, Any]) -> float:
    """Read-back tolerance of a grayscale map (m): half a grey step, at least ``HEIGHT_TOLERANCE_M``.

    A height exactly between two greys rounds either way (float noise: 1e-9 relative).
    """
    return max(HEIGHT_TOLERANCE_M, 0.5 * float(meta["height_per_grey_m"]) * (1 + 1e-9))


def read_mask_set(
    job: ReadJob, pattern: str, reader: str, load: Callable[[Path], tuple[np.ndarray, float]]
) -> ReadBack | None:
    """The per-mask files ``pattern.format(l)`` (l = 1…L) read with ``load`` (→ heights (m), tolerance (m)).

    None when the sheet lists none of them; :class:`ReadBackError` when it lists only some.
    """
    names = [pattern.format(l) for l in range(1, job.design.geometry.layers + 1)]
    present = [n in job.listed for n in names]
    if not any(present):
        return None
    if not all(present):
        raise ReadBackError(f"the fab sheet lists {names[present.index(True)]} but not {names[present.index(False)]}")
    loaded = [load(job.folder / n) for n in names]
    heights = np.stack([h for h, _ in loaded])
    return ReadBack(pattern.format("*"), reader, nearest_levels(heights, job.snapped)[0], heights,
                    max(t for _, t in loaded))


def jsonable(value: Any) -> Any:
    """Plain JSON types for the fab sheet (numpy scalars/arrays → lists; paths dropped: files are listed apart)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items() if k != "path"}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return value.name
    return value
