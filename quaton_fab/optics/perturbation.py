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
"""

from __future__ import annotations

import dataclasses
import logging
import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from quaton_fab.errors import QuatonFabError
from quaton_fab.optics.network import DiffractiveNetwork, Geometry
from quaton_fab.optics.relief import Relief
from quaton_fab.optics.network import upsample_neurons
from quaton_fab.units import UnitError, parse_length

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
    "parse_magnitude",
    "vaccination_magnitudes",
    "step_generator",
    "trial_generator",
    "PERTURBATION_MODEL",
]

log = logging.getLogger(__name__)

#: Identifier of the perturbation model above (recorded with every result and in vaccinated designs).
PERTURBATION_MODEL = "quaton-fab/perturbation/1"


class ToleranceError(QuatonFabError):
    """A nonsense error magnitude or tolerance request (one line naming the bad value)."""


@dataclass(frozen=True)
class ErrorSpec:
    """One fabrication error: CLI name, field of :class:`ErrorMagnitudes`, display unit and literature default.

    Attributes:
        name: CLI name (``height-noise``). field: the :class:`ErrorMagnitudes` attribute (SI or relative).
        unit: display unit (``nm``, ``µm``, ``%``, ``deg``, ``Δn``). scale: field value × scale = display value.
        default: literature default in the field's units (σ of the draw). bound: largest sane magnitude
        (field units). source: where the default comes from. random: False for a deterministic error (blur).
    """

    name: str
    field: str
    unit: str
    scale: float
    default: float
    bound: float
    source: str
    random: bool = True

    def display(self, value: float) -> float:
        """``value`` (field units) in the display unit."""
        return float(value) * self.scale


_FAB = "fab_spec.md §6 (two-photon perturbation model)"
#: The seven errors, in table order. Defaults: the typical two-photon values of the research notes.
ERRORS: dict[str, ErrorSpec] = {
    spec.name: spec
    for spec in (
        ErrorSpec("height-scale", "height_scale", "%", 100.0, 0.03, 0.5,
                  f"global height scale ±2–5 % from dose or shrinkage ({_FAB})"),
        ErrorSpec("height-noise", "height_noise_m", "nm", 1e9, 20e-9, 2e-6,
                  f"per-pixel height σ 10–50 nm for 2PP ({_FAB})"),
        ErrorSpec("shift", "shift_m", "µm", 1e6, 0.5e-6, 1e-3,
                  f"lateral layer offset ±0.5–2 pixels ({_FAB}); Mengu et al., Nanophotonics 9, 4207 (2020)"),
        ErrorSpec("rotation", "rotation_deg", "deg", 1.0, 0.5, 45.0, f"layer rotation ±0.5° ({_FAB})"),
        ErrorSpec("spacing", "spacing", "%", 100.0, 0.02, 0.3, f"layer spacing ±1–5 % ({_FAB})"),
        ErrorSpec("blur", "blur_m", "nm", 1e9, 170e-9, 10e-6,
                  "pixel rounding: Nanoscribe's reliable lateral feature 400 nm (fab_spec.md summary item 9) "
                  "taken as a Gaussian of FWHM 400 nm (σ = 170 nm)", random=False),
        ErrorSpec("index", "index", "Δn", 1.0, 0.005, 0.5, f"Δn uncertainty ±0.005–0.01 ({_FAB})"),
    )
}


def check_magnitude(spec: ErrorSpec, value: Any) -> float:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0:
        raise ToleranceError(f"{spec.name} magnitude must be a finite number >= 0, got {value!r}")
    if value > spec.bound:
        raise ToleranceError(
            f"{spec.name} magnitude {spec.display(value):g} {spec.unit} is beyond the sane bound "
            f"{spec.display(spec.bound):g} {spec.unit}"
        )
    return float(value)


@dataclass(frozen=True)
class ErrorMagnitudes:
    """Magnitudes of the seven errors (σ of each draw; the blur's σ is applied as is). All default to 0.

    Attributes:
        height_scale: relative σ of the global height scale. height_noise_m: σ of per-pixel height noise (m).
        shift_m: σ of each mask's lateral shift along x and along y (m). rotation_deg: σ of each mask's
        rotation (degrees). spacing: relative σ of each gap. blur_m: σ of the Gaussian pixel rounding (m).
        index: σ of the material index error.
    """

    height_scale: float = 0.0
    height_noise_m: float = 0.0
    shift_m: float = 0.0
    rotation_deg: float = 0.0
    spacing: float = 0.0
    blur_m: float = 0.0
    index: float = 0.0

    def __post_init__(self) -> None:
        for spec in ERRORS.values():
            object.__setattr__(self, spec.field, check_magnitude(spec, getattr(self, spec.field)))

    @property
    def is_zero(self) -> bool:
        """True when every magnitude is 0 (the nominal print)."""
        return all(getattr(self, spec.field) == 0.0 for spec in ERRORS.values())

    def scaled(self, factor: float) -> "ErrorMagnitudes":
        """Every magnitude × ``factor``."""
        return ErrorMagnitudes(**{spec.field: getattr(self, spec.field) * factor for spec in ERRORS.values()})

    def only(self, name: str, value: float) -> "ErrorMagnitudes":
        """Magnitudes with only error ``name`` at ``value`` (field units)."""
        return ErrorMagnitudes(**{ERRORS[name].field: value})

    def to_dict(self) -> dict[str, float]:
        """JSON-ready dict keyed by field name (SI or relative units, see the class docstring)."""
        return {spec.field: getattr(self, spec.field) for spec in ERRORS.values()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ErrorMagnitudes":
        """Inverse of :meth:`to_dict` (unknown keys raise ToleranceError)."""
        fields = {spec.field for spec in ERRORS.values()}
        unknown = sorted(set(data) - fields)
        if unknown:
            raise ToleranceError(f"unknown error magnitude(s) {unknown}; expected {sorted(fields)}")
        return cls(**dict(data))

    @classmethod
    def defaults(cls) -> "ErrorMagnitudes":
        """Every error at its literature default (:data:`ERRORS`)."""
        return cls(**{spec.field: spec.default for spec in ERRORS.values()})


#: Named vaccination sets (``train --vaccinate NAME``): ``2pp`` every error at its literature default,
#: ``2pp-placement`` only the placement errors (shift, rotation, spacing) at their defaults.
VACCINATION_SETS: dict[str, ErrorMagnitudes] = {
    "2pp": ErrorMagnitudes.defaults(),
    "2pp-placement": ErrorMagnitudes(
        shift_m=ERRORS["shift"].default, rotation_deg=ERRORS["rotation"].default, spacing=ERRORS["spacing"].default
    ),
}


def vaccination_magnitudes(name: str | None, overrides: Mapping[str, float] | None = None) -> ErrorMagnitudes:
    """Magnitudes of a named set (:data:`VACCINATION_SETS`; None: all zero) with per-error ``overrides``
    (keyed by CLI name, field units)."""
    if name is None:
        base = ErrorMagnitudes()
    elif name in VACCINATION_SETS:
        base = VACCINATION_SETS[name]
    else:
        raise ToleranceError(f"unknown vaccination set {name!r}; use one of {', '.join(VACCINATION_SETS)}")
    values = base.to_dict()
    for key, value in (overrides or {}).items():
        if key not in ERRORS:
            raise ToleranceError(f"unknown error {key!r}; use one of {', '.join(ERRORS)}")
        values[ERRORS[key].field] = value
    return ErrorMagnitudes(**values)


def parse_magnitude(name: str, text: str | float, *, pitch_m: float | None = None) -> float:
    """One magnitude of error ``name`` from text, in the field's units (see :class:`ErrorMagnitudes`).

    Accepted forms: relative errors ``3%`` or ``0.03``; lengths with a unit (``20nm``, ``0.5um``) or, for shift
    and blur, ``px`` (design pixels, needs ``pitch_m``); rotation ``0.5`` or ``0.5deg``; index ``0.005``.
    """

    if name not in ERRORS:
        raise ToleranceError(f"unknown error {name!r}; use one of {', '.join(ERRORS)}")
    spec = ERRORS[name]
    raw = str(text).strip()
    value: float
    try:
        if spec.unit in ("nm", "µm"):
            if raw.lower().endswith("px"):
                if pitch_m is None:
                    raise ToleranceError(f"{name} magnitude {raw!r} in pixels needs the design's pitch")
                value = float(raw[:-2]) * pitch_m
            else:
                value = parse_length(raw, name=f"{name} magnitude", allow_zero=True)
        elif spec.unit == "%":
            value = float(raw[:-1]) / 100.0 if raw.endswith("%") else float(raw)
        elif spec.unit == "deg":
            value = float(raw[:-3]) if raw.lower().endswith("deg") else float(raw)
        else:
            value = float(raw)
    except UnitError as exc:
        raise ToleranceError(str(exc)) from None
    except ValueError:
        raise ToleranceError(f"{name} magnitude {raw!r} is not a number (unit {spec.unit})") from None
    return check_magnitude(spec, value)


# ---------------------------------------------------------------------------------------------------- draws
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


# ---------------------------------------------------------------------------------------------------- relief ops
def _shift_int(x: torch.Tensor, n: int, dim: int) -> torch.Tensor:
    """``x`` moved by ``n`` whole samples along ``dim`` (towards larger indices for n > 0), zeros shifted in."""
    size = x.shape[dim]
    if n == 0:
        return x
    if abs(n) >= size:
        return torch.zeros_like(x)
    zeros_shape = list(x.shape)
    zeros_shape[dim] = abs(n)
    zeros = x.new_zeros(zeros_shape)
    if n > 0:
        return torch.cat([zeros, x.narrow(dim, 0, size - n)], dim=dim)
    return torch.cat([x.narrow(dim, -n, size + n), zeros], dim=dim)


def _shift_axis(x: torch.Tensor, shift_px: float, dim: int) -> torch.Tensor:
    """Area-weighted shift by ``shift_px`` samples along ``dim``: exact for whole samples, linear in between."""
    nearest = round(shift_px)
    if abs(shift_px - nearest) < 1e-9:  # whole samples up to rounding (e.g. a pixel of s samples)
        shift_px = float(nearest)
    whole = math.floor(shift_px)
    frac = shift_px - whole
    moved = _shift_int(x, whole, dim)
    if frac == 0.0:
        return moved
    return (1.0 - frac) * moved + frac * _shift_int(x, whole + 1, dim)


def shift_relief(heights_m: torch.Tensor, dy_px: float, dx_px: float) -> torch.Tensor:
    """A relief ``(..., M, M)`` (heights, m) moved by ``(dy, dx)`` simulation samples (bare base shifted in).

    The moved piecewise-constant relief averaged over each sample: whole-sample shifts move the array, the
    fractional part blends neighbours linearly (the exact area average). Differentiable in the heights.
    """
    out = _shift_axis(heights_m, float(dy_px), heights_m.ndim - 2)
    return _shift_axis(out, float(dx_px), heights_m.ndim - 1)


def rotate_relief(heights_m: torch.Tensor, angle_deg: float) -> torch.Tensor:
    """A relief ``(M, M)`` turned by ``angle_deg`` about the grid centre (bilinear resampling, base outside)."""
    if angle_deg == 0.0:
        return heights_m
    theta = math.radians(angle_deg)
    c, s = math.cos(theta), math.sin(theta)
    # output (x, y) samples the input at R(−θ)·(x, y); normalised coordinates of a square grid
    matrix = torch.tensor([[c, s, 0.0], [-s, c, 0.0]], dtype=heights_m.dtype, device=heights_m.device)
    image = heights_m[None, None]
    grid = torch.nn.functional.affine_grid(matrix[None], list(image.shape), align_corners=False)
    out = torch.nn.functional.grid_sample(image, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out[0, 0]


def gaussian_sample_kernel(sigma_px: float) -> np.ndarray:
    """1-D kernel of a Gaussian of std ``sigma_px`` (samples) integrated over each sample; sums to 1.

    ``w_k = Φ((k + ½)/σ) − Φ((k − ½)/σ)`` for ``|k| ≤ ceil(4σ) + 1``, renormalised.
    """
    radius = int(math.ceil(4.0 * sigma_px)) + 1
    k = np.arange(-radius, radius + 1, dtype=np.float64)
    cdf = lambda x: 0.5 * (1.0 + np.vectorize(math.erf)(x / (sigma_px * math.sqrt(2.0))))  # noqa: E731
    weights = cdf(k + 0.5) - cdf(k - 0.5)
    return weights / weights.sum()


def blur_relief(heights_m: torch.Tensor, sigma_px: float) -> torch.Tensor:
    """Pixel rounding: the relief ``(..., M, M)`` convolved with a Gaussian of ``sigma_px`` samples.

    Separable, circular boundary (the mean height is kept exactly); ``sigma_px = 0`` returns the input.
    """
    if sigma_px == 0.0:
        return heights_m
    weights = torch.as_tensor(gaussian_sample_kernel(sigma_px), dtype=heights_m.dtype, device=heights_m.device)
    radius = (weights.numel() - 1) // 2
    lead = heights_m.shape[:-2]
    rows, cols = heights_m.shape[-2:]
    x = heights_m.reshape(-1, 1, rows, cols)
    if radius >= min(rows, cols):
        raise ToleranceError(f"blur of {sigma_px:g} samples is wider than the {rows}×{cols} grid")
    x = torch.nn.functional.pad(x, (radius, radius, 0, 0), mode="circular")
    x = torch.nn.functional.conv2d(x, weights.view(1, 1, 1, -1))
    x = torch.nn.functional.pad(x, (0, 0, radius, radius), mode="circular")
    x = torch.nn.functional.conv2d(x, weights.view(1, 1, -1, 1))
    return x.reshape(*lead, rows, cols)


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
