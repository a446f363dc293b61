"""Finishing a run directory: save the design, its metrics and (optionally) its figures, then mark it complete.

One idea: the order that makes a run directory trustworthy. The checkpoint is marked complete only after the
design files are written, so a failed save leaves a run that ``--resume`` turns into the same design again.
Used by ``quaton-fab train`` and by every sweep cell.
"""

from __future__ import annotations

from pathlib import Path

from quaton_fab.design import Design
from quaton_fab.training.report import remove_stale_figures, write_figures, write_metrics
from quaton_fab.training.trainer import Trainer


def save_run(trainer: Trainer, design: Design, run_dir: str | Path, *, figures: bool = True) -> list[Path]:
    """Write ``design.json``/``masks.npz``/``metrics.json`` into ``run_dir``, mark the run complete, then figures.

    Returns:
        The figure files written (empty without ``figures``).
    """
    run_dir = Path(run_dir)
    design.save(run_dir)
    write_metrics(design, run_dir)
    trainer.mark_complete()  # only now: a failed save above leaves a run that --resume finishes
    return write_run_figures(design, run_dir) if figures else []


def write_run_figures(design: Design, run_dir: str | Path) -> list[Path]:
    """Write the run's figures into ``run_dir/figures`` and remove stale ones (e.g. an earlier run's confusion.png)."""
    folder = Path(run_dir) / "figures"
    written = write_figures(design, folder)
    remove_stale_figures(folder, written)
    return written
