"""Phase levels ↔ relief heights for a transmissive phase mask.

One idea: the level table. A level of phase φ_k (rad) is printed as a step of height

    h_k = φ_k · λ0 / (2π (n_mat(λ0) − n_med))            (above the base slab; DESIGN.md §2)

With a printer z-step Δz the heights are snapped to the nearest multiple of Δz (ties go up); the snapped
phases φ'_k = 2π (n_mat − n_med) h'_k / λ0 are then the real levels of the printed part, and
``printable_phases`` hands them back so training can use the fabrication-aware level set.

Conventions: heights are measured from the top of the base slab (level 0 of a uniform level set sits at 0);
the base slab of thickness ``base_m`` lies under every pixel and only adds a global piston phase.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from quaton_fab.errors import FabError
from quaton_fab.printing.materials import Material, get_material
from quaton_fab.printing.printer import slice_counts
from quaton_fab.optics.phase_height import height_2pi_m, height_of_phase, index_contrast, phase_of_height
from quaton_fab.optics.relief import Relief
from quaton_fab.validate import length_m

logger = logging.getLogger(__name__)


#: Tallest relief accepted (m): beyond any two-photon, grayscale-lithography or etching process.
MAX_RELIEF_M = 1e-3


class HeightError(FabError):
    """A level set, material/medium pair, base or z-step that cannot be turned into printable heights."""


def _frozen(a: np.ndarray) -> np.ndarray:
    """A read-only float64/int64 copy of ``a``."""
    out = np.array(a, copy=True)
    out.setflags(write=False)
    return out


#: Heights read back from an exported file must match the level table to this (m), unless the format's own
#: quantisation (a height-map grey step) is coarser.
HEIGHT_TOLERANCE_M = 1e-9

_ARRAY_FIELDS = ("k", "phase_rad", "height_m", "snapped_height_m", "snapped_phase_rad", "phase_error_rad")


@dataclass(frozen=True, eq=False)
class LevelTable:
    """The printable level table of one design (n levels).

    Attributes (arrays have shape (n,), lengths in metres, phases in radians):
        k: level index 0…n−1 (int64).
        phase_rad: the design's level phases φ_k.
        height_m: ideal heights h_k above the base.
        snapped_height_m: heights after snapping to ``z_step_m`` (equal to ``height_m`` without a z-step).
        snapped_phase_rad: phases the snapped heights give (the real levels of the printed part).
        phase_error_rad: snapped_phase_rad − phase_rad (signed).
        material: material name; n_material: its index at ``wavelength_m``; n_medium: index of the medium.
        wavelength_m: design (vacuum) wavelength λ0. base_m: base slab thickness. z_step_m: printer z-step or None.
        material_source: citation of the index used; material_nominal: True if the index is a nominal value.
    """

    k: np.ndarray
    phase_rad: np.ndarray
    height_m: np.ndarray
    snapped_height_m: np.ndarray
    snapped_phase_rad: np.ndarray
    phase_error_rad: np.ndarray
    material: str
    n_material: float
    n_medium: float
    wavelength_m: float
    base_m: float = 0.0
    z_step_m: float | None = None
    material_source: str = ""
    material_nominal: bool = False

    def __post_init__(self) -> None:
        for name in _ARRAY_FIELDS:
            dtype = np.int64 if name == "k" else np.float64
            object.__setattr__(self, name, _frozen(np.asarray(getattr(self, name), dtype=dtype)))
        n = self.k.shape
        if len(n) != 1 or any(getattr(self, a).shape != n for a in _ARRAY_FIELDS):
            raise HeightError(f"level table arrays must all have shape (n,), got k {self.k.shape}")

    @property
    def n(self) -> int:
        """Number of levels."""
        return int(self.k.size)

    @property
    def delta_n(self) -> float:
        """Index contrast n_material − n_medium."""
        return index_contrast(self.n_material, self.n_medium)

    @property
    def height_2pi_m(self) -> float:
        """Height of a full 2π phase step, λ0 / (n_mat − n_med) (m)."""
        return height_2pi_m(self.wavelength_m, self.delta_n)

    @property
    def total_height_m(self) -> np.ndarray:
        """Printed height of each level above the substrate: base + snapped height (m), shape (n,)."""
        return self.base_m + self.snapped_height_m

    @property
    def z_steps(self) -> np.ndarray | None:
        """Snapped heights in units of the z-step (int64, shape (n,)); None without a z-step."""
        if self.z_step_m is None:
            return None
        return slice_counts(self.snapped_height_m, self.z_step_m)

    def phases_of_heights(self, height_m: np.ndarray) -> np.ndarray:
        """Phase delay (rad, same shape) of relief heights above the base (m) in this table's material model."""
        return phase_of_height(height_m, self.wavelength_m, self.delta_n)

    @property
    def max_abs_phase_error_rad(self) -> float:
        """Largest |phase error| over the levels (rad)."""
        return float(np.max(np.abs(self.phase_error_rad))) if self.n else 0.0

    def to_dict(self) -> dict:
        """JSON-ready description (lists of floats, SI units) including the derived quantities."""
        steps = self.z_steps
        return {
            "k": self.k.tolist(),
            "phase_rad": self.phase_rad.tolist(),
            "height_m": self.height_m.tolist(),
            "snapped_height_m": self.snapped_height_m.tolist(),
            "snapped_phase_rad": self.snapped_phase_rad.tolist(),
            "phase_error_rad": self.phase_error_rad.tolist(),
            "material": self.material,
            "n_material": self.n_material,
            "n_medium": self.n_medium,
            "wavelength_m": self.wavelength_m,
            "base_m": self.base_m,
            "z_step_m": self.z_step_m,
            "material_source": self.material_source,
            "material_nominal": self.material_nominal,
            "height_2pi_m": self.height_2pi_m,
            "total_height_m": self.total_height_m.tolist(),
            "z_steps": None if steps is None else steps.tolist(),
            "max_abs_phase_error_rad": self.max_abs_phase_error_rad,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "LevelTable":
        """Rebuild a table written by :meth:`to_dict` (derived keys are ignored)."""
        try:
            return cls(
                k=np.asarray(d["k"]), phase_rad=np.asarray(d["phase_rad"]), height_m=np.asarray(d["height_m"]),
                snapped_height_m=np.asarray(d["snapped_height_m"]),
                snapped_phase_rad=np.asarray(d["snapped_phase_rad"]),
                phase_error_rad=np.asarray(d["phase_error_rad"]),
                material=str(d["material"]), n_material=float(d["n_material"]), n_medium=float(d["n_medium"]),
                wavelength_m=float(d["wavelength_m"]), base_m=float(d.get("base_m", 0.0)),
                z_step_m=None if d.get("z_step_m") is None else float(d["z_step_m"]),
                material_source=str(d.get("material_source", "")),
                material_nominal=bool(d.get("material_nominal", False)),
            )
        except KeyError as exc:
            raise HeightError(f"level table is missing the key {exc.args[0]!r}") from None


def _as_material(material: Material | str) -> Material:
    """Accept a :class:`Material` or a spec string for :func:`get_material`."""
    return material if isinstance(material, Material) else get_material(material)


def _check_phases(level_phases_rad: np.ndarray) -> np.ndarray:
    """Validate level phases: 1-D, non-empty, finite, ≥ 0, all distinct. Returns float64 (n,)."""
    phases = np.asarray(level_phases_rad, dtype=np.float64)
    if phases.ndim != 1 or phases.size == 0:
        raise HeightError(f"level phases must be a non-empty 1-D list, got shape {phases.shape}")
    bad = np.flatnonzero(~np.isfinite(phases) | (phases < 0))
    if bad.size:
        raise HeightError(f"level {bad[0]} has phase {phases[bad[0]]!r} rad; phases must be finite and ≥ 0")
    order = np.argsort(phases, kind="stable")
    dup = np.flatnonzero(np.diff(phases[order]) == 0)
    if dup.size:
        a, b = sorted((int(order[dup[0]]), int(order[dup[0] + 1])))
        raise HeightError(f"levels {a} and {b} have the same phase {phases[a]!r} rad")
    return phases


def _contrast(mat: Material, wavelength_m: float, n_medium: float) -> tuple[float, float]:
    """(n_material at λ0, n_material − n_medium), refusing a contrast ≤ 0."""
    n_med = float(n_medium)
    if not (math.isfinite(n_med) and n_med >= 1.0):
        raise HeightError(f"medium index must be a finite number ≥ 1, got {n_medium!r}")
    n_mat = mat.index(wavelength_m)
    if n_mat <= n_med:
        raise HeightError(
            f"material {mat.name} (n = {n_mat:.4f} at {wavelength_m * 1e9:.4g} nm) is not above the medium "
            f"index {n_med:.4f}: no positive height gives a phase delay"
        )
    return n_mat, index_contrast(n_mat, n_med)


def snap_to_step(height_m: np.ndarray, z_step_m: float) -> np.ndarray:
    """Round heights (m, any shape) to the nearest multiple of ``z_step_m`` (m), ties rounding up.

    The tie rule is robust to float rounding (:func:`~quaton_fab.printing.printer.slice_counts`).
    """
    return slice_counts(height_m, z_step_m) * float(z_step_m)


def _check_merges(snapped_m: np.ndarray, z_step_m: float) -> None:
    """Refuse a snapping that gives two levels the same height (names the first such pair)."""
    steps = slice_counts(snapped_m, z_step_m)
    order = np.argsort(steps, kind="stable")
    same = np.flatnonzero(np.diff(steps[order]) == 0)
    if same.size:
        a, b = sorted((int(order[same[0]]), int(order[same[0] + 1])))
        raise HeightError(
            f"z-step {z_step_m * 1e6:.4g} µm merges levels {a} and {b} (both snap to "
            f"{snapped_m[a] * 1e6:.4g} µm); use a finer z-step or fewer levels"
        )


def level_table(
    level_phases_rad: np.ndarray,
    material: Material | str,
    wavelength_m: float,
    n_medium: float = 1.0,
    base_m: float = 0.0,
    z_step_m: float | None = None,
) -> LevelTable:
    """Heights of the n phase levels (see the module docstring for the formula and conventions).

    Args:
        level_phases_rad: (n,) level phases φ_k ≥ 0 (rad), all distinct.
        material: a :class:`Material` or a name for :func:`get_material`.
        wavelength_m: design vacuum wavelength λ0 (m).
        n_medium: index of the medium around the mask (≥ 1, below the material's).
        base_m: base slab thickness (m, ≥ 0).
        z_step_m: printer z-step Δz (m, > 0) or None for no snapping.

    Raises:
        HeightError: bad phases, n_mat ≤ n_med, negative/NaN base or z-step, or a snapping that merges levels.
    """
    mat = _as_material(material)
    phases = _check_phases(level_phases_rad)
    base = length_m(base_m, "base", allow_zero=True, optional=True, error=HeightError)
    step = length_m(z_step_m, "z-step", allow_zero=False, optional=True, error=HeightError)
    n_mat, dn = _contrast(mat, wavelength_m, n_medium)
    lam_m = float(wavelength_m)
    heights = height_of_phase(phases, lam_m, dn)
    if heights.size and float(heights.max()) > MAX_RELIEF_M:
        raise HeightError(
            f"{mat.name}: index contrast n − n_medium = {dn:.3g} makes the tallest level {float(heights.max()):.3g} m "
            f"high (a 2π step needs λ0/Δn = {height_2pi_m(lam_m, dn):.3g} m); no printer builds reliefs above "
            f"{MAX_RELIEF_M * 1e3:g} mm: choose a material with a larger contrast to the medium"
        )
    if step is None:
        snapped = heights.copy()
    else:
        snapped = snap_to_step(heights, step)
        _check_merges(snapped, step)
    snapped_phase = phase_of_height(snapped, lam_m, dn)
    error = snapped_phase - phases
    if step is not None and np.any(np.abs(error) > 1e-9):
        logger.info(
            "level heights are not multiples of the %.4g µm z-step; snapping gives up to %.4g rad phase error",
            step * 1e6, float(np.max(np.abs(error))),
        )
    return LevelTable(
        k=np.arange(phases.size), phase_rad=phases, height_m=heights, snapped_height_m=snapped,
        snapped_phase_rad=snapped_phase, phase_error_rad=error, material=mat.name, n_material=n_mat,
        n_medium=float(n_medium), wavelength_m=lam_m, base_m=base, z_step_m=step,
        material_source=mat.source, material_nominal=mat.nominal,
    )


def relief_from_table(
    table: LevelTable,
    *,
    periodic: bool = True,
    max_slice_m: float | None = None,
    orientation: str = "base-first",
    continuous: bool = False,
) -> Relief:
    """The printed relief of a level table: level phases → snapped heights, its material index and base slab.

    ``periodic``: whether the level set lives on the circle (see :class:`~quaton_fab.optics.relief.Relief`).
    """
    return Relief(
        n_material=float(table.n_material),
        level_phases_rad=tuple(float(p) for p in table.phase_rad),
        level_heights_m=tuple(float(h) for h in table.snapped_height_m),
        periodic=periodic,
        base_m=float(table.base_m),
        max_slice_m=max_slice_m,
        orientation=orientation,
        continuous=continuous,
    )


def printable_phases(
    level_phases_rad: np.ndarray,
    material: Material | str,
    wavelength_m: float,
    n_medium: float = 1.0,
    z_step_m: float | None = None,
) -> np.ndarray:
    """The phases (rad, (n,)) the levels really get once their heights are snapped to ``z_step_m``.

    Feed these to training as an explicit level set so the trained levels are the printed ones. They are not
    wrapped: a level whose height rounds up past a full 2π step keeps a phase above 2π.
    """
    table = level_table(level_phases_rad, material, wavelength_m, n_medium=n_medium, z_step_m=z_step_m)
    return np.array(table.snapped_phase_rad)


def heights_to_phases(
    height_m: np.ndarray,
    material: Material | str,
    wavelength_m: float,
    n_medium: float = 1.0,
) -> np.ndarray:
    """Phase delay (rad, same shape) of relief heights ``height_m`` (m, above the base): 2π Δn h / λ0."""
    mat = _as_material(material)
    _, dn = _contrast(mat, wavelength_m, n_medium)
    return phase_of_height(height_m, wavelength_m, dn)


def nearest_levels(height_m: np.ndarray, level_height_m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of the nearest level height for every height, and the distance to it (m).

    Args:
        height_m: heights (m, any shape). level_height_m: (n,) level heights (m).

    Returns:
        ``(index int64, distance float64)``, both of the shape of ``height_m`` (distance NaN for NaN heights).
        Uses a sorted search, so memory stays at the size of ``height_m`` whatever n is.
    """
    h = np.asarray(height_m, dtype=np.float64)
    levels = np.asarray(level_height_m, dtype=np.float64)
    order = np.argsort(levels, kind="stable")
    sorted_levels = levels[order]
    if levels.size == 1:
        nearest = np.zeros(h.shape, dtype=np.int64)
    else:
        hi = np.clip(np.searchsorted(sorted_levels, h), 1, levels.size - 1)
        lo = hi - 1
        nearest = np.where(np.abs(sorted_levels[hi] - h) < np.abs(h - sorted_levels[lo]), hi, lo)
    return order[nearest].astype(np.int64), np.abs(h - sorted_levels[nearest])


def heights_to_levels(height_m: np.ndarray, table: LevelTable, tol_m: float = 1e-9) -> np.ndarray:
    """Level index (int64, same shape) of each height (m, above the base), matched to the snapped heights.

    Raises:
        HeightError: a height that is NaN or farther than ``tol_m`` from every level (names the first one).
    """
    h = np.asarray(height_m, dtype=np.float64)
    tol = length_m(tol_m, "tolerance", allow_zero=True, optional=True, error=HeightError)
    levels = np.asarray(table.snapped_height_m, dtype=np.float64)
    index, dist = nearest_levels(h, levels)
    bad = ~(dist <= tol)  # also catches NaN
    if np.any(bad):
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        lvl = int(index[idx])
        raise HeightError(
            f"height {h[idx] * 1e6:.6g} µm at {idx} is {dist[idx] * 1e9:.4g} nm from the nearest level "
            f"(level {lvl} at {levels[lvl] * 1e6:.6g} µm); tolerance {tol * 1e9:.4g} nm"
        )
    return index
