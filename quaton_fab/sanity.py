"""Physical plausibility of a geometry: refuse what cannot work, warn about what probably will not.

These are not numerical checks (those live with each value) but physics: a "wavelength" of 780 m, neurons a
million times smaller than the wavelength, or masks so far apart that almost no light of one reaches the next.

Connectivity between two planes a distance z apart: a neuron of pitch p diffracts into an angle of about λ/p
(λ: wavelength in the medium), so its light covers a width w = z·λ/p on the next plane. The fraction of it that
lands on the next aperture of width N·p is about F² with ``F = N·p² / (λ·z)`` (a Fresnel number of the aperture
measured in neuron-sized zones). F < 0.01 means less than 1e-4 of the light reaches the next mask: refused.
F < 0.1 (less than 1 %) is warned about. Conversely z < p²/λ (w < p) means neighbouring neurons barely
exchange light: warned about.
"""

from __future__ import annotations
from quaton_fab.units import format_length

__all__ = ["MIN_WAVELENGTH_M", "MAX_WAVELENGTH_M", "geometry_problems"]

#: Optical wavelengths quaton-fab accepts (deep UV … far infrared).
MIN_WAVELENGTH_M = 100e-9
MAX_WAVELENGTH_M = 1e-3
#: Smallest pitch accepted, as a fraction of the wavelength in the medium.
MIN_PITCH_PER_WAVELENGTH = 0.1
REFUSE_CONNECTIVITY = 0.01
WARN_CONNECTIVITY = 0.1


def _len(value_m: float) -> str:

    return format_length(value_m)


def geometry_problems(
    *, wavelength_m: float, pitch_m: float, neurons: int, distances_m: dict[str, float], n_medium: float = 1.0
) -> tuple[list[str], list[str]]:
    """(refusals, warnings) for a geometry; each a one-line message naming the field (``wavelength_m`` …).

    Args:
        distances_m: field name → distance (m), e.g. ``{"spacing_m": 30e-6, "d_in_m": 30e-6}``; zero is skipped.
    """
    refusals: list[str] = []
    warnings: list[str] = []
    if not MIN_WAVELENGTH_M <= wavelength_m <= MAX_WAVELENGTH_M:
        refusals.append(
            f"wavelength_m = {wavelength_m:g} m is not an optical wavelength ({_len(MIN_WAVELENGTH_M)} … "
            f"{_len(MAX_WAVELENGTH_M)}); a plain number is metres: write e.g. 780nm"
        )
        return refusals, warnings
    lam_m = wavelength_m / n_medium
    if pitch_m < MIN_PITCH_PER_WAVELENGTH * lam_m:
        refusals.append(
            f"pitch_m = {_len(pitch_m)} is below λ/10 = {_len(MIN_PITCH_PER_WAVELENGTH * lam_m)} (λ in the medium): "
            "detail finer than λ/2 only feeds evanescent waves, so such neurons cannot shape the light"
        )
        return refusals, warnings
    if pitch_m < 0.5 * lam_m * 0.999:
        warnings.append(
            f"pitch {_len(pitch_m)} is below λ/2 = {_len(0.5 * lam_m)}: part of each mask's spectrum is evanescent "
            "and does not propagate"
        )
    for name, z_m in distances_m.items():
        if z_m is None or z_m <= 0:
            continue
        connectivity = neurons * pitch_m**2 / (lam_m * z_m)
        spread = z_m * lam_m / pitch_m
        reason = (f"a neuron's light spreads over z·λ/p = {_len(spread)} there, while the aperture is "
                  f"{_len(neurons * pitch_m)} wide (N·p²/(λz) = {connectivity:.2g})")
        if connectivity < REFUSE_CONNECTIVITY:
            refusals.append(f"{name} = {_len(z_m)} is far too long: {reason}; less than 1e-4 of the light "
                            "reaches the next plane")
        elif connectivity < WARN_CONNECTIVITY:
            warnings.append(f"{name} = {_len(z_m)} is long: {reason}; less than 1 % of the light reaches the "
                            "next plane")
        elif spread < pitch_m and name == "spacing_m":
            warnings.append(f"{name} = {_len(z_m)} is short: a neuron's light spreads over only {_len(spread)} "
                            f"< pitch {_len(pitch_m)}, so neighbouring neurons barely interact")
    return refusals, warnings
