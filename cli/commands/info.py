"""Commands that show what is there: ``inspect`` (a design), ``materials`` (the material table) and
``quantizers`` (the transfer curves)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from quaton_fab.units import format_length

from ..common import console, fail, length, q, user_errors


@user_errors
def inspect(
    design_dir: Annotated[Path, typer.Argument(help="A design directory.")],
    figures: Annotated[bool, typer.Option(help="Write figures into DESIGN_DIR/figures (or --out).")] = True,
    out: Annotated[Optional[Path], typer.Option(help="Folder for the figures.")] = None,
    force: Annotated[bool, typer.Option(help="Overwrite existing figure files.")] = False,
) -> None:
    """Summarise a design (geometry, levels, method, metrics, level usage) and write its figures."""
    from quaton_fab.design import Design
    from quaton_fab.training.report import planned_figures

    design = Design.load(design_dir)
    figure_dir = out or Path(design_dir) / "figures"
    if figures and not force:
        clashes = [figure_dir / name for name in planned_figures(design) if (figure_dir / name).exists()]
        if clashes:
            fail(f"{clashes[0]} already exists; use --force to rewrite the figures, --no-figures, or another --out")
    g = design.geometry
    table = Table(title=f"design {q(design_dir)}", show_header=False)
    table.add_column(style="dim")
    table.add_column()
    table.add_row("software / schema", q(f"quaton-fab {design.software_version}, created {design.created}"))
    table.add_row("task", q(f"{design.task.get('kind')}  ({design.dataset.get('spec', '?')})"))
    table.add_row("method", q(design.method.get("name")))
    table.add_row("masks", f"{g.layers} × {g.neurons}×{g.neurons}, pitch {format_length(g.pitch_m)}, "
                  f"aperture {format_length(g.neurons * g.pitch_m)}")
    table.add_row("distances", f"d_in {format_length(g.d_in_m)}, spacing {format_length(g.spacing_m)}, "
                  f"d_out {format_length(g.d_out_m)}")
    table.add_row("light", f"λ0 {format_length(g.wavelength_m)}, n_medium {g.n_medium}")
    table.add_row("sampling", f"oversample {g.oversample}, rule s ≥ {g.rule_oversample}: "
                  + ("met" if g.meets_sampling_rule else "[red]NOT MET (under-sampled: the printed part differs)[/]"))
    if design.relief is None:
        table.add_row("mask model", "[yellow]thin phase screens[/] (not trained through the printed relief)")
    else:
        r = design.relief
        table.add_row("mask model", f"printed relief, n {r.n_material:.4f}, base {format_length(r.base_m)}, top "
                      f"{format_length(r.top_m)}, {len(r.slice_edges_m()) - 1} slices, {r.orientation}")
    table.add_row("levels", f"{design.levels.n} ({design.levels.kind}): "
                  + ", ".join(f"{p:.3f}" for p in design.levels.phases) + " rad")
    usage = design.level_counts().sum(axis=0)
    table.add_row("level usage", ", ".join(f"{k}: {c / usage.sum():.1%}" for k, c in enumerate(usage)))
    for key, value in design.metrics.get("test", {}).items():
        if isinstance(value, (int, float)):
            table.add_row(f"test {q(key)}", f"{value:.4f}" if isinstance(value, float) else str(value))
    if design.fabrication:
        table.add_row("fabrication", q(f"{design.fabrication.get('material')} in {design.fabrication.get('medium')}, "
                                       f"z-step {design.fabrication.get('z_step_m')}"))
    console.print(table)
    if figures:
        from quaton_fab.training.report import write_figures

        with console.status("writing figures…"):
            written = write_figures(design, figure_dir)
        for path in written:
            console.print(f"  wrote {q(path)}")


# ---------------------------------------------------------------------------------------------------- materials
@user_errors
def materials(
    wavelength: Annotated[Optional[str], typer.Option(help="Show n and the 2π height at this wavelength, e.g. 633nm.")] = None,
) -> None:
    """The material table: dispersion model, index, validity range and source of every entry."""
    from quaton_fab.optics.phase_height import height_2pi_m, index_contrast
    from quaton_fab.printing.materials import material_table

    wl = length(wavelength, "--wavelength")
    rows = material_table(wl)
    shown_at = wl if wl else (rows[0].get("wavelength_m") if rows else None)
    table = Table(title="materials" + (f", n at λ0 = {format_length(shown_at)}" if shown_at else ""))
    for col in ("name", "model", "n", "h_2π in air", "valid range", "source"):
        table.add_column(col, overflow="fold")
    for row in rows:
        n = row.get("n")
        h2pi = f"{height_2pi_m(shown_at, index_contrast(n, 1.0)) * 1e6:.3f} µm" if (shown_at and n and n > 1) else ""
        table.add_row(
            q(row["name"]) + (" [yellow](nominal)[/]" if row.get("nominal") else ""),
            q(row["model"]),
            "" if n is None else f"{n:.4f}" + ("" if row.get("in_range", True) else " [red](outside range)[/]"),
            h2pi,
            q(row.get("range", "")),
            q(row.get("source", "")),
        )
    console.print(table)
    console.print("Custom index: --material n=1.52 ; media: air, water, oil, or a number (--medium 1.33).")


# ---------------------------------------------------------------------------------------------------- quantizers
@user_errors
def quantizers(
    levels: Annotated[int, typer.Option(help="Number of levels.", min=2)] = 4,
    out: Annotated[Path, typer.Option(help="PNG to write.")] = Path("quantizers.png"),
    force: Annotated[bool, typer.Option(help="Overwrite an existing --out file.")] = False,
) -> None:
    """Plot every quantizer's transfer curve and gradient (like Fig. 2D of the QuATON paper)."""
    from quaton_fab.quant import LevelSet
    from quaton_fab.quant.figure import plot_transfer_curves
    from quaton_fab.resources import check_level_count

    check_level_count(levels, "--levels")
    if out.exists() and not force:
        fail(f"{out} already exists; use --force to overwrite it or another --out")

    path = plot_transfer_curves(LevelSet.uniform(levels), out)
    console.print(f"wrote {q(path)}")
