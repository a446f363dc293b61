"""``quaton-fab export``: the design's levels as heights, written as fabrication files plus the fab sheet."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.table import Table

from quaton_fab.printing.defaults import DEFAULT_MATERIAL

from ..choices import Format
from ..common import command_line, console, err_console, length, q, user_errors

#: Help panels of `export --help` (grouped so every option's full name fits an 80-column terminal).
PRINTER = "Printer (slicing grid)"
FILE_DETAILS = "GDS and grayscale maps"


@user_errors
def export(
    design_dir: Annotated[Path, typer.Argument(help="A design directory.")],
    format: Annotated[Format, typer.Option("--format", "-f", help="stl, gds, oas, png, tiff, png8 (8-bit full-scale PNG), bmp (8-bit full-scale BMP), gwl (Nanoscribe job) or all.")] = Format.all,
    material: Annotated[Optional[str], typer.Option(help=f"Material (see `quaton-fab materials`) or n=1.52; default: the one the design was trained for, else {DEFAULT_MATERIAL}.")] = None,
    medium: Annotated[Optional[str], typer.Option(help="air, water, oil or an index (default: the design's n_medium).")] = None,
    base: Annotated[Optional[str], typer.Option(help="Base slab thickness under every pixel, e.g. 2um (default: the base the design was trained through, else 2um).")] = None,
    z_step: Annotated[Optional[str], typer.Option("--z-step", help="Printer height step: another name for --slicing-distance.", rich_help_panel=PRINTER)] = None,
    printer: Annotated[Optional[str], typer.Option("--printer", help="Printer profile: 2pp-63x-ip-dip (default; 100 nm slicing and hatching), 2pp-25x-ip-n162 or grayscale (exact heights). Every top, base included, is put on its slicing grid.", rich_help_panel=PRINTER)] = None,
    slicing_distance: Annotated[Optional[str], typer.Option("--slicing-distance", help="Override the profile's slicing distance (z-step), e.g. 100nm.", rich_help_panel=PRINTER)] = None,
    hatching_distance: Annotated[Optional[str], typer.Option("--hatching-distance", help="Override the profile's hatching distance (GWL line spacing), e.g. 100nm.", rich_help_panel=PRINTER)] = None,
    stack: Annotated[bool, typer.Option(help="Also write one STL with all masks stacked at the design spacings.")] = False,
    omit_level0: Annotated[bool, typer.Option("--omit-level0/--keep-level0", help="GDS: leave level 0 (the base top) out.", rich_help_panel=FILE_DETAILS)] = False,
    invert: Annotated[bool, typer.Option(help="Grayscale maps: store max grey − grey (tallest level black), for positive resists.", rich_help_panel=FILE_DETAILS)] = False,
    full_scale: Annotated[bool, typer.Option("--full-scale", help="16-bit PNG/TIFF maps use the whole grey range (default: 1 nm per grey where exact).", rich_help_panel=FILE_DETAILS)] = False,
    report: Annotated[bool, typer.Option("--report/--no-report", help="Also write report.html, the self-contained design report (opens offline in any browser).")] = True,
    out: Annotated[Optional[Path], typer.Option(help="Export directory (default DESIGN_DIR/export).")] = None,
    force: Annotated[bool, typer.Option(help="Overwrite existing files.")] = False,
) -> None:
    """Convert the design's levels to heights and write fabrication files plus fab_sheet.json/.md."""
    from quaton_fab.design import Design
    from quaton_fab.fab.export import ExportOptions, export_design

    design = Design.load(design_dir)
    options = ExportOptions(
        formats=None if format is Format.all else (format.value,),  # None: every format the printer takes
        material=material,
        medium=medium,
        base_m=length(base, "--base"),
        z_step_m=length(z_step, "--z-step"),
        printer=printer,
        slicing_distance_m=length(slicing_distance, "--slicing-distance"),
        hatching_distance_m=length(hatching_distance, "--hatching-distance"),
        stack=stack,
        omit_level0=omit_level0,
        invert=invert,
        full_scale=full_scale,
        force=force,
        report=report,
        command=command_line(),
    )
    target = out or Path(design_dir) / "export"
    with console.status(f"exporting to {q(target)}…"):
        result = export_design(design, target, options)
    for warning in result.warnings:
        err_console.print(f"[yellow]warning:[/] {q(warning)}", highlight=False)
    console.print(_level_table(result.sheet))
    for path in result.files:
        console.print(f"  wrote {q(path)} ({path.stat().st_size / 1024:.1f} KiB)")
    if report:
        console.print(f"Design report: open [bold]{q(target / 'report.html')}[/] in a browser (works offline)")
    console.print(f"Check it: [bold]quaton-fab verify {q(design_dir)} {q(target)}[/]")


def _level_table(sheet: dict[str, Any]) -> Table:
    """The fab sheet's level table: phase, height (µm), snapped height (µm) and phase error of every level."""
    table = Table(title=f"level table ({q(sheet['material']['name'])}, n = {sheet['material']['n']:.4f})")
    for col in ("k", "phase (rad)", "height (µm)", "snapped (µm)", "phase error (rad)"):
        table.add_column(col, justify="right")
    for row in sheet["levels"]:
        table.add_row(str(row["k"]), f"{row['phase_rad']:.4f}", f"{row['height_um']:.4f}",
                      f"{row['snapped_height_um']:.4f}", f"{row['phase_error_rad']:+.4f}")
    return table
