"""Refractive indices of printable materials and of the surrounding medium.

One idea: turn a material or medium name into a refractive index at a vacuum wavelength, with the source of
every coefficient set stated. Dispersion formulas take the wavelength in micrometres internally (that is the
unit every published coefficient set uses); the public API takes and returns SI (metres).

Models (``Material.model``) and the layout of ``Material.coefficients`` (λ in µm):

- ``"sellmeier"``: ``(B1, C1, B2, C2, ...)``, n² = 1 + Σ B_i λ² / (λ² − C_i), C_i in µm².
- ``"cauchy"``: ``(A, B, C, ...)``, n = A + B/λ² + C/λ⁴ + ..., B in µm², C in µm⁴, ...
- ``"polynomial"``: ``(c0, c1, p1, c2, p2, ...)``, n² = c0 + Σ c_i λ^p_i (refractiveindex.info "formula 3").
- ``"constant"``: ``(n,)``, the same index at every wavelength.
"""

from __future__ import annotations

import math

from quaton_fab.printing.material_model import (
    MODELS,
    Material,
    MaterialError,
    _finite_or_none,
    _optical_wavelength,
    normalize_name,
)

__all__ = [
    "MODELS",
    "MATERIALS",
    "MEDIA",
    "Material",
    "MaterialError",
    "REFERENCE_WAVELENGTH_M",
    "WATER_NOMINAL_INDEX",
    "get_material",
    "get_medium",
    "material_table",
    "medium_table",
    "normalize_name",
    "parse_medium",
]


#: Wavelength used by :func:`material_table` when none is given: the sodium D line (the conventional n_D).
REFERENCE_WAVELENGTH_M: float = 589.3e-9

#: Index returned for water by :func:`parse_medium` when no wavelength is given (the conventional n_D value).
WATER_NOMINAL_INDEX: float = 1.333


_VIS_NIR = (0.4e-6, 1.6e-6)  # range given to nominal resin indices: visible to telecom, not THz

MATERIALS: tuple[Material, ...] = (
    Material(
        name="IP-Dip",
        model="sellmeier",
        coefficients=(1.2899, 1.1283e-2, 6.0569e-2, 7.7762e-2, 1.1844e5, 2.5802e7),
        lambda_min_m=0.4e-6,
        lambda_max_m=1.6e-6,
        source=(
            "Schmid et al., Opt. Mater. Express 9, 4564 (2019), Table 2, IP-Dip after two-photon polymerization "
            "(coefficients from a second-hand transcription; gives n = 1.5575/1.5494/1.5430/1.5322 at "
            "532/633/780/1550 nm; range from memory)"
        ),
        aliases=("ipdip", "nanoscribeipdip"),
    ),
    Material(
        name="fused silica",
        model="sellmeier",
        coefficients=(0.6961663, 0.0684043**2, 0.4079426, 0.1162414**2, 0.8974794, 9.896161**2),
        lambda_min_m=0.21e-6,
        lambda_max_m=3.71e-6,
        source="Malitson, J. Opt. Soc. Am. 55, 1205 (1965), Sellmeier for fused silica (20 °C)",
        aliases=("fusedsilica", "silica", "sio2", "fs", "fusi", "quartzglass"),
    ),
    Material(
        name="PMMA",
        model="polynomial",
        coefficients=(2.1778, 6.1209e-3, 2, -1.5004e-3, 4, 2.3678e-2, -2, -4.2137e-3, -4, 7.3417e-4, -6,
                      -4.5042e-5, -8),
        lambda_min_m=0.42e-6,
        lambda_max_m=1.62e-6,
        source=(
            "Beadie et al., Appl. Opt. 54, F139 (2015), PMMA, n² polynomial as given by refractiveindex.info "
            "organic/(C5H8O2)n/Beadie.yml (reproduces 1.4953/1.4908/1.4871/1.4809 at 532/633/780/1550 nm)"
        ),
        aliases=("polymethylmethacrylate", "acrylic", "plexiglas"),
    ),
    Material(
        name="IP-S",
        model="constant",
        coefficients=(1.515,),
        lambda_min_m=_VIS_NIR[0],
        lambda_max_m=_VIS_NIR[1],
        source="nominal visible index of polymerized IP-S (vendor/typical value, no dispersion); measure it",
        nominal=True,
        aliases=("ips",),
    ),
    Material(
        name="IP-L",
        model="constant",
        coefficients=(1.52,),
        lambda_min_m=_VIS_NIR[0],
        lambda_max_m=_VIS_NIR[1],
        source="nominal visible index of polymerized IP-L (vendor/typical value, no dispersion); measure it",
        nominal=True,
        aliases=("ipl", "ipl780"),
    ),
    Material(
        name="IP-n162",
        model="constant",
        coefficients=(1.62,),
        lambda_min_m=_VIS_NIR[0],
        lambda_max_m=_VIS_NIR[1],
        source="nominal index of IP-n162 (the resin name states it; no dispersion); measure it",
        nominal=True,
        aliases=("ipn162",),
    ),
    Material(
        name="OrmoComp",
        model="constant",
        coefficients=(1.52,),
        lambda_min_m=_VIS_NIR[0],
        lambda_max_m=_VIS_NIR[1],
        source="nominal index of cured OrmoComp near 589 nm (vendor value, no dispersion); measure it",
        nominal=True,
        aliases=("ormocomp",),
    ),
    Material(
        name="SZ2080",
        model="constant",
        coefficients=(1.50,),
        lambda_min_m=_VIS_NIR[0],
        lambda_max_m=_VIS_NIR[1],
        source="nominal index of polymerized SZ2080 near 633 nm (typical value, no dispersion); measure it",
        nominal=True,
        aliases=("sz2080",),
    ),
)

MEDIA: tuple[Material, ...] = (
    Material(
        name="air",
        model="constant",
        coefficients=(1.0,),
        lambda_min_m=0.0,
        lambda_max_m=math.inf,
        source="air taken as 1.0 (true index ≈ 1.0003 in the visible; the difference is below height tolerances)",
        aliases=("vacuum",),
    ),
    Material(
        name="water",
        model="sellmeier",
        coefficients=(5.684027565e-1, 5.101829712e-3, 1.726177391e-1, 1.821153936e-2,
                      2.086189578e-2, 2.620722293e-2, 1.130748688e-1, 1.069792721e1),
        lambda_min_m=0.182e-6,
        lambda_max_m=1.129e-6,
        source="Daimon & Masumura, Appl. Opt. 46, 3811 (2007), distilled water at 20 °C, 4-term Sellmeier",
        aliases=("h2o",),
    ),
    Material(
        name="immersion oil",
        model="constant",
        coefficients=(1.518,),
        lambda_min_m=0.4e-6,
        lambda_max_m=1.0e-6,
        source="nominal n_e/n_D of standard microscope immersion oil (ISO 8036 type), no dispersion",
        nominal=True,
        aliases=("oil", "immersionoil"),
    ),
)


def _lookup(table: tuple[Material, ...]) -> dict[str, Material]:
    """Map every normalised name and alias of ``table`` to its entry."""
    out: dict[str, Material] = {}
    for m in table:
        for key in (m.name, *m.aliases):
            out[normalize_name(key)] = m
    return out


def _parse_index(text: str, what: str) -> float | None:
    """Parse ``"1.52"`` or ``"n=1.52"`` into an index ≥ 1; None if ``text`` is not of that form."""
    body = text.strip()
    if body.lower().startswith("n="):
        body = body[2:].strip()
    elif not (body[:1].isdigit() or body[:1] in "+-."):
        return None
    try:
        n = float(body)
    except ValueError:
        raise MaterialError(f"{what} index {text!r} is not a number") from None
    if not (math.isfinite(n) and n >= 1.0):
        raise MaterialError(f"{what} index must be a finite number ≥ 1, got {text!r}")
    return n


def _custom(n: float) -> Material:
    """A constant-index material from a user-given index."""
    return Material(
        name=f"n={n:g}",
        model="constant",
        coefficients=(n,),
        lambda_min_m=0.0,
        lambda_max_m=math.inf,
        source="user-given constant index",
    )


def get_material(spec: str) -> Material:
    """Material from a name or alias (case-, dash- and space-insensitive) or a custom ``"n=1.52"`` index.

    Raises:
        MaterialError: unknown name (the message lists the known names) or a bad custom index.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise MaterialError(f"material must be a non-empty name, got {spec!r}")
    n = _parse_index(spec, "material")
    if n is not None:
        return _custom(n)
    found = _lookup(MATERIALS).get(normalize_name(spec))
    if found is None:
        known = ", ".join(m.name for m in MATERIALS)
        raise MaterialError(f"unknown material {spec!r}; known: {known}, or n=<index>")
    return found


def get_medium(spec: str) -> Material:
    """Medium from a name (``air``, ``water``, ``oil``/``immersion-oil``) or a plain index ≥ 1 (or ``n=1.33``)."""
    if not isinstance(spec, str) or not spec.strip():
        raise MaterialError(f"medium must be a name or an index, got {spec!r}")
    n = _parse_index(spec, "medium")
    if n is not None:
        return _custom(n)
    found = _lookup(MEDIA).get(normalize_name(spec))
    if found is None:
        known = ", ".join(m.name for m in MEDIA)
        raise MaterialError(f"unknown medium {spec!r}; known: {known}, or an index ≥ 1 such as 1.33")
    return found


def parse_medium(spec: str | float, wavelength_m: float | None = None) -> tuple[str, float]:
    """Name and refractive index of the medium around the masks.

    ``spec`` is a medium name or an index ≥ 1 (number or string). With ``wavelength_m`` (m) a dispersive
    medium (water) is evaluated there; without it water is given its conventional index
    :data:`WATER_NOMINAL_INDEX` = 1.333.
    """
    if isinstance(spec, (int, float)) and not isinstance(spec, bool):
        spec = repr(float(spec))
    medium = get_medium(spec)
    if wavelength_m is None:
        if medium.model == "constant":
            return medium.name, medium.coefficients[0]
        if medium.name == "water":
            return medium.name, WATER_NOMINAL_INDEX
        return medium.name, medium.index(REFERENCE_WAVELENGTH_M)
    return medium.name, medium.index(wavelength_m)


def _range_text(m: Material) -> str:
    """Validity range for display, e.g. ``"400–1600 nm"`` or ``"any"``."""
    if m.lambda_min_m == 0.0 and not math.isfinite(m.lambda_max_m):
        return "any"
    return f"{m.lambda_min_m * 1e9:.0f}–{m.lambda_max_m * 1e9:.0f} nm"


def _row(m: Material, wavelength_m: float) -> dict:
    """One table row: name, model, n at ``wavelength_m`` (None where the formula gives no real index),
    validity range (m, and as text), source, nominal."""
    try:
        n: float | None = m.index(wavelength_m)
    except MaterialError:
        n = None
    return {
        "name": m.name,
        "model": m.model,
        "wavelength_m": wavelength_m,
        "n": n,
        "in_range": m.in_range(wavelength_m),
        "lambda_min_m": m.lambda_min_m,
        "lambda_max_m": _finite_or_none(m.lambda_max_m),
        "range": _range_text(m),
        "source": m.source,
        "nominal": m.nominal,
        "aliases": list(m.aliases),
    }


def material_table(wavelength_m: float | None = None) -> list[dict]:
    """Rows describing every built-in material, with n at ``wavelength_m`` (m; default: 589.3 nm, n_D)."""
    lam_m = REFERENCE_WAVELENGTH_M if wavelength_m is None else _optical_wavelength(wavelength_m)
    return [_row(m, lam_m) for m in MATERIALS]


def medium_table(wavelength_m: float | None = None) -> list[dict]:
    """Rows describing every built-in medium, with n at ``wavelength_m`` (m; default: 589.3 nm, n_D)."""
    lam_m = REFERENCE_WAVELENGTH_M if wavelength_m is None else _optical_wavelength(wavelength_m)
    return [_row(m, lam_m) for m in MEDIA]
