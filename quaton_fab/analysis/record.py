"""Judge an export and record the verdict in its fab sheet: one call each for ``verify`` and ``crosscheck``.

One idea: a check whose result belongs in the fab sheet. :func:`verify_and_record` re-simulates the exported
files as the printed object and records the verdict (a quick check on fewer samples is not recorded; a sheet
that cannot be written keeps the verdict and returns the error). :func:`crosscheck_and_record` compares the
mask models with the rigorous solver, draws the figure and records the entry. Nothing is printed: progress and
the result go to :class:`~quaton_fab.analysis.evaluation.AnalysisHooks`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quaton_fab.analysis.crosscheck import CrosscheckResult, crosscheck_export, sheet_entry
from quaton_fab.analysis.crosscheck_figure import plot_crosscheck
from quaton_fab.analysis.evaluation import AnalysisHooks, load_design
from quaton_fab.analysis.convergence import DEFAULT_PROBE_SAMPLES
from quaton_fab.analysis.verify import VerifyReport, verify_export
from quaton_fab.design import Design
from quaton_fab.fab.sheet import record_crosscheck, record_verification

__all__ = ["CrosscheckOutcome", "VerifyHooks", "VerifyOutcome", "crosscheck_and_record", "verify_and_record"]


class VerifyHooks(AnalysisHooks):
    """:class:`AnalysisHooks` plus the convergence probe's progress (called inside the ``progress`` context)."""

    def probe(self, done: int, total: int) -> None:
        """``done`` of ``total`` probe samples simulated (the first call marks the probe's start)."""


@dataclass
class VerifyOutcome:
    """The verdict of :func:`verify_and_record` and what became of its record.

    ``recorded``: written into ``fab_sheet.json``/``fab_sheet.md``. ``record_error``: the OS error that kept it
    out of the sheet (e.g. a read-only export); the verdict in ``report`` stands.
    """

    report: VerifyReport
    recorded: bool
    record_error: OSError | None = None


@dataclass
class CrosscheckOutcome:
    """The result of :func:`crosscheck_and_record`, its fab-sheet entry and the figure written beside it."""

    result: CrosscheckResult
    entry: dict[str, Any]
    figure: Path


def verify_and_record(
    design: Design | str | Path,
    export_dir: str | Path,
    *,
    samples: int | None = None,
    tolerance: float | None = None,
    oversample: int | None = None,
    max_slice_m: float | None = None,
    probe_samples: int | None = DEFAULT_PROBE_SAMPLES,
    device: str = "auto",
    record: bool | None = None,
    hooks: VerifyHooks | None = None,
) -> VerifyOutcome:
    """Verify ``export_dir`` (see :func:`~quaton_fab.analysis.verify.verify_export`), then record the verdict.

    Args:
        design: a design, or its directory.
        samples: test samples (None: the design's test split). probe_samples: None or 0 for no probe.
        record: write the verdict into the fab sheet; None (default): only when ``samples`` is None (a quick
            check on fewer samples is not recorded).
        hooks: ``progress("re-simulating the printed object")`` around the simulation (``probe`` inside it),
            then ``result(report)`` before recording.
    """
    hooks = hooks or VerifyHooks()
    design = load_design(design)
    with hooks.progress("re-simulating the printed object") as update:
        report = verify_export(design, export_dir, samples=samples, device=device, progress=update,
                               tolerance=tolerance, oversample=oversample, max_slice_m=max_slice_m,
                               probe_samples=probe_samples, probe_progress=hooks.probe)
    hooks.result(report)
    if not (samples is None if record is None else record):
        return VerifyOutcome(report, recorded=False)
    try:
        record_verification(export_dir, report.to_dict(), report.sheet)
    except OSError as exc:  # a read-only export still gets its verdict; only the record is skipped
        return VerifyOutcome(report, recorded=False, record_error=exc)
    return VerifyOutcome(report, recorded=True)


def crosscheck_and_record(
    design: Design | str | Path,
    export_dir: str | Path,
    *,
    patches: int = 4,
    patch_pixels: int = 4,
    harmonics: int | None = None,
    seed: int = 0,
    device: str = "auto",
    endless_base: bool = False,
    command: str = "",
    hooks: AnalysisHooks | None = None,
) -> CrosscheckOutcome:
    """Cross-check the export against the rigorous solver, write ``crosscheck.png`` into it and record the entry.

    Args:
        design: a design, or its directory. patches, patch_pixels, harmonics, seed, device, endless_base: see
            :func:`~quaton_fab.analysis.crosscheck.crosscheck_export`.
        command: the command line recorded with the entry (how to repeat the check).
        hooks: ``progress("rigorous solves (RCWA)")`` around the solves, then ``result(result)`` before the
            figure and the record are written.
    """
    hooks = hooks or AnalysisHooks()
    design = load_design(design)
    with hooks.progress("rigorous solves (RCWA)") as update:
        result = crosscheck_export(design, export_dir, patches=patches, patch_pixels=patch_pixels,
                                   harmonics=harmonics, seed=seed, device=device, endless_base=endless_base,
                                   progress=update)
    hooks.result(result)
    entry = sheet_entry(result, command)
    figure = plot_crosscheck(entry, result.convergence, Path(export_dir) / entry["figure"])
    record_crosscheck(export_dir, entry)
    return CrosscheckOutcome(result, entry, figure)
