"""Sweeps: a grid of ordinary training runs (local process pool or Ray), resumable, and their report."""

from quaton_fab.sweep.report import summarize, write_report
from quaton_fab.sweep.runner import SweepError, SweepProgress, run_sweep
from quaton_fab.sweep.spec import Cell, SpecError, SweepSpec, parse_spec, read_spec

__all__ = [
    "Cell", "SpecError", "SweepSpec", "parse_spec", "read_spec",
    "SweepError", "SweepProgress", "run_sweep", "summarize", "write_report",
]
