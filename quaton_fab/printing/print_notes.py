"""What the user should know about a print's choices: each against what the design was trained for.

Pure functions returning warning sentences (the export shows them and records them in the fab sheet). The
trained choices come from the design's ``fabrication`` record, a plain mapping.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from quaton_fab.printing.level_table import LevelTable
from quaton_fab.printing.materials import Material, get_material
from quaton_fab.printing.printer import grid_um, on_grid, slice_counts

__all__ = ["choice_warnings", "base_on_grid", "trained_base_warnings", "snapping_warnings"]


def choice_warnings(
    trained: Mapping[str, Any], material: Material, z_step_m: float | None, wavelength_m: float,
) -> list[str]:
    """Warnings on the z-step (m) and material of a print against the trained ones, and on the material at λ0."""
    warnings: list[str] = []
    trained_step = trained.get("z_step_m")
    if z_step_m is not None and trained_step is not None and not on_grid(trained_step, z_step_m):
        warnings.append(
            f"the design was trained on a {trained_step * 1e9:.4g} nm z-step, which is not a whole number of the "
            f"printer's {z_step_m * 1e9:.4g} nm slices: its levels move when snapped (retrain with --z-step "
            f"{z_step_m * 1e9:.4g}nm or a multiple)"
        )
    if trained.get("material") and get_material(trained["material"]).name != material.name:
        warnings.append(
            f"the design was trained on the printable levels of {trained['material']}; exporting it in "
            f"{material.name} changes the printed phases (retrain with --material {material.name})"
        )
    if not material.in_range(wavelength_m):
        warnings.append(
            f"{material.name}: λ0 = {wavelength_m * 1e9:.1f} nm is outside the validity range of its index formula"
        )
    if material.nominal:
        warnings.append(f"{material.name}: the index is a nominal value; measure Δn for your print recipe")
    return warnings


def base_on_grid(base_m: float, z_step_m: float) -> tuple[float, list[str]]:
    """The base slab (m) put on the z-step grid (whole slices), with a warning when that moves it.

    The caller refuses a base thinner than half a slice (``slice_counts(base_m, z_step_m) < 1``) first.
    """
    if on_grid(base_m, z_step_m):
        return base_m, []
    base_slices = int(slice_counts(base_m, z_step_m))
    snapped_base_m = float(grid_um(base_slices, z_step_m)) * 1e-6
    return snapped_base_m, [
        f"base {base_m * 1e6:.6g} µm is not a whole number of {z_step_m * 1e9:.4g} nm slices; it is printed "
        f"(and exported) as {base_slices} slices = {snapped_base_m * 1e6:.6g} µm"
    ]


def trained_base_warnings(trained_base_m: float | None, base_m: float) -> list[str]:
    """A warning when the printed base (m) differs from the base the design was trained through (None: none)."""
    if trained_base_m is None or not abs(base_m - trained_base_m) > 1e-12:
        return []
    return [
        f"the design was trained through a {trained_base_m * 1e6:.4g} µm base slab; a {base_m * 1e6:.4g} µm base "
        "changes the printed object (verify shows the cost)"
    ]


def snapping_warnings(table: LevelTable) -> list[str]:
    """A warning when snapping to the table's z-step moves a level phase by more than 1e-6 rad."""
    z_step_m = table.z_step_m
    if z_step_m is None or not table.max_abs_phase_error_rad > 1e-6:
        return []
    worst = int(np.argmax(np.abs(table.phase_error_rad)))
    return [
        f"snapping heights to the printer's {z_step_m * 1e9:.4g} nm slices changes level phases by up to "
        f"{table.max_abs_phase_error_rad:.3f} rad (level {worst}: {table.height_m[worst] * 1e6:.4f} µm printed "
        f"as {table.snapped_height_m[worst] * 1e6:.4f} µm); train with --material/--z-step "
        f"{z_step_m * 1e9:.4g}nm to make them agree, or export with --printer grayscale"
    ]
