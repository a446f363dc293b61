"""Printer profiles: the slicing and hatching grid a two-photon (or grayscale) printer writes on.

One idea: what the printer does to heights. A two-photon printer writes a part as stacked slices of fixed
thickness (the *slicing distance* Δz) and fills each slice with lines spaced by the *hatching distance*. A
printed top therefore lands on a whole number of slices above the substrate; a height between two slices is
rounded by the slicer. Exported heights (base included) are put on this grid so that what is printed is what
was simulated (see ``printing/level_table.py``).

Sources for the built-in profiles (lengths in metres):
- ``2pp-63x-ip-dip``: a DeScribe recipe for the Photonic Professional GT/GT2 with the 63× objective
  (``Slicing.DistanceMax = 0.1`` µm, ``HatchingDistance = 0.1`` µm, galvo scan), as found in the public test data
  of nanodescript (EPFL LMSC). Scan speed and laser power are typical starting values for IP-Dip with this
  objective and must be calibrated with a dose array on the facility's machine.
- ``2pp-25x-ip-n162``: npxpy's default preset for the Quantum X, 25× objective, IP-n162 (slicing 0.8 µm,
  hatching 0.3 µm, writing speed 250 mm/s, power 50 %).
- ``grayscale``: grayscale (2GL / dose-modulated) printing or grayscale lithography: no slicing grid.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from quaton_fab.errors import FabError


class PrinterError(FabError):
    """An unknown printer profile or a slicing/hatching distance that is not a positive length."""


@dataclass(frozen=True)
class PrinterProfile:
    """How a printer slices and fills a part.

    Attributes:
        name: profile name (``2pp-63x-ip-dip`` …).
        description: one line for the fab sheet.
        slicing_distance_m: slice thickness Δz (m); None for a printer without a slicing grid (grayscale).
        hatching_distance_m: spacing of the fill lines within a slice (m); None without hatching.
        scan_speed_m_per_s: writing (scan) speed (m/s), used for the print-time estimate.
        laser_power: recommended laser power as the machine states it (e.g. ``"20 mW"``, ``"50 %"``).
        objective: objective (``63× NA 1.4 oil/dip-in`` …).
        resin: the resin the profile is meant for.
        source: where the numbers come from.
        laser_power_percent: the same power as GWL ``LaserPower`` (% of the power scale at ``PowerScaling 1.0``),
            None where the profile writes no GWL.
    """

    name: str
    description: str
    slicing_distance_m: float | None
    hatching_distance_m: float | None
    scan_speed_m_per_s: float | None
    laser_power: str
    objective: str
    resin: str
    source: str
    laser_power_percent: float | None = None

    def __post_init__(self) -> None:
        for label, value in (("slicing distance", self.slicing_distance_m),
                             ("hatching distance", self.hatching_distance_m),
                             ("scan speed", self.scan_speed_m_per_s)):
            if value is not None and not (math.isfinite(value) and value > 0):
                raise PrinterError(f"{label} of printer profile {self.name!r} must be positive, got {value!r}")

    @property
    def has_grid(self) -> bool:
        """True when the printer writes on a slicing grid (heights must be whole numbers of slices)."""
        return self.slicing_distance_m is not None

    def with_overrides(
        self, *, slicing_distance_m: float | None = None, hatching_distance_m: float | None = None
    ) -> PrinterProfile:
        """This profile with the slicing and/or hatching distance replaced (m); the name records the change."""
        if slicing_distance_m is None and hatching_distance_m is None:
            return self
        fields = asdict(self)
        if slicing_distance_m is not None:
            fields["slicing_distance_m"] = float(slicing_distance_m)
        if hatching_distance_m is not None:
            fields["hatching_distance_m"] = float(hatching_distance_m)
        fields["description"] = self.description + " (slicing/hatching overridden)"
        return PrinterProfile(**fields)

    def to_dict(self) -> dict:
        """JSON-ready description (SI units, plus µm twins for the sheet)."""
        d = asdict(self)
        for key in ("slicing_distance", "hatching_distance"):
            value = getattr(self, f"{key}_m")
            d[f"{key}_um"] = None if value is None else round(value * 1e6, 9)
        return d


PROFILES: dict[str, PrinterProfile] = {
    p.name: p
    for p in (
        PrinterProfile(
            name="2pp-63x-ip-dip",
            description="two-photon printing, 63× objective, IP-Dip (dip-in), galvo scan",
            slicing_distance_m=0.1e-6,
            hatching_distance_m=0.1e-6,
            scan_speed_m_per_s=10e-3,
            laser_power="20 mW (starting value; calibrate with a dose array)",
            objective="63× NA 1.4, dip-in (DiLL)",
            resin="IP-Dip",
            source="DeScribe recipe (Photonic Professional GT/GT2) in nanodescript's public test data; "
                   "scan speed and power: typical starting values",
            laser_power_percent=40.0,  # 20 mW of the GT's 50 mW reference power at PowerScaling 1.0
        ),
        PrinterProfile(
            name="2pp-25x-ip-n162",
            description="two-photon printing, Quantum X, 25× objective, IP-n162",
            slicing_distance_m=0.8e-6,
            hatching_distance_m=0.3e-6,
            scan_speed_m_per_s=0.25,
            laser_power="50 %",
            objective="25× NA 0.8",
            resin="IP-n162",
            source="npxpy default preset (Quantum X, 25×, IP-n162)",
            laser_power_percent=50.0,
        ),
        PrinterProfile(
            name="grayscale",
            description="grayscale printing or lithography: heights set by dose, no slicing grid",
            slicing_distance_m=None,
            hatching_distance_m=None,
            scan_speed_m_per_s=None,
            laser_power="dose table per level (see the level table)",
            objective="n/a",
            resin="any",
            source="no grid: heights are exported exactly",
        ),
    )
}

#: The profile used when none is given: the common two-photon setup for sub-µm optics.
DEFAULT_PROFILE = "2pp-63x-ip-dip"


def get_profile(name: str | None = None) -> PrinterProfile:
    """The built-in profile ``name`` (case-insensitive; None → ``DEFAULT_PROFILE``).

    Raises:
        PrinterError: unknown name (the message lists the known ones).
    """
    key = (name or DEFAULT_PROFILE).strip().lower()
    if key not in PROFILES:
        raise PrinterError(f"unknown printer profile {name!r}; use one of {', '.join(PROFILES)}")
    return PROFILES[key]


#: How exported coordinates relate to the slicing grid (recorded in the fab sheet under ``printer``).
SLICING_CONVENTION = (
    "every exported top (base included) is a whole number k of slices above the substrate, z = k·Δz; "
    "STL vertices are built on an integer lattice (pixel corner, slice count k) and converted once, so each "
    "stored z is the float32 nearest to k·Δz µm (within 1e-7 relative, never on the other side of a slice "
    "boundary); slice at the mid-slice planes z = (k + 0.5)·Δz, which lie Δz/2 from every stored z: slice k "
    "(from kΔz to (k+1)Δz) is filled wherever the part's top is at or above (k+1)·Δz; GWL jobs write slice k's "
    "lines at its mid-slice plane"
)

#: Relative tolerance for a length to count as a whole number of slices (absorbs float rounding only).
GRID_RTOL = 1e-6


def slice_counts(length_m: float | np.ndarray, step_m: float) -> np.ndarray:
    """Nearest whole number of slices of thickness ``step_m`` (m) in ``length_m`` (m, any shape); ties go up.

    Returns int64 of the shape of ``length_m``. The tie rule is robust to float rounding (2.05 µm / 100 nm →
    21 slices, not 20).
    """
    ratio = np.asarray(length_m, dtype=np.float64) / float(step_m)
    return np.floor(ratio + 0.5 + GRID_RTOL).astype(np.int64)


def on_grid(length_m: float | np.ndarray, step_m: float) -> np.ndarray:
    """True where ``length_m`` (m) is a whole number of ``step_m`` (m) slices up to float rounding."""
    ratio = np.asarray(length_m, dtype=np.float64) / float(step_m)
    return np.abs(ratio - np.round(ratio)) <= GRID_RTOL * np.maximum(1.0, np.abs(ratio))


def grid_um(k: int | np.ndarray, step_m: float) -> np.ndarray:
    """k·Δz in µm as float64, computed once from the integer slice count (exact decimal where Δz is whole nm).

    With Δz a whole number of nanometres, ``k·Δz_nm / 1000`` is the float64 nearest to the decimal value, so
    e.g. 24 slices of 100 nm give 2.4 (not 2.4000000000000004) and its float32 is the float32 nearest to 2.4.
    """
    k = np.asarray(k, dtype=np.int64)
    step_nm = float(step_m) * 1e9
    if abs(step_nm - round(step_nm)) <= 1e-9 * max(1.0, step_nm):
        return (k * int(round(step_nm))).astype(np.float64) / 1000.0
    return k.astype(np.float64) * (float(step_m) * 1e6)
