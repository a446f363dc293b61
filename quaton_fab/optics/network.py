"""The diffractive network: geometry plus a stack of phase-only masks between free-space hops.

Input plane → ``d_in`` → mask 1 → ``spacing`` → … → mask L → ``d_out`` → detector plane. All planes share
one square grid of ``neurons × oversample`` simulation pixels of pitch ``pitch_m / oversample``; the grid is
the aperture (opaque outside, see :mod:`quaton_fab.optics.propagation`). Mask transmission ``t = exp(+iφ)``
(sign convention ``exp(i(kz − ωt))``), each neuron's phase repeated over its ``s×s`` pixels.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from quaton_fab.optics.propagation import (
    AngularSpectrum,
    OpticsError,
    complex_dtype_for,
    get_angular_spectrum,
)
from quaton_fab.optics.relief import Relief, get_relief_propagator

__all__ = [
    "Geometry",
    "GeometryError",
    "DiffractiveNetwork",
    "FreePhase",
    "upsample_neurons",
    "rule_oversample",
    "acceptance_sin",
]


def rule_oversample(pitch_m: float, wavelength_m: float, n_medium: float = 1.0) -> int:
    """Smallest oversampling ``s`` meeting the sampling rule ``pitch/s ≤ λ0/(2·n_med)``: ``ceil(2·p·n/λ0)``.

    At that simulation pitch the grid holds every spatial frequency a flat-topped printed pixel sends into
    propagating waves (``|f| ≤ n_med/λ0`` along each axis). Lengths in metres.
    """
    _positive_length("pitch_m", pitch_m)
    _positive_length("wavelength_m", wavelength_m)
    return max(1, math.ceil(2.0 * pitch_m * n_medium / wavelength_m - 1e-9))


class GeometryError(OpticsError):
    """An invalid network geometry (one line naming the bad value)."""


def _positive_length(name: str, value: Any) -> None:
    """Raise GeometryError unless ``value`` is a finite number > 0 (metres)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
        raise GeometryError(f"{name} must be a finite length > 0 in metres, got {value!r}")


def _distance(name: str, value: Any) -> None:
    """Raise GeometryError unless ``value`` is a finite number >= 0 (metres; 0 means touching planes)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value < 0:
        raise GeometryError(f"{name} must be a finite distance >= 0 in metres, got {value!r}")


def _count(name: str, value: Any) -> None:
    """Raise GeometryError unless ``value`` is an integer >= 1."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise GeometryError(f"{name} must be an int >= 1, got {value!r}")


@dataclass(frozen=True)
class Geometry:
    """Physical layout of a diffractive network (SI units: metres).

    Attributes:
        wavelength_m: vacuum wavelength. neurons: mask pixels per side (N). pitch_m: mask pixel pitch.
        layers: number of masks (L). d_in_m: input plane → mask 1. spacing_m: mask → mask.
        d_out_m: mask L → detector. n_medium: index of the medium between planes. oversample: simulation
        pixels per neuron per side (s). padding: ``"auto"`` or zero pixels per side (see ``propagate``).
    """

    wavelength_m: float
    neurons: int
    pitch_m: float
    layers: int
    d_in_m: float
    spacing_m: float
    d_out_m: float
    n_medium: float = 1.0
    oversample: int = 1
    padding: str | int = "auto"

    def __post_init__(self) -> None:
        _positive_length("wavelength_m", self.wavelength_m)
        _positive_length("pitch_m", self.pitch_m)
        _count("neurons", self.neurons)
        _count("layers", self.layers)
        _count("oversample", self.oversample)
        for name in ("d_in_m", "spacing_m", "d_out_m"):
            _distance(name, getattr(self, name))
        n = self.n_medium
        if isinstance(n, bool) or not isinstance(n, numbers.Real) or not math.isfinite(n) or n <= 0:
            raise GeometryError(f"n_medium must be a finite refractive index > 0, got {n!r}")
        pad = self.padding
        if pad != "auto" and (isinstance(pad, bool) or not isinstance(pad, numbers.Integral) or pad < 0):
            raise GeometryError(f"padding must be 'auto' or an int >= 0 (pixels per side), got {pad!r}")
        # normalise numpy scalars and ints-for-floats, so equality, hashing and JSON behave
        for name in ("wavelength_m", "pitch_m", "d_in_m", "spacing_m", "d_out_m", "n_medium"):
            object.__setattr__(self, name, float(getattr(self, name)))
        for name in ("neurons", "layers", "oversample"):
            object.__setattr__(self, name, int(getattr(self, name)))
        if pad != "auto":
            object.__setattr__(self, "padding", int(pad))

    @property
    def sim_pixels(self) -> int:
        """Simulation pixels per side, ``neurons · oversample``."""
        return self.neurons * self.oversample

    @property
    def sim_pitch_m(self) -> float:
        """Simulation pixel pitch (m), ``pitch_m / oversample``."""
        return self.pitch_m / self.oversample

    @property
    def rule_oversample(self) -> int:
        """The smallest oversampling that meets the sampling rule (see :func:`rule_oversample`)."""
        return rule_oversample(self.pitch_m, self.wavelength_m, self.n_medium)

    @property
    def meets_sampling_rule(self) -> bool:
        """True when ``pitch/oversample ≤ λ0/(2·n_med)``: every propagating wave is represented."""
        return self.oversample >= self.rule_oversample

    def distances_m(self) -> tuple[float, ...]:
        """The ``layers + 1`` free-space hops in order (m): d_in, spacing × (L − 1), d_out."""
        return (self.d_in_m, *([self.spacing_m] * (self.layers - 1)), self.d_out_m)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; keys are the field names (lengths in metres, suffix ``_m``)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Geometry":
        """Inverse of :meth:`to_dict`; unknown or missing keys raise GeometryError."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise GeometryError(f"unknown geometry key(s) {unknown}; expected {sorted(names)}")
        required = {f.name for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING}
        missing = sorted(required - set(data))
        if missing:
            raise GeometryError(f"missing geometry key(s) {missing}")
        return cls(**dict(data))


def upsample_neurons(values: torch.Tensor, oversample: int) -> torch.Tensor:
    """Repeat each entry of ``(..., N, N)`` over ``s×s`` pixels (nearest neighbour) → ``(..., N·s, N·s)``."""
    if oversample == 1:
        return values
    *lead, rows, cols = values.shape
    expanded = values[..., :, None, :, None].expand(*lead, rows, oversample, cols, oversample)
    return expanded.reshape(*lead, rows * oversample, cols * oversample)


class FreePhase(nn.Module):
    """Unconstrained phase mask: one trainable phase (rad) per neuron, initialised uniform in [0, 2π).

    Args:
        neurons: N (the mask is N×N). generator: optional ``torch.Generator`` for a reproducible init.
    """

    def __init__(self, neurons: int, *, generator: torch.Generator | None = None) -> None:
        super().__init__()
        _count("neurons", neurons)
        self.phase = nn.Parameter(2.0 * math.pi * torch.rand(neurons, neurons, generator=generator))

    def forward(self) -> torch.Tensor:
        """The phase, ``(N, N)`` float, radians."""
        return self.phase


class DiffractiveNetwork(nn.Module):
    """Stacked phase masks with free-space propagation between them.

    Args:
        geometry: the layout. phase_modules: ``layers`` modules, each ``module()`` → ``(N, N)`` phase (rad);
            default ``FreePhase`` modules. generator: seeds the default ``FreePhase`` initialisation.
        relief: optional printed relief (:class:`~quaton_fab.optics.relief.Relief`). None: thin masks
            (``exp(iφ)`` in one plane). Given: each mask is propagated through as a multislice relief, the
            hops between reference planes shortened by the base slab and the relief region.
        distances_m: optional ``layers + 1`` hops (m) replacing ``geometry.distances_m()`` (d_in, each gap,
            d_out), e.g. a print whose gaps differ from the design spacing (tolerance analysis).
        recompute: relief model only: True keeps only each mask's input field for the backward pass and
            recomputes the slices inside the mask when the gradient needs them (activation checkpointing per
            mask: memory of one field per mask instead of one per slice, for one extra forward pass through
            the reliefs). Same result and gradients; the attribute can be changed at any time.
    """

    def __init__(
        self,
        geometry: Geometry,
        phase_modules: Sequence[nn.Module] | None = None,
        *,
        generator: torch.Generator | None = None,
        relief: Relief | None = None,
        distances_m: Sequence[float] | None = None,
        recompute: bool = False,
    ) -> None:
        super().__init__()
        self.recompute = bool(recompute)
        if not isinstance(geometry, Geometry):
            raise GeometryError(f"geometry must be a Geometry, got {type(geometry).__name__}")
        if relief is not None and not isinstance(relief, Relief):
            raise GeometryError(f"relief must be a Relief or None, got {type(relief).__name__}")
        self.geometry = geometry
        self.relief = relief
        if distances_m is None:
            distances = geometry.distances_m()
        else:
            distances = tuple(distances_m)
            if len(distances) != geometry.layers + 1:
                raise GeometryError(f"got {len(distances)} distances for {geometry.layers} layers (expected "
                                    f"{geometry.layers + 1}: d_in, the gaps, d_out)")
            for index, d in enumerate(distances):
                _distance(f"distance {index}", d)
            distances = tuple(float(d) for d in distances)
        # every hop as (medium, slab) between phase screens (validated once: a gap must hold the printed part)
        if relief is None:
            self._hops = tuple((d, 0.0) for d in distances)
        else:
            self._hops = relief.hop_layers_m(distances)
        if phase_modules is None:
            phase_modules = [FreePhase(geometry.neurons, generator=generator) for _ in range(geometry.layers)]
        if len(phase_modules) != geometry.layers:
            raise GeometryError(f"got {len(phase_modules)} phase modules for {geometry.layers} layers")
        self.phase_modules = nn.ModuleList(phase_modules)

    def current_phases(self) -> torch.Tensor:
        """The masks' phases, ``(L, N, N)`` radians (differentiable; detach before exporting)."""
        n = self.geometry.neurons
        phases = []
        for index, module in enumerate(self.phase_modules):
            phase = module()
            if not isinstance(phase, torch.Tensor) or tuple(phase.shape) != (n, n) or phase.is_complex():
                shape = tuple(phase.shape) if isinstance(phase, torch.Tensor) else type(phase).__name__
                raise GeometryError(f"phase module {index} returned {shape}, expected a real ({n}, {n}) tensor")
            phases.append(phase)
        return torch.stack(phases)

    def _checked_phases(self, phases: torch.Tensor) -> torch.Tensor:
        """Return ``phases`` if it is a real ``(L, N, N)`` tensor, else raise GeometryError."""
        g = self.geometry
        expected = (g.layers, g.neurons, g.neurons)
        if not isinstance(phases, torch.Tensor) or tuple(phases.shape) != expected or phases.is_complex():
            shape = tuple(phases.shape) if isinstance(phases, torch.Tensor) else type(phases).__name__
            raise GeometryError(f"phases have shape {shape}, expected a real tensor of shape {expected}")
        return phases

    def _checked_heights(self, heights_m: torch.Tensor) -> torch.Tensor:
        """Return ``heights_m`` if it is real ``(L, N, N)`` or ``(L, N·s, N·s)``, else raise GeometryError."""
        g = self.geometry
        if isinstance(heights_m, torch.Tensor) and not heights_m.is_complex() and tuple(heights_m.shape) == (
            g.layers, g.sim_pixels, g.sim_pixels
        ):
            return heights_m
        return self._checked_phases(heights_m)

    def _spectrum(self, hop: int, field: torch.Tensor) -> AngularSpectrum:
        """The (cached, shared) propagator of hop ``hop`` (0 … L) on this field's grid/dtype/device."""
        g = self.geometry
        medium_m, slab_m = self._hops[hop]
        return get_angular_spectrum(
            (g.sim_pixels, g.sim_pixels),
            float(g.sim_pitch_m),
            float(g.wavelength_m),
            float(medium_m),
            float(g.n_medium),
            g.padding,
            field.dtype,
            field.device,
            float(slab_m),
            float(self.relief.n_material) if slab_m else 1.0,
        )

    def detector_field(
        self,
        field: torch.Tensor,
        phases: torch.Tensor | None = None,
        *,
        heights_m: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Complex field on the detector plane, ``(..., N·s, N·s)``.

        Args:
            field: input-plane field ``(..., N·s, N·s)``, complex64 or complex128 (real is promoted).
            phases: optional ``(L, N, N)`` radians replacing the phase modules (re-simulating exported masks).
            heights_m: relief model only: optional relief heights (m) above the base, replacing the heights
                derived from the phases: ``(L, N, N)`` per neuron (re-simulating heights read back from files) or
                ``(L, N·s, N·s)`` per simulation pixel (a relief perturbed below the pixel scale, e.g. shifted
                or rounded; see :mod:`quaton_fab.analysis.tolerance`).
        """
        g = self.geometry
        grid = (g.sim_pixels, g.sim_pixels)
        if not isinstance(field, torch.Tensor) or field.ndim < 2 or tuple(field.shape[-2:]) != grid:
            shape = tuple(field.shape) if isinstance(field, torch.Tensor) else type(field).__name__
            raise GeometryError(f"input field shape {shape} must end in ({g.sim_pixels}, {g.sim_pixels})")
        field = field.to(complex_dtype_for(field.dtype))
        real_dtype = torch.float64 if field.dtype == torch.complex128 else torch.float32
        if self.relief is None:
            if heights_m is not None:
                raise GeometryError("heights_m needs a relief model; the thin model takes phases")
            phases = self.current_phases() if phases is None else self._checked_phases(phases)
            phases = phases.to(device=field.device, dtype=real_dtype)
            transmissions = upsample_neurons(torch.polar(torch.ones_like(phases), phases), g.oversample)
            field = self._spectrum(0, field)(field)
            for layer in range(g.layers):
                field = self._spectrum(layer + 1, field)(field * transmissions[layer])
            return field
        if heights_m is None:
            phases = self.current_phases() if phases is None else self._checked_phases(phases)
            heights_m = self.relief.heights_of_phases(
                phases.to(device=field.device, dtype=real_dtype), g.wavelength_m, g.n_medium
            )
        else:
            heights_m = self._checked_heights(heights_m).to(device=field.device, dtype=real_dtype)
        if tuple(heights_m.shape[-2:]) != grid:
            heights_m = upsample_neurons(heights_m, g.oversample)
        relief = get_relief_propagator(
            self.relief, grid, float(g.sim_pitch_m), float(g.wavelength_m), float(g.n_medium), field.dtype,
            field.device, False,
        )
        field = self._spectrum(0, field)(field)
        checkpointed = self.recompute and torch.is_grad_enabled()
        for layer in range(g.layers):
            if checkpointed:
                # the aperture's field alone is kept (a copy, so the padded hop output it crops is freed)
                field = checkpoint(relief, field.contiguous(), heights_m[layer], use_reentrant=False)
            else:
                field = relief(field, heights_m[layer])
            field = self._spectrum(layer + 1, field)(field)
        return field

    def forward(
        self, field: torch.Tensor, phases: torch.Tensor | None = None, *, heights_m: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Detector-plane intensity ``|U|²``, ``(..., N·s, N·s)`` real; arguments as :meth:`detector_field`."""
        out = self.detector_field(field, phases, heights_m=heights_m)
        return out.real.square() + out.imag.square()


def acceptance_sin(geometry: Geometry) -> float:
    """sin θ (in the medium) of the steepest ray from one mask that still reaches the next plane.

    The mask is ``N·p`` wide; a ray from one edge to the far edge of the next plane a hop ``d`` away climbs at
    ``tan θ = N·p / d``. The shortest hop after a mask (``spacing_m`` between masks, ``d_out_m`` to the
    detector) gives the widest cone; 1 when a hop is 0.
    """
    hops = [geometry.d_out_m] + ([geometry.spacing_m] if geometry.layers > 1 else [])
    hop = min(hops)
    width = geometry.neurons * geometry.pitch_m
    return 1.0 if hop <= 0 else float(math.sin(math.atan2(width, hop)))
