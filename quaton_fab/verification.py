"""Verify an export: read the files back, rebuild heights and phases, re-simulate, report the metric gap.

For every exported format the files are read with their own libraries (gdstk for GDSII/OASIS, numpy-stl for
STL, Pillow for PNG/TIFF), the per-mask level or height map is rebuilt, converted back to phases with the material
model recorded in ``fab_sheet.json`` (φ = 2π(n_mat − n_med)·h/λ0), and the design's test metric is simulated
with those phases. GDS must reproduce the level map exactly; STL, PNG and TIFF heights must lie within 1 nm.
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
from quaton_fab.fab.heights import LevelTable, nearest_levels
from quaton_fab.fab.sheet import read_fab_sheet
from quaton_fab.training.evaluate import simulate_design

__all__ = ["verify_export", "VerifyReport", "VerifyRow", "VerifyError"]

log = logging.getLogger(__name__)

HEIGHT_TOLERANCE_M = 1e-9


class VerifyError(ValueError):
    """An export directory that cannot be verified (no fab sheet, no files, wrong design)."""


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


def read_back(design: Design, export_dir: Path, table: LevelTable) -> list[tuple[str, str, np.ndarray, np.ndarray]]:
    """Read every exported format: ``(label, reader, level map (L,N,N), heights above base (L,N,N) m)``."""
    g = design.geometry
    snapped = np.asarray(table.snapped_height_m)
    found: list[tuple[str, str, np.ndarray, np.ndarray]] = []
    for ext, reader in (("gds", "gdstk.read_gds"), ("oas", "gdstk.read_oas")):
        path = export_dir / f"design.{ext}"
        if path.is_file():
            levels = gds_io.read_gds_levels(path, g.neurons, g.pitch_m, table.n)
            found.append((path.name, reader, levels, snapped[levels]))
    masks = range(1, g.layers + 1)
    for pattern, reader, load in (
        ("mask_{}.stl", "numpy-stl", lambda p: stl_io.read_stl_heights(p, g.neurons, g.pitch_m, table.base_m)),
        ("mask_{}_height.png", "Pillow", lambda p: read_height_png(p)[0] - table.base_m),
        ("mask_{}_height.tif", "Pillow", lambda p: read_height_tiff(p)[0] - table.base_m),
    ):
        paths = [export_dir / pattern.format(l) for l in masks]
        present = [p.is_file() for p in paths]
        if not any(present):
            continue
        if not all(present):
            missing = paths[present.index(False)]
            raise VerifyError(f"{str(missing)!r} is missing while other masks of that format are present")
        heights = np.stack([load(p) for p in paths])
        levels = nearest_levels(heights, snapped)[0]
        found.append((pattern.format("*"), reader, levels, heights))
    if not found:
        raise VerifyError(f"no exported GDS/OASIS/STL/PNG files found in {str(export_dir)!r}")
    return found


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

    problems: list[str] = []
    design_metrics = simulate_design(design, samples=samples, device=device, progress=progress)
    metric_name = design.metrics.get("primary", "accuracy")
    design_metric = float(design_metrics[metric_name])
    reported = design.metrics.get("test", {}).get(metric_name) if samples is None else None

    rows: list[VerifyRow] = []
    cache: dict[str, float] = {}
    dn = table.n_material - table.n_medium
    for label, reader, levels, heights in read_back(design, export, table):
        match = float(np.mean(levels == design.level_indices))
        expected = np.asarray(table.snapped_height_m)[design.level_indices]
        height_error = float(np.max(np.abs(heights - expected)))
        if label.endswith((".gds", ".oas")) and match < 1.0:
            problems.append(f"{label}: level map differs from the design at {int(np.sum(levels != design.level_indices))} pixels")
        if height_error > HEIGHT_TOLERANCE_M:
            problems.append(f"{label}: heights differ from the level table by up to {height_error * 1e9:.3g} nm")
        phases = 2.0 * np.pi * dn * heights / table.wavelength_m
        key = _phase_key(phases)
        if key not in cache:
            metrics = simulate_design(design, samples=samples, phases_rad=phases, device=device, progress=progress)
            cache[key] = float(metrics[metric_name])
        rows.append(VerifyRow(label, reader, match, height_error, cache[key], phases))
    return VerifyReport(metric_name, design_metric, reported, int(design_metrics["samples"]), rows, problems)
