"""Fabrication errors of a printed design: the perturbation model (what one print does to the relief).

A printed stack differs from the design in seven ways, each with one magnitude (:class:`ErrorMagnitudes`):

============== ======================================================================== =====================
error          model (what one draw does to the printed object)                         magnitude
============== ======================================================================== =====================
height-scale   every relief height × (1 + ε), one ε ~ N(0, σ²) per print (dose, shrinkage) σ, relative
height-noise   each printed pixel's height + δ, δ ~ N(0, σ²) per pixel and mask, ≥ 0       σ, metres
shift          each mask moved laterally by (dx, dy), each ~ N(0, σ²) per mask             σ, metres
rotation       each mask turned about its centre by θ ~ N(0, σ²) per mask                   σ, degrees
spacing        each mask-to-mask gap × (1 + ε), ε ~ N(0, σ²) per gap                        σ, relative
blur           pixel rounding: the relief convolved laterally with a Gaussian of std σ      σ, metres (fixed)
index          printed material index n + Δn, Δn ~ N(0, σ²) per print                       σ (index units)
============== ======================================================================== =====================

Shifts, rotations and the blur act on the relief heights at the *simulation* grid (a printed pixel is
``oversample × oversample`` simulation samples), not on a thin phase screen: a shift is the area-weighted
(bilinear) resampling of the moved relief onto the grid (exact for whole-sample shifts), a rotation a bilinear
resampling about the mask centre, the blur a Gaussian integrated over each sample (circular boundary, so the
mean height is kept). Material outside a moved mask's aperture is the bare base (height 0). The height scale
multiplies the relief's level heights (the base slab is kept); the index error changes the relief's material
(base slab included) with the printed heights kept. Heights that leave the relief's slicing range are covered
by extra slices of the relief's own slice thickness.

Every draw comes from a seeded :class:`numpy.random.Generator`; trial ``t`` of a Monte-Carlo with seed ``S``
draws its standard normals from ``SeedSequence([S, t])``, the same ones for every error and magnitude (common
random numbers: the curves against magnitude are smooth, and a zero magnitude is exactly the nominal design).

Literature defaults (σ of each draw) and their sources are in :data:`ERRORS`; see also
``docs``/README "Fabrication tolerances".

The errors and their magnitudes live in :mod:`quaton_fab.optics.error_magnitudes`, the shift, rotation and blur
of a height map in :mod:`quaton_fab.optics.relief_warp`; their names are importable from here too.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass

import numpy as np
import torch

from quaton_fab.errors import QuatonFabError
from quaton_fab.optics.error_magnitudes import (  # importable from here too
    ERRORS,
    VACCINATION_SETS,
    ErrorMagnitudes,
    ErrorSpec,
    ToleranceError,
    check_magnitude,
    parse_magnitude,
    vaccination_magnitudes,
)
from quaton_fab.optics.network import DiffractiveNetwork, Geometry, upsample_neurons
from quaton_fab.optics.relief import Relief
from quaton_fab.optics.relief_warp import (  # importable from here too
    blur_relief,
    gaussian_sample_kernel,
    rotate_relief,
    shift_relief,
)

__all__ = [
    "check_magnitude",
    "ERRORS",
    "ErrorSpec",
    "ErrorMagnitudes",
    "PerturbationDraw",
    "ToleranceError",
    "VACCINATION_SETS",
    "draw_perturbation",
    "perturb_heights",
    "perturbed_relief",
    "perturbed_distances_m",
    "perturbed_network",
    "perturbed_forward",
    "shift_relief",
    "rotate_relief",
    "blur_relief",
    "gaussian_sample_kernel",
    "parse_magnitude",
    "vaccination_magnitudes",
    "step_generator",
    "trial_generator",
    "PERTURBATION_MODEL",
]

log = logging.getLogger(__name__)

#: Identifier of the perturbation model above (recorded with every result and in vaccinated designs).
PERTURBATION_MODEL = "quaton-fab/perturbation/1"

@dataclass(frozen=True)
class PerturbationDraw:
    """One sampled print. Arrays are float64 numpy.

    Attributes:
        height_scale: factor on every relief height (1 + ε). height_noise_m: ``(L, N, N)`` added heights (m).
        shifts_m: ``(L, 2)`` lateral shift of each mask, (dy, dx) in metres (+: towards larger indices).
        rotations_deg: ``(L,)`` rotation of each mask (degrees, counter-clockwise in (x, y)).
        gap_factors: ``(L − 1,)`` factor on each mask-to-mask gap. blur_m: σ of the pixel rounding (m).
        delta_n: material index error.
    """

    height_scale: float
    height_noise_m: np.ndarray
    shifts_m: np.ndarray
    rotations_deg: np.ndarray
    gap_factors: np.ndarray
    blur_m: float
    delta_n: float

    @property
    def is_nominal(self) -> bool:
        """True when this draw changes nothing."""
        return (self.height_scale == 1.0 and not self.height_noise_m.any() and not self.shifts_m.any()
                and not self.rotations_deg.any() and bool(np.all(self.gap_factors == 1.0)) and self.blur_m == 0.0
                and self.delta_n == 0.0)


def draw_perturbation(
    magnitudes: ErrorMagnitudes, layers: int, neurons: int, rng: np.random.Generator
) -> PerturbationDraw:
    """Sample one print. Always draws the same standard normals in the same order (whatever the magnitudes),
    so two magnitude sets with one generator state differ only by scale."""
    z_scale = rng.standard_normal()
    z_noise = rng.standard_normal((layers, neurons, neurons))
    z_shift = rng.standard_normal((layers, 2))
    z_rot = rng.standard_normal(layers)
    z_gap = rng.standard_normal(max(layers - 1, 0))
    z_index = rng.standard_normal()
    m = magnitudes
    return PerturbationDraw(
        height_scale=1.0 + m.height_scale * z_scale,
        height_noise_m=m.height_noise_m * z_noise,
        shifts_m=m.shift_m * z_shift,
        rotations_deg=m.rotation_deg * z_rot,
        gap_factors=1.0 + m.spacing * z_gap,
        blur_m=m.blur_m,
        delta_n=m.index * z_index,
    )


def trial_generator(seed: int, trial: int) -> np.random.Generator:
    """The generator of Monte-Carlo trial ``trial`` (``SeedSequence([seed, trial])``)."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(trial)]))


#: Tag mixed into the vaccination seeds, so they never coincide with other streams of the same seed.
_VACCINATION_TAG = 0x7AC


def step_generator(seed: int, epoch: int, step: int) -> np.random.Generator:
    """The generator of one vaccinated training step (a pure function of the position: resume-safe)."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), _VACCINATION_TAG, int(epoch), int(step)]))


def perturb_heights(
    heights_m: torch.Tensor, draw: PerturbationDraw, *, oversample: int, sim_pitch_m: float
) -> torch.Tensor:
    """The printed heights of one draw at the simulation grid.

    Args:
        heights_m: ``(L, N, N)`` nominal heights per printed pixel (m, above the base).
        draw: the sampled print. oversample: s. sim_pitch_m: simulation pitch (m).

    Returns ``(L, N·s, N·s)`` heights (m): scaled, plus per-pixel noise (clamped at 0: nothing prints below
    the base), upsampled, rounded (blur), then each mask rotated about its centre and shifted.
    Differentiable in ``heights_m``. With a nominal draw the result is the upsampled input, bit for bit.
    """

    h = heights_m
    if draw.height_scale != 1.0:
        h = h * draw.height_scale
    if draw.height_noise_m.any():
        noise = torch.as_tensor(draw.height_noise_m, dtype=h.dtype, device=h.device)
        h = torch.clamp(h + noise, min=0.0)
    h = upsample_neurons(h, oversample)
    if draw.blur_m:
        h = blur_relief(h, draw.blur_m / sim_pitch_m)
    if draw.rotations_deg.any() or draw.shifts_m.any():
        layers = []
        for index in range(h.shape[0]):
            layer = rotate_relief(h[index], float(draw.rotations_deg[index]))
            dy, dx = (float(v) / sim_pitch_m for v in draw.shifts_m[index])
            layers.append(shift_relief(layer, dy, dx))
        h = torch.stack(layers)
    return h


def perturbed_relief(relief: Relief, draw: PerturbationDraw, max_height_m: float) -> Relief:
    """The relief model of one draw: level heights × the height scale, material index + Δn, and extra slices
    (of the relief's own slice thickness) up to ``max_height_m`` when perturbed heights rise above its top."""
    heights = tuple(h * draw.height_scale for h in relief.level_heights_m)
    n = relief.n_material + draw.delta_n
    if n <= 1.0:
        raise ToleranceError(f"index error Δn = {draw.delta_n:+.4g} leaves a material index {n:.4g} <= 1")
    out = dataclasses.replace(relief, level_heights_m=heights, n_material=n) if (
        draw.height_scale != 1.0 or draw.delta_n != 0.0) else relief
    top = out.top_m
    if max_height_m > top * (1.0 + 1e-5):  # beyond float32 rounding of the top level (1e-5: 10 pm per µm)
        step = out.max_slice_m or float(np.min(np.diff(np.unique((0.0, *heights)))))
        count = math.ceil((max_height_m - top) / step - 1e-9)
        extra_top = top + count * step
        phases = out.level_phases_rad
        # an extra level above the top (its phase only orders the table: heights are given per pixel)
        out = dataclasses.replace(
            out, level_phases_rad=(*phases, phases[-1] + 1.0), level_heights_m=(*out.level_heights_m, extra_top),
            periodic=False,
        )
    return out


def perturbed_distances_m(geometry: Geometry, draw: PerturbationDraw) -> tuple[float, ...]:
    """The ``L + 1`` hops (m) of one draw: d_in, each gap × its factor, d_out."""
    gaps = [geometry.spacing_m * float(f) for f in draw.gap_factors]
    return (geometry.d_in_m, *gaps, geometry.d_out_m)


def perturbed_network(
    network: DiffractiveNetwork, draw: PerturbationDraw, max_height_m: float
) -> DiffractiveNetwork:
    """A network sharing ``network``'s masks (phase modules) and geometry, with the draw's relief and gaps."""
    if network.relief is None:
        raise ToleranceError("fabrication errors act on the printed relief; this network has thin masks")
    relief = perturbed_relief(network.relief, draw, max_height_m)
    distances = perturbed_distances_m(network.geometry, draw)
    if relief is network.relief and distances == network.geometry.distances_m():
        return network
    try:
        return DiffractiveNetwork(
            network.geometry, list(network.phase_modules), relief=relief, distances_m=distances,
            recompute=network.recompute,
        )
    except QuatonFabError as exc:
        raise ToleranceError(f"a drawn print does not fit the geometry: {exc}") from None


def perturbed_forward(
    network: DiffractiveNetwork, field: torch.Tensor, draw: PerturbationDraw, phases: torch.Tensor | None = None
) -> torch.Tensor:
    """Detector intensity ``(..., N·s, N·s)`` of ``network``'s masks (or ``phases``) printed as ``draw``.

    Differentiable in the masks' parameters (used for vaccinated training).
    """
    g = network.geometry
    if network.relief is None:
        raise ToleranceError("fabrication errors act on the printed relief; this network has thin masks")
    real = torch.float64 if field.dtype == torch.complex128 else torch.float32
    phases = network.current_phases() if phases is None else phases
    heights = network.relief.heights_of_phases(phases.to(device=field.device, dtype=real), g.wavelength_m,
                                               g.n_medium)
    sim_heights = perturb_heights(heights, draw, oversample=g.oversample, sim_pitch_m=g.sim_pitch_m)
    net = perturbed_network(network, draw, float(sim_heights.detach().max()))
    return net(field, heights_m=sim_heights)
