"""Cross-check the scalar mask models against a rigorous solver on periodic patches of an exported relief.

``K`` patches of ``P × P`` relief pixels are cut (seeded, random mask and position) from the heights read back
from an export's files (the readers of :mod:`quaton_fab.analysis.verify`), each taken as one period of an endless
periodic plate with the fab sheet's material, base slab and medium. The transmitted orders at normal incidence
are solved rigorously (:mod:`quaton_fab.optics.rigorous`, TE and TM) and by the scalar models on the same
periodic patch, with no padding (periodic FFT propagation):

* ``thin``: the phase screen ``exp(i·k0·(n_mat − n_med)·h)``, exact Fourier coefficients of its flat pixels;
* ``multislice s=…``: :class:`~quaton_fab.optics.relief.ReliefPropagator` at the design's sampling (and the
  design's slicing) and at the reference: the in-material sampling rule ``s_ref = ⌈2·p·n_mat/λ0⌉`` with the
  reference slicing of :func:`~quaton_fab.simulate.reference_slicing`;
* ``wpm s=…``: the wave propagation method (:mod:`quaton_fab.optics.wpm`) at the reference sampling and slicing.

Metrics over the propagating transmitted orders (per patch, then mean and worst over the patches):

* **L1**: Σ |η_model − η_rig| of the order efficiencies, each model's normalised to its own total transmitted
  power (so Fresnel losses, which the scalar models lack, do not count);
* **complex**: the flux-weighted complex order error ``‖a_model − a_rig‖ / ‖a_rig‖`` over the flux-normalised
  transverse amplitudes ``a`` (co- and cross-polarised; the scalar models have no cross-polarised part), each
  model's amplitudes divided by the zero order of its own flat patch (base slab only, same exit plane), which
  removes the global phase and the Fresnel amplitude.

TE (incident E along y) and TM (E along x) are compared separately, then averaged ("mean"); "TE vs TM" compares
the two rigorous solutions with each other: what any scalar model, blind to polarisation, must miss. Every
metric is given twice: over all propagating orders, and over the orders inside the network's acceptance cone
(:func:`acceptance_sin`: light leaving a mask at a steeper angle misses the next plane, in the design and in the
printed stack alike), rows named ``"… (sin θ < a)"``. The
harmonic convergence of the rigorous solver is measured on the first patch; the free-standing base's
reflections (which every reflection-free model lacks) are sized on it by solving it again from inside a
semi-infinite base (no slab entry face).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from quaton_fab.analysis.crosscheck_models import (
    POLARISATIONS,
    CrosscheckError,
    ModelSpec,
    PatchScore,
    PatchSetup,
    rigorous_orders,
    _zero,
    compare,
    cut_patches,
    in_material_rule,
    multislice_orders,
    order_errors,
    score_models,
    summarise,
    thin_orders,
)
from quaton_fab.analysis.sheet_check import check_sheet
from quaton_fab.analysis.verify import _simulation_heights, read_back
from quaton_fab.design import Design
from quaton_fab.fab.sheet import JSON_NAME, read_fab_sheet
from quaton_fab.optics.network import acceptance_sin
from quaton_fab.optics.rigorous import propagating_orders, solver_name
from quaton_fab.printing.level_table import LevelTable, relief_from_table
from quaton_fab.simulate import design_fidelity, reference_slicing, resolve_device

__all__ = [
    "CrosscheckError",
    "CrosscheckResult",
    "PatchScore",
    "PatchSetup",
    "POLARISATIONS",
    "compare",
    "crosscheck_export",
    "cut_patches",
    "in_material_rule",
    "multislice_orders",
    "order_errors",
    "score_models",
    "sheet_entry",
    "summarise",
    "thin_orders",
]

logger = logging.getLogger(__name__)
#: The harmonic ladder of the convergence study: M − 2·k for these k (kept ≥ the smallest usable M).
LADDER_STEPS = (3, 2, 1, 0)


# --------------------------------------------------------------------------------------------- the command
@dataclass
class CrosscheckResult:
    """What ``quaton-fab crosscheck`` measured (see the module docstring)."""

    solver: str
    patches: int
    patch_pixels: int
    harmonics: int
    rows: list[dict[str, Any]]
    per_patch: list[PatchScore]
    convergence: list[dict[str, float]]
    reflection_complex: float
    slab_reflectance: float
    source: str
    models: dict[str, str]
    propagating_orders: int
    acceptance_sin: float
    #: True: the rigorous orders are those of the relief lit from inside an endless base, not of the plate.
    endless_base: bool = False

    def note(self) -> str:
        """One paragraph for the fab sheet: what was compared, convergence, and the reflections left out."""
        conv = self.convergence
        if len(conv) > 1:
            trunc = f"M = {conv[-2]['harmonics']} differs from it by {conv[-2]['complex']:.3f} complex on patch 1"
        else:
            trunc = "no smaller M above the propagating orders to measure convergence against"
        lit = ("lit from inside an endless base (no bottom-face reflections: the models' own error, as the "
               "validity map measures it)" if self.endless_base else "as the free-standing plate that is printed")
        return (
            f"{self.patches} periodic {self.patch_pixels}×{self.patch_pixels}-pixel patches cut from {self.source}, "
            f"{lit}, "
            f"{self.propagating_orders} propagating transmitted orders, normal incidence; "
            f"rigorous solver {self.solver} with M = {self.harmonics} ({(2 * self.harmonics + 1) ** 2} harmonics; "
            f"{trunc}). Rows marked (sin θ < {self.acceptance_sin:.2f}) score only the orders inside the network's "
            f"acceptance cone (steeper light misses the next plane). "
            f"Reflections: the free-standing base slab is a weak Fabry–Pérot (|r|² = {self.slab_reflectance:.3f} "
            f"per face at normal incidence); what a reflection-free model misses on patch 1 (the plate against the "
            f"same patch lit from inside an endless base) is {self.reflection_complex:.3f} complex order error."
        )


def _validate_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise CrosscheckError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def crosscheck_export(
    design: Design,
    export_dir: str | os.PathLike,
    *,
    patches: int = 4,
    patch_pixels: int = 4,
    harmonics: int | None = None,
    seed: int = 0,
    device: str = "auto",
    endless_base: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> CrosscheckResult:
    """Cross-check the export's relief against the rigorous solver (see the module docstring).

    Args:
        patches: K patches. patch_pixels: P (pixels per side of a patch). harmonics: M (default: enough for
            the patch, :func:`default_harmonics`). seed: patch positions. device: torch device name or "auto".
        endless_base: light the relief from inside an endless base (no bottom-face reflections: the models' own
            error, as the validity map measures it) instead of solving the free-standing plate as printed.
        progress: ``callback(done, total)`` over the rigorous solves.
    """
    _validate_int("--patches", patches, 1)
    _validate_int("--patch-pixels", patch_pixels, 1)
    _validate_int("--seed", seed, 0)
    export = Path(export_dir)
    sheet, table = _checked_sheet(design, export)
    m, top_order = _harmonics(design, patch_pixels, harmonics)
    dev = resolve_device(device)
    files = [f for f in sheet.get("files", []) if isinstance(f, dict) and "name" in f]
    item = read_back(design, export, table, {f["name"] for f in files}, sheet)[0]
    heights = _simulation_heights(item, np.asarray(table.snapped_height_m))
    models, setup = _models(design, table)
    setup = dataclasses.replace(setup, semi_infinite_base=bool(endless_base))
    cut = cut_patches(heights, patch_pixels, patches, seed)
    ladder = [k for k in (m - 2 * j for j in LADDER_STEPS) if k > top_order + 1]
    total = patches + 1 + len(ladder) - 1 + 1  # patches, flat, convergence ladder, semi-infinite base
    done = 0

    def tick(*_: int) -> None:
        nonlocal done
        done += 1
        if progress:
            progress(done, total)

    cone = acceptance_sin(design.geometry)
    per = score_models(setup, models, [c[3] for c in cut], harmonics=m, device=dev, progress=tick, cone_sin=cone)
    scores = [PatchScore(mask, r, c, e) for (mask, r, c, _), e in zip(cut, per)]
    patch = cut[0][3]
    top = rigorous_orders(setup, patch, m, dev)
    convergence = _convergence(setup, patch, top, m, ladder, dev, tick)
    reflection = _reflection_error(setup, patch, top, m, dev, tick)
    r_face = ((table.n_material - table.n_medium) / (table.n_material + table.n_medium)) ** 2
    descr = {name: ("thin phase screen" if rel is None else f"{kind}, s={s}, {len(rel.slice_edges_m()) - 1} slices")
             for name, (kind, rel, s) in models.items()}
    return CrosscheckResult(
        solver=solver_name(), patches=patches, patch_pixels=patch_pixels, harmonics=m, rows=summarise(per),
        per_patch=scores, convergence=convergence, reflection_complex=reflection,
        slab_reflectance=float(r_face), source=f"{item.label} ({item.reader})", models=descr,
        propagating_orders=int(len(top.orders)), acceptance_sin=cone, endless_base=bool(endless_base),
    )


def _checked_sheet(design: Design, export: Path) -> tuple[dict[str, Any], LevelTable]:
    """The export's fab sheet (checked against the design) and its level table."""
    sheet_path = export / JSON_NAME
    if not sheet_path.is_file():
        raise CrosscheckError(f"{str(export)!r} is not an export directory: {JSON_NAME} is missing")
    sheet = read_fab_sheet(sheet_path)
    check_sheet(sheet, design, export)
    return sheet, LevelTable.from_dict(sheet["level_table"])


def _harmonics(design: Design, patch_pixels: int, harmonics: int | None) -> tuple[int, int]:
    """``(M, largest propagating order)`` of a patch of ``patch_pixels`` pixels; refuses too small an M."""
    g = design.geometry
    period_m = patch_pixels * g.pitch_m
    top_order = int(np.max(np.abs(propagating_orders(period_m, g.wavelength_m, g.n_medium))))
    m = default_harmonics(patch_pixels, period_m, g.wavelength_m, g.n_medium) if harmonics is None else harmonics
    _validate_int("--harmonics", m, 1)
    if m <= top_order + 1:
        raise CrosscheckError(
            f"--harmonics {m} is too small: the {patch_pixels}-pixel patch has propagating orders up to "
            f"|m| = {top_order}; use at least {top_order + 2}"
        )
    return m, top_order


def _models(design: Design, table: LevelTable) -> tuple[dict[str, ModelSpec], PatchSetup]:
    """The scalar models compared (thin, multislice at the design's and the reference sampling, WPM) and the
    patch setup of the export's relief."""
    g = design.geometry
    own = design.relief
    orientation = own.orientation if own is not None else "base-first"
    relief = relief_from_table(table, periodic=design.levels.periodic, orientation=orientation,
                               max_slice_m=own.max_slice_m if own is not None else None)
    s_design = design_fidelity(design).oversample
    s_ref = max(s_design, in_material_rule(g.pitch_m, g.wavelength_m, table.n_material))
    ref_relief = reference_slicing(relief, g.wavelength_m)
    models: dict[str, ModelSpec] = {
        "thin": ("thin", None, 1),
        f"multislice s={s_design} (design)": ("multislice", relief, s_design),
        f"multislice s={s_ref} (reference)": ("multislice", ref_relief, s_ref),
        f"wpm s={s_ref} (reference)": ("wpm", ref_relief, s_ref),
    }
    setup = PatchSetup(g.pitch_m, g.wavelength_m, table.n_material, table.n_medium, table.base_m, orientation,
                       relief.top_m)
    return models, setup


def _convergence(setup: PatchSetup, patch: np.ndarray, top: Any, m: int, ladder: list[int], dev: Any,
                 tick: Callable[[], None]) -> list[dict[str, float]]:
    """Convergence in harmonics on one patch: TE/TM mean L1 and complex error of each M of the ladder against
    the chosen M (``top``, its solution)."""
    convergence = []
    for k in ladder:
        rig = top if k == m else rigorous_orders(setup, patch, k, dev)
        if k != m:
            tick()
        te = order_errors(rig.te, 1.0, top.te, 1.0)
        tm = order_errors(rig.tm, 1.0, top.tm, 1.0)
        convergence.append({"harmonics": k, "l1": (te[0] + tm[0]) / 2, "complex": (te[1] + tm[1]) / 2})
    return convergence


def _reflection_error(setup: PatchSetup, patch: np.ndarray, top: Any, m: int, dev: Any,
                      tick: Callable[[], None]) -> float:
    """What a reflection-free model misses: the patch lit from inside an endless base (no entry face) against
    the plate, each against its own flat patch; TE/TM mean complex error. ``top`` is the patch's solution in
    ``setup`` (the endless base's or the plate's), the other one is solved here."""
    flat = np.zeros_like(patch)
    other = rigorous_orders(setup, patch, m, dev, semi_infinite_base=not setup.semi_infinite_base)
    semi, top = (top, other) if setup.semi_infinite_base else (other, top)
    semi_flat = rigorous_orders(setup, flat, m, dev, semi_infinite_base=True)
    tick()
    plate_flat = rigorous_orders(setup, flat, m, dev, semi_infinite_base=False)
    refl = [order_errors(semi.te, semi_flat.te[_zero(semi_flat), 0], top.te, plate_flat.te[_zero(plate_flat), 0])[1],
            order_errors(semi.tm, semi_flat.tm[_zero(semi_flat), 0], top.tm, plate_flat.tm[_zero(plate_flat), 0])[1]]
    return float(np.mean(refl))


def default_harmonics(pixels: int, period_m: float, wavelength_m: float, n_medium: float) -> int:
    """Default M: the largest propagating order + 2, and at least 2 harmonics per pixel side (≥ 2·P)."""
    top = int(math.floor(n_medium * period_m / wavelength_m))
    return max(top + 2, 2 * pixels)


def sheet_entry(result: CrosscheckResult, command: str, figure: str = "crosscheck.png") -> dict[str, Any]:
    """The fab sheet's ``crosscheck`` entry (rendered by the sheet's Markdown and HTML reports)."""
    return {
        "command": command, "solver": result.solver, "patches": result.patches, "patch_pixels": result.patch_pixels,
        "harmonics": result.harmonics, "acceptance_sin": round(result.acceptance_sin, 4),
        "endless_base": result.endless_base,
        "rows": [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()} for row in result.rows],
        "note": result.note(), "figure": figure,
    }


def result_to_dict(result: CrosscheckResult) -> dict[str, Any]:
    """JSON-ready full record (per patch, convergence, models)."""
    out = dataclasses.asdict(result)
    out["note"] = result.note()
    return out
