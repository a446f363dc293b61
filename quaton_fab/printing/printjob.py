"""Printed volume and an estimated two-photon print time of exported masks, from their height maps.

One idea: what a print job costs, computed from the heights alone (no mesh, no slicer).

* **Volume** of a mask: base slab under the whole aperture plus one flat-topped column per pixel,
  ``V = N_rows·N_cols·p²·base + p²·Σ h``, in µm³.
* **Slicing**: the part is cut into slices of thickness Δz (the printer profile's slicing distance) from the
  substrate (z = 0) up; slice s is written where the part is solid at its mid-plane z_s = (s + ½)·Δz. The
  written ("sliced") volume is ``Σ_s A(z_s)·Δz``; it equals the volume when every top (base included) is a whole
  number of slices.
* **Hatching**: each slice is filled with parallel lines ``hatch`` apart, so its line length is ``A(z_s)/hatch``.
* **Time** = total line length / scan speed + slices × per-slice overhead (stage/piezo z move and settling).

Assumptions (stated in the fab sheet): the scan speed is the writing speed along every line; jumps between
lines, acceleration, contour lines, block stitching and stage moves between parts are not counted (the
per-slice overhead lumps the z moves only); the support structure of a stack is not included. Real jobs are
typically slower; the estimate is for planning and comparing designs, not a quote.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from quaton_fab.errors import FabError
from quaton_fab.printing.printer import PrinterProfile, get_profile

__all__ = ["PrintJobError", "DEFAULT_SLICE_OVERHEAD_S", "MaskPrint", "PrintEstimate", "mask_volume_um3",
           "estimate_print"]

#: Time per slice for the z move and settling (s): an assumption, stated in the sheet.
DEFAULT_SLICE_OVERHEAD_S = 0.1
_UM = 1e6


class PrintJobError(FabError):
    """Height maps, pitch, base or printer profile that cannot give a print estimate."""


def _check(heights_m: np.ndarray, pitch_m: float, base_m: float) -> tuple[np.ndarray, float, float]:
    h = np.asarray(heights_m, dtype=np.float64)
    if h.ndim not in (2, 3) or h.size == 0:
        raise PrintJobError(f"height maps must be a non-empty (N, N) or (L, N, N) array, got shape {h.shape}")
    if not np.all(np.isfinite(h)) or h.min() < 0:
        raise PrintJobError("heights must be finite and ≥ 0 (metres above the base)")
    for name, value in (("pitch", pitch_m), ("base", base_m)):
        if not (math.isfinite(value) and value >= (0 if name == "base" else 1e-300)):
            raise PrintJobError(f"{name} must be a {'non-negative' if name == 'base' else 'positive'} length in "
                                f"metres, got {value!r}")
    return h, float(pitch_m), float(base_m)


def _clean(x: float) -> float:
    """``x`` rounded to 12 significant digits (drops binary noise such as 0.09999999999999999)."""
    return float(f"{x:.12g}")


def mask_volume_um3(heights_m: np.ndarray, pitch_m: float, base_m: float) -> float:
    """Volume (µm³) of one mask: base slab under the aperture plus a column of height h per pixel (m in)."""
    h, pitch, base = _check(heights_m, pitch_m, base_m)
    return float((h.size * base + h.sum()) * (pitch * _UM) ** 2 * _UM)


@dataclass(frozen=True)
class MaskPrint:
    """Print figures of one mask (µm, µm³, seconds)."""

    mask: int
    volume_um3: float
    sliced_volume_um3: float
    slices: int
    hatch_length_mm: float
    time_s: float


@dataclass(frozen=True)
class PrintEstimate:
    """Print figures of all masks and the assumptions behind them."""

    masks: tuple[MaskPrint, ...]
    profile: str
    slicing_distance_um: float
    hatching_distance_um: float
    scan_speed_mm_per_s: float
    slice_overhead_s: float
    assumptions: str

    @property
    def total_volume_um3(self) -> float:
        """Sum of the masks' volumes (µm³)."""
        return float(sum(m.volume_um3 for m in self.masks))

    @property
    def total_time_s(self) -> float:
        """Sum of the masks' estimated times (s), printed one after the other."""
        return float(sum(m.time_s for m in self.masks))

    def to_dict(self) -> dict:
        """JSON-ready dict with the totals."""
        d = asdict(self)
        d["masks"] = [asdict(m) for m in self.masks]
        d["total_volume_um3"] = self.total_volume_um3
        d["total_time_s"] = self.total_time_s
        return d


def _slices(tops_um: np.ndarray, dz_um: float, pixel_area_um2: float) -> tuple[int, float]:
    """(slice count, Σ area at mid-slice planes in µm²) for columns with tops ``tops_um`` (µm) above z = 0."""
    # a column of top t is solid at the mid-plane (s + 1/2)·dz for s < t/dz - 1/2, i.e. in ceil(t/dz - 1/2) slices
    per_column = np.ceil(tops_um / dz_um - 0.5 - 1e-9).clip(min=0)
    return int(per_column.max()), float(per_column.sum()) * pixel_area_um2


def estimate_print(
    heights_m: np.ndarray,
    pitch_m: float,
    base_m: float,
    profile: PrinterProfile | None = None,
    *,
    slice_overhead_s: float = DEFAULT_SLICE_OVERHEAD_S,
) -> PrintEstimate:
    """Volume, sliced volume, hatch-line length and time of every mask (see the module docstring).

    Args:
        heights_m: (L, N, N) or (N, N) heights above the base slab (m, ≥ 0).
        pitch_m: pixel pitch (m); base_m: base slab thickness (m, ≥ 0).
        profile: printer profile with slicing, hatching and scan speed (default: ``get_profile()``).
        slice_overhead_s: time per slice for the z move (s, ≥ 0).

    Raises:
        PrintJobError: bad input, or a profile without a slicing grid, hatching or scan speed (grayscale).
    """
    h, pitch, base = _check(heights_m, pitch_m, base_m)
    maps = h[None] if h.ndim == 2 else h
    prof = profile if profile is not None else get_profile()
    if prof.slicing_distance_m is None or prof.hatching_distance_m is None or prof.scan_speed_m_per_s is None:
        raise PrintJobError(f"printer profile {prof.name!r} has no slicing/hatching/scan speed: no print-time model")
    if not (math.isfinite(slice_overhead_s) and slice_overhead_s >= 0):
        raise PrintJobError(f"slice overhead must be a time ≥ 0 in seconds, got {slice_overhead_s!r}")
    dz_um = _clean(prof.slicing_distance_m * _UM)
    hatch_um = _clean(prof.hatching_distance_m * _UM)
    speed_um_per_s = _clean(prof.scan_speed_m_per_s * _UM)
    pixel_area_um2 = (pitch * _UM) ** 2
    rows = []
    for index, m in enumerate(maps):
        slices, area_sum_um2 = _slices((base + m) * _UM, dz_um, pixel_area_um2)
        length_um = area_sum_um2 / hatch_um
        rows.append(MaskPrint(
            mask=index + 1,
            volume_um3=mask_volume_um3(m, pitch, base),
            sliced_volume_um3=area_sum_um2 * dz_um,
            slices=slices,
            hatch_length_mm=length_um * 1e-3,
            time_s=length_um / speed_um_per_s + slices * slice_overhead_s,
        ))
    return PrintEstimate(
        masks=tuple(rows),
        profile=prof.name,
        slicing_distance_um=dz_um,
        hatching_distance_um=hatch_um,
        scan_speed_mm_per_s=speed_um_per_s * 1e-3,
        slice_overhead_s=float(slice_overhead_s),
        assumptions=(
            f"slices of {dz_um:g} µm from the substrate up, each written where the part is solid at its mid-plane; "
            f"hatch lines {hatch_um:g} µm apart (line length = slice area / hatching); time = line length / "
            f"{speed_um_per_s * 1e-3:g} mm/s + {slice_overhead_s:g} s per slice (z move); jumps between lines, "
            "acceleration, contours, block stitching, stage moves and stack supports not counted; masks printed "
            "one after the other"
        ),
    )
