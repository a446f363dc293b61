"""A tolerance study, start to finish: what ``quaton-fab tolerance`` does, as one call.

One idea: the study around the Monte-Carlo of :mod:`quaton_fab.analysis.tolerance`. :func:`tolerance_study`
fills in the default magnitudes, refuses result files it would overwrite and an export whose fab sheet does not
match the design (before minutes of simulation), chooses the fidelity, runs the Monte-Carlo, writes
``tolerance.json``/``.md``/``.png`` as one set (all three or none) and records the acceptance tolerances in the
export's fab sheet. Nothing is printed: progress goes to :class:`~quaton_fab.analysis.evaluation.AnalysisHooks`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from quaton_fab.analysis.evaluation import AnalysisHooks
from quaton_fab.analysis.sheet_check import check_sheet
from quaton_fab.analysis.tolerance import ToleranceRun, run_tolerance, tolerance_markdown, tolerance_sheet_entry
from quaton_fab.analysis import tolerance_figure
from quaton_fab.design import Design
from quaton_fab.errors import QuatonFabError
from quaton_fab.fab.sheet import read_fab_sheet, record_tolerance
from quaton_fab.fileio import atomic_write_bytes, write_set
from quaton_fab.optics.perturbation import ERRORS
from quaton_fab.simulate import Fidelity, design_fidelity, reference_fidelity

__all__ = [
    "DEFAULT_FACTORS", "ToleranceStudy", "ToleranceStudyError", "default_magnitudes", "select_errors",
    "tolerance_files", "tolerance_study", "write_tolerance_files",
]

#: The magnitudes swept by default (× each error's literature default), and the combined factors.
DEFAULT_FACTORS = (0.5, 1.0, 2.0)


class ToleranceStudyError(QuatonFabError):
    """A tolerance study that cannot run as asked (unknown error, files in the way, wrong fidelity)."""


@dataclass
class ToleranceStudy:
    """What :func:`tolerance_study` did: the Monte-Carlo run, its fidelity, the files and the sheet record."""

    run: ToleranceRun
    fidelity: Fidelity
    files: dict[str, Path]
    recorded: bool

    @property
    def prints(self) -> int:
        """Prints simulated: every trial plus the nominal one."""
        return sum(r["trials"] for r in self.run.rows) + 1


def default_magnitudes(name: str) -> list[float]:
    """The default sweep of one error: its literature default × 0.5, 1 and 2 (field units)."""
    return [ERRORS[name].default * f for f in DEFAULT_FACTORS]


def select_errors(names: Sequence[str] | None) -> list[str]:
    """The errors to sweep (None: all), checked against the perturbation model's names."""
    chosen = list(ERRORS) if names is None else [n.strip() for n in names if n.strip()]
    for name in chosen:
        if name not in ERRORS:
            raise ToleranceStudyError(f"--errors: unknown error {name!r}; use {', '.join(ERRORS)}")
    return chosen


def tolerance_files(folder: str | Path) -> dict[str, Path]:
    """``{"json", "md", "png"}`` → ``folder/tolerance.<suffix>``."""
    return {k: Path(folder) / f"tolerance.{k}" for k in ("json", "md", "png")}


def write_tolerance_files(run: ToleranceRun, folder: str | Path) -> dict[str, Path]:
    """Write ``tolerance.json``/``.md``/``.png`` into ``folder`` as one set (all three or none, see
    :func:`~quaton_fab.fileio.write_set`); an error names the file asked for."""
    files = tolerance_files(folder)
    result = run.to_dict()
    write_set({
        files["json"]: lambda p: atomic_write_bytes(p, (json.dumps(result, indent=2, allow_nan=False) + "\n").encode()),
        files["md"]: lambda p: atomic_write_bytes(p, tolerance_markdown(run).encode()),
        files["png"]: lambda p: tolerance_figure.plot_tolerance(result, p),
    }, prefix=".tolerance-")
    return files


def _choose_fidelity(design: Design, fidelity: str, oversample: int | None) -> Fidelity:
    """``reference`` (the printed object, optionally finer sampled) or ``design`` (its own relief model)."""
    if oversample is not None and fidelity != "reference":
        raise ToleranceStudyError("--oversample refines the reference fidelity; drop it or use --fidelity reference")
    fid = reference_fidelity(design, oversample=oversample) if fidelity == "reference" else design_fidelity(design)
    if fid.relief is None:
        raise ToleranceStudyError(
            "the design was trained with thin masks; use --fidelity reference (the printed relief)")
    return fid


def _check_before_running(design: Design, files: dict[str, Path], export_dir: str | Path | None,
                          force: bool) -> None:
    """Refuse result files in the way (unless ``force``) and an export whose fab sheet does not fit the design."""
    if not force:
        clash = next((p for p in files.values() if p.exists()), None)
        if clash is not None:
            raise ToleranceStudyError(f"{clash} already exists; use --force to overwrite it or another --out")
    if export_dir is not None:  # check the export before minutes of simulation
        check_sheet(read_fab_sheet(export_dir), design, export_dir)


def tolerance_study(
    design_dir: str | Path,
    *,
    design: Design | None = None,
    export_dir: str | Path | None = None,
    errors: Sequence[str] | None = None,
    magnitudes: Mapping[str, Sequence[float]] | None = None,
    trials: int = 4,
    seed: int = 0,
    samples: int = 300,
    loss: float | None = None,
    criterion: str = "p5",
    fidelity: str = "reference",
    combined_factors: Sequence[float] = DEFAULT_FACTORS,
    oversample: int | None = None,
    out: str | Path | None = None,
    force: bool = False,
    device: str = "auto",
    hooks: AnalysisHooks | None = None,
) -> ToleranceStudy:
    """Run the tolerance Monte-Carlo of a design, write its result files and record them in the export's sheet.

    Args:
        design_dir: the design directory (loaded unless ``design`` is given; ``out`` defaults to
            ``design_dir/tolerance``).
        export_dir: an export whose fab sheet is checked first and then receives the acceptance tolerances.
        errors: the errors to sweep (None: all, see :func:`select_errors`).
        magnitudes: error name → magnitudes (field units); an error not given sweeps
            :func:`default_magnitudes`.
        trials, seed, samples, criterion, combined_factors, device: see
            :func:`~quaton_fab.analysis.tolerance.run_tolerance`; ``loss`` is its ``allowed_loss``.
        fidelity: ``reference`` (the printed object; ``oversample`` refines it) or ``design`` (its own model).
        force: overwrite existing result files.
        hooks: ``fidelity``, ``progress("tolerance Monte-Carlo (prints simulated)")``, ``result(run)``, then
            ``written(files)`` before the sheet is updated.

    Raises:
        ToleranceStudyError: an unknown error, result files in the way, or a fidelity that cannot be used.
    """
    hooks = hooks or AnalysisHooks()
    design = design if design is not None else Design.load(design_dir)
    given = dict(magnitudes or {})
    sweeps = {name: list(given[name]) if name in given else default_magnitudes(name)
              for name in select_errors(errors)}
    files = tolerance_files(out if out is not None else Path(design_dir) / "tolerance")
    _check_before_running(design, files, export_dir, force)
    fid = _choose_fidelity(design, fidelity, oversample)
    hooks.fidelity(fid.label, fid.describe(design.geometry))
    with hooks.progress("tolerance Monte-Carlo (prints simulated)") as update:
        run = run_tolerance(design, sweeps, trials=trials, seed=seed, samples=samples, fidelity=fid,
                            allowed_loss=loss, criterion=criterion, combined_factors=list(combined_factors),
                            device=device, progress=_three_to_two(update))
    hooks.result(run)
    write_tolerance_files(run, files["json"].parent)
    hooks.written(list(files.values()))
    if export_dir is not None:
        record_tolerance(export_dir, tolerance_sheet_entry(run))
    return ToleranceStudy(run, fid, files, recorded=export_dir is not None)


def _three_to_two(update: Callable[[int, int], None] | None) -> Callable[[int, int, str], None] | None:
    """``run_tolerance``'s ``progress(done, total, label)`` → a ``update(done, total)`` hook."""
    return None if update is None else (lambda done, total, label: update(done, total))
