"""The printed relief's description: base slab, level heights, slicing and orientation (metres, radians).

A :class:`Relief` is what every mask of a network prints: flat-topped pillars at the level heights above a base
slab of one material. It knows its own geometry (where the slices are, which part of it lies in which gap, the
height of a phase); how light crosses it is in :mod:`quaton_fab.optics.relief` (the multislice model), which
re-exports these names.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from quaton_fab.optics.phase_height import TWO_PI as _TWO_PI
from quaton_fab.optics.phase_height import height_2pi_m, index_contrast
from quaton_fab.optics.propagation import OpticsError
from quaton_fab.vocabulary import ORIENTATIONS

__all__ = ["ORIENTATIONS", "Relief", "ReliefError"]



class ReliefError(OpticsError):
    """An invalid relief description (one line naming the bad value)."""


def _finite(name: str, value: Any, *, minimum: float, strict: bool) -> float:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or (value <= minimum if strict else value < minimum):
        bound = f"> {minimum:g}" if strict else f">= {minimum:g}"
        raise ReliefError(f"{name} must be a finite number {bound}, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class Relief:
    """The printed relief shared by every mask of a network.

    Attributes:
        n_material: refractive index of the printed material at the design wavelength.
        level_phases_rad: phase φ_k of each level (the level set, radians), in level order.
        level_heights_m: printed height h_k of each level above the base (m), same order.
        periodic: True when the level set lives on the circle (phase φ_0 + 2π is level 0 again).
        base_m: thickness of the base slab under the relief (m, ≥ 0).
        max_slice_m: optional largest slice thickness (m); None: one slice per level step.
        orientation: ``"base-first"`` (light enters through the base) or ``"relief-first"``.
        continuous: True for an unconstrained (full-precision) relief: height ∝ phase wrapped into [0, 2π)
            instead of interpolating between the levels.
    """

    n_material: float
    level_phases_rad: tuple[float, ...]
    level_heights_m: tuple[float, ...]
    periodic: bool = True
    base_m: float = 0.0
    max_slice_m: float | None = None
    orientation: str = "base-first"
    continuous: bool = False

    def __post_init__(self) -> None:
        _finite("n_material", self.n_material, minimum=0.0, strict=True)
        phases = tuple(float(p) for p in self.level_phases_rad)
        heights = tuple(float(h) for h in self.level_heights_m)
        if len(phases) < 2 or len(phases) != len(heights):
            raise ReliefError(
                f"a relief needs one height per level (>= 2 levels), got {len(phases)} phases and "
                f"{len(heights)} heights"
            )
        for p in phases:
            _finite("level phase", p, minimum=-math.inf, strict=True)
        for h in heights:
            _finite("level height (m)", h, minimum=0.0, strict=False)
        if any(b <= a for a, b in zip(phases, phases[1:])):
            raise ReliefError(f"level phases must increase strictly, got {phases}")
        object.__setattr__(self, "level_phases_rad", phases)
        object.__setattr__(self, "level_heights_m", heights)
        object.__setattr__(self, "n_material", float(self.n_material))
        object.__setattr__(self, "base_m", _finite("base (m)", self.base_m, minimum=0.0, strict=False))
        if self.max_slice_m is not None:
            max_slice = _finite("max_slice (m)", self.max_slice_m, minimum=0.0, strict=True)
            object.__setattr__(self, "max_slice_m", max_slice)
        if self.orientation not in ORIENTATIONS:
            raise ReliefError(f"orientation must be one of {', '.join(ORIENTATIONS)}, got {self.orientation!r}")
        object.__setattr__(self, "periodic", bool(self.periodic))
        object.__setattr__(self, "continuous", bool(self.continuous))

    # ------------------------------------------------------------------ geometry of the relief
    @property
    def top_m(self) -> float:
        """Height of the relief region above the base (m): the tallest level."""
        return max(self.level_heights_m)

    def height_2pi_m(self, wavelength_m: float, n_medium: float) -> float:
        """Height (m) whose phase is 2π: ``λ0 / (n_mat − n_med)``."""
        return height_2pi_m(wavelength_m, index_contrast(self.n_material, n_medium))

    def slice_edges_m(self) -> np.ndarray:
        """Slice boundaries (m, ascending, from 0 to ``top_m``): every level height, subdivided by ``max_slice_m``."""
        marks = np.unique(np.asarray((0.0, *self.level_heights_m), dtype=np.float64))
        edges = [0.0]
        for lo, hi in zip(marks[:-1], marks[1:]):
            parts = 1 if self.max_slice_m is None else max(1, math.ceil((hi - lo) / self.max_slice_m - 1e-9))
            edges.extend(lo + (hi - lo) * np.arange(1, parts + 1) / parts)
        return np.asarray(edges, dtype=np.float64)

    def free_distances_m(self, hops_m: Sequence[float]) -> tuple[float, ...]:
        """Medium-only part of each hop between reference planes (m), the relief and base taken out.

        ``hops_m`` are the ``L + 1`` distances of the thin model (input → mask 1, mask → mask, mask L →
        detector), measured between reference planes (see the module docstring). Raises ReliefError when a
        gap is too small to hold the base slab and the relief.
        """
        hops = [float(d) for d in hops_m]
        thick = self.top_m + self.base_m
        if self.orientation == "base-first":
            before, after = self.base_m, self.top_m  # base before the reference plane, relief after it
        else:
            before, after = 0.0, thick  # relief and base both after the reference plane
        out = []
        for index, hop in enumerate(hops):
            taken = (after if index > 0 else 0.0) + (before if index < len(hops) - 1 else 0.0)
            if hop - taken < -1e-15:
                names = ["d_in"] + ["spacing"] * (len(hops) - 2) + ["d_out"]
                raise ReliefError(
                    f"{names[index]} = {hop * 1e6:.4g} µm is shorter than the printed part it must hold "
                    f"({taken * 1e6:.4g} µm of base slab and relief)"
                )
            out.append(max(hop - taken, 0.0))
        return tuple(out)

    def slice_order(self) -> list[int]:
        """Indices of the slices (into ``slice_edges_m``' intervals) in the order light crosses them."""
        count = len(self.slice_edges_m()) - 1
        return list(range(count)) if self.orientation == "base-first" else list(range(count - 1, -1, -1))

    def end_halves_m(self) -> tuple[float, float]:
        """Half thickness (m) of the first and of the last slice light crosses (the Strang half steps)."""
        dz = np.diff(self.slice_edges_m())
        if dz.size == 0:
            return 0.0, 0.0
        order = self.slice_order()
        return 0.5 * float(dz[order[0]]), 0.5 * float(dz[order[-1]])

    def hop_layers_m(self, hops_m: Sequence[float]) -> tuple[tuple[float, float], ...]:
        """Each hop of the network as ``(medium_m, slab_m)``: the homogeneous part between two phase screens.

        Hop ``i`` (``0 … L``) holds the free medium between the parts (:meth:`free_distances_m`), the Strang
        half steps of the relief's outer slices on either side, and the base slab it crosses (before each
        mask for ``base-first``, after each mask for ``relief-first``). Lengths in metres.
        """
        free = self.free_distances_m(hops_m)
        entry, exit_ = self.end_halves_m()
        last = len(free) - 1
        out = []
        for i, d in enumerate(free):
            medium = d + (exit_ if i > 0 else 0.0) + (entry if i < last else 0.0)
            has_slab = (i < last) if self.orientation == "base-first" else (i > 0)
            out.append((medium, self.base_m if has_slab else 0.0))
        return tuple(out)

    # ------------------------------------------------------------------ phase → height
    def heights_of_phases(self, phases: torch.Tensor, wavelength_m: float, n_medium: float) -> torch.Tensor:
        """Relief height (m, same shape and float dtype as ``phases``) of each phase (rad); differentiable.

        Level phases map exactly to their level heights. Between levels the height is interpolated linearly;
        for a periodic set the last segment runs from the top level back to level 0 at φ_0 + 2π (so the map is
        continuous and a phase just below φ_0 + 2π is a low pillar, like level 0). ``continuous`` reliefs use
        ``h = wrap(φ)·λ0/(2π(n_mat − n_med))``.
        """
        if self.continuous:
            return torch.remainder(phases, _TWO_PI) * (self.height_2pi_m(wavelength_m, n_medium) / _TWO_PI)
        xs = list(self.level_phases_rad)
        ys = list(self.level_heights_m)
        lo = xs[0]
        if self.periodic:
            phi = lo + torch.remainder(phases - lo, _TWO_PI)
            xs.append(lo + _TWO_PI)
            ys.append(ys[0])
        else:
            # Clamped to the printable range, but straight through: a phase outside it keeps the gradient of the
            # end segment, so the quantizer's restoring slope reaches it (a plain clamp would give exactly 0).
            inside = torch.clamp(phases.detach(), xs[0], xs[-1])
            phi = torch.where(inside == phases.detach(), phases, inside + (phases - phases.detach()))
        x = torch.as_tensor(xs, dtype=phases.dtype, device=phases.device)
        y = torch.as_tensor(ys, dtype=phases.dtype, device=phases.device)
        index = torch.clamp(torch.searchsorted(x, phi.detach().contiguous(), right=True) - 1, 0, len(xs) - 2)
        x0, x1, y0, y1 = x[index], x[index + 1], y[index], y[index + 1]
        return y0 + (phi - x0) * ((y1 - y0) / (x1 - x0))

    # ------------------------------------------------------------------ file form
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (lengths in metres, phases in radians)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["level_phases_rad"] = list(self.level_phases_rad)
        out["level_heights_m"] = list(self.level_heights_m)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Relief":
        """Inverse of :meth:`to_dict`; unknown or missing keys raise ReliefError."""
        if not isinstance(data, Mapping):
            raise ReliefError(f"relief must be a mapping, got {type(data).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ReliefError(f"unknown relief key(s) {unknown}")
        missing = sorted({"n_material", "level_phases_rad", "level_heights_m"} - set(data))
        if missing:
            raise ReliefError(f"missing relief key(s) {missing}")
        try:
            return cls(**dict(data))
        except TypeError as exc:
            raise ReliefError(f"bad relief description: {exc}") from None
