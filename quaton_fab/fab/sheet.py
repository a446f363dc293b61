"""The fabrication sheet: what a facility needs to print an exported design, as JSON and as Markdown.

One idea: gather the level table, material, geometry, exported files (with sizes and SHA-256) and the checks
into one dict (:func:`build_fab_sheet`), then write it as ``fab_sheet.json`` (machine-readable; the
``level_table`` entry is in SI units and rebuilds with ``LevelTable.from_dict``) and ``fab_sheet.md`` (a
human-readable table in µm/nm), each atomically (temporary name in the same folder, then ``os.replace``).

The parts: :mod:`~quaton_fab.fab.sheet_schema` (names, hash, file entries), :mod:`~quaton_fab.fab.sheet_build`
(the dict), :mod:`~quaton_fab.fab.sheet_md` with :mod:`~quaton_fab.fab.sheet_md_parts` (the Markdown); this module
writes, reads and updates the two files and re-exports the public names of the parts.

Checks: a value ``True`` means passed, ``False`` failed, and a string is a note shown as-is (e.g. "skipped").
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Mapping

from quaton_fab.bounded import load_json_file
from quaton_fab.fab.report_html import refresh_report
from quaton_fab.fab.sheet_build import build_fab_sheet, conventions, level_rows, pixel_square_um
from quaton_fab.fab.sheet_md import _RENDERED, render_fab_sheet_md
from quaton_fab.fab.sheet_names import JSON_NAME, MD_NAME
from quaton_fab.fab.sheet_schema import (
    SHEET_HASH_KEY,
    SHEET_SCHEMA,
    SHEET_VERSION,
    SheetError,
    _json_default,
    file_entry,
    sheet_digest,
)
from quaton_fab.fileio import atomic_write_bytes

__all__ = [
    "JSON_NAME",
    "MD_NAME",
    "SHEET_HASH_KEY",
    "SHEET_SCHEMA",
    "SHEET_VERSION",
    "SheetError",
    "build_fab_sheet",
    "conventions",
    "file_entry",
    "level_rows",
    "pixel_square_um",
    "read_fab_sheet",
    "record_crosscheck",
    "record_tolerance",
    "record_verification",
    "render_fab_sheet_md",
    "sheet_digest",
    "write_fab_sheet",
    "_RENDERED",
]

logger = logging.getLogger(__name__)


def record_tolerance(export_dir: str | os.PathLike, tolerance: Mapping[str, object]) -> dict[str, Path]:
    """Store acceptance tolerances (``analysis.tolerance.tolerance_sheet_entry``) in the export's fab sheet."""
    sheet = read_fab_sheet(export_dir)
    sheet["tolerance"] = dict(tolerance)
    return write_fab_sheet(export_dir, sheet)


def record_crosscheck(export_dir: str | os.PathLike, entry: Mapping[str, object]) -> dict[str, Path]:
    """Store a rigorous cross-check (``quaton_fab.analysis.crosscheck.sheet_entry``) in the export's fab sheet."""
    sheet = read_fab_sheet(export_dir)
    sheet["crosscheck"] = dict(entry)
    return write_fab_sheet(export_dir, sheet)


def record_verification(
    export_dir: str | os.PathLike, verification: Mapping[str, object], sheet: dict | None = None
) -> dict[str, Path]:
    """Store a verification result (``VerifyReport.to_dict()``) in the export's fab sheet (JSON and Markdown).

    ``sheet``: the sheet as the verification read it (so it is read once per verify); None reads it here.
    ``all_checks_passed`` becomes False when the verification failed.
    """
    sheet = read_fab_sheet(export_dir) if sheet is None else dict(sheet)
    sheet["verification"] = dict(verification)
    sheet["all_checks_passed"] = not sheet.get("checks_failed") and bool(verification.get("passed"))
    return write_fab_sheet(export_dir, sheet)


def _atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to a temporary name next to ``path``, then move it into place."""
    atomic_write_bytes(path, text.encode("utf-8"))


def write_fab_sheet(out_dir: str | os.PathLike, sheet: dict) -> dict[str, Path]:
    """Write ``fab_sheet.json`` and ``fab_sheet.md`` into ``out_dir`` (created if missing).

    Returns:
        {"json": path, "md": path}.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    try:
        text = json.dumps(sheet, indent=2, allow_nan=False, default=_json_default)
    except (TypeError, ValueError) as exc:
        raise SheetError(f"fab sheet is not JSON-serialisable: {exc}") from None
    refresh_report(out, sheet)  # the report shows what the sheet now holds; its listed size and hash follow
    sheet[SHEET_HASH_KEY] = sheet_digest(sheet)  # verify checks the sheet against it
    text = json.dumps(sheet, indent=2, allow_nan=False, default=_json_default)
    paths = {"json": out / JSON_NAME, "md": out / MD_NAME}
    _atomic_write_text(paths["md"], render_fab_sheet_md(sheet))
    _atomic_write_text(paths["json"], text + "\n")  # last: fab_sheet.json marks a complete export
    logger.info("fab sheet written to %s", out)
    return paths


def read_fab_sheet(path: str | os.PathLike) -> dict:
    """Load ``fab_sheet.json`` (a file, or a folder holding it) and check its schema."""
    p = Path(path)
    if p.is_dir():
        p = p / JSON_NAME
    if p.is_symlink():  # the sheet decides what verify reads and where results are recorded: never a link
        raise SheetError(f"{str(p)!r} is a symbolic link; a fab sheet must be a plain file in the export folder")
    try:
        sheet = load_json_file(p, "fab sheet", SheetError)
    except FileNotFoundError:
        raise SheetError(f"no fab sheet at {str(p)!r}") from None
    if not isinstance(sheet, dict):
        raise SheetError(f"{p}: a fab sheet is a JSON object, not {type(sheet).__name__}")
    if sheet.get("schema") != SHEET_SCHEMA:
        raise SheetError(f"{p}: schema {sheet.get('schema')!r} is not {SHEET_SCHEMA!r}")
    return sheet
