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
the two rigorous solutions with each other: what any scalar model, blind to polarisation, must miss. The
harmonic convergence of the rigorous solver is measured on the first patch; the free-standing base's
reflections (which every reflection-free model lacks) are sized on it by solving it again from inside a
semi-infinite base (no slab entry face).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from quaton_fab.design import Design
from quaton_fab.errors import QuatonFabError
from quaton_fab.printing.level_table import LevelTable, relief_from_table
from quaton_fab.fab.sheet import read_fab_sheet
from quaton_fab.analysis.sheet_check import check_sheet
from quaton_fab.optics.network import rule_oversample
from quaton_fab.optics.relief import Relief, ReliefPropagator
from quaton_fab.optics.rigorous import PatchOrders, propagating_orders, solve_patch, solver_name
from quaton_fab.optics.wpm import WavePropagator
from quaton_fab.simulate import design_fidelity, reference_slicing, resolve_device
from quaton_fab.analysis.verify import _simulation_heights, read_back

__all__ = [
    "CrosscheckError",
    "CrosscheckResult",
    "PatchScore",
    "compare",
    "crosscheck_export",
    "cut_patches",
    "in_material_rule",
    "multislice_orders",
    "order_errors",
    "score_models",
    "sheet_entry",
    "thin_orders",
]

logger = logging.getLogger(__name__)
POLARISATIONS = ("TE", "TM")
#: The harmonic ladder of the convergence study: M − 2·k for these k (kept ≥ the smallest usable M).
LADDER_STEPS = (3, 2, 1, 0)


class CrosscheckError(QuatonFabError):
    """Bad crosscheck input (one line naming the bad value)."""


def in_material_rule(pitch_m: float, wavelength_m: float, n_material: float) -> int:
    """The sampling rule taken inside the material: ``⌈2·p·n_mat/λ0⌉`` simulation pixels per relief pixel."""
    return rule_oversample(pitch_m, wavelength_m, n_material)


# ------------------------------------------------------------------------------------------ scalar models
def _cos_theta(orders: np.ndarray, period_m: float, wavelength_m: float, n_medium: float) -> np.ndarray:
    """cos of each order's angle in the medium, ``(K,)``."""
    s2 = (orders[:, 0] ** 2 + orders[:, 1] ** 2) * (wavelength_m / (n_medium * period_m)) ** 2
    return np.sqrt(np.clip(1.0 - s2, 0.0, None))


def multislice_orders(
    heights_m: np.ndarray, relief: Relief, *, pitch_m: float, wavelength_m: float, n_medium: float, oversample: int,
    wpm: bool = False,
) -> np.ndarray:
    """Flux-normalised amplitudes ``(K,)`` of the propagating orders of one periodic patch, multislice model.

    ``heights_m``: ``(P, P)`` heights above the base (m), rows y. The field enters the plate's entry face as a
    unit plane wave and leaves at the relief's top (``ReliefPropagator(ends=True, padding=0)``, complex128;
    ``wpm=True``: :class:`~quaton_fab.optics.wpm.WavePropagator` instead). Orders in the order of
    :func:`~quaton_fab.optics.rigorous.propagating_orders`.
    """
    h = np.asarray(heights_m, dtype=np.float64)
    pixels = h.shape[0]
    n = pixels * oversample
    kind = WavePropagator if wpm else ReliefPropagator
    prop = kind(relief, (n, n), sim_pitch_m=pitch_m / oversample, wavelength_m=wavelength_m,
                n_medium=n_medium, dtype=torch.complex128, padding=0)
    grid = torch.from_numpy(np.kron(h, np.ones((oversample, oversample))))
    out = prop(torch.ones(n, n, dtype=torch.complex128), grid).numpy()
    coeff = np.fft.fft2(out) / n**2
    period = pixels * pitch_m
    orders = propagating_orders(period, wavelength_m, n_medium)
    mx, my = orders[:, 0], orders[:, 1]
    # sample k stands for a cell centred on k·Δ: undo that half-cell shift against the pixel-aligned patch
    shift = np.exp(-1j * math.pi * (mx + my) / n)
    return coeff[my % n, mx % n] * shift * np.sqrt(_cos_theta(orders, period, wavelength_m, n_medium))


def thin_orders(
    heights_m: np.ndarray, *, n_material: float, pitch_m: float, wavelength_m: float, n_medium: float,
) -> np.ndarray:
    """Flux-normalised amplitudes ``(K,)`` of the thin phase screen ``exp(i·k0·(n_mat − n_med)·h)`` on the patch.

    Exact Fourier coefficients of the piecewise-constant screen (pixel ``j`` covers ``[j·p, (j+1)·p)``).
    """
    h = np.asarray(heights_m, dtype=np.float64)
    pixels = h.shape[0]
    screen = np.exp(2j * math.pi * (n_material - n_medium) * h / wavelength_m)
    period = pixels * pitch_m
    orders = propagating_orders(period, wavelength_m, n_medium)
    mx, my = orders[:, 0], orders[:, 1]
    dft = np.fft.fft2(screen) / pixels**2
    pixel_ft = np.sinc(mx / pixels) * np.sinc(my / pixels) * np.exp(-1j * math.pi * (mx + my) / pixels)
    return dft[my % pixels, mx % pixels] * pixel_ft * np.sqrt(_cos_theta(orders, period, wavelength_m, n_medium))


# ------------------------------------------------------------------------------------------------ metrics
def _as_vector(amp: np.ndarray) -> np.ndarray:
    """``(K, 2)`` co/cross amplitudes from a scalar ``(K,)`` (cross = 0) or a ``(K, 2)`` array."""
    a = np.asarray(amp, dtype=np.complex128)
    return np.stack([a, np.zeros_like(a)], axis=1) if a.ndim == 1 else a


def order_errors(model: np.ndarray, model_flat: complex, ref: np.ndarray, ref_flat: complex) -> tuple[float, float]:
    """``(L1, complex)`` of a model's order amplitudes against a reference's (see the module docstring).

    ``model``/``ref``: ``(K,)`` or ``(K, 2)`` flux-normalised amplitudes; ``*_flat``: each one's flat-patch
    zero-order amplitude.
    """
    a = _as_vector(model) / model_flat
    b = _as_vector(ref) / ref_flat
    ea = np.sum(np.abs(a) ** 2, axis=1)
    eb = np.sum(np.abs(b) ** 2, axis=1)
    l1 = float(np.sum(np.abs(ea / ea.sum() - eb / eb.sum())))
    cplx = float(np.linalg.norm(a - b) / np.linalg.norm(b))
    return l1, cplx


@dataclass
class PatchScore:
    """Errors of every model on one patch: ``errors[model][pol] = (L1, complex)``, pol TE/TM/mean/TE vs TM."""

    mask: int
    row: int
    col: int
    errors: dict[str, dict[str, tuple[float, float]]] = field(default_factory=dict)


@dataclass(frozen=True)
class PatchSetup:
    """Everything the models need for one geometry (lengths in metres)."""

    pitch_m: float
    wavelength_m: float
    n_material: float
    n_medium: float
    base_m: float
    orientation: str
    top_m: float
    semi_infinite_base: bool = False  # rigorous: lit from inside an endless base (no bottom-face reflections)


#: A scalar model on a patch: ``(kind, relief, oversample)``, kind "thin", "multislice" or "wpm".
ModelSpec = tuple[str, "Relief | None", int]


def _scalar_models(setup: PatchSetup, models: dict[str, ModelSpec], heights_m: np.ndarray) -> dict[str, np.ndarray]:
    """Amplitudes of each scalar model (``name → (kind, relief, oversample)``) on one patch."""
    out = {}
    for name, (kind, relief, s) in models.items():
        if kind == "thin":
            out[name] = thin_orders(heights_m, n_material=setup.n_material, pitch_m=setup.pitch_m,
                                    wavelength_m=setup.wavelength_m, n_medium=setup.n_medium)
        else:
            out[name] = multislice_orders(heights_m, relief, pitch_m=setup.pitch_m, wavelength_m=setup.wavelength_m,
                                          n_medium=setup.n_medium, oversample=s, wpm=kind == "wpm")
    return out


def _rigorous(setup: PatchSetup, heights_m: np.ndarray, harmonics: int, device: torch.device,
              semi_infinite_base: bool | None = None) -> PatchOrders:
    return solve_patch(heights_m, pitch_m=setup.pitch_m, wavelength_m=setup.wavelength_m,
                       n_material=setup.n_material, n_medium=setup.n_medium, base_m=setup.base_m,
                       harmonics=harmonics, orientation=setup.orientation, top_m=setup.top_m,
                       semi_infinite_base=setup.semi_infinite_base if semi_infinite_base is None
                       else semi_infinite_base, device=device)


def compare(rig: PatchOrders, rig_flat: PatchOrders, scalar: dict[str, np.ndarray],
            scalar_flat: dict[str, np.ndarray]) -> dict[str, dict[str, tuple[float, float]]]:
    """Errors of each scalar model against the rigorous TE and TM solutions, their mean, and TE vs TM."""
    out: dict[str, dict[str, tuple[float, float]]] = {}
    for name, amp in scalar.items():
        flat = complex(scalar_flat[name][np.flatnonzero((rig.orders == 0).all(axis=1))[0]])
        te = order_errors(amp, flat, rig.te, complex(rig_flat.te[_zero(rig_flat), 0]))
        tm = order_errors(amp, flat, rig.tm, complex(rig_flat.tm[_zero(rig_flat), 0]))
        out[name] = {"TE": te, "TM": tm, "mean": ((te[0] + tm[0]) / 2, (te[1] + tm[1]) / 2)}
    out["rigorous"] = {"TE vs TM": order_errors(rig.tm, complex(rig_flat.tm[_zero(rig_flat), 0]),
                                                rig.te, complex(rig_flat.te[_zero(rig_flat), 0]))}
    return out


def _zero(orders: PatchOrders) -> int:
    return int(np.flatnonzero((orders.orders == 0).all(axis=1))[0])


def score_models(
    setup: PatchSetup,
    models: dict[str, ModelSpec],
    patches: Sequence[np.ndarray],
    *,
    harmonics: int,
    device: torch.device | str = "cpu",
    progress: Callable[[int, int], None] | None = None,
) -> list[dict[str, dict[str, tuple[float, float]]]]:
    """Errors of each scalar model on each ``(P, P)`` patch against the rigorous solver (one flat solve shared)."""
    dev = torch.device(device)
    pixels = patches[0].shape[0]
    flat_h = np.zeros((pixels, pixels))
    total = len(patches) + 1
    rig_flat = _rigorous(setup, flat_h, harmonics, dev)
    scalar_flat = _scalar_models(setup, models, flat_h)
    if progress:
        progress(1, total)
    out = []
    for i, patch in enumerate(patches):
        rig = _rigorous(setup, patch, harmonics, dev)
        out.append(compare(rig, rig_flat, _scalar_models(setup, models, patch), scalar_flat))
        if progress:
            progress(i + 2, total)
    return out


def summarise(per_patch: Sequence[dict[str, dict[str, tuple[float, float]]]]) -> list[dict[str, Any]]:
    """Sheet rows: mean and worst L1 and complex error over the patches, per model and polarisation."""
    rows = []
    for model, pols in per_patch[0].items():
        for pol in pols:
            l1 = [p[model][pol][0] for p in per_patch]
            cx = [p[model][pol][1] for p in per_patch]
            rows.append({"model": model, "polarisation": pol, "l1_mean": float(np.mean(l1)),
                         "l1_worst": float(np.max(l1)), "complex_mean": float(np.mean(cx)),
                         "complex_worst": float(np.max(cx))})
    return rows


# ------------------------------------------------------------------------------------------------ patches
def cut_patches(heights_m: np.ndarray, pixels: int, count: int, seed: int) -> list[tuple[int, int, int, np.ndarray]]:
    """``count`` random ``(P, P)`` blocks of the ``(L, N, N)`` heights: ``(mask, row, col, block)``, seeded."""
    layers, rows, cols = heights_m.shape
    if pixels > min(rows, cols):
        raise CrosscheckError(f"--patch-pixels {pixels} exceeds the mask size ({rows} × {cols} pixels)")
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        mask = int(rng.integers(layers))
        r = int(rng.integers(rows - pixels + 1))
        c = int(rng.integers(cols - pixels + 1))
        out.append((mask, r, c, np.array(heights_m[mask, r:r + pixels, c:c + pixels], dtype=np.float64)))
    return out


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

    def note(self) -> str:
        """One paragraph for the fab sheet: what was compared, convergence, and the reflections left out."""
        conv = self.convergence
        if len(conv) > 1:
            trunc = f"M = {conv[-2]['harmonics']} differs from it by {conv[-2]['complex']:.3f} complex on patch 1"
        else:
            trunc = "no smaller M above the propagating orders to measure convergence against"
        return (
            f"{self.patches} periodic {self.patch_pixels}×{self.patch_pixels}-pixel patches cut from {self.source}, "
            f"{self.propagating_orders} propagating transmitted orders, normal incidence; "
            f"rigorous solver {self.solver} with M = {self.harmonics} ({(2 * self.harmonics + 1) ** 2} harmonics; "
            f"{trunc}). "
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
    progress: Callable[[int, int], None] | None = None,
) -> CrosscheckResult:
    """Cross-check the export's relief against the rigorous solver (see the module docstring).

    Args:
        patches: K patches. patch_pixels: P (pixels per side of a patch). harmonics: M (default: enough for
            the patch, :func:`default_harmonics`). seed: patch positions. device: torch device name or "auto".
        progress: ``callback(done, total)`` over the rigorous solves.
    """
    _validate_int("--patches", patches, 1)
    _validate_int("--patch-pixels", patch_pixels, 1)
    _validate_int("--seed", seed, 0)
    export = Path(export_dir)
    sheet_path = export / "fab_sheet.json"
    if not sheet_path.is_file():
        raise CrosscheckError(f"{str(export)!r} is not an export directory: fab_sheet.json is missing")
    sheet = read_fab_sheet(sheet_path)
    check_sheet(sheet, design, export)
    table = LevelTable.from_dict(sheet["level_table"])
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
    dev = resolve_device(device)
    files = [f for f in sheet.get("files", []) if isinstance(f, dict) and "name" in f]
    items = read_back(design, export, table, {f["name"] for f in files}, sheet)
    item = items[0]
    heights = _simulation_heights(item, np.asarray(table.snapped_height_m))
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
    cut = cut_patches(heights, patch_pixels, patches, seed)
    ladder = [k for k in (m - 2 * j for j in LADDER_STEPS) if k > top_order + 1]
    total = patches + 1 + len(ladder) - 1 + 1  # patches, flat, convergence ladder, semi-infinite base
    done = 0

    def tick(*_: int) -> None:
        nonlocal done
        done += 1
        if progress:
            progress(done, total)

    per = score_models(setup, models, [c[3] for c in cut], harmonics=m, device=dev, progress=tick)
    scores = [PatchScore(mask, r, c, e) for (mask, r, c, _), e in zip(cut, per)]
    # convergence in harmonics on patch 1 (TE/TM mean complex and L1 against the chosen M)
    patch = cut[0][3]
    top = _rigorous(setup, patch, m, dev)
    convergence = []
    for k in ladder:
        rig = top if k == m else _rigorous(setup, patch, k, dev)
        if k != m:
            tick()
        te = order_errors(rig.te, 1.0, top.te, 1.0)
        tm = order_errors(rig.tm, 1.0, top.tm, 1.0)
        convergence.append({"harmonics": k, "l1": (te[0] + tm[0]) / 2, "complex": (te[1] + tm[1]) / 2})
    # reflections: the same patch lit from inside an endless base (no entry face), each against its own flat
    flat = np.zeros_like(patch)
    semi = _rigorous(setup, patch, m, dev, semi_infinite_base=True)
    semi_flat = _rigorous(setup, flat, m, dev, semi_infinite_base=True)
    tick()
    plate_flat = _rigorous(setup, flat, m, dev)
    refl = [order_errors(semi.te, semi_flat.te[_zero(semi_flat), 0], top.te, plate_flat.te[_zero(plate_flat), 0])[1],
            order_errors(semi.tm, semi_flat.tm[_zero(semi_flat), 0], top.tm, plate_flat.tm[_zero(plate_flat), 0])[1]]
    r_face = ((table.n_material - table.n_medium) / (table.n_material + table.n_medium)) ** 2
    descr = {name: ("thin phase screen" if rel is None else f"{kind}, s={s}, {len(rel.slice_edges_m()) - 1} slices")
             for name, (kind, rel, s) in models.items()}
    return CrosscheckResult(
        solver=solver_name(), patches=patches, patch_pixels=patch_pixels, harmonics=m, rows=summarise(per),
        per_patch=scores, convergence=convergence, reflection_complex=float(np.mean(refl)),
        slab_reflectance=float(r_face), source=f"{item.label} ({item.reader})", models=descr,
        propagating_orders=int(len(top.orders)),
    )


def default_harmonics(pixels: int, period_m: float, wavelength_m: float, n_medium: float) -> int:
    """Default M: the largest propagating order + 2, and at least 2 harmonics per pixel side (≥ 2·P)."""
    top = int(math.floor(n_medium * period_m / wavelength_m))
    return max(top + 2, 2 * pixels)


def sheet_entry(result: CrosscheckResult, command: str, figure: str = "crosscheck.png") -> dict[str, Any]:
    """The fab sheet's ``crosscheck`` entry (rendered by the sheet's Markdown and HTML reports)."""
    return {
        "command": command, "solver": result.solver, "patches": result.patches, "patch_pixels": result.patch_pixels,
        "harmonics": result.harmonics,
        "rows": [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()} for row in result.rows],
        "note": result.note(), "figure": figure,
    }


def result_to_dict(result: CrosscheckResult) -> dict[str, Any]:
    """JSON-ready full record (per patch, convergence, models)."""
    out = dataclasses.asdict(result)
    out["note"] = result.note()
    return out
