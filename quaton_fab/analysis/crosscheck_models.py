"""The cross-check's models on one periodic patch: the scalar models' transmitted orders, the rigorous solve,
the order errors between them, and the seeded patches cut from an export (:mod:`quaton_fab.analysis.crosscheck`
has the method in words).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from quaton_fab.errors import QuatonFabError
from quaton_fab.optics.network import rule_oversample
from quaton_fab.optics.phase_height import index_contrast, phase_of_height
from quaton_fab.optics.relief import Relief, ReliefPropagator
from quaton_fab.optics.rigorous import PatchOrders, propagating_orders, solve_patch
from quaton_fab.optics.wpm import WavePropagator


POLARISATIONS = ("TE", "TM")


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
    screen = np.exp(1j * phase_of_height(h, wavelength_m, index_contrast(n_material, n_medium)))
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


def scalar_orders(setup: PatchSetup, models: dict[str, ModelSpec], heights_m: np.ndarray) -> dict[str, np.ndarray]:
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


def rigorous_orders(setup: PatchSetup, heights_m: np.ndarray, harmonics: int, device: torch.device,
                    semi_infinite_base: bool | None = None, factorization: str = "li") -> PatchOrders:
    """The rigorous transmitted orders of one patch in ``setup`` (``semi_infinite_base`` None: the setup's)."""
    return solve_patch(heights_m, pitch_m=setup.pitch_m, wavelength_m=setup.wavelength_m,
                       n_material=setup.n_material, n_medium=setup.n_medium, base_m=setup.base_m,
                       harmonics=harmonics, orientation=setup.orientation, top_m=setup.top_m,
                       semi_infinite_base=setup.semi_infinite_base if semi_infinite_base is None
                       else semi_infinite_base, factorization=factorization, device=device)


def compare(rig: PatchOrders, rig_flat: PatchOrders, scalar: dict[str, np.ndarray],
            scalar_flat: dict[str, np.ndarray], keep: np.ndarray | None = None,
            ) -> dict[str, dict[str, tuple[float, float]]]:
    """Errors of each scalar model against the rigorous TE and TM solutions, their mean, and TE vs TM.

    ``keep``: optional ``(K,)`` bool, the orders to score (e.g. :func:`sin_theta` below a cone); default all.
    """
    sel = slice(None) if keep is None else np.asarray(keep, dtype=bool)
    te_flat, tm_flat = complex(rig_flat.te[_zero(rig_flat), 0]), complex(rig_flat.tm[_zero(rig_flat), 0])
    out: dict[str, dict[str, tuple[float, float]]] = {}
    for name, amp in scalar.items():
        flat = complex(scalar_flat[name][np.flatnonzero((rig.orders == 0).all(axis=1))[0]])
        te = order_errors(amp[sel], flat, rig.te[sel], te_flat)
        tm = order_errors(amp[sel], flat, rig.tm[sel], tm_flat)
        out[name] = {"TE": te, "TM": tm, "mean": ((te[0] + tm[0]) / 2, (te[1] + tm[1]) / 2)}
    out["rigorous"] = {"TE vs TM": order_errors(rig.tm[sel], tm_flat, rig.te[sel], te_flat)}
    return out


def sin_theta(orders: np.ndarray, period_m: float, wavelength_m: float, n_medium: float) -> np.ndarray:
    """sin of each order's angle in the medium, ``(K,)`` (``(mx, my)`` orders of a square period)."""
    return np.sqrt(orders[:, 0] ** 2 + orders[:, 1] ** 2) * wavelength_m / (n_medium * period_m)


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
    cone_sin: float | None = None,
) -> list[dict[str, dict[str, tuple[float, float]]]]:
    """Errors of each scalar model on each ``(P, P)`` patch against the rigorous solver (one flat solve shared).

    ``cone_sin``: also score only the orders with sin θ < ``cone_sin`` (in the medium), from the same solves,
    under the names :func:`cone_name` of each model (``"rigorous"`` included).
    """
    cones = [1.0] if cone_sin is None else [1.0, cone_sin]  # sin θ < 1: every propagating order
    every, *inside = score_cones(setup, models, patches, harmonics=harmonics, cones=cones, device=device,
                                 progress=progress)
    for scores, part in zip(every, inside[0] if inside else []):
        scores.update({cone_name(name, cone_sin): errors for name, errors in part.items()})
    return every


def score_cones(
    setup: PatchSetup,
    models: dict[str, ModelSpec],
    patches: Sequence[np.ndarray],
    *,
    harmonics: int,
    cones: Sequence[float],
    device: torch.device | str = "cpu",
    progress: Callable[[int, int], None] | None = None,
    factorization: str = "li",
) -> list[list[dict[str, dict[str, tuple[float, float]]]]]:
    """Per cone of ``cones`` (in order): the per-patch errors of :func:`compare` on the orders with sin θ < cone,
    every cone scored from the same solves (one flat solve shared)."""
    dev = torch.device(device)
    pixels = patches[0].shape[0]
    flat_h = np.zeros((pixels, pixels))
    total = len(patches) + 1
    rig_flat = rigorous_orders(setup, flat_h, harmonics, dev, factorization=factorization)
    scalar_flat = scalar_orders(setup, models, flat_h)
    sin = sin_theta(rig_flat.orders, pixels * setup.pitch_m, setup.wavelength_m, setup.n_medium)
    if progress:
        progress(1, total)
    out: list[list[dict[str, dict[str, tuple[float, float]]]]] = [[] for _ in cones]
    for i, patch in enumerate(patches):
        rig = rigorous_orders(setup, patch, harmonics, dev, factorization=factorization)
        scalar = scalar_orders(setup, models, patch)
        for per_cone, cone in zip(out, cones):
            per_cone.append(compare(rig, rig_flat, scalar, scalar_flat, keep=sin < cone))
        if progress:
            progress(i + 2, total)
    return out


def cone_name(model: str, cone_sin: float) -> str:
    """Row name of ``model`` scored on the orders inside the cone ``sin θ < cone_sin``."""
    return f"{model} (sin θ < {cone_sin:.2f})"


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
