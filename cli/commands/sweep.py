"""``quaton-fab sweep`` and ``quaton-fab report``: a grid of runs (local or Ray) and its summary."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from ..common import EXIT_INTERRUPTED, console, err_console, fail, q, user_errors


@user_errors
def sweep(
    spec: Annotated[Path, typer.Argument(help="Sweep spec (.toml, .yaml or .yml): grids over train options.")],
    out: Annotated[Optional[Path], typer.Option(help="Sweep folder (one run directory per cell; default sweeps/<spec name>).")] = None,
    workers: Annotated[str, typer.Option(help="Cells at once: auto (one per core, or per cluster CPU with --ray) or a number.")] = "auto",
    threads: Annotated[int, typer.Option(help="PyTorch CPU threads per cell (and Ray CPUs per task).", min=1)] = 1,
    device: Annotated[str, typer.Option(help="Where cells train and are evaluated: auto (a GPU when there is one), cpu, cuda or cuda:N; local workers share the GPU.")] = "auto",
    ray: Annotated[Optional[str], typer.Option("--ray", help="Run the cells on Ray: a cluster address (auto, ray://host:10001) or local (a Ray instance on this machine). Needs quaton-fab[ray].")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List the cells and exit.")] = False,
) -> None:
    """Run every cell of a sweep spec; run it again to continue (finished cells are skipped, interrupted ones resumed)."""
    from quaton_fab.sweep import read_spec, run_sweep
    from quaton_fab.sweep.runner import initial_states

    from ..progress import SweepOverview

    parsed = read_spec(spec)
    sweep_dir = out or Path("sweeps") / spec.stem
    if dry_run:
        states = initial_states(parsed, sweep_dir) if (sweep_dir / "sweep.json").is_file() else None
        table = Table(title=f"{q(parsed.name)}: {len(parsed.cells)} cells → {q(sweep_dir)}")
        table.add_column("cell")
        table.add_column("state")
        for i, cell in enumerate(parsed.cells):
            table.add_row(q(cell.key), "done" if states and states[i].state == "done" else "to run")
        console.print(table)
        return
    console.print(f"Sweep [bold]{q(parsed.name)}[/]: {len(parsed.cells)} cells in [bold]{q(sweep_dir)}[/]"
                  + (f" on Ray ({q(ray)})" if ray else " (local)") + f", device {q(device)}", soft_wrap=True)
    overview = SweepOverview(console, len(parsed.cells))
    try:
        with overview:
            progress = run_sweep(parsed, sweep_dir, workers=workers, threads=threads, ray_address=ray,
                                 on_update=overview, device=device)
        console.line()
    except KeyboardInterrupt:
        console.line()
        err_console.print("[yellow]interrupted: running cells saved checkpoints.[/] Continue with: "
                          f"[bold]quaton-fab sweep {q(spec)} --out {q(sweep_dir)}[/]")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    failed = [s for s in progress.states if s.state in ("failed", "interrupted")]
    skipped = sum(1 for s in progress.states if s.skipped)
    console.print(f"{progress.count('done')} of {progress.total} cells done ({skipped} were already done), "
                  f"{len(failed)} not finished.")
    for s in failed:
        err_console.print(f"[red]{q(s.cell.key)}[/]: {q(s.state)}: {q(s.error or '')}", soft_wrap=True)
    console.print(f"Next: [bold]quaton-fab report {q(sweep_dir)}[/]")
    if failed:
        fail(f"{len(failed)} cell(s) did not finish; fix the cause and run the same command again to continue", 1)


@user_errors
def report(
    sweep_dir: Annotated[Path, typer.Argument(help="A sweep folder written by `quaton-fab sweep`.")],
    out: Annotated[Optional[Path], typer.Option(help="Markdown file to write (default SWEEP_DIR/report.md); the JSON twin, the self-contained study page (.html) and the figures go beside it.")] = None,
    notes: Annotated[Optional[Path], typer.Option(help="A markdown file of commentary to put under the title.")] = None,
    spec: Annotated[Optional[str], typer.Option(help="Path of the spec file to cite in the report.")] = None,
    force: Annotated[bool, typer.Option(help="Replace an existing report (markdown, JSON twin and figures).")] = False,
) -> None:
    """Summarise a sweep: mean ± std over seeds per method × levels × task, figures, markdown and JSON."""
    from quaton_fab.sweep import write_report

    from quaton_fab.bounded import read_text
    from quaton_fab.sweep import SweepError

    note_text = None
    if notes is not None:
        try:
            note_text = read_text(notes, "--notes", SweepError, max_bytes=1024 * 1024)
        except OSError as exc:
            fail(f"cannot read --notes {str(notes)!r}: {exc.strerror or exc}")
    command = "quaton-fab " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:] else None
    written = write_report(sweep_dir, out, notes=note_text, spec_path=spec, command=command, force=force)
    console.print(f"Report: [bold]{q(written['md'])}[/] (JSON twin {q(written['json'].name)}, "
                  f"{len(written['figures'])} figures); study page: [bold]{q(written['html'])}[/] (open it in a browser).")
