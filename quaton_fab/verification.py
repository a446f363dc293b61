"""Verify an export: read the files back, rebuild heights and phases, re-simulate, report the metric gap.

For every exported format the files are read with their own libraries (gdstk for GDSII/OASIS, numpy-stl for
STL, Pillow for PNG/TIFF), the per-mask level or height map is rebuilt, converted back to phases with the material
model recorded in ``fab_sheet.json`` (φ = 2π(n_mat − n_med)·h/λ0), and the design's test metric is simulated
with those phases. Only the files listed in the fab sheet are read, and each must still have the SHA-256 recorded
there; the sheet itself is first checked against its own hash, the design and the material table
(:func:`quaton_fab.fab.sheet_check.check_sheet`). GDS must reproduce the level map exactly; STL heights must lie
within 1 nm, PNG/TIFF within 1 nm or half a grey step.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from quaton_fab.design import Design
from quaton_fab.fab import gds as gds_io
from quaton_fab.fab import stl as stl_io
from quaton_fab.fab.heightmap_png import read_height_png, read_height_tiff
from quaton_fab.fab.heights import HEIGHT_TOLERANCE_M, LevelTable, nearest_levels
from quaton_fab.fab.sheet import read_fab_sheet
from quaton_fab.fab.sheet_check import VerifyError, check_sheet
from quaton_fab.training.evaluate import simulate_design

__all__ = ["verify_export", "VerifyReport", "VerifyRow", "VerifyError"]

log = logging.getLogger(__name__)



@dataclass
class VerifyRow:
    """One exported format: how it was read, how well it matches, and its re-simulated metric."""

    file: str
    reader: str
    level_match: float
    max_height_error_m: float
    metric: float
    phases_rad: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))


@dataclass
class VerifyReport:
    """Result of :func:`verify_export`."""

    metric_name: str
    design_metric: float
    reported_metric: float | None
    samples: int
    rows: list[VerifyRow]
    problems: list[str]

    @property
    def ok(self) -> bool:
        """True when every file reads back to the design (the metric gap itself is reported, not judged)."""
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {
            "metric": self.metric_name,
            "design_metric": self.design_metric,
            "reported_metric": self.reported_metric,
            "samples": self.samples,
            "ok": self.ok,
            "problems": self.problems,
            "files": [
                {"file": r.file, "reader": r.reader, "level_match": r.level_match,
                 "max_height_error_m": r.max_height_error_m, "metric": r.metric,
                 "gap": r.metric - self.design_metric}
                for r in self.rows
            ],
        }


def _phase_key(phases: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(np.round(phases, 12)).tobytes()).hexdigest()


@dataclass
class _ReadBack:
    """One exported format read back: level map and relief heights above the base, both (L, N, N)."""

    label: str
    reader: str
    levels: np.ndarray
    heights_m: np.ndarray
    tolerance_m: float


def read_back(design: Design, export_dir: Path, table: LevelTable, listed: set[str]) -> list[_ReadBack]:
    """Read every exported format whose files the fab sheet lists (``listed``: file names)."""
    g = design.geometry
    snapped = np.asarray(table.snapped_height_m)
    found: list[_ReadBack] = []
    for ext, reader in (("gds", "gdstk.read_gds"), ("oas", "gdstk.read_oas")):
        name = f"design.{ext}"
        if name in listed:
            levels = gds_io.read_gds_levels(export_dir / name, g.neurons, g.pitch_m, table.n)
            found.append(_ReadBack(name, reader, levels, snapped[levels], HEIGHT_TOLERANCE_M))
    masks = range(1, g.layers + 1)

    def height_map(read):
        def load(path: Path) -> tuple[np.ndarray, float]:
            heights, meta = read(path)
            return heights, max(HEIGHT_TOLERANCE_M, 0.5 * float(meta["height_per_grey_m"]))

        return load

    for pattern, reader, load in (
        ("mask_{}.stl", "numpy-stl",
         lambda p: (stl_io.read_stl_heights(p, g.neurons, g.pitch_m, table.base_m), HEIGHT_TOLERANCE_M)),
        ("mask_{}_height.png", "Pillow", height_map(read_height_png)),
        ("mask_{}_height.tif", "Pillow", height_map(read_height_tiff)),
    ):
        names = [pattern.format(l) for l in masks]
        present = [n in listed for n in names]
        if not any(present):
            continue
        if not all(present):
            raise VerifyError(f"the fab sheet lists {names[present.index(True)]} but not {names[present.index(False)]}")
        loaded = [load(export_dir / n) for n in names]
        heights = np.stack([h for h, _ in loaded])
        found.append(_ReadBack(pattern.format("*"), reader, nearest_levels(heights, snapped)[0], heights,
                               max(t for _, t in loaded)))
    if not found:
        raise VerifyError(f"the fab sheet in {str(export_dir)!r} lists no GDS/OASIS/STL/PNG/TIFF files")
    return found


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


def verify_export(
    design: Design,
    export_dir: str | Path,
    *,
    samples: int | None = None,
    device: str = "auto",
    progress: Callable[[int, int], None] | None = None,
) -> VerifyReport:
    """Read ``export_dir`` back and compare the fabricated design with the simulated one.

    Args:
        samples: number of test samples to simulate (default: the design's own test split).
    """
    export = Path(export_dir)
    sheet_path = export / "fab_sheet.json"
    if not sheet_path.is_file():
        raise VerifyError(f"{str(export)!r} is not an export directory: fab_sheet.json is missing")
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

    files = [f for f in sheet.get("files", []) if isinstance(f, dict) and "name" in f]
    problems: list[str] = _changed_files(export, files)
    if problems and any("missing" in p for p in problems):
        raise VerifyError(problems[0])
    design_metrics = simulate_design(design, samples=samples, device=device, progress=progress)
    metric_name = design.metrics.get("primary", "accuracy")
    design_metric = float(design_metrics[metric_name])
    reported = design.metrics.get("test", {}).get(metric_name) if samples is None else None

    rows: list[VerifyRow] = []
    cache: dict[str, float] = {}
    expected = np.asarray(table.snapped_height_m)[design.level_indices]
    try:
        items = read_back(design, export, table, {f["name"] for f in files})
    except Exception as exc:  # noqa: BLE001 - a changed file may break its reader in any way
        if problems:  # the file changed since export: that is the finding, not the reader's complaint
            raise VerifyError(f"{problems[0]} and cannot be read back ({type(exc).__name__})") from None
        raise
    for item in items:
        match = float(np.mean(item.levels == design.level_indices))
        height_error = float(np.max(np.abs(item.heights_m - expected)))
        if item.label.endswith((".gds", ".oas")) and match < 1.0:
            differ = int(np.sum(item.levels != design.level_indices))
            problems.append(f"{item.label}: level map differs from the design at {differ} pixels")
        if height_error > item.tolerance_m:
            problems.append(f"{item.label}: heights differ from the level table by up to {height_error * 1e9:.3g} nm")
        phases = table.phases_of_heights(item.heights_m)
        key = _phase_key(phases)
        if key not in cache:
            metrics = simulate_design(design, samples=samples, phases_rad=phases, device=device, progress=progress)
            cache[key] = float(metrics[metric_name])
        rows.append(VerifyRow(item.label, item.reader, match, height_error, cache[key], phases))
    return VerifyReport(metric_name, design_metric, reported, int(design_metrics["samples"]), rows, problems)
