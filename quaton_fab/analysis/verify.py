"""Verify an export as the printed object: read the files back, rebuild the relief, re-simulate, judge the gap.

For every exported format the files are read with their own libraries (gdstk for GDSII/OASIS, numpy-stl for
STL, Pillow for PNG/TIFF/BMP) and the per-mask height map is rebuilt. Only the files listed in ``fab_sheet.json``
are read, and each must still have the SHA-256 recorded there; the sheet itself is first checked against its
own hash, the design and the material table (:func:`quaton_fab.analysis.sheet_check.check_sheet`). GDS must
reproduce the level map exactly; STL heights must lie within 1 nm, PNG/TIFF within 1 nm or half a grey step.
``report.html`` is read like a file format too: its embedded level maps must equal the design's exactly and its
level table the sheet's.

The heights are then simulated at the **reference fidelity** (:func:`~quaton_fab.simulate.
reference_fidelity`): the sampling rule taken inside the material, ``pitch/s ≤ λ0/(2·n_mat)`` (and never
less than the design's own s), and the multislice model of the printed relief with the sheet's material, base
slab and heights, sliced at most λ0·REFERENCE_SLICE_FRACTION. Three numbers come out:

* the design metric (its reported test metric, i.e. the training model);
* the design as a printed object (its own levels and relief at the reference fidelity);
* the files as a printed object (the heights read back, the sheet's relief, reference fidelity).

Gap (a) files − design-as-printed isolates the export (material, base, z-step, file errors); gap (b)
design-as-printed − design isolates the model (sampling, relief) against the training model. The export passes
only when the total (files − design) loses no more than the tolerance (0.5 accuracy points, 0.01 SSIM).

A convergence probe (:mod:`quaton_fab.analysis.convergence`) then simulates the design as a printed object at
twice the reference sampling with half its slices, on a budget of test samples chosen from the reference run (those
nearest a changed decision, and a random draw from the rest), and estimates how much the metric over all the
judged samples changes, with a 95 % interval. When the change is beyond the tolerance the reference is **not
converged** and the export is not verified; when the interval straddles the tolerance the probe is **undecided**
(said, not failed: a larger probe decides).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from quaton_fab.design import Design
from quaton_fab.fab.formats.registry import read_formats
from quaton_fab.fab.formats.spec import ReadBack, ReadBackError, ReadJob
from quaton_fab.printing.level_table import HEIGHT_TOLERANCE_M, LevelTable, relief_from_table
from quaton_fab.fab.report_html import REPORT_NAME, read_report
from quaton_fab.fab.sheet import JSON_NAME, read_fab_sheet
from quaton_fab.analysis.sheet_check import VerifyError, check_sheet
from quaton_fab.optics.propagation import OpticsError
from quaton_fab.analysis.convergence import DEFAULT_PROBE_SAMPLES, run_probe
from quaton_fab.analysis.verify_report import VerifyReport, VerifyRow
from quaton_fab.simulate import Fidelity, SampleRecord, design_fidelity, reference_fidelity, simulate_design
from quaton_fab.tasks.metrics import METRICS, metric_spec, primary_metric_name

__all__ = ["verify_export", "VerifyReport", "VerifyRow", "VerifyError", "DEFAULT_TOLERANCE"]

log = logging.getLogger(__name__)

#: Largest loss of the primary metric (files as printed object vs the design) that still passes.
DEFAULT_TOLERANCE = {name: spec.verify_tolerance for name, spec in METRICS.items()}


def _phase_key(phases: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(np.round(phases, 12)).tobytes()).hexdigest()


def read_back(
    design: Design, export_dir: Path, table: LevelTable, listed: set[str], sheet: dict[str, Any] | None = None
) -> list[ReadBack]:
    """Read every exported format whose files the fab sheet lists (``listed``: file names), then the report.

    ``sheet`` is the fab sheet as read (once) by the caller; the readers take what they need from it.
    """
    job = ReadJob(design, Path(export_dir), table, frozenset(listed), sheet)
    try:
        found = read_formats(job)
    except ReadBackError as exc:
        raise VerifyError(str(exc)) from None
    if REPORT_NAME in listed:
        found.append(_read_report(job))
    if not found:
        raise VerifyError(f"the fab sheet in {str(export_dir)!r} lists no GDS/OASIS/STL/PNG/TIFF files")
    return found


def _read_report(job: ReadJob) -> ReadBack:
    """The design report's embedded level maps (exact) and level table (the sheet's)."""
    g = job.design.geometry
    levels, page = read_report(job.folder / REPORT_NAME, g.neurons, g.layers)
    item = ReadBack(REPORT_NAME, "quaton-fab report reader (embedded level maps)", levels, job.snapped[levels],
                    HEIGHT_TOLERANCE_M, exact_levels=True)
    if job.sheet is not None and page.get("levels") != job.sheet.get("levels"):
        item.problems.append(f"{REPORT_NAME}: its level table differs from the fab sheet's")
    return item


def _listed_files(export: Path, sheet: dict[str, Any]) -> tuple[set[str], list[str]]:
    """The file names the sheet lists, and problems for those changed since export (a missing one raises)."""
    files = [f for f in sheet.get("files", []) if isinstance(f, dict) and "name" in f]
    problems = _changed_files(export, files)
    if problems and any("missing" in p for p in problems):
        raise VerifyError(problems[0])
    return {f["name"] for f in files}, problems


def _changed_files(export_dir: Path, files: list[dict[str, Any]]) -> list[str]:
    """Problems for listed files that are missing or whose SHA-256 differs from the fab sheet."""
    problems = []
    for entry in files:
        path = export_dir / entry["name"]
        if not path.is_file():
            problems.append(f"{entry['name']}: listed in the fab sheet but missing")
        elif hashlib.sha256(path.read_bytes()).hexdigest() != entry.get("sha256"):
            problems.append(f"{entry['name']}: changed since export (SHA-256 differs from the fab sheet)")
    return problems


def _simulation_heights(item: ReadBack, snapped: np.ndarray) -> np.ndarray:
    """Heights to simulate for one read-back format (m, (L, N, N)).

    Where a read-back height lies within the format's tolerance of its nearest level, that level's exact
    height is used (the deviation is reported separately and is below any optical effect); elsewhere the
    height as read.
    """
    exact = snapped[item.levels]
    return np.where(np.abs(item.heights_m - exact) <= item.tolerance_m, exact, item.heights_m)


def verify_export(
    design: Design,
    export_dir: str | Path,
    *,
    samples: int | None = None,
    device: str = "auto",
    progress: Callable[[int, int], None] | None = None,
    tolerance: float | None = None,
    oversample: int | None = None,
    max_slice_m: float | None = None,
    probe_samples: int | None = DEFAULT_PROBE_SAMPLES,
    probe_progress: Callable[[int, int], None] | None = None,
) -> VerifyReport:
    """Read ``export_dir`` back and compare the printed object with the design (see the module docstring).

    The fab sheet is read once here; everything below gets it.
    Args:
        samples: number of test samples to simulate (default: the design's own test split).
        tolerance: largest accepted loss of the primary metric (default ``DEFAULT_TOLERANCE``).
        oversample: a finer reference sampling than the rule (never coarser).
        max_slice_m: a finer reference slicing of the relief than the design's own.
        probe_samples: test samples the convergence probe simulates at its finer fidelity (None or 0: no probe;
            at least the judged samples: every one of them, exactly).
        probe_progress: ``progress(done, total)`` of the probe.
    """
    export = Path(export_dir)
    sheet, table = _load_sheet(design, export)
    g = design.geometry
    metric_name = primary_metric_name(design.metrics)
    tol = _tolerance(metric_name, tolerance)
    listed, problems = _listed_files(export, sheet)
    train_fid, ref, files_fid = _fidelities(design, table, oversample, max_slice_m)
    metric = _Metrics(design, metric_name, samples, device, progress)
    reported = design.metrics.get("test", {}).get(metric_name) if samples is None else None
    design_metric = float(reported) if reported is not None else metric(train_fid, design.level_heights_m())
    design_heights = None if ref.relief is None else np.asarray(ref.relief.level_heights_m)[design.level_indices]
    reference_design = metric(ref, design_heights)
    try:
        items = read_back(design, export, table, listed, sheet)
    except Exception as exc:  # noqa: BLE001 - a changed file may break its reader in any way
        if problems:  # the file changed since export: that is the finding, not the reader's complaint
            raise VerifyError(f"{problems[0]} and cannot be read back ({type(exc).__name__})") from None
        raise
    rows = _judge(design, table, items, listed, problems, lambda heights: metric(files_fid, heights))
    probe = None
    if probe_samples:  # judged on the same population, from the reference run just made
        probe = run_probe(design, ref, samples=int(probe_samples), tolerance=tol, heights_m=design_heights,
                          device=device, progress=probe_progress, population=samples,
                          reference_run=(reference_design, metric.record(ref, design_heights)))
    n_samples = int(design.metrics.get("test", {}).get("samples", 0)) if reported is not None else int(samples or 0)
    return VerifyReport(
        metric_name=metric_name, design_metric=design_metric, reported_metric=reported,
        reference_design_metric=reference_design, samples=n_samples, rows=rows, problems=problems, tolerance=tol,
        design_fidelity=train_fid.describe(g), reference_fidelity=files_fid.describe(g),
        checked_files=sorted(listed), probe=probe,
        fidelity_ids={"design": train_fid.identifier(g), "reference": files_fid.identifier(g)}, sheet=sheet,
    )


def _load_sheet(design: Design, export: Path) -> tuple[dict[str, Any], LevelTable]:
    """The fab sheet of ``export`` (read once, checked against its hash and the design) and its level table."""
    sheet_path = export / JSON_NAME
    if not sheet_path.is_file():
        raise VerifyError(f"{str(export)!r} is not an export directory: {JSON_NAME} is missing")
    sheet = read_fab_sheet(sheet_path)
    check_sheet(sheet, design, export)  # its own hash, the design and material table, paths inside `export`
    table = LevelTable.from_dict(sheet["level_table"])
    g = design.geometry
    geometry = sheet.get("geometry", {})
    if geometry.get("neurons") != g.neurons or geometry.get("layers") != g.layers:
        raise VerifyError(
            f"the export is for {geometry.get('layers')} masks of {geometry.get('neurons')}² neurons, the design has "
            f"{g.layers} of {g.neurons}²: wrong design or export directory"
        )
    if table.n != design.levels.n:
        raise VerifyError(f"the export has {table.n} levels, the design {design.levels.n}")
    return sheet, table


def _tolerance(metric_name: str, tolerance: float | None) -> float:
    """The accepted loss of ``metric_name`` (a fraction; default ``DEFAULT_TOLERANCE``)."""
    tol = metric_spec(metric_name).verify_tolerance if tolerance is None else float(tolerance)
    if not 0 <= tol <= 1:  # a fraction of the metric: NaN, infinity or more than everything is no tolerance
        raise VerifyError(f"--tolerance {tolerance!r}: give a finite fraction between 0 and 1 (e.g. 0.005)")
    return tol


def _fidelities(
    design: Design, table: LevelTable, oversample: int | None, max_slice_m: float | None
) -> tuple[Fidelity, Fidelity, Fidelity]:
    """The training fidelity, the reference (design as printed) and the files' (the sheet's relief) fidelity."""
    g = design.geometry
    train_fid = design_fidelity(design)
    try:
        ref = reference_fidelity(design, oversample=oversample, max_slice_m=max_slice_m)
        ref.relief.free_distances_m(g.distances_m())  # each gap must hold the printed part
    except OpticsError as exc:
        raise VerifyError(f"the design cannot be simulated as a printed object: {exc}") from None
    own = design.relief
    files_relief = relief_from_table(
        table,
        periodic=design.levels.periodic,
        max_slice_m=ref.relief.max_slice_m if ref.relief is not None else None,
        orientation=own.orientation if own is not None else "base-first",
    )
    try:
        files_relief.free_distances_m(g.distances_m())
    except OpticsError as exc:
        raise VerifyError(f"the exported part does not fit the design's distances: {exc}") from None
    return train_fid, ref, Fidelity(ref.oversample, files_relief, "reference")


class _Metrics:
    """The design's primary metric at a fidelity and heights, each simulated once (cached by fidelity and phases)."""

    def __init__(self, design: Design, metric_name: str, samples: int | None, device: str,
                 progress: Callable[[int, int], None] | None) -> None:
        self.design, self.metric_name, self.samples = design, metric_name, samples
        self.device, self.progress = device, progress
        self.cache: dict[tuple[str, str], dict[str, Any]] = {}

    def _run(self, fid: Fidelity, heights: np.ndarray | None) -> dict[str, Any]:
        key = (repr(fid.to_dict()), "levels" if heights is None else _phase_key(heights * 1e6))
        if key not in self.cache:
            self.cache[key] = simulate_design(self.design, samples=self.samples, fidelity=fid, heights_m=heights,
                                              device=self.device, progress=self.progress, per_sample=True)
        return self.cache[key]

    def __call__(self, fid: Fidelity, heights: np.ndarray | None) -> float:
        return float(self._run(fid, heights)[self.metric_name])

    def record(self, fid: Fidelity, heights: np.ndarray | None) -> SampleRecord:
        """Each sample's metric and margin at ``fid`` (from the same, cached, run)."""
        return self._run(fid, heights)["per_sample"]


def _judge(
    design: Design, table: LevelTable, items: list[ReadBack], listed: set[str], problems: list[str],
    files_metric: Callable[[np.ndarray], float],
) -> list[VerifyRow]:
    """One row per read-back format (its level match, height error and metric as printed); adds the problems."""
    g = design.geometry
    snapped = np.asarray(table.snapped_height_m)
    expected = snapped[design.level_indices]
    read_names = {item.label.replace("*", str(l)) for item in items for l in range(1, g.layers + 1)}
    for name in sorted(listed - read_names):
        problems.append(f"{name}: listed in the fab sheet but not read back by verify (no reader for it)")
    rows: list[VerifyRow] = []
    for item in items:
        problems.extend(item.problems)
        match = float(np.mean(item.levels == design.level_indices))
        height_error = float(np.max(np.abs(item.heights_m - expected)))
        if item.exact_levels and match < 1.0:
            differ = int(np.sum(item.levels != design.level_indices))
            problems.append(f"{item.label}: level map differs from the design at {differ} pixels")
        if height_error > item.tolerance_m:
            problems.append(f"{item.label}: heights differ from the level table by up to {height_error * 1e9:.3g} nm")
        heights = _simulation_heights(item, snapped)
        rows.append(VerifyRow(item.label, item.reader, match, height_error, files_metric(heights), heights))
    return rows
