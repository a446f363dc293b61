"""Export a design for fabrication: level → height table, then GDSII/OASIS, STL and PNG files + fab sheet.

All or nothing: the whole new export directory is built as a hidden staging folder next to it
(``.<name>.staging-<pid>-<random>``): every file is written and read back, files in the old directory that are
not part of an earlier export are carried over (hard links), and the fab sheet is the last file written. Only
then is the staging folder swapped in for the old directory in one step (Linux ``renameat2(RENAME_EXCHANGE)``;
elsewhere two renames) and the old one deleted. A failure, a file in the way or a kill at any point leaves the
export directory either untouched or complete; staging folders of killed exports are removed by the next
export next to them (the transaction: :mod:`quaton_fab.fab.staging`). Existing files are never overwritten
without ``force``.

Files (``L`` masks, numbered from 1; each format is one spec of :mod:`quaton_fab.fab.formats.registry`, which
names its files, writes and reads them back):

* ``design.gds`` / ``design.oas`` — one cell per mask (``MASK_1``…), one layer per level, a ``TOP`` cell with
  all masks side by side (see :mod:`quaton_fab.fab.formats.gds` for the layer mapping);
* ``mask_<l>.stl`` — one watertight height field per mask, binary STL in µm, base slab from z = 0;
* ``stack.stl`` (with ``stack=True``) — all masks at the design spacings on spacers outside the aperture;
* ``mask_<l>_height.png`` / ``.tif`` — 16-bit grayscale maps of the relief above the base slab (for grayscale
  lithography; scale in the PNG text chunks / TIFF ImageDescription and in the fab sheet; ``full_scale`` uses the
  whole 16-bit range);
* ``mask_<l>_height8.png`` / ``mask_<l>_height.bmp`` (formats ``png8``, ``bmp``) — 8-bit full-scale maps (the
  tallest level is grey 255; one grey per level for every mask; BMP's scale only in the fab sheet); ``invert``
  stores 255 − grey (65535 − grey) in every grayscale map, for positive resists;
* ``report.html`` (unless ``report=False``) — the design report, one self-contained page (see
  :mod:`quaton_fab.fab.report_html`);
* ``fab_sheet.json`` + ``fab_sheet.md`` — the level table, material, geometry, files and checks.
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from quaton_fab.resources import check_print_grid
from quaton_fab.errors import FabError
from quaton_fab.design import Design
from quaton_fab.fab.export_extra import sheet_extra
from quaton_fab.fab.formats.registry import (
    FORMATS, REGISTRY, grid_free, needs_grid, planned_names, write_formats,
)
from quaton_fab.fab.formats.spec import WriteJob
from quaton_fab.fab.staging import (
    STAGING, carry_over, clean_stale_staging, os_error_message, previous_export_files, swap_in, umask,
)
from quaton_fab.printing.level_table import LevelTable
from quaton_fab.printing.printer import PrinterProfile, get_profile, slice_counts
from quaton_fab.printing.print_notes import base_on_grid, choice_warnings, snapping_warnings, trained_base_warnings
from quaton_fab.printing.resolve import (
    PrintChoices,
    build_level_table,
    resolve_base_m,
    resolve_material,
    resolve_n_medium,
)
from quaton_fab.fab.sheet import JSON_NAME as JSON_SHEET
from quaton_fab.fab.sheet import MD_NAME as MD_SHEET
from quaton_fab.fab.sheet import build_fab_sheet, file_entry, write_fab_sheet
from quaton_fab.fab.report_html import REPORT_NAME, write_design_report

__all__ = ["ExportOptions", "ExportResult", "ExportError", "export_design", "FORMATS", "planned_files"]

log = logging.getLogger(__name__)


class ExportError(FabError):
    """An export that cannot be made as asked (existing files, medium mismatch, unknown format, …)."""


@dataclass(frozen=True)
class ExportOptions:
    """What to export and for which material.

    Attributes:
        formats: names in :data:`~quaton_fab.fab.formats.registry.REGISTRY` (``gwl`` needs a printer with a
            slicing grid); None: every format the printer can take (all of them, or those without a slicing grid
            for a grayscale printer).
        material: material spec (``ip-dip``, ``fused-silica``, ``n=1.52`` …); default: the material the design
            was trained for (``design.fabrication``), else IP-Dip.
        medium: medium around the masks (name or index); default the design's ``n_medium``.
        base_m: base slab thickness under every pixel (m, > 0; the STL needs it, the height maps do not show it);
            default: the base the design was trained through (relief model), else 2 µm.
        z_step_m: printer height step (m), the same thing as ``slicing_distance_m`` (kept as its older name).
        printer: printer profile name (:mod:`quaton_fab.printing.printer`; default ``2pp-63x-ip-dip``): its slicing
            distance is the z-step every exported top (base included) is put on; ``grayscale`` keeps exact heights.
        slicing_distance_m, hatching_distance_m: overrides of the profile's slicing / hatching distance (m).
        stack: also write ``stack.stl`` with all masks at the design spacings.
        omit_level0: leave level 0 (the base top) out of GDS/OASIS.
        invert: grayscale maps store max_grey − grey (tallest level black), for positive resists.
        full_scale: 16-bit PNG/TIFF maps use the whole grey range (the 8-bit maps always do).
        force: overwrite existing files.
        report: also write ``report.html`` (:mod:`quaton_fab.fab.report_html`), listed in the fab sheet.
        command: the command line that asked for this export (shown in the report; None: an equivalent one).
    """

    formats: tuple[str, ...] | None = FORMATS
    material: str | None = None
    medium: str | None = None
    base_m: float | None = None
    z_step_m: float | None = None
    printer: str | None = None
    slicing_distance_m: float | None = None
    hatching_distance_m: float | None = None
    stack: bool = False
    omit_level0: bool = False
    invert: bool = False
    full_scale: bool = False
    force: bool = False
    report: bool = True
    command: str | None = None

    def __post_init__(self) -> None:
        if (self.z_step_m is not None and self.slicing_distance_m is not None
                and abs(self.z_step_m - self.slicing_distance_m) > 1e-15):
            raise ExportError(
                f"--z-step {self.z_step_m * 1e9:.4g} nm and --slicing-distance {self.slicing_distance_m * 1e9:.4g} nm "
                "name the same printer step with different values; give one of them"
            )
        if self.formats is None:  # every format the printer can take
            every = FORMATS if export_printer(self).has_grid else grid_free(FORMATS)
            object.__setattr__(self, "formats", every)
        unknown = [f for f in self.formats if f not in REGISTRY]
        if unknown or not self.formats:
            bad = unknown[0] if unknown else "(none)"
            raise ExportError(f"unknown export format {bad!r}; use {', '.join(REGISTRY)}")


def export_printer(options: ExportOptions) -> PrinterProfile:
    """The printer profile of an export: the named (or default) profile with the slicing/hatching overrides."""
    slicing = options.slicing_distance_m if options.slicing_distance_m is not None else options.z_step_m
    return get_profile(options.printer).with_overrides(
        slicing_distance_m=slicing, hatching_distance_m=options.hatching_distance_m
    )


@dataclass
class ExportResult:
    """Files written (final paths), the fab sheet dict and any warnings for the user."""

    files: list[Path]
    sheet: dict[str, Any]
    table: LevelTable
    warnings: list[str] = field(default_factory=list)


def planned_files(design: Design, options: ExportOptions) -> list[str]:
    """Names of the files an export will write (fab sheet included)."""
    names = planned_names(options.formats, design.num_masks, options.stack)
    return names + ([REPORT_NAME] if options.report else []) + [JSON_SHEET, MD_SHEET]


def export_level_table(design: Design, options: ExportOptions) -> tuple[LevelTable, list[str]]:
    """The design's level table for the chosen material/medium/base/z-step, with warnings for the user."""
    g = design.geometry
    trained = design.fabrication or {}
    material = resolve_material(options.material, trained)
    z_step_m = export_printer(options).slicing_distance_m  # None: a grayscale printer keeps exact heights
    warnings = choice_warnings(trained, material, z_step_m, g.wavelength_m)
    n_medium = resolve_n_medium(options.medium, g.wavelength_m, g.n_medium)
    if options.medium is not None and abs(n_medium - g.n_medium) > 1e-3:
        raise ExportError(
            f"medium index {n_medium:.4f} differs from the n_medium = {g.n_medium:.4f} the design was simulated "
            "in; retrain in that medium (or leave --medium out)"
        )
    base_m = export_base_m(design, options)
    if z_step_m is not None:
        if int(slice_counts(base_m, z_step_m)) < 1:
            raise ExportError(
                f"base {base_m * 1e9:.4g} nm is thinner than half a {z_step_m * 1e9:.4g} nm slice; use a base of at "
                "least one slice"
            )
        base_m, notes = base_on_grid(base_m, z_step_m)
        warnings += notes
    warnings += trained_base_warnings(trained.get("base_m") if design.relief is not None else None, base_m)
    if design.relief is None:
        warnings.append(
            "the design was trained with thin masks, not through its printed relief; the printed part may behave "
            "differently (run verify: it simulates the printed object)"
        )
    if not g.meets_sampling_rule:
        warnings.append(
            f"the design was simulated under-sampled (s = {g.oversample} < {g.rule_oversample} required by the "
            "sampling rule): the printed part sends light into angles its model dropped"
        )
    table = build_level_table(design.levels.phases, g.wavelength_m, PrintChoices(material, n_medium, base_m, z_step_m))
    return table, warnings + snapping_warnings(table)


def export_base_m(design: Design, options: ExportOptions) -> float:
    """Base slab (m): the option, else the base the design was trained through, else ``DEFAULT_BASE_M``."""
    return resolve_base_m(options.base_m, design.fabrication)


def export_design(design: Design, out_dir: str | os.PathLike[str], options: ExportOptions) -> ExportResult:
    """Write the fabrication files of ``design`` into ``out_dir`` and check each by reading it back.

    Raises:
        ExportError: existing files without ``force``, medium mismatch, a file that does not read back.
        MaterialError, HeightError: unknown material, n_mat ≤ n_med, bad base or z-step.
    """
    out = Path(out_dir)
    names = planned_files(design, options)
    _check_out(out, names, options.force)
    if ("stl" in options.formats) and export_base_m(design, options) <= 0:
        raise ExportError(f"STL export needs a base slab thicker than 0 (got base = {options.base_m} m)")
    previous = previous_export_files(out)
    table, warnings = export_level_table(design, options)
    printer = export_printer(options)
    _check_printer(design, options, table, printer)
    target, staging = _open_staging(out)
    try:
        os.chmod(staging, stat.S_IMODE(target.stat().st_mode) if target.is_dir() else 0o777 & ~umask())
        job = write_all(design, table, options, staging, printer)
        sheet = _build_sheet(design, table, options, job, warnings, staging, target.name)
        failed = [name for name, ok in job.checks.items() if ok is False]
        if failed:
            raise ExportError(f"exported files failed their read-back checks: {', '.join(failed)}")
        if target.is_dir():  # keep what is not ours; files of the earlier export (and ours) are replaced
            carry_over(target, staging, skip=set(previous) | set(names))
        write_fab_sheet(staging, sheet)  # the last write: a directory with a fab sheet is complete
        swap_in(staging, target)
    except OSError as exc:
        raise ExportError(os_error_message(exc, staging, out)) from None
    finally:
        # After the swap this holds the previous export; after a failure, the unfinished new one.
        shutil.rmtree(staging, ignore_errors=True)
    final = [out / name for name in names]
    log.info("exported %d files to %s", len(final), out)
    return ExportResult(files=final, sheet=sheet, table=table, warnings=warnings)


def _check_out(out: Path, names: list[str], force: bool) -> None:
    """Raise :class:`ExportError` when ``out`` is not a folder, or a planned file is in the way (or exists)."""
    if out.exists() and not out.is_dir():
        raise ExportError(f"export target {str(out)!r} exists and is not a directory")
    in_way = [n for n in names if (out / n).exists() and not (out / n).is_file()]
    if in_way:
        raise ExportError(
            f"{str(out / in_way[0])!r} is in the way (not a regular file); remove it or use another --out"
        )
    if not force:
        clashes = [n for n in names if (out / n).exists()]
        if clashes:
            raise ExportError(f"{str(out / clashes[0])!r} already exists; use --force to overwrite or another --out")


def _check_printer(design: Design, options: ExportOptions, table: LevelTable, printer: PrinterProfile) -> None:
    """Formats needing a slicing grid get one; slicing planes and GWL lines are bounded before any file is written."""
    gridded = needs_grid(options.formats)
    if gridded and (table.z_step_m is None or printer.hatching_distance_m is None):
        raise ExportError(
            f"--format {gridded[0]} needs a printer with a slicing and hatching grid; profile {printer.name!r} has "
            "none (use --printer 2pp-63x-ip-dip or give --slicing-distance and --hatching-distance)"
        )
    check_print_grid(
        table.base_m + float(np.max(table.snapped_height_m)), design.geometry.neurons * design.geometry.pitch_m,
        table.z_step_m, printer.hatching_distance_m if gridded else None,
        "--slicing-distance/--hatching-distance", parts=design.geometry.layers * (2 if options.stack else 1))


def _open_staging(out: Path) -> tuple[Path, Path]:
    """The real export directory and a new staging folder next to it (stale ones of killed exports removed)."""
    target = Path(os.path.realpath(out))  # the directory itself, also when --out is a symbolic link to it
    if target == target.parent:
        raise ExportError(f"cannot export into the root directory {str(out)!r}")
    cwd = Path(os.path.realpath(os.getcwd()))
    if cwd == target or target in cwd.parents:  # the swap would leave the shell in a deleted directory
        raise ExportError(f"cannot export into {str(out)!r}, which holds the current directory; use a sub-folder")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        clean_stale_staging(target)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}{STAGING}{os.getpid()}-", dir=target.parent))
    except OSError as exc:
        raise ExportError(f"cannot write the export into {str(out)!r}: {exc.strerror or exc}") from None
    return target, staging


def write_all(
    design: Design, table: LevelTable, options: ExportOptions, folder: Path, printer: PrinterProfile
) -> WriteJob:
    """Write every requested format into ``folder``, each read back: the job holds files, checks, sheet extras
    and the warnings raised while writing."""
    job = WriteJob(design, table, printer, folder, stack=options.stack, omit_level0=options.omit_level0,
                   invert=options.invert, full_scale=options.full_scale, extra=sheet_extra(design, table, printer))
    write_formats(options.formats, job)
    return job


def _build_sheet(design: Design, table: LevelTable, options: ExportOptions, job: WriteJob, warnings: list[str],
                 staging: Path, export_name: str) -> dict[str, Any]:
    """The fab sheet of the files in ``job`` (and the report, when asked, written into ``staging`` from it).

    ``warnings`` (the level table's) gets the ones raised while writing; the sheet records them all.
    """
    g = design.geometry
    warnings.extend(job.warnings)
    extra = {**job.extra, "warnings": list(warnings)}
    if options.command:
        extra["command"] = options.command
    sheet = build_fab_sheet(
        table, pitch_m=g.pitch_m, neurons=g.neurons, layers=g.layers, spacing_m=g.spacing_m, d_in_m=g.d_in_m,
        d_out_m=g.d_out_m, files=job.written, checks=job.checks, extra=extra, root=staging,
    )
    if options.report:  # rendered from the sheet above; listed (with its hash) in the sheet written last
        write_design_report(staging, sheet, design.level_indices, export_name=export_name)
        sheet["files"].append(file_entry(staging / REPORT_NAME, staging))
    return sheet
