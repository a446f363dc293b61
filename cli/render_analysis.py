"""What the analysis commands print: the hooks renderer (a fidelity line, one progress bar per simulation) and
the result tables of ``evaluate``, ``verify``, ``tolerance`` and ``crosscheck``.

Imported inside the commands (it loads the library, hence torch), so ``--version`` stays light.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Optional

from rich.table import Table

from quaton_fab.analysis.record import VerifyHooks
from quaton_fab.units import format_length

from .common import console, q
from .progress import eval_progress

__all__ = [
    "AnalysisRenderer", "progress_bar", "show_crosscheck", "show_evaluation", "show_tolerance", "show_verify",
]


@contextlib.contextmanager
def progress_bar(label: str) -> Iterator[Callable[[int, int], None]]:
    """A progress bar for one simulation while inside; yields its ``update(done, total)``."""
    progress, update = eval_progress(console, label)
    with progress:
        yield update


class AnalysisRenderer(VerifyHooks):
    """The analysis hooks as the commands print them: fidelity line, one progress bar per simulation (with the
    convergence probe's bar inside it), ``wrote`` lines, and ``show(result)`` for the result."""

    def __init__(self, escape_fidelity: bool = True, show: Optional[Callable[[Any], None]] = None):
        self.escape_fidelity, self.show = escape_fidelity, show
        self.current: Any = None
        self.probe_task: Any = None

    def fidelity(self, label: str, description: str) -> None:
        text = q(description) if self.escape_fidelity else description
        console.print(f"[dim]{label}:[/] {text}", highlight=False, soft_wrap=True)

    @contextlib.contextmanager
    def progress(self, label: str) -> Iterator[Callable[[int, int], None]]:
        self.current, update = eval_progress(console, label)
        with self.current:
            yield update

    def probe(self, done: int, total: int) -> None:
        if self.probe_task is None:  # shown once the probe starts
            self.probe_task = self.current.add_task("convergence probe (finer sampling and slicing)", total=total,
                                                    info="")
        self.current.update(self.probe_task, completed=done, total=total)

    def result(self, value: Any) -> None:
        if self.show is not None:
            self.show(value)

    def written(self, paths: list[Path]) -> None:
        for path in paths:
            console.print(f"  wrote {q(path)}")


def show_evaluation(design_dir: Path, ev: Any) -> None:
    """``evaluate``: the other fidelities' metric and gap, the metrics table, and the gaps to the reported metric
    (``ev``: an :class:`~quaton_fab.analysis.evaluation.Evaluation`)."""
    runs, results, metrics, primary = ev.fidelities, ev.results, ev.metrics, ev.primary
    for fid, values in zip(runs[1:], results[1:]):
        console.print(f"{primary} at {fid.label} fidelity: {values[primary]:.4f}", soft_wrap=True)
        if runs[0].label == "design" and fid.label == "reference":
            console.print(f"design-vs-reference gap ({fid.label} − design, same {values['samples']} samples): "
                          f"{values[primary] - metrics[primary]:+.4f}", soft_wrap=True)
    table = Table(title=f"{q(design_dir)}: re-simulated from design.json + masks.npz ({runs[0].label})")
    table.add_column("metric")
    table.add_column("re-simulated", justify="right")
    table.add_column("reported", justify="right")
    for key, value in metrics.items():
        if isinstance(value, (int, float)):
            rep = ev.design.metrics.get("test", {}).get(key)
            table.add_row(q(key), f"{value:.4f}" if isinstance(value, float) else str(value),
                          "" if rep is None else (f"{rep:.4f}" if isinstance(rep, float) else str(rep)))
    console.print(table)
    gaps = ev.reported_gaps()
    if gaps is not None:
        for fid, values, gap in zip(runs, results, gaps):
            console.print(f"{primary} ({fid.label}): re-simulated {values[primary]:.4f}, reported {ev.reported:.4f}, "
                          f"gap {gap:+.2e}", soft_wrap=True)


def show_verify(export_dir: Path, report: Any) -> None:
    """``verify``: the per-file table and the summary of a :class:`~quaton_fab.analysis.verify.VerifyReport`."""
    table = Table(title=f"verify {q(export_dir)}: files read back and simulated as the printed object")
    for col in ("file", "read back", "level match", "max height error", report.metric_name, "gap to design"):
        table.add_column(col, justify="right")
    for row in report.rows:
        table.add_row(q(row.file), q(row.reader), f"{row.level_match:.4%}", format_length(row.max_height_error_m),
                      f"{row.metric:.4f}", f"{row.metric - report.design_metric:+.4f}")
    console.print(table)
    summary = Table(show_header=False, box=None)
    for wrap in (False, False, True):  # labels and numbers stay on one line; the descriptions wrap
        summary.add_column(no_wrap=not wrap)
    summary.add_row("design (training model)", f"{report.design_metric:.4f}", q(report.design_fidelity))
    summary.add_row("design as printed object", f"{report.reference_design_metric:.4f}", q(report.reference_fidelity))
    summary.add_row("files as printed object (worst)", f"{report.files_metric:.4f}", "")
    summary.add_row("gap (a) files vs design", f"{report.gap_files:+.4f}", "export: material, base, z-step, files")
    summary.add_row("gap (b) design vs reference", f"{report.gap_model:+.4f}",
                    "reference − training model: sampling and relief")
    summary.add_row("total gap", f"{report.total_gap:+.4f}", f"tolerance −{report.tolerance:.4f}")
    if report.probe is not None:
        p = report.probe
        summary.add_row(f"convergence probe ({p.samples} samples)", f"{p.difference:+.4f} ± {p.half_width:.4f}",
                        q(_probe_text(p)))
    console.print(summary)
    console.print(f"{report.metric_name} on {report.samples} test samples.")


def _probe_text(p: Any) -> str:
    """The convergence probe's two metrics and samplings (slices in nm when the probe refined them), its verdict
    and how its samples were chosen."""
    finer = f"s={p.probe['oversample']}"
    if p.probe["max_slice_m"]:
        finer += f", slices ≤ {p.probe['max_slice_m'] * 1e9:.4g} nm"
    return (f"{p.reference_metric:.4f} at s={p.reference['oversample']} → {p.probe_metric:.4f} at {finer}: "
            f"{p.verdict} (95 %; {p.sampling_text()})")


def show_tolerance(design_dir: Path, run: Any) -> None:
    """``tolerance``: the Monte-Carlo table and the acceptance tolerances of a
    :class:`~quaton_fab.analysis.tolerance.ToleranceRun`."""
    table = Table(title=f"{q(design_dir)}: {run.metric} under fabrication errors ({run.trials} trials, "
                        f"{run.samples} samples, {run.fidelity} fidelity; nominal {run.nominal:.4f})")
    for col in ("error", "σ", "trials", f"mean {run.metric}", "5th pct", "min", "within loss"):
        table.add_column(col, justify="right")
    for r in run.rows:
        table.add_row(q(r["error"]), f"{r['magnitude']:g} {q(r['unit'])}", str(r["trials"]), f"{r['mean']:.4f}",
                      f"{r['p5']:.4f}", f"{r['min']:.4f}", "[green]yes[/]" if r["within"] else "[red]no[/]")
    console.print(table)
    limits = Table(title=f"acceptance tolerances ({run.criterion} within −{run.allowed_loss:g} {run.metric})")
    for col in ("error", "largest σ within the loss", "source"):
        limits.add_column(col, overflow="fold")
    for lim in run.limits():
        value = lim["max_magnitude"]
        limits.add_row(q(lim["error"]), "[red]< smallest swept[/]" if value is None else f"{value:g} {q(lim['unit'])}",
                       q(lim["source"]))
    console.print(limits)


def show_crosscheck(export_dir: Path, result: Any) -> None:
    """``crosscheck``: the model-error table and the note of a
    :class:`~quaton_fab.analysis.crosscheck.CrosscheckResult`."""
    table = Table(title=f"crosscheck {q(export_dir)}: scalar models vs {q(result.solver)}")
    for col in ("model", "polarisation", "L1 mean / worst", "complex mean / worst"):
        table.add_column(col, justify="right")
    for r in result.rows:
        table.add_row(q(r["model"]), r["polarisation"], f"{r['l1_mean']:.3f} / {r['l1_worst']:.3f}",
                      f"{r['complex_mean']:.3f} / {r['complex_worst']:.3f}")
    console.print(table)
    console.print(q(result.note()))
