"""Rigorous transmitted orders of a periodic relief patch: Fourier-modal method (RCWA) with torcwa.

One period is a ``P × P``-pixel patch of flat-topped pillars (heights ``heights_m[y, x]`` above the base slab,
pixel pitch ``pitch_m``) on a base slab of the same material, in a homogeneous medium on both sides (the printed
plate stands free). Light arrives at normal incidence; for ``orientation="base-first"`` it crosses the base
slab first, as in :mod:`quaton_fab.optics.relief`. The relief is cut into one uniform-in-z layer per distinct
height step (material where the pillar reaches the step's top), so a printed relief is represented exactly.

Solver: torcwa (Kim & Lee, Comput. Phys. Commun. 282, 108552, 2023), an S-matrix RCWA in PyTorch (CPU or CUDA).
One solve gives the full S-matrix, hence both polarisations: **TE** = incident E along y, **TM** = incident E
along x (for a patch that is invariant along y, E along the grooves is TE). The patterned layers use Li's
factorisation rules on the exact pixel grid (:mod:`quaton_fab.optics.rigorous_li`, the default
``factorization="li"``), which converge fast for fields crossing the pillar walls; torcwa's own Laurent rule on
a sampled grid (``factorization="laurent"``) converges slowly there and is kept for comparison. The truncation
error left is measured by a ladder of harmonics (``quaton-fab crosscheck`` reports it).

Amplitudes: for each propagating transmitted order ``(mx, my)`` the flux-normalised complex amplitudes of the
co-polarised and the cross-polarised transverse field (``|a|²`` is the fraction of the incident power carried
away by that component), phase referenced from the entry face to the exit face of the plate (a bare slab gives
the Airy transmission coefficient). Time convention ``exp(−iωt)`` as in :mod:`quaton_fab.optics.propagation`.

Grid conventions: the permittivity is sampled on ``N`` points per period at ``x_i = i·L/N``; each sample stands
for a cell centred on it, which shifts the relief by half a cell against the patch whose pixel ``j`` covers
``[j·p, (j+1)·p)``. :func:`solve_patch` removes that shift (a phase ``exp(−iπ(mx + my)/N)`` per order), so its
amplitudes belong to the pixel-aligned patch.

Grazing orders: torcwa's S-matrices divide by each order's kz in free space and in the outer media, so an order
exactly at grazing (``(mx² + my²)·(λ0/(n·L))² = 1``, e.g. 4-pixel patches of pixels as wide as λ0) makes them
singular. The solve then runs at a wavelength detuned by ``GRAZING_DETUNE`` (relative, 1e-4: a phase change
below 5e-3 rad across a few µm of material); the grazing order carries no power on either side of it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from importlib.metadata import version

import numpy as np
import torch

from quaton_fab.optics.propagation import OpticsError
from quaton_fab.optics.rigorous_li import LiRcwa

__all__ = [
    "RigorousError",
    "PatchOrders",
    "propagating_orders",
    "solve_patch",
    "solver_name",
    "grid_samples",
]

_UM = 1e6
#: Permittivity factorisation rules of the patterned layers (first = default).
FACTORIZATIONS = ("li", "laurent")
#: Relative wavelength detuning applied when an order is (within it) exactly grazing (see the module docstring).
GRAZING_DETUNE = 1e-4


class RigorousError(OpticsError):
    """An invalid rigorous-solver request (one line naming the bad value)."""


def solver_name(factorization: str = "li") -> str:
    """Name and version of the rigorous solver with ``factorization`` (see :data:`FACTORIZATIONS`), for records."""
    rule = "Li's factorisation rules, exact pixel grid" if factorization == "li" else "Laurent rule, sampled grid"
    return f"torcwa {version('torcwa')} (RCWA, S-matrix, {rule})"


@dataclass(frozen=True)
class PatchOrders:
    """Transmitted orders of one patch for both polarisations.

    Attributes:
        orders: ``(K, 2)`` int ``(mx, my)`` of the propagating transmitted orders.
        te: ``(K, 2)`` complex: co-polarised (E_y) and cross-polarised (E_x) flux-normalised amplitudes, E_y in.
        tm: ``(K, 2)`` complex: co-polarised (E_x) and cross-polarised (E_y) amplitudes, E_x in.
        harmonics: M, the largest Fourier index kept along each axis ((2M+1)² harmonics).
    """

    orders: np.ndarray
    te: np.ndarray
    tm: np.ndarray
    harmonics: int

    def transmitted(self, polarisation: str) -> float:
        """Total transmitted power (fraction of the incident power) for ``"TE"`` or ``"TM"``."""
        amp = self.te if polarisation == "TE" else self.tm
        return float(np.sum(np.abs(amp) ** 2))


def propagating_orders(period_m: float, wavelength_m: float, n_medium: float) -> np.ndarray:
    """``(K, 2)`` int ``(mx, my)`` with ``(mx² + my²)·(λ0/period)² < n_med²`` (row-major in mx, then my)."""
    mmax = int(math.floor(n_medium * period_m / wavelength_m))
    ratio2 = (wavelength_m / (n_medium * period_m)) ** 2
    out = [(a, b) for a in range(-mmax, mmax + 1) for b in range(-mmax, mmax + 1) if (a * a + b * b) * ratio2 < 1.0]
    return np.asarray(out, dtype=np.int64).reshape(-1, 2)


def grid_samples(pixels: int, harmonics: int) -> int:
    """Permittivity samples per period: a multiple of ``pixels`` above ``4·M + 2`` (no aliasing in ε̂)."""
    per = max(8, math.ceil((4 * harmonics + 3) / pixels))
    return pixels * per


def solver_wavelength_m(period_m: float, wavelength_m: float, indices: tuple[float, ...]) -> float:
    """``wavelength_m``, or ``wavelength_m·(1 + GRAZING_DETUNE)`` when some order is grazing in one of ``indices``."""
    for n in indices:
        x2 = (n * period_m / wavelength_m) ** 2  # an order (mx, my) grazes when mx² + my² = x2
        top = int(math.isqrt(int(math.floor(x2 + 1))))
        sums = {a * a + b * b for a in range(top + 1) for b in range(top + 1)}
        if any(abs(v - x2) <= 2 * GRAZING_DETUNE * x2 for v in sums):
            return wavelength_m * (1.0 + GRAZING_DETUNE)
    return wavelength_m


def _layers(heights_m: np.ndarray) -> list[tuple[float, np.ndarray]]:
    """Relief layers from the base upwards: ``(thickness_m, occupancy[y, x] in {0, 1})`` per height step."""
    steps = np.unique(np.concatenate(([0.0], heights_m.ravel())))
    out = []
    for lo, hi in zip(steps[:-1], steps[1:]):
        out.append((float(hi - lo), (heights_m >= hi - 1e-12).astype(np.float64)))
    return out


def solve_patch(
    heights_m: np.ndarray,
    *,
    pitch_m: float,
    wavelength_m: float,
    n_material: float,
    n_medium: float,
    base_m: float,
    harmonics: int,
    orientation: str = "base-first",
    top_m: float | None = None,
    semi_infinite_base: bool = False,
    factorization: str = "li",
    device: torch.device | str = "cpu",
) -> PatchOrders:
    """Solve one periodic patch (see the module docstring) and return its propagating transmitted orders.

    Args:
        heights_m: ``(P, P)`` relief heights above the base (m), rows y, columns x.
        pitch_m: pixel pitch (m). wavelength_m: vacuum wavelength (m).
        n_material, n_medium: refractive indices of the printed material and the surrounding medium.
        base_m: base slab thickness (m, ≥ 0).
        harmonics: M ≥ 1; (2M+1)² Fourier harmonics.
        orientation: ``"base-first"`` (light enters through the base) or ``"relief-first"``.
        top_m: thickness of the relief region (m): the plate's relief face lies this far from the base (medium
            above pillars lower than it); default the tallest pillar of the patch. Give the relief's top level
            so that every patch (a flat one too) ends at the same plane.
        semi_infinite_base: True: light comes from inside an endless base (no entry face, no Fabry–Pérot of
            the slab; ``base_m`` ignored). Only for ``base-first``; used to size the slab's reflections.
        factorization: ``"li"`` (default: Li's rules on the exact pixel grid, :mod:`.rigorous_li`) or
            ``"laurent"`` (torcwa's own Laurent rule on a sampled grid; slower convergence in the harmonics).
        device: torch device for the solve.
    """
    h = np.asarray(heights_m, dtype=np.float64)
    _check_patch(h, harmonics, orientation, semi_infinite_base, factorization)
    pixels = h.shape[0]
    period_m = pixels * pitch_m
    orders = propagating_orders(period_m, wavelength_m, n_medium)
    if harmonics <= int(np.max(np.abs(orders))):
        raise RigorousError(
            f"harmonics M = {harmonics} must exceed the largest propagating order {int(np.max(np.abs(orders)))}"
        )
    dev = torch.device(device)
    dtype = torch.complex128
    n_grid = grid_samples(pixels, harmonics)
    eps_med, eps_mat = complex(n_medium**2), complex(n_material**2)
    lam_m = solver_wavelength_m(period_m, wavelength_m, (1.0, n_medium, n_material))
    # torcwa's solver (same S-matrices) with Li's pixel layers; Laurent layers go through torcwa's add_layer
    sim = LiRcwa(freq=1.0 / (lam_m * _UM), order=[harmonics, harmonics],
                 L=[period_m * _UM, period_m * _UM], dtype=dtype, device=dev)
    sim.add_input_layer(eps=eps_mat if semi_infinite_base else eps_med)
    sim.add_output_layer(eps=eps_med)
    sim.set_incident_angle(inc_ang=0.0, azi_ang=0.0)
    sub = None if factorization == "li" else n_grid // pixels
    relief = _relief_layers(h, top_m, eps_med, eps_mat, sub, dtype, dev)
    base = [] if semi_infinite_base or base_m <= 0 else [(base_m, torch.tensor(eps_mat, dtype=dtype, device=dev))]
    _add_layers(sim, base + relief if orientation == "base-first" else relief[::-1] + base)
    sim.solve_global_smatrix()
    te, tm = _transmitted(sim, orders, None if factorization == "li" else n_grid)
    return PatchOrders(orders=orders, te=te, tm=tm, harmonics=harmonics)


def _add_layers(sim: LiRcwa, stack: list[tuple[float, torch.Tensor | np.ndarray]]) -> None:
    """Add ``(thickness_m, ε)`` layers in order: a numpy pixel grid through Li's rules, a tensor through torcwa."""
    for thickness_m, eps in stack:
        if isinstance(eps, np.ndarray):
            sim.add_pixel_layer(thickness=thickness_m * _UM, eps=eps)
        else:
            sim.add_layer(thickness=thickness_m * _UM, eps=eps)


def _check_patch(h: np.ndarray, harmonics: Any, orientation: str, semi_infinite_base: bool,
                 factorization: str = "li") -> None:
    """Raise RigorousError for a patch that is not square, finite and ≥ 0, or for bad solver settings."""
    if h.ndim != 2 or h.shape[0] != h.shape[1] or h.shape[0] < 1:
        raise RigorousError(f"heights must be a square (P, P) patch, got shape {h.shape}")
    if not np.all(np.isfinite(h)) or np.any(h < 0):
        raise RigorousError("patch heights must be finite and >= 0")
    if isinstance(harmonics, bool) or not isinstance(harmonics, int) or harmonics < 1:
        raise RigorousError(f"harmonics must be an int >= 1, got {harmonics!r}")
    if orientation not in ("base-first", "relief-first"):
        raise RigorousError(f"orientation must be base-first or relief-first, got {orientation!r}")
    if semi_infinite_base and orientation != "base-first":
        raise RigorousError("a semi-infinite base needs orientation base-first")
    if factorization not in FACTORIZATIONS:
        raise RigorousError(f"factorization must be one of {', '.join(FACTORIZATIONS)}, got {factorization!r}")


def _relief_layers(
    h: np.ndarray, top_m: float | None, eps_med: complex, eps_mat: complex, sub: int | None, dtype: torch.dtype,
    dev: torch.device,
) -> list[tuple[float, torch.Tensor | np.ndarray]]:
    """The relief region from the base upwards as ``(thickness_m, ε)`` layers, topped with medium up to ``top_m``
    (default: the tallest pillar). ε of a patterned layer: ``sub is None`` → the pixel grid ``[y, x]`` (numpy, for
    Li's rules); else a tensor sampled ``sub`` times per pixel in torcwa's ``[x, y]`` order (Laurent's rule)."""
    relief = []
    top = float(np.max(h)) if top_m is None else float(top_m)
    if top < float(np.max(h)) - 1e-12:
        raise RigorousError(f"top_m = {top * 1e6:.4g} µm is below the tallest pillar ({np.max(h) * 1e6:.4g} µm)")
    for thickness_m, occ in _layers(h):
        if sub is None:
            relief.append((thickness_m, eps_med + (eps_mat - eps_med) * occ.astype(np.complex128)))
            continue
        grid = np.kron(occ, np.ones((sub, sub))).T  # torcwa indexes [x, y]
        eps = torch.from_numpy(eps_med + (eps_mat - eps_med) * grid).to(dtype=dtype, device=dev)
        relief.append((thickness_m, eps))
    if top - float(np.max(h)) > 1e-12:
        relief.append((top - float(np.max(h)), torch.tensor(eps_med, dtype=dtype, device=dev)))
    return relief


def _transmitted(sim: Any, orders: np.ndarray, n_grid: int | None) -> tuple[np.ndarray, np.ndarray]:
    """(te, tm) transmitted amplitudes ``(K, 2)`` of the solved ``sim`` for ``orders``; the half-cell shift of a
    grid of ``n_grid`` samples undone (``None``: exact pixel grid, no shift)."""
    sel = [[int(a), int(b)] for a, b in orders]

    def amp(pol: str) -> np.ndarray:
        return sim.S_parameters(orders=sel, direction="forward", port="transmission", polarization=pol,
                                ref_order=[0, 0], power_norm=True).detach().cpu().numpy().reshape(-1)

    # undo the half-cell shift of the sampled permittivity (see the module docstring)
    shift = np.ones(len(orders)) if n_grid is None else np.exp(-1j * math.pi * (orders[:, 0] + orders[:, 1]) / n_grid)
    te = np.stack([amp("yy"), amp("xy")], axis=1) * shift[:, None]
    tm = np.stack([amp("xx"), amp("yx")], axis=1) * shift[:, None]
    return te, tm
