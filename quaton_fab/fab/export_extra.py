"""The fab sheet's ``extra`` sections every export has (printer, snapping, design, simulation, conventions, print
job, printability); the formats add their own (see :mod:`quaton_fab.fab.formats.registry`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from quaton_fab.design import Design
from quaton_fab.printing.level_table import LevelTable
from quaton_fab.printing.printability import printability_report
from quaton_fab.printing.printer import SLICING_CONVENTION, PrinterProfile, slice_counts
from quaton_fab.printing.printjob import estimate_print

__all__ = ["snapping_rows", "sheet_extra"]


def snapping_rows(table: LevelTable) -> list[dict[str, Any]]:
    """Per level: ideal and printed height (µm), slices (None without a grid) and the phase error (rad)."""
    steps = table.z_steps
    return [
        {
            "k": int(table.k[i]),
            "ideal_height_um": round(float(table.height_m[i]) * 1e6, 9),
            "printed_height_um": round(float(table.snapped_height_m[i]) * 1e6, 9),
            "slices": None if steps is None else int(steps[i]),
            "phase_error_rad": float(table.phase_error_rad[i]),
        }
        for i in range(table.n)
    ]


def sheet_extra(design: Design, table: LevelTable, printer: PrinterProfile) -> dict[str, Any]:
    """The common ``extra`` sections of the fab sheet of ``design`` exported with ``table`` for ``printer``."""
    g = design.geometry
    grid_m = table.z_step_m  # slicing grid every STL z lies on (None: exact heights)
    heights = np.asarray(table.snapped_height_m)[design.level_indices]  # (L, N, N) above the base, metres
    return {
        "printer": {
            **printer.to_dict(),
            "convention": SLICING_CONVENTION if grid_m is not None else
            "no slicing grid: heights are exported exactly (grayscale printing or lithography)",
        },
        "snapping": {
            "slicing_distance_um": None if grid_m is None else round(grid_m * 1e6, 9),
            "base_um": round(table.base_m * 1e6, 9),
            "base_slices": None if grid_m is None else int(slice_counts(table.base_m, grid_m)),
            "max_abs_phase_error_rad": table.max_abs_phase_error_rad,
            "levels": snapping_rows(table),
        },
        "design": {
            "method": design.method.get("name"),
            "task": design.task.get("kind"),
            "metrics_test": {k: v for k, v in design.metrics.get("test", {}).items() if isinstance(v, (int, float))},
            "software_version": design.software_version,
        },
        "simulation": {
            "mask_model": design.model,
            "oversample": g.oversample,
            "rule_oversample": g.rule_oversample,
            "meets_rule": g.meets_sampling_rule,
            "relief": None if design.relief is None else design.relief.to_dict(),
            "conventions": "light enters through the base slab and leaves through the relief top; spacing, d_in "
            "and d_out are measured from/to the plane where a relief starts (top of its base); the next mask's "
            "base slab lies inside the gap",
        },
        "conventions": {
            "stl": "binary STL in µm; z = build direction; base slab from z = 0 to base; pixel tops at base + h",
            "xy": "x = column · pitch, y = (N − 1 − row) · pitch (image upright), origin at the mask's lower-left",
        },
        # The chosen printer times the job; a printer without a slicing grid (grayscale) is timed as the default.
        "printjob": estimate_print(
            heights, g.pitch_m, table.base_m,
            printer if printer.has_grid and printer.scan_speed_m_per_s and printer.hatching_distance_m else None,
        ).to_dict(),
        "printability": printability_report(design.level_indices, g.pitch_m),
    }
