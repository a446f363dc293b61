"""The design report: one self-contained ``report.html`` per export, the page a facility opens first.

One idea: render an export's fab sheet and its level maps as one HTML page that opens offline (every script,
figure and datum inlined; see :mod:`quaton_fab.html_page`). It shows the part at a glance, each mask's level map
(scale bar, level legend, printability spots) and its relief in 3D, the stack in 3D, the level table, volume
and print time, printability warnings (a click shows the spot), verification, the rigorous cross-check and the
tolerances (or the command that adds them), every file with its SHA-256 and the commands that made them.

The page lists every file of the export except itself (its own SHA-256 is in ``fab_sheet.json``). Its data block
holds the level maps (zlib-compressed level indices, row-major), so the page can be rebuilt from itself when the
sheet gains a section (:func:`refresh_report`, called by every fab sheet write) and ``verify`` reads the maps
back like any other file (:func:`read_report_levels`).

3D views are downsampled for speed: a mask of N×N pixels is drawn in blocks of b×b pixels with
b = ceil(N / ``VIEW3D_MAX_BLOCKS``) (b = 1, every pixel, up to 64×64); each block stands at the tallest printed
level inside it, so no isolated pillar disappears from the view. The 2-D level maps always show every pixel.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from quaton_fab.fab.report_data import (
    ASPECT_WARN,
    REPORT_NAME,
    REPORT_SCHEMA,
    SPOT_LIST,
    SPOT_MAX,
    VIEW3D_MAX_BLOCKS,
    ReportError,
    aspect_ratios,
    block_size,
    read_report,
    read_report_levels,
    report_data,
    source_digest,
)
from quaton_fab.fab.report_sections import (
    _checks,
    _commands,
    _crosscheck,
    _files,
    _glance,
    _level_table,
    _mask_cards,
    _orientation,
    _print_section,
    _printability,
    _tolerance,
    _verdict,
    _verification,
    _warnings,
    export_command,
    metric_label,
    not_run,
)
from quaton_fab.fileio import atomic_write_bytes
from quaton_fab.html_page import PageError, asset_text, esc, html_document, plotly_js, read_page_data

__all__ = [
    "REPORT_NAME", "REPORT_SCHEMA", "VIEW3D_MAX_BLOCKS", "ASPECT_WARN", "SPOT_MAX", "ReportError",
    "render_design_report", "write_design_report", "refresh_report", "read_report", "read_report_levels", "block_size",
    "aspect_ratios", "not_run", "report_data", "source_digest", "SPOT_LIST", "export_command", "metric_label",
]

log = logging.getLogger(__name__)


_SECTIONS = (("verdict", "Decision"), ("glance", "Part at a glance"), ("orientation", "Orientation"),
             ("masks", "Masks"), ("stack", "Stack"), ("levels", "Levels and print"),
             ("printability", "Printability"), ("verification", "Verification"), ("tolerances", "Tolerances"),
             ("files", "Files and commands"))


def render_design_report(sheet: Mapping[str, Any], levels: np.ndarray, *, export_dir: str | Path | None = None,
                         export_name: str = "EXPORT_DIR") -> str:
    """The report page (HTML text) of an export's fab sheet and its (L, N, N) level indices.

    ``export_dir`` is where figures named in the sheet (the cross-check figure) are read from; ``export_name``
    is how the export folder is named in the commands the page shows.
    """
    data = report_data(sheet, levels, export_name)
    folder = Path(export_dir) if export_dir is not None else None
    extra = sheet.get("extra") or {}
    design = extra.get("design") or {}
    geo = sheet["geometry"]
    title = (f"Design report: {design.get('method', '?')} {design.get('task', '')}, {geo['layers']} masks of "
             f"{geo['neurons']}×{geo['neurons']}, {len(sheet['levels'])} levels, {sheet['material']['name']}")
    nav = "".join(f'<a href="#{k}">{esc(t)}</a>' for k, t in _SECTIONS)

    def section(key: str, title_: str, content: str) -> str:
        return f'<section id="{key}"><h2>{esc(title_)}</h2>{content}</section>'

    body = "".join([
        f"<header><h1>{esc(title)}</h1><div class=\"sub\">{esc(sheet.get('software', ''))} · fab sheet "
        f"{esc(sheet.get('schema', ''))} v{esc(sheet.get('version', ''))} · open offline, nothing is fetched</div>"
        "</header>",
        f"<nav>{nav}</nav><main>",
        section("verdict", "Decision: print / don't print / ask", _verdict(sheet, data)),
        section("glance", "Part at a glance", _glance(sheet, data)),
        section("orientation", "Orientation, axes and light direction", _orientation(sheet)),
        section("masks", "Masks: level maps and reliefs", _mask_cards(data)),
        section("stack", "The stack in 3D",
                '<div class="figure wide plot3d" id="stack3d"></div><div class="controls">vertical exaggeration '
                '<input type="range" class="exag" data-target="stack3d" min="1" max="20" step="1" value="1"> '
                '<span class="exagval">1×</span></div><p class="muted">Plates at the plate pitch (z from the '
                "substrate, µm); the arrow shows where the light enters. Supports are in stack.stl, not drawn.</p>"),
        section("levels", "Level table, volume, print time, slicing and hatching",
                _level_table(sheet, data["colors"]) + "<h3>Volume and print time</h3>" + _print_section(sheet)),
        section("printability", "Printability", _printability(sheet, data)),
        section("verification", "Printed-object verification",
                _verification(sheet, export_name) + "<h3>Rigorous cross-check of the relief model</h3>"
                + _crosscheck(sheet, folder, export_name)),
        section("tolerances", "Fabrication tolerances",
                _tolerance(sheet, export_name, data["tolerance_curves"] is not None)),
        section("files", "Files, checks, warnings and commands",
                _files(sheet) + "<h3>Read-back checks at export</h3>" + _checks(sheet)
                + "<h3>Warnings raised during export</h3>" + _warnings(sheet) + "<h3>Commands</h3>"
                + _commands(sheet, export_name)),
        "</main>",
    ])
    return html_document(title, body, data, [plotly_js(), asset_text("design_report.js")])


def _report_name(export_dir: Path) -> str:
    return export_dir.name or "EXPORT_DIR"


def write_design_report(folder: str | Path, sheet: Mapping[str, Any], levels: np.ndarray,
                        export_name: str | None = None) -> Path:
    """Write ``report.html`` into ``folder`` (atomically); returns its path."""
    out = Path(folder)
    text = render_design_report(sheet, levels, export_dir=out, export_name=export_name or _report_name(out))
    return atomic_write_bytes(out / REPORT_NAME, text.encode("utf-8"))


def refresh_report(export_dir: str | Path, sheet: dict[str, Any]) -> bool:
    """Rebuild the export's ``report.html`` from ``sheet`` and update its file entry (size, SHA-256) in ``sheet``.

    Does nothing when the sheet lists no report. A report that no longer has the SHA-256 the sheet lists is left
    as it is (``verify`` reports it as changed) rather than rebuilt over, and a report made from this very sheet
    (same :func:`source_digest`) is not rendered again. Returns True when the page was rebuilt.
    """
    folder = Path(export_dir)
    entry = next((f for f in sheet.get("files", []) if isinstance(f, dict) and f.get("name") == REPORT_NAME), None)
    if entry is None:
        return False
    path = folder / REPORT_NAME
    try:
        current = path.read_bytes()
    except OSError:
        log.warning("%s is listed in the fab sheet but cannot be read; not rebuilt", path)
        return False
    if hashlib.sha256(current).hexdigest() != entry.get("sha256"):
        log.warning("%s changed since it was written (SHA-256 differs from the fab sheet); not rebuilt", path)
        return False
    try:
        if read_page_data(current.decode("utf-8")).get("sheet_digest") == source_digest(sheet):
            return False  # made from this very sheet: nothing to rebuild
    except (UnicodeDecodeError, PageError):
        pass  # read_report below names the problem
    levels, data = read_report(path, sheet["geometry"]["neurons"], sheet["geometry"]["layers"])
    name = str(data.get("export_name") or _report_name(folder))
    text = render_design_report(sheet, levels, export_dir=folder, export_name=name).encode("utf-8")
    if text != current:
        atomic_write_bytes(path, text)
    entry["bytes"] = len(text)
    entry["sha256"] = hashlib.sha256(text).hexdigest()
    return True
