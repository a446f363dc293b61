"""Export a design for fabrication: level → height table, then GDSII/OASIS, STL and PNG files + fab sheet.

All or nothing: the whole new export directory is built as a hidden staging folder next to it
(``.<name>.staging-<pid>-<random>``): every file is written and read back, files in the old directory that are
not part of an earlier export are carried over (hard links), and the fab sheet is the last file written. Only
then is the staging folder swapped in for the old directory in one step (Linux ``renameat2(RENAME_EXCHANGE)``;
elsewhere two renames) and the old one deleted. A failure, a file in the way or a kill at any point leaves the
export directory either untouched or complete; staging folders of killed exports are removed by the next
export next to them. Existing files are never overwritten without ``force``.

Files (``L`` masks, numbered from 1):

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

import ctypes
import errno
import json
import logging
import os
import shutil
import stat
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from quaton_fab.resources import check_print_grid
from quaton_fab.errors import FabError
from quaton_fab.design import Design
from quaton_fab.fab.formats import gds as gds_io
from quaton_fab.fab.formats import gwl as gwl_io
from quaton_fab.fab.formats import stack as stack_io
from quaton_fab.fab.formats import stl as stl_io
from quaton_fab.fab.formats.heightmap import (
    level_greys,
    read_height_bmp,
    read_height_png,
    read_height_tiff,
    write_height_bmp,
    write_height_png,
    write_height_tiff,
)
from quaton_fab.printing.printability import printability_report
from quaton_fab.printing.printjob import estimate_print
from quaton_fab.printing.level_table import HEIGHT_TOLERANCE_M, LevelTable
from quaton_fab.printing.print_notes import base_on_grid, choice_warnings, snapping_warnings, trained_base_warnings
from quaton_fab.printing.resolve import (
    PrintChoices,
    build_level_table,
    resolve_base_m,
    resolve_material,
    resolve_n_medium,
)
from quaton_fab.printing.printer import (
    SLICING_CONVENTION,
    PrinterProfile,
    get_profile,
    grid_um,
    slice_counts,
)
from quaton_fab.fab.sheet import JSON_NAME as JSON_SHEET
from quaton_fab.fab.sheet import MD_NAME as MD_SHEET
from quaton_fab.fab.sheet import build_fab_sheet, file_entry, write_fab_sheet
from quaton_fab.fab.report_html import REPORT_NAME, write_design_report

__all__ = ["ExportOptions", "ExportResult", "ExportError", "export_design", "FORMATS", "planned_files"]

log = logging.getLogger(__name__)

FORMATS = ("stl", "gds", "oas", "png", "tiff", "png8", "bmp", "gwl")


class ExportError(FabError):
    """An export that cannot be made as asked (existing files, medium mismatch, unknown format, …)."""


@dataclass(frozen=True)
class ExportOptions:
    """What to export and for which material.

    Attributes:
        formats: any of ``stl``, ``gds``, ``oas``, ``png``, ``tiff``, ``gwl`` (Nanoscribe jobs; needs a printer
            with a slicing grid).
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

    formats: tuple[str, ...] = FORMATS
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
        unknown = [f for f in self.formats if f not in FORMATS]
        if unknown or not self.formats:
            bad = unknown[0] if unknown else "(none)"
            raise ExportError(f"unknown export format {bad!r}; use {', '.join(FORMATS)}")
        if (self.z_step_m is not None and self.slicing_distance_m is not None
                and abs(self.z_step_m - self.slicing_distance_m) > 1e-15):
            raise ExportError(
                f"--z-step {self.z_step_m * 1e9:.4g} nm and --slicing-distance {self.slicing_distance_m * 1e9:.4g} nm "
                "name the same printer step with different values; give one of them"
            )


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


#: File name pattern of each grayscale height-map format.
_GRAYSCALE_NAMES = {"png": "mask_{}_height.png", "tiff": "mask_{}_height.tif", "png8": "mask_{}_height8.png",
                    "bmp": "mask_{}_height.bmp"}


def planned_files(design: Design, options: ExportOptions) -> list[str]:
    """Names of the files an export will write (fab sheet included)."""
    masks = range(1, design.num_masks + 1)
    names: list[str] = []
    if "gds" in options.formats:
        names.append("design.gds")
    if "oas" in options.formats:
        names.append("design.oas")
    if "stl" in options.formats:
        names += [f"mask_{l}.stl" for l in masks]
        if options.stack:
            names.append("stack.stl")
    for fmt, name in _GRAYSCALE_NAMES.items():
        if fmt in options.formats:
            names += [name.format(l) for l in masks]
    if "gwl" in options.formats:
        names += [f"mask_{l}.gwl" for l in masks]
        if options.stack:
            names.append("stack.gwl")
    if options.report:
        names.append(REPORT_NAME)
    return names + ["fab_sheet.json", "fab_sheet.md"]


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
    if out.exists() and not out.is_dir():
        raise ExportError(f"export target {str(out)!r} exists and is not a directory")
    names = planned_files(design, options)
    in_way = [n for n in names if (out / n).exists() and not (out / n).is_file()]
    if in_way:
        raise ExportError(
            f"{str(out / in_way[0])!r} is in the way (not a regular file); remove it or use another --out"
        )
    if not options.force:
        clashes = [n for n in names if (out / n).exists()]
        if clashes:
            raise ExportError(f"{str(out / clashes[0])!r} already exists; use --force to overwrite or another --out")
    if ("stl" in options.formats) and export_base_m(design, options) <= 0:
        raise ExportError(f"STL export needs a base slab thicker than 0 (got base = {options.base_m} m)")
    previous = _previous_export_files(out)
    table, warnings = export_level_table(design, options)
    printer = export_printer(options)
    if "gwl" in options.formats and (table.z_step_m is None or printer.hatching_distance_m is None):
        raise ExportError(
            f"--format gwl needs a printer with a slicing and hatching grid; profile {printer.name!r} has none "
            "(use --printer 2pp-63x-ip-dip or give --slicing-distance and --hatching-distance)"
        )
    check_print_grid(  # slicing planes and GWL lines are bounded before any file is written
        table.base_m + float(np.max(table.snapped_height_m)), design.geometry.neurons * design.geometry.pitch_m,
        table.z_step_m, printer.hatching_distance_m if "gwl" in options.formats else None,
        "--slicing-distance/--hatching-distance", parts=design.geometry.layers * (2 if options.stack else 1))

    target = Path(os.path.realpath(out))  # the directory itself, also when --out is a symbolic link to it
    if target == target.parent:
        raise ExportError(f"cannot export into the root directory {str(out)!r}")
    cwd = Path(os.path.realpath(os.getcwd()))
    if cwd == target or target in cwd.parents:  # the swap would leave the shell in a deleted directory
        raise ExportError(f"cannot export into {str(out)!r}, which holds the current directory; use a sub-folder")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        clean_stale_staging(target)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}{_STAGING}{os.getpid()}-", dir=target.parent))
    except OSError as exc:
        raise ExportError(f"cannot write the export into {str(out)!r}: {exc.strerror or exc}") from None
    try:
        os.chmod(staging, stat.S_IMODE(target.stat().st_mode) if target.is_dir() else 0o777 & ~_umask())
        written, checks, extra = _write_all(design, table, options, staging, printer)
        for fmt in ("gds", "oas"):
            if fmt in extra and not extra[fmt].get("pitch_on_grid", True):
                warnings.append(
                    f"{fmt}: the pitch {design.geometry.pitch_m * 1e9:.4g} nm is not a whole number of nm; pixel "
                    "edges are rounded to the 1 nm database grid (by at most 0.5 nm)"
                )
        warnings.extend(extra.pop("_warnings", []))
        extra["warnings"] = list(warnings)
        if options.command:
            extra["command"] = options.command
        sheet = build_fab_sheet(
            table,
            pitch_m=design.geometry.pitch_m,
            neurons=design.geometry.neurons,
            layers=design.geometry.layers,
            spacing_m=design.geometry.spacing_m,
            d_in_m=design.geometry.d_in_m,
            d_out_m=design.geometry.d_out_m,
            files=written,
            checks=checks,
            extra=extra,
            root=staging,
        )
        if options.report:  # rendered from the sheet above; listed (with its hash) in the sheet written last
            write_design_report(staging, sheet, design.level_indices, export_name=target.name)
            sheet["files"].append(file_entry(staging / REPORT_NAME, staging))
        failed = [name for name, ok in checks.items() if ok is False]
        if failed:
            raise ExportError(f"exported files failed their read-back checks: {', '.join(failed)}")
        if target.is_dir():  # keep what is not ours; files of the earlier export (and ours) are replaced
            _carry_over(target, staging, skip=set(previous) | set(names))
        write_fab_sheet(staging, sheet)  # the last write: a directory with a fab sheet is complete
        _swap_in(staging, target)
    except OSError as exc:
        raise ExportError(_os_error_message(exc, staging, out)) from None
    finally:
        # After the swap this holds the previous export; after a failure, the unfinished new one.
        shutil.rmtree(staging, ignore_errors=True)
    final = [out / name for name in names]
    log.info("exported %d files to %s", len(final), out)
    return ExportResult(files=final, sheet=sheet, table=table, warnings=warnings)


_STAGING = ".staging-"
#: Staging folders of an older quaton-fab (``.<name>.<random>.staging``) older than this are removed.
_LEGACY_STAGING_AGE_S = 3600.0


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return pid > 0
    return True


def clean_stale_staging(target: Path) -> list[Path]:
    """Remove staging folders next to ``target`` left by killed exports; return what was removed.

    A folder ``.<name>.staging-<pid>-…`` is stale when process ``pid`` no longer runs. If ``target`` itself is
    missing (a kill between the two renames of the non-Linux swap), the previous export set aside as
    ``…-old-…`` is put back instead of being deleted.
    """
    parent, name = target.parent, target.name
    removed: list[Path] = []
    try:
        entries = sorted(parent.iterdir())
    except OSError:
        return removed
    for entry in entries:
        entry_name = entry.name
        prefix = f".{name}{_STAGING}"
        if entry_name.startswith(prefix):
            pid_text = entry_name[len(prefix):].split("-", 1)[0]
            if not pid_text.isdigit() or _pid_alive(int(pid_text)):
                continue
            if "-old-" in entry_name and not os.path.lexists(target):
                os.rename(entry, target)
                log.warning("restored the previous export %s from %s", target, entry)
                continue
        elif entry_name.startswith(f".{name}.") and entry_name.endswith(".staging"):
            try:
                if time.time() - entry.stat().st_mtime < _LEGACY_STAGING_AGE_S:
                    continue
            except OSError:
                continue
        else:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
            log.info("removed stale export staging folder %s", entry)
    return removed


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst, follow_symlinks=False)
    except OSError:
        shutil.copy2(src, dst, follow_symlinks=False)


def _carry_over(old: Path, new: Path, *, skip: set[str]) -> None:
    """Hard-link (else copy) every entry of ``old`` not named in ``skip`` into ``new`` (user files kept)."""
    for entry in os.scandir(old):
        if entry.name in skip or entry.name in (JSON_SHEET, MD_SHEET):
            continue
        dst = new / entry.name
        if entry.is_symlink():
            os.symlink(os.readlink(entry.path), dst)
        elif entry.is_dir():
            shutil.copytree(entry.path, dst, symlinks=True, copy_function=_link_or_copy)
        else:
            _link_or_copy(entry.path, str(dst))


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two directories (Linux renameat2 with RENAME_EXCHANGE); False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    renameat2.restype = ctypes.c_int
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _swap_in(staging: Path, target: Path) -> None:
    """Make ``staging`` the directory ``target``; afterwards ``staging`` holds the previous one (if any)."""
    if not os.path.lexists(target):
        os.rename(staging, target)
        return
    if _exchange(staging, target):
        return
    aside = Path(tempfile.mkdtemp(prefix=f".{target.name}{_STAGING}{os.getpid()}-old-", dir=target.parent))
    os.rmdir(aside)
    os.rename(target, aside)
    try:
        os.rename(staging, target)
    except OSError:
        os.rename(aside, target)
        raise
    os.rename(aside, staging)


def _os_error_message(exc: OSError, staging: Path, out: Path) -> str:
    """One line for an OS error during export, naming the export directory (never the staging folder)."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    name = exc.filename
    if name is not None:
        path = Path(os.fsdecode(name))
        try:
            relative = path.relative_to(staging)
        except ValueError:
            return f"cannot write the export into {str(out)!r}: {path}: {reason}"
        visible = [p for p in relative.parts if not p.startswith(".")]
        if visible:
            return f"cannot write {str(out / Path(*visible))!r}: {reason}"
    return f"cannot write the export into {str(out)!r}: {reason}"


def _previous_export_files(out: Path) -> list[str]:
    """File names listed by an earlier export's fab sheet in ``out`` (plain names only), else none."""
    sheet = out / "fab_sheet.json"
    if not sheet.is_file():
        return []
    try:
        files = json.loads(sheet.read_text(encoding="utf-8")).get("files", [])
        return [f["name"] for f in files if isinstance(f.get("name"), str) and "/" not in f["name"]]
    except (ValueError, AttributeError, TypeError, KeyError, RecursionError):
        return []


def snapping_rows(table: LevelTable) -> list[dict[str, Any]]:
    """Per level: ideal and printed height (µm), slices (None without a grid) and the phase error (rad)."""
    steps = table.z_steps
    return [
        {
            "k": int(table.k[i]),
            "ideal_height_um": round(float(table.height_m[i]) * 1e6, 9),
            "printed_height_um": round(float(table.snapped_height_m[i]) * 1e6, 9),
            "slices": None if steps is None else int(steps[i]),
            "phase_error_rad": float(table.phase_error_rad[i]),
        }
        for i in range(table.n)
    ]


def stack_plate_pitch_m(spacing_m: float, grid_m: float | None) -> tuple[float, str]:
    """Plate pitch of the stack (m) and the reason, in words.

    The design's spacing is measured between the planes where consecutive reliefs start (the top of each base);
    the next plate's base slab lies inside that gap, exactly as the relief model simulates it, so the plates are
    stacked at the spacing itself (snapped to the slicing grid, if any).
    """
    reason = ("plate pitch = the design's spacing: it is measured between the tops of consecutive bases (where "
              "the reliefs start), and the next plate's base slab lies inside the gap, as in the relief model")
    if grid_m is None:
        return float(spacing_m), reason
    pitch_m = float(grid_um(slice_counts(spacing_m, grid_m), grid_m)) * 1e-6
    return pitch_m, reason + f"; a whole number of {grid_m * 1e9:.4g} nm slices"


def _write_all(
    design: Design, table: LevelTable, options: ExportOptions, folder: Path, printer: PrinterProfile
) -> tuple[list[Path], dict[str, bool | str], dict[str, Any]]:
    """Write the requested files into ``folder``; read each back. Returns files, checks and sheet extras.

    Warnings raised while writing go into ``extra["_warnings"]`` (the caller moves them to the sheet's list).
    """
    g = design.geometry
    idx = design.level_indices
    heights = np.asarray(table.snapped_height_m)[idx]  # (L, N, N) above the base, metres
    grid_m = table.z_step_m  # slicing grid every STL z lies on (None: exact heights)
    written: list[Path] = []
    checks: dict[str, bool | str] = {}
    extra: dict[str, Any] = {
        "_warnings": [],
        "printer": {
            **printer.to_dict(),
            "convention": SLICING_CONVENTION if grid_m is not None else
            "no slicing grid: heights are exported exactly (grayscale printing or lithography)",
        },
        "snapping": {
            "slicing_distance_um": None if grid_m is None else round(grid_m * 1e6, 9),
            "base_um": round(table.base_m * 1e6, 9),
            "base_slices": None if grid_m is None else int(slice_counts(table.base_m, grid_m)),
            "max_abs_phase_error_rad": table.max_abs_phase_error_rad,
            "levels": snapping_rows(table),
        },
        "design": {
            "method": design.method.get("name"),
            "task": design.task.get("kind"),
            "metrics_test": {k: v for k, v in design.metrics.get("test", {}).items() if isinstance(v, (int, float))},
            "software_version": design.software_version,
        },
        "simulation": {
            "mask_model": design.model,
            "oversample": g.oversample,
            "rule_oversample": g.rule_oversample,
            "meets_rule": g.meets_sampling_rule,
            "relief": None if design.relief is None else design.relief.to_dict(),
            "conventions": "light enters through the base slab and leaves through the relief top; spacing, d_in "
            "and d_out are measured from/to the plane where a relief starts (top of its base); the next mask's "
            "base slab lies inside the gap",
        },
        "conventions": {
            "stl": "binary STL in µm; z = build direction; base slab from z = 0 to base; pixel tops at base + h",
            "xy": "x = column · pitch, y = (N − 1 − row) · pitch (image upright), origin at the mask's lower-left",
        },
        # The chosen printer times the job; a printer without a slicing grid (grayscale) is timed as the default.
        "printjob": estimate_print(
            heights, g.pitch_m, table.base_m,
            printer if printer.has_grid and printer.scan_speed_m_per_s and printer.hatching_distance_m else None,
        ).to_dict(),
        "printability": printability_report(idx, g.pitch_m),
    }
    for fmt in ("gds", "oas"):
        if fmt not in options.formats:
            continue
        path = folder / f"design.{fmt}"
        stats = gds_io.write_gds(path, idx, g.pitch_m, np.asarray(table.snapped_height_m), fmt=fmt,
                                 omit_level0=options.omit_level0)
        back = gds_io.read_gds_levels(path, g.neurons, g.pitch_m, table.n)
        checks[f"{fmt}: level map read back exactly"] = bool(np.array_equal(back, idx))
        extra[fmt] = _jsonable(stats)
        extra["layer_map"] = extra[fmt]["layers"]
        written.append(path)
    if "stl" in options.formats:
        for l in range(g.layers):
            path = folder / f"mask_{l + 1}.stl"
            stats = stl_io.write_stl(path, heights[l], g.pitch_m, table.base_m, z_grid_m=grid_m)
            back = stl_io.read_stl_heights(path, g.neurons, g.pitch_m, table.base_m)
            error = float(np.max(np.abs(back - heights[l])))
            checks[f"stl mask {l + 1}: heights read back within 1 nm"] = bool(error <= HEIGHT_TOLERANCE_M)
            checks[f"stl mask {l + 1}: watertight volume"] = bool(stats.get("watertight", False))
            extra.setdefault("stl", []).append(_jsonable(stats))
            written.append(path)
        if options.stack:
            path = folder / "stack.stl"
            plate_pitch_m, reason = stack_plate_pitch_m(g.spacing_m, grid_m)
            if grid_m is not None and abs(plate_pitch_m - g.spacing_m) > 1e-12:
                extra["_warnings"].append(
                    f"stack: the spacing {g.spacing_m * 1e6:.6g} µm is not a whole number of "
                    f"{grid_m * 1e9:.4g} nm slices; plates are stacked {plate_pitch_m * 1e6:.6g} µm apart"
                )
            stats = stack_io.write_stack_stl(path, list(heights), g.pitch_m, table.base_m, plate_pitch_m,
                                             z_grid_m=grid_m)
            back, floors_m = stack_io.read_stack_heights(path, g.layers, g.neurons, g.pitch_m, table.base_m)
            error = float(np.max(np.abs(back - heights)))
            spacing_error = float(np.max(np.abs(np.diff(floors_m) - plate_pitch_m))) if g.layers > 1 else 0.0
            checks["stl stack: one closed manifold body (manifold3d union)"] = bool(
                stats["watertight"] and stats["bodies"] == 1)
            checks["stl stack: volume = plates + supports (no overlapping volume)"] = bool(
                abs(stats["volume_um3"] - stats["expected_volume_um3"]) <= 1e-6 * stats["expected_volume_um3"])
            checks["stl stack: every plate's relief read back within 1 nm"] = bool(error <= HEIGHT_TOLERANCE_M)
            checks["stl stack: plates spaced by the plate pitch within 1 nm"] = bool(spacing_error <= 1e-9)
            if not stats["aperture_span_ok"]:
                extra["_warnings"].append(
                    f"stack: the {g.neurons * g.pitch_m * 1e6:.4g} µm aperture spans more than "
                    f"{stack_io.SPAN_RATIO:g} × the {table.base_m * 1e6:.4g} µm plate thickness without support; "
                    "the plates may sag (use a thicker --base)"
                )
            extra["stack"] = {
                **_jsonable(stats),
                "plate_pitch_m": plate_pitch_m,
                "pitch_reason": reason,
                "optics": "d_in and d_out are not part of the part",
            }
            written.append(path)
    if "gwl" in options.formats:
        _write_gwl_jobs(design, table, options, folder, printer, heights, written, checks, extra)
    snapped = np.asarray(table.snapped_height_m)
    for fmt, write, read, bits, full in (
        ("png", write_height_png, read_height_png, 16, options.full_scale),
        ("tiff", write_height_tiff, read_height_tiff, 16, options.full_scale),
        ("png8", write_height_png, read_height_png, 8, True),
        ("bmp", write_height_bmp, read_height_bmp, 8, True),
    ):
        if fmt not in options.formats:
            continue
        greys, scale_nm = level_greys(snapped, bits, full_scale=full, invert=options.invert)
        extra.setdefault("grayscale", {})[fmt] = {"bit_depth": bits, "full_scale": bool(full),
                                                  "inverted": options.invert, "height_per_grey_nm": scale_nm,
                                                  "level_greys": greys}
        kwargs: dict[str, Any] = {"pitch_m": g.pitch_m, "invert": options.invert}
        if fmt != "bmp":
            kwargs["bit_depth"] = bits
        if full:  # one scale for every mask: the tallest level is the top grey
            kwargs.update(full_scale=True, top_m=float(snapped.max()))
        else:  # the whole-nm scale of the level table, so every mask's greys are the sheet's level greys
            kwargs["scale_nm"] = int(round(scale_nm))
        for l in range(g.layers):
            path = folder / _GRAYSCALE_NAMES[fmt].format(l + 1)
            meta = {**write(path, heights[l], **kwargs), "file": path.name}
            back, _ = read(path, meta) if fmt == "bmp" else read(path)
            error = float(np.max(np.abs(back - heights[l])))
            # half a grey step; a height exactly between two greys rounds either way (float noise: 1e-9 relative)
            tolerance = max(HEIGHT_TOLERANCE_M, 0.5 * float(meta["height_per_grey_m"]) * (1 + 1e-9))
            checks[f"{fmt} mask {l + 1}: heights read back within {tolerance * 1e9:.3g} nm"] = bool(error <= tolerance)
            extra.setdefault(fmt, []).append(_jsonable(meta))
            written.append(path)
    return written, checks, extra


def _gwl_provenance(design: Design, table: LevelTable) -> list[str]:
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


def _write_gwl_jobs(
    design: Design, table: LevelTable, options: ExportOptions, folder: Path, printer: PrinterProfile,
    heights: np.ndarray, written: list[Path], checks: dict[str, bool | str], extra: dict[str, Any],
) -> None:
    """Write ``mask_<l>.gwl`` (and ``stack.gwl``), read each back into heights and check them (see fab/gwl.py)."""
    g = design.geometry
    step_m = float(table.z_step_m)
    provenance = _gwl_provenance(design, table)
    info: dict[str, Any] = {
        "files": [], "slicing_um": round(step_m * 1e6, 9),
        "hatching_um": round(float(printer.hatching_distance_m) * 1e6, 9),
        "lines": {}, "slices": {}, "line_spacing_um": {},
        "convention": "slice k (k·Δz…(k+1)·Δz) written at z = (k + ½)·Δz; lines along +x, each pixel row holding "
        "ceil(pitch/hatching) evenly spaced lines, so the hatched area of a slice equals its region's area",
    }
    for l in range(g.layers):
        name = f"mask_{l + 1}.gwl"
        columns = gwl_io.mask_columns(heights[l], g.pitch_m, table.base_m, step_m)
        stats = gwl_io.write_gwl(folder / name, columns, printer,
                                 provenance=[*provenance, f"mask {l + 1} of {g.layers}"])
        job = gwl_io.read_gwl(folder / name)
        back = gwl_io.rasterise_tops(job, g.neurons, g.neurons, g.pitch_m, step_m) - table.base_m
        checks[f"gwl mask {l + 1}: heights read back within 1 nm"] = bool(
            np.max(np.abs(back - heights[l])) <= HEIGHT_TOLERANCE_M)
        tops = slice_counts(table.base_m + heights[l], step_m)
        pixel_um2 = (g.pitch_m * 1e6) ** 2
        expected = np.array([np.count_nonzero(tops > k) * pixel_um2 for k in range(stats["slices"])])
        checks[f"gwl mask {l + 1}: hatched area of every slice = its pixels' area"] = bool(
            np.allclose(job.hatched_area_um2(step_m, stats["line_spacing_um"]), expected, rtol=1e-9, atol=1e-9))
        info["files"].append(name)
        info["lines"][name], info["slices"][name] = stats["lines"], stats["slices"]
        info["line_spacing_um"][name] = stats["line_spacing_um"]
        written.append(folder / name)
    if options.stack:
        name = "stack.gwl"
        plate_pitch_m, _ = stack_plate_pitch_m(g.spacing_m, step_m)
        maps, layout = stack_io.plan_stack(list(heights), g.pitch_m, table.base_m, plate_pitch_m, z_grid_m=step_m)
        columns = gwl_io.stack_columns(maps, g.pitch_m, table.base_m, step_m, layout)
        stats = gwl_io.write_gwl(folder / name, columns, printer,
                                 provenance=[*provenance, f"stack of {g.layers} plates, {layout.plate_pitch_um:.6g} "
                                             f"um apart, on {layout.pillar_xy_um.shape[0]} supports per gap"])
        back = read_gwl_stack(folder / name, g.layers, g.neurons, g.pitch_m, table.base_m, step_m,
                              layout.plate_floors_um * 1e-6)
        checks["gwl stack: every plate's relief read back within 1 nm"] = bool(
            np.max(np.abs(back - heights)) <= HEIGHT_TOLERANCE_M)
        info["files"].append(name)
        info["lines"][name], info["slices"][name] = stats["lines"], stats["slices"]
        info["stack_plate_floors_um"] = layout.plate_floors_um.tolist()
        written.append(folder / name)
    extra["gwl"] = info


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


def _jsonable(value: Any) -> Any:
    """Plain JSON types for the fab sheet (numpy scalars/arrays → lists; paths dropped: files are listed apart)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items() if k != "path"}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return value.name
    return value
