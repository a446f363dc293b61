"""Check a fab sheet before trusting it: its own hash, the design it claims to describe, and its file paths.

``verify`` re-simulates the phases that the files listed in ``fab_sheet.json`` give under the material model
the sheet records. A sheet edited after export (a different index, material or wavelength) would make a wrong
print look verified, and a listed path like ``../x`` or ``/etc/hostname`` would make verify read outside the
export. :func:`check_sheet` therefore requires

* the sheet's ``sheet_sha256`` (SHA-256 of the canonical JSON of every other entry) to match its content;
* every number that describes the print to agree with the design and the material table: wavelength, medium,
  geometry, level phases, the material's index at λ0 (looked up again by name) and the whole level table,
  rebuilt from the design's phases with the recorded base and z-step;
* every listed file to be a plain relative name inside the export directory (no ``..``, no absolute path,
  no symbolic link);
* the grey scale and the grey of every level of each height-map format (``extra.grayscale``, and the scale of
  every listed map, the only record of a BMP's scale) to follow from the rebuilt level table.

The hash catches accidental and careless edits; the design and material checks catch any edit that changes
the physics, whoever recomputed the hash.
"""

from __future__ import annotations

import math
import os
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from quaton_fab.errors import QuatonFabError
from quaton_fab.fab.sheet import JSON_NAME, SHEET_HASH_KEY, level_rows, sheet_digest
from quaton_fab.fab.formats.heightmap import level_greys
from quaton_fab.printing.level_table import LevelTable
from quaton_fab.printing.materials import get_material
from quaton_fab.printing.resolve import PrintChoices, build_level_table

__all__ = ["VerifyError", "check_sheet", "check_file_names"]

#: Relative tolerance for numbers the sheet repeats from the design or the material table (JSON round trips
#: floats exactly; this only absorbs a recomputation in another order).
_REL = 1e-9
#: Medium index: ``export --medium`` may name a medium whose index differs from the design's by up to 1e-3.
_MEDIUM_TOLERANCE = 1e-3


class VerifyError(QuatonFabError):
    """An export directory that cannot be verified (no fab sheet, no files, wrong design, edited sheet)."""



def check_file_names(files: Any, export_dir: str | os.PathLike[str]) -> None:
    """Every listed file must be a plain relative path that stays inside ``export_dir`` without symlinks."""
    root = Path(export_dir)
    if not isinstance(files, list):
        raise VerifyError(f"{JSON_NAME}: 'files' must be a list")
    real_root = Path(os.path.realpath(root))
    for entry in files:
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, str) or not name or "\\" in name or "\x00" in name:
            raise VerifyError(f"{JSON_NAME} lists a file entry without a plain name: {entry!r}")
        pure = PurePosixPath(name)
        if pure.is_absolute() or ".." in pure.parts or name.startswith("~"):
            raise VerifyError(f"{JSON_NAME} lists {name!r}, which is outside the export directory")
        path = root
        for part in pure.parts:
            path = path / part
            if path.is_symlink():
                raise VerifyError(f"{name!r} in the export directory is a symbolic link; verify reads only plain files")
        if not Path(os.path.realpath(root / pure)).is_relative_to(real_root):
            raise VerifyError(f"{JSON_NAME} lists {name!r}, which is outside the export directory")


def _close(a: Any, b: Any, rel: float = _REL, abs_: float = 0.0) -> bool:
    """Nested numbers/strings/None equal (floats within ``rel``/``abs_``); bool is compared exactly."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k], rel, abs_) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_close(x, y, rel, abs_) for x, y in zip(a, b))
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(float(a), float(b), rel_tol=rel, abs_tol=abs_)
    return a == b


def check_sheet(sheet: dict[str, Any], design: Any, export_dir: str | os.PathLike[str]) -> None:
    """Raise :class:`VerifyError` unless ``sheet`` is intact, describes ``design``, and lists only safe paths.

    Args:
        sheet: ``fab_sheet.json`` as read (schema already checked).
        design: the :class:`~quaton_fab.design.Design` the export claims to be of.
        export_dir: the export directory the listed files must stay in.
    """
    recorded = sheet.get(SHEET_HASH_KEY)
    if not isinstance(recorded, str):
        raise VerifyError(f"{JSON_NAME} has no sheet_sha256 (written by an older quaton-fab?); export again")
    if recorded != sheet_digest(sheet):
        raise VerifyError(f"{JSON_NAME} was edited after export: its content no longer matches its sheet_sha256")
    check_file_names(sheet.get("files"), export_dir)
    try:
        _check_against_design(sheet, design)
    except VerifyError:
        raise
    except QuatonFabError as exc:
        raise VerifyError(f"{JSON_NAME} does not rebuild: {exc}") from None
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise VerifyError(f"{JSON_NAME} is malformed ({type(exc).__name__}: {exc})") from None


def _check_against_design(sheet: dict[str, Any], design: Any) -> None:

    g = design.geometry

    def mismatch(what: str, in_sheet: Any, expected: Any, source: str = "the design") -> VerifyError:
        return VerifyError(
            f"{JSON_NAME} records {what} = {in_sheet!r}, but {source} gives {expected!r} "
            "(an edited sheet, or an export of another design)"
        )

    recorded = LevelTable.from_dict(sheet["level_table"])
    if not _close(float(sheet["wavelength_m"]), g.wavelength_m) or not _close(recorded.wavelength_m, g.wavelength_m):
        raise mismatch("wavelength_m", sheet["wavelength_m"], g.wavelength_m)
    n_medium = float(sheet["n_medium"])
    if abs(n_medium - g.n_medium) > _MEDIUM_TOLERANCE or not _close(recorded.n_medium, n_medium):
        raise mismatch("n_medium", n_medium, g.n_medium)
    geometry = sheet["geometry"]
    for key, value in (("pitch_m", g.pitch_m), ("neurons", g.neurons), ("layers", g.layers),
                       ("spacing_m", g.spacing_m), ("d_in_m", g.d_in_m), ("d_out_m", g.d_out_m)):
        if not _close(geometry.get(key), value):
            raise mismatch(f"geometry.{key}", geometry.get(key), value)
    phases = np.asarray(design.levels.phases, dtype=np.float64)
    if recorded.n != phases.size or not np.allclose(recorded.phase_rad, phases, rtol=_REL, atol=1e-12):
        raise mismatch("level phases", recorded.phase_rad.tolist(), phases.tolist())
    name = sheet["material"]["name"]
    if recorded.material != name:
        raise mismatch("level_table.material", recorded.material, name, "material.name")
    material = get_material(name)
    n_material = material.index(g.wavelength_m)
    for what, value in (("material.n", sheet["material"]["n"]), ("level_table.n_material", recorded.n_material)):
        if not _close(float(value), n_material):
            raise mismatch(what, value, n_material, f"the material table for {name} at λ0")
    choices = PrintChoices(material, n_medium, recorded.base_m, recorded.z_step_m)
    rebuilt = build_level_table(phases, g.wavelength_m, choices)
    expected = rebuilt.to_dict()
    for key, value in expected.items():
        if not _close(sheet["level_table"].get(key), value, abs_=1e-15):
            raise mismatch(f"level_table.{key}", sheet["level_table"].get(key), value, "the design's levels")
    if not _close(sheet["levels"], level_rows(rebuilt), abs_=1e-12):
        raise VerifyError(f"{JSON_NAME}: the level rows do not match the level table rebuilt from the design")
    for key, value in (("delta_n", rebuilt.delta_n), ("height_2pi_m", rebuilt.height_2pi_m),
                       ("base_m", rebuilt.base_m), ("z_step_m", rebuilt.z_step_m)):
        if not _close(sheet.get(key), value, abs_=1e-15):
            raise mismatch(key, sheet.get(key), value, "the level table rebuilt from the design")
    _check_grayscale(sheet.get("extra") or {}, np.asarray(rebuilt.snapped_height_m), mismatch)


def _check_grayscale(extra: dict[str, Any], heights_m: np.ndarray, mismatch: Any) -> None:
    """Grey scales and level greys recorded for the height maps must follow from the level heights."""

    for fmt, info in (extra.get("grayscale") or {}).items():
        greys, scale_nm = level_greys(heights_m, int(info["bit_depth"]), full_scale=bool(info["full_scale"]),
                                      invert=bool(info["inverted"]))
        if list(info["level_greys"]) != greys:
            raise mismatch(f"extra.grayscale.{fmt}.level_greys", info["level_greys"], greys, "the level heights")
        if not _close(float(info["height_per_grey_nm"]), scale_nm):
            raise mismatch(f"extra.grayscale.{fmt}.height_per_grey_nm", info["height_per_grey_nm"], scale_nm,
                           "the level heights")
        if not info["full_scale"]:
            continue  # whole-nm maps choose their scale per file; it is stored in each file
        for meta in extra.get(fmt) or []:
            if not _close(float(meta["height_per_grey_nm"]), scale_nm) or bool(meta["inverted"]) != info["inverted"]:
                raise mismatch(f"extra.{fmt} scale of {meta.get('file')}", meta["height_per_grey_nm"], scale_nm,
                               "the level heights")
