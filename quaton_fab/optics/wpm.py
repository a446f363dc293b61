"""The printed relief as a thick element: the wave propagation method (WPM), an alternative to the multislice.

Same geometry and conventions as :mod:`quaton_fab.optics.relief` (slices at every level height, optionally
subdivided by ``max_slice_m``; base slab of the material; ``orientation`` base-first or relief-first; sign
convention ``exp(i(kz − ωt))``; metres). Where the multislice (beam propagation) propagates every slice in the
medium's ``kz`` and adds the material's extra phase as a thin screen, the WPM (Brenner & Singer, Appl. Opt. 32,
4984, 1993) propagates the field's angular spectrum through each slice twice — once with the material's
``kz_mat = sqrt((n_mat/λ0)² − f²)`` and once with the medium's ``kz_med`` — and recombines the two fields pixel
by pixel with the slice's occupancy: ``U' = occ·F⁻¹[F[U]·e^{i2π·kz_mat·dz}] + (1 − occ)·F⁻¹[F[U]·e^{i2π·kz_med·dz}]``.
Light inside a pillar thus diffracts with the material's (smaller) angles; it costs two FFT pairs per slice
instead of one. Scalar, no reflections, as the multislice. Identifier :data:`WPM_MODEL`.
"""

from __future__ import annotations

import numpy as np
import torch

from quaton_fab.optics.propagation import next_fast_length
from quaton_fab.optics.relief import Relief, ReliefError, _transfer, relief_padding_px

__all__ = ["WPM_MODEL", "WavePropagator"]

#: Identifier of this model (the multislice is ``quaton_fab.optics.relief.RELIEF_MODEL``).
WPM_MODEL = "wpm-occupancy/1"


class WavePropagator:
    """WPM through one relief on one grid, from the plate's entry face to its exit face.

    Args:
        relief: the relief. shape: ``(M, M)`` simulation pixels. sim_pitch_m: their pitch (m).
        wavelength_m: vacuum wavelength (m). n_medium: index of the surrounding medium.
        dtype: complex64 or complex128. device: where the tensors live.
        padding: zero pixels per side around the aperture; None: :func:`relief_padding_px` of the plate's
            thickness; 0: periodic boundaries (a grating period).

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
        padding: int | None = None,
    ) -> None:
        if padding is not None and (isinstance(padding, bool) or not isinstance(padding, int) or padding < 0):
            raise ReliefError(f"padding must be None or an int >= 0 (pixels per side), got {padding!r}")
        self.relief = relief
        self.shape = (int(shape[0]), int(shape[1]))
        self.device = torch.device("cpu") if device is None else torch.device(device)
        edges = relief.slice_edges_m()
        self.edges_m = edges
        self.dz_m = np.diff(edges)
        self.order = relief.slice_order()
        thickness = float(edges[-1]) + relief.base_m
        if padding is None:
            pad = relief_padding_px(thickness, sim_pitch_m, max(self.shape))
            side = max(self.shape)
            pad = (next_fast_length(side + 2 * pad) - side + 1) // 2 if pad else 0
        else:
            pad = padding
        self.pad = pad
        padded = (self.shape[0] + 2 * pad, self.shape[1] + 2 * pad)

        def transfer(layers):
            return torch.from_numpy(_transfer(padded, sim_pitch_m, wavelength_m, layers)).to(dtype=dtype,
                                                                                                device=self.device)

        self.base = transfer([(relief.base_m, relief.n_material)]) if relief.base_m > 0 else None
        self.slices = [
            (transfer([(float(self.dz_m[j]), relief.n_material)]), transfer([(float(self.dz_m[j]), n_medium)]))
            for j in self.order
        ]

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
        base_first = self.relief.orientation == "base-first"
        if base_first and self.base is not None:
            field = torch.fft.ifft2(torch.fft.fft2(field) * self.base)
        for (t_mat, t_med), j in zip(self.slices, self.order):
            lo, dz = float(self.edges_m[j]), float(self.dz_m[j])
            occ = torch.clamp((heights_m - lo) / dz, 0.0, 1.0).to(field.real.dtype)
            spectrum = torch.fft.fft2(field)
            field = occ * torch.fft.ifft2(spectrum * t_mat) + (1 - occ) * torch.fft.ifft2(spectrum * t_med)
        if not base_first and self.base is not None:
            field = torch.fft.ifft2(torch.fft.fft2(field) * self.base)
        return field[..., p : p + rows, p : p + cols] if p else field
