"""The layout of the printable stack: plate floors, frame and supports (shared by the stack STL and GWL).

Frame (shared with :mod:`quaton_fab.fab.formats.stl`): µm, z = build direction, z = 0 on the substrate, x = 0, y = 0 the
aperture's lower-left corner. Mask l (0-based) is a plate whose slab spans z = l·P … l·P + base, with its relief
on top, so consecutive relief planes are P apart (P = plate pitch = the design's spacing, measured between the
tops of consecutive bases, exactly as the relief model simulates it). Mask 1 is at the bottom (light travels +z).

Each plate is the mask's height field widened by a flat frame of width ``frame`` (frame top = slab top). Square
pillars of side ``pillar`` stand on the frame centre line between consecutive plates; each reaches ``base/2``
into the slab below and the slab above, and the plates and pillars are united with manifold3d (exact mesh
booleans), so the file holds one body with no internal faces and no overlapping volume.

Support rule (``SPAN_RATIO``): a plate edge between two supports is a beam of the plate's thickness t (its base
slab); neighbouring pillars stand at most ``SPAN_RATIO``·t apart (centre to centre; 25·t = 50 µm for a 2 µm
plate), always at the four frame corners and evenly along each side. This is a conservative rule of thumb for
suspended two-photon-printed polymer bridges, not a measured limit: calibrate it with a test print. The optical
aperture itself cannot carry supports; an aperture wider than ``SPAN_RATIO``·t is reported (thicken the base).
Drainage: every side stays open between neighbouring pillars (gap ≥ one pillar side), so developer reaches and
leaves every gap between plates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from quaton_fab.fab.formats.stl_lattice import StlError, _check_heights
from quaton_fab.fab.formats.stl_mesh import tops_um
from quaton_fab.printing.printer import grid_um, slice_counts
from quaton_fab.validate import length_m

__all__ = ["SPAN_RATIO", "MIN_PILLAR_UM", "SUPPORT_RULE", "StackLayout", "stack_layout", "plan_stack",
           "stack_plate_pitch_m"]

_UM_PER_M = 1e6
#: Largest distance between neighbouring supports, in plate thicknesses (see the module docstring).
SPAN_RATIO = 25.0
#: Smallest pillar side (µm).
MIN_PILLAR_UM = 5.0
SUPPORT_RULE = (
    f"square pillars on the frame centre line at the four corners and evenly along each side, at most "
    f"{SPAN_RATIO:g} × the plate thickness (base slab) apart centre to centre, side max({MIN_PILLAR_UM:g} µm, 10 % of "
    "the aperture), each reaching half a base into the plates below and above; a conservative rule of thumb for "
    "suspended polymer plates, not a measured limit (calibrate with a test print)"
)


@dataclass(frozen=True)
class StackLayout:
    """Where plates and supports go (all µm).

    Attributes:
        plate_floors_um: (L,) z of each plate's bottom. plate_pitch_um: P. base_um: slab thickness t.
        aperture_um: (width x, height y) of the optical aperture. frame_um: frame width. pillar_um: pillar side.
        pillar_xy_um: (K, 2) pillar centres (the same between every pair of plates).
        gap_um: smallest clear gap between neighbouring pillars along a side (the drainage opening).
    """

    plate_floors_um: np.ndarray
    plate_pitch_um: float
    base_um: float
    aperture_um: tuple[float, float]
    frame_um: float
    pillar_um: float
    pillar_xy_um: np.ndarray
    gap_um: float

    @property
    def max_span_um(self) -> float:
        """Largest support spacing the rule allows (µm)."""
        return SPAN_RATIO * self.base_um


def _side_positions_um(start_um: float, stop_um: float, max_span_um: float) -> np.ndarray:
    """Evenly spaced positions from start to stop (both included), neighbours at most ``max_span_um`` apart."""
    intervals = max(1, math.ceil((stop_um - start_um) / max_span_um - 1e-9))
    return start_um + (stop_um - start_um) * np.arange(intervals + 1) / intervals


def stack_layout(
    layers: int, n_rows: int, n_cols: int, pitch_um: float, base_um: float, plate_pitch_um: float,
    tallest_um: float, pillar_um: float | None = None, frame_um: float | None = None,
) -> StackLayout:
    """Plate floors and support positions for ``layers`` plates (see the module docstring for the rule).

    Raises:
        StlError: plates that would overlap, a frame not wider than its pillars, pillars too close for drainage.
    """
    if layers > 1 and plate_pitch_um <= tallest_um:
        raise StlError(
            f"plate pitch {plate_pitch_um:.6g} um must exceed the tallest plate ({tallest_um:.6g} um incl. base)"
        )
    width_um, height_um = n_cols * pitch_um, n_rows * pitch_um
    pillar = max(MIN_PILLAR_UM, 0.1 * max(width_um, height_um)) if pillar_um is None else float(pillar_um)
    frame = 2.0 * pillar if frame_um is None else float(frame_um)
    if frame <= pillar:
        raise StlError(f"frame ({frame:.6g} um) must be wider than the pillars ({pillar:.6g} um)")
    max_span = SPAN_RATIO * base_um
    xs = _side_positions_um(-frame / 2, width_um + frame / 2, max_span)
    ys = _side_positions_um(-frame / 2, height_um + frame / 2, max_span)
    ring = {(float(x), float(y)) for x in xs for y in (ys[0], ys[-1])} | {
        (float(x), float(y)) for y in ys for x in (xs[0], xs[-1])
    }
    centres = np.array(sorted(ring))
    gap = float(min(np.min(np.diff(xs)), np.min(np.diff(ys))) - pillar)
    if gap < pillar:
        raise StlError(
            f"supports {pillar:.6g} um wide every {gap + pillar:.6g} um leave a drainage gap of {gap:.6g} um, less "
            "than one pillar; use thinner pillars or a thicker base"
        )
    return StackLayout(
        plate_floors_um=np.round(np.arange(layers) * plate_pitch_um, 9),
        plate_pitch_um=float(plate_pitch_um),
        base_um=float(base_um),
        aperture_um=(width_um, height_um),
        frame_um=frame,
        pillar_um=pillar,
        pillar_xy_um=centres,
        gap_um=gap,
    )


def plan_stack(
    heights_m: Sequence[np.ndarray],
    pitch_m: float,
    base_m: float,
    plate_pitch_m: float | None = None,
    *,
    z_grid_m: float | None = None,
    pillar_m: float | None = None,
    frame_m: float | None = None,
) -> tuple[list[np.ndarray], StackLayout]:
    """Validate the maps and lay the stack out (shared by the STL and the GWL writers).

    Returns:
        The maps (float64 (R, C) heights above the base, m) and the :class:`StackLayout`.
    """
    if len(heights_m) < 1:
        raise StlError("the stack needs at least one height map")
    maps = [_check_heights(h, f"heights_m[{index}]") for index, h in enumerate(heights_m)]
    if len({m.shape for m in maps}) != 1:
        raise StlError(f"all height maps must have the same shape, got {sorted({m.shape for m in maps})}")
    pitch_um = length_m(pitch_m, "pitch_m", error=StlError) * _UM_PER_M
    base_um = length_m(base_m, "base_m", error=StlError) * _UM_PER_M
    n_rows, n_cols = maps[0].shape
    tallest_um = base_um + max(float(m.max()) for m in maps) * _UM_PER_M
    if plate_pitch_m is None:
        if len(maps) > 1:
            raise StlError("plate_pitch_m is required for a stack of more than one mask")
        plate_pitch_um = round(2 * tallest_um, 9)
    else:
        plate_pitch_um = round(length_m(plate_pitch_m, "plate_pitch_m", error=StlError) * _UM_PER_M, 9)
    if z_grid_m is not None:  # the plates' floors lie on the grid as well (computed from whole slices)
        plate_pitch_um = float(tops_um(np.zeros(1), plate_pitch_um / _UM_PER_M, z_grid_m)[0])
    layout = stack_layout(
        len(maps), n_rows, n_cols, pitch_um, base_um, plate_pitch_um, tallest_um,
        None if pillar_m is None else pillar_m * _UM_PER_M, None if frame_m is None else frame_m * _UM_PER_M,
    )
    return maps, layout


def stack_plate_pitch_m(spacing_m: float, grid_m: float | None) -> tuple[float, str]:
    """Plate pitch of the stack (m) and the reason, in words.

    The design's spacing is measured between the planes where consecutive reliefs start (the top of each base);
    the next plate's base slab lies inside that gap, exactly as the relief model simulates it, so the plates are
    stacked at the spacing itself (snapped to the slicing grid, if any).
    """
    reason = ("plate pitch = the design's spacing: it is measured between the tops of consecutive bases (where "
              "the reliefs start), and the next plate's base slab lies inside the gap, as in the relief model")
    if grid_m is None:
        return float(spacing_m), reason
    pitch_m = float(grid_um(slice_counts(spacing_m, grid_m), grid_m)) * 1e-6
    return pitch_m, reason + f"; a whole number of {grid_m * 1e9:.4g} nm slices"
