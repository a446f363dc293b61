"""The printed relief as a thick element: multislice (split-step angular spectrum) propagation through it.

A printed mask is a base slab of material (thickness ``base_m``) carrying flat-topped pillars whose heights
``h`` (above the base) are the level heights. The thin model multiplies the field by ``exp(iφ)`` in one plane;
this model propagates the field *through* the relief:

* the relief region ``0 ≤ z' ≤ top`` (``top`` the tallest level) is cut into slices at every level height
  (so a printed relief is represented exactly: every slice is either fully material or fully medium in each
  pixel), each slice optionally subdivided so that none is thicker than ``max_slice_m``;
* slice ``[z_a, z_b]`` of thickness ``dz`` is a thin phase ``exp(i·k0·(n_mat − n_med)·dz·occ)`` with the
  occupancy ``occ = clamp((h − z_a)/dz, 0, 1)`` (0 or 1 for a printed level, fractional for the soft heights
  of quantization-aware training), placed between two half steps ``dz/2`` of free propagation in the medium
  (Strang splitting; consecutive half steps are merged into one transfer function);
* the base slab is a homogeneous layer of index ``n_mat``: one angular-spectrum step in the material, merged
  with the neighbouring half step.

The angular spectrum inside the relief uses the complex square root ``kz = sqrt((n/λ0)² − f²)``: waves that are
evanescent in the reference medium decay instead of being cut, as they do over sub-micrometre slices. The field
is zero-padded by ``relief_padding_px`` pixels per side while it crosses the relief and cropped back to the
aperture on exit (the grid is the aperture, as for the free-space hops).

Aperture convention (what "opaque outside the N×N aperture" means for a thick part): inside a network
(:class:`~quaton_fab.optics.network.DiffractiveNetwork`) the base slab and the outer half slices are merged into
the free-space hops, so the field is truncated to the aperture at the relief's first phase screen (half a slice
above the reference plane) and again at its last one (half a slice below the relief's top). The standalone
``ReliefPropagator(ends=True)`` truncates at the part's entry and exit faces instead. The two differ only by
light that walks across the aperture's edge within the part (a few pixels over 2–3 µm): negligible for light
that stays inside, noticeable (~1e-1 relative on the detector field after five masks, measured by
``benchmarks/bench_propagation.py``) when a plane-wave background lights the aperture's edges. The network's
convention is the recorded model. Scalar model: no Fresnel reflections,
no polarisation, reference index ``n_med`` in every slice (beam-propagation method). Its agreement with a
rigorous coupled-wave solver is tested in ``tests/test_relief_rcwa.py`` and stated in README.

Conventions (``orientation="base-first"``, the default): light enters through the base slab and leaves
through the relief's top. The mask's reference plane (where the thin model puts its phase screen and from
which distances are measured) is the top face of the base, where the relief starts; so the base slab lies in
the gap *before* the mask and the relief region (up to ``top``) in the gap *after* it. With
``orientation="relief-first"`` light meets the pillar tips first: the relief region starts at the reference
plane and the base slab follows it.

Sign convention ``exp(i(kz − ωt))`` as in :mod:`quaton_fab.optics.propagation`. Units: metres, radians.

The relief's description (:class:`Relief`, :class:`ReliefError`, ``ORIENTATIONS``) lives in
:mod:`quaton_fab.optics.relief_geometry` and is importable from here too.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np
import torch

from quaton_fab.optics.phase_height import TWO_PI as _TWO_PI
from quaton_fab.optics.phase_height import index_contrast, slice_phase_rad
from quaton_fab.optics.propagation import next_fast_length
from quaton_fab.optics.relief_geometry import ORIENTATIONS, Relief, ReliefError  # importable from here too

__all__ = [
    "RELIEF_MODEL",
    "ORIENTATIONS",
    "Relief",
    "ReliefError",
    "ReliefPropagator",
    "get_relief_propagator",
    "relief_padding_px",
    "relief_fast_padding_px",
    "network_relief_grid",
]

#: Identifier of the multislice model above; recorded in design.json next to the free-space model.
RELIEF_MODEL = "multislice-strang-bpm/1"
#: Extra zero pixels per side kept around the aperture while the field crosses the relief.
RELIEF_PAD_MARGIN_PX = 8


def relief_padding_px(thickness_m: float, sim_pitch_m: float, pixels: int) -> int:
    """Zero pixels per side kept around the aperture while the field crosses ``thickness_m`` inside a relief.

    ``2·thickness/pitch`` covers angles up to 63° from the axis, plus ``RELIEF_PAD_MARGIN_PX``, at most
    ``pixels`` (a full linear-convolution padding).
    """
    if thickness_m <= 0:
        return 0
    return int(min(pixels, math.ceil(2.0 * thickness_m / sim_pitch_m) + RELIEF_PAD_MARGIN_PX))


def relief_fast_padding_px(thickness_m: float, sim_pitch_m: float, pixels: int) -> int:
    """:func:`relief_padding_px`, rounded up so that the padded side ``pixels + 2·pad`` is a 2,3,5-smooth length."""
    pad = relief_padding_px(thickness_m, sim_pitch_m, pixels)
    return (next_fast_length(pixels + 2 * pad) - pixels + 1) // 2 if pad else 0


def network_relief_grid(relief: Relief, pixels: int, sim_pitch_m: float) -> tuple[int, int]:
    """``(slices, padded side in pixels)`` of a network's relief step (the ``ends=False`` propagator).

    The same numbers :class:`ReliefPropagator` uses, without building its transfer functions (for memory
    estimates made before anything is allocated).
    """
    dz = np.diff(relief.slice_edges_m())
    if dz.size == 0:
        return 0, pixels
    crossed = float(dz.sum() - 0.5 * (dz[0] + dz[-1]))  # every slice between the outer half steps
    return int(dz.size), pixels + 2 * relief_fast_padding_px(crossed, sim_pitch_m, pixels)


def _transfer(
    shape: tuple[int, int], pitch_m: float, wavelength_m: float, layers: Sequence[tuple[float, float]]
) -> np.ndarray:
    """Angular-spectrum transfer (complex128, ``shape``) of stacked homogeneous layers ``(thickness_m, index)``.

    ``exp(i·2π·Σ t·sqrt((n/λ0)² − f²))`` with the complex square root (evanescent waves decay).
    """
    rows, cols = shape
    fy = np.fft.fftfreq(rows, d=pitch_m)[:, None]
    fx = np.fft.fftfreq(cols, d=pitch_m)[None, :]
    f2 = fx**2 + fy**2
    phase = np.zeros(shape, dtype=np.complex128)
    for thickness, index in layers:
        if thickness > 0.0:
            phase += thickness * np.sqrt(((index / wavelength_m) ** 2 - f2).astype(np.complex128))
    return np.exp(1j * _TWO_PI * phase)


class ReliefPropagator:
    """Multislice propagation through one relief on one grid (holds the transfer functions).

    Args:
        relief: the relief. shape: ``(M, M)`` simulation pixels (the aperture). sim_pitch_m: their pitch (m).
        wavelength_m: vacuum wavelength (m). n_medium: index of the surrounding medium.
        dtype: complex64 or complex128. device: where the tensors live.
        ends: True: include the outer Strang half steps and the base slab, so the call maps the field on the
            entry face of the part (base-first: the bottom of the base) to its exit face (the relief's top).
            False: only the phase screens and the steps between them; the network merges the ends into its
            free-space hops (:meth:`Relief.hop_layers_m`), which saves two FFT pairs per mask.
        padding: zero pixels per side around the aperture inside the relief; None (default):
            :func:`relief_padding_px` of the thickness crossed; 0: periodic boundaries (a grating period, for
            tests against RCWA).

    ``__call__(field, heights_m)``: field ``(..., M, M)`` complex, heights ``(M, M)`` per simulation pixel (m).
    """

    def __init__(
        self,
        relief: Relief,
        shape: tuple[int, int],
        *,
        sim_pitch_m: float,
        wavelength_m: float,
        n_medium: float,
        dtype: torch.dtype = torch.complex64,
        device: torch.device | str | None = None,
        ends: bool = True,
        padding: int | None = None,
    ) -> None:
        if padding is not None and (isinstance(padding, bool) or not isinstance(padding, int) or padding < 0):
            raise ReliefError(f"padding must be None or an int >= 0 (pixels per side), got {padding!r}")
        self.relief = relief
        self.shape = (int(shape[0]), int(shape[1]))
        self.sim_pitch_m = float(sim_pitch_m)
        self.wavelength_m = float(wavelength_m)
        self.n_medium = float(n_medium)
        self.dtype = dtype
        self.device = torch.device("cpu") if device is None else torch.device(device)
        edges = relief.slice_edges_m()
        self.edges_m = edges
        self.dz_m = np.diff(edges)
        self.order = relief.slice_order()
        dn = index_contrast(relief.n_material, self.n_medium)
        self.slice_phase = [slice_phase_rad(self.wavelength_m, dn, self.dz_m[j]) for j in self.order]
        # homogeneous steps around the phase screens: [entry, between slices…, exit]
        halves = [0.5 * float(self.dz_m[j]) for j in self.order]
        steps: list[list[tuple[float, float]]] = []
        for i in range(len(halves) + 1):
            layers = []
            if i > 0:
                layers.append((halves[i - 1], self.n_medium))
            if i < len(halves):
                layers.append((halves[i], self.n_medium))
            steps.append(layers)
        slab = (relief.base_m, relief.n_material)
        if relief.orientation == "base-first":
            steps[0].insert(0, slab)
        else:
            steps[-1].append(slab)
        if not ends:
            steps[0], steps[-1] = [], []
        crossed = sum(t for layers in steps for t, _ in layers)
        pad = relief_fast_padding_px(crossed, self.sim_pitch_m, max(self.shape)) if padding is None else padding
        self.pad = pad
        self.padded_shape = (self.shape[0] + 2 * self.pad, self.shape[1] + 2 * self.pad)
        self.transfers = [
            torch.from_numpy(_transfer(self.padded_shape, self.sim_pitch_m, self.wavelength_m, layers)).to(
                dtype=dtype, device=self.device
            )
            if any(t > 0 for t, _ in layers)
            else None
            for layers in steps
        ]

    def occupancy(self, heights_m: torch.Tensor, slice_index: int) -> torch.Tensor:
        """Fraction (0…1) of slice ``slice_index`` (in the order light crosses them) filled with material."""
        j = self.order[slice_index]
        lo, dz = float(self.edges_m[j]), float(self.dz_m[j])
        return torch.clamp((heights_m - lo) / dz, 0.0, 1.0)

    def screens(self, heights_m: torch.Tensor) -> torch.Tensor:
        """Every slice's phase screen at once, ``(S, ...)`` complex (this propagator's dtype), S slices in order.

        ``exp(i·k0·(n_mat − n_med)·dz·occ)`` with ``occ`` of :meth:`occupancy`, computed in one vectorised pass
        over the slices (one clamp and one ``polar`` per mask instead of one per slice). ``heights_m``: any
        shape, metres; the result has a leading slice axis.
        """
        lo, dz, phase = self._slice_tables(heights_m.dtype, heights_m.device)
        view = (-1,) + (1,) * heights_m.ndim
        occ = torch.clamp((heights_m.unsqueeze(0) - lo.view(view)) / dz.view(view), 0.0, 1.0)
        return torch.polar(torch.ones_like(occ), occ * phase.view(view)).to(self.dtype)

    def _slice_tables(self, dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, ...]:
        """(lower edge (m), thickness (m), phase per full slice (rad)) of each slice in crossing order, cached."""
        key = (dtype, device)
        cache = self.__dict__.setdefault("_tables", {})
        if key not in cache:
            lo = [float(self.edges_m[j]) for j in self.order]
            dz = [float(self.dz_m[j]) for j in self.order]
            cache[key] = tuple(torch.tensor(v, dtype=dtype, device=device) for v in (lo, dz, self.slice_phase))
        return cache[key]

    def __call__(self, field: torch.Tensor, heights_m: torch.Tensor) -> torch.Tensor:
        """Propagate ``field`` (``(..., M, M)`` complex) through the relief of ``heights_m`` (``(M, M)``, metres)."""
        if tuple(field.shape[-2:]) != self.shape or tuple(heights_m.shape[-2:]) != self.shape:
            raise ReliefError(
                f"field {tuple(field.shape)} and heights {tuple(heights_m.shape)} must end in the grid {self.shape}"
            )
        p = self.pad
        rows, cols = self.shape
        if p:
            field = torch.nn.functional.pad(field, (p, p, p, p))
            heights_m = torch.nn.functional.pad(heights_m, (p, p, p, p))
        field = self._step(field, 0)
        if self.slice_phase:
            # all screens of this relief in one pass (the hot loop below then only multiplies and transforms)
            for i, screen in enumerate(self.screens(heights_m).unbind(0)):
                field = self._step(field * screen, i + 1)
        return field[..., p : p + rows, p : p + cols] if p else field

    def _step(self, field: torch.Tensor, index: int) -> torch.Tensor:
        transfer = self.transfers[index]
        if transfer is None:
            return field
        spectrum = torch.fft.fft2(field)
        spectrum.mul_(transfer)  # in place: the FFT's backward does not need its output
        return torch.fft.ifft2(spectrum)


@functools.lru_cache(maxsize=16)
def get_relief_propagator(
    relief: Relief,
    shape: tuple[int, int],
    sim_pitch_m: float,
    wavelength_m: float,
    n_medium: float,
    dtype: torch.dtype,
    device: torch.device,
    ends: bool = True,
) -> ReliefPropagator:
    """Cached :class:`ReliefPropagator` (bounded LRU keyed by every argument)."""
    return ReliefPropagator(
        relief, shape, sim_pitch_m=sim_pitch_m, wavelength_m=wavelength_m, n_medium=n_medium, dtype=dtype,
        device=device, ends=ends,
    )
