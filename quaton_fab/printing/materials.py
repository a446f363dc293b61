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

import logging
import math
from dataclasses import dataclass
from quaton_fab.errors import FabError
from quaton_fab.sanity import MAX_WAVELENGTH_M, MIN_WAVELENGTH_M

logger = logging.getLogger(__name__)

MODELS: tuple[str, ...] = ("sellmeier", "cauchy", "polynomial", "constant")

#: Wavelength used by :func:`material_table` when none is given: the sodium D line (the conventional n_D).
REFERENCE_WAVELENGTH_M: float = 589.3e-9

#: Index returned for water by :func:`parse_medium` when no wavelength is given (the conventional n_D value).
WATER_NOMINAL_INDEX: float = 1.333


class MaterialError(FabError):
    """A material or medium spec, or a wavelength, that cannot be turned into a refractive index."""


@dataclass(frozen=True)
class Material:
    """An optical material with a dispersion model.

    Attributes:
        name: display name, e.g. ``"IP-Dip"``.
        model: one of :data:`MODELS`.
        coefficients: the model's coefficients, layout in the module docstring (λ in µm).
        lambda_min_m, lambda_max_m: wavelength range (m, vacuum) over which the coefficients were fitted.
        source: citation of the coefficient set (and how it was obtained).
        nominal: True when the index is a vendor/typical value, not a measured dispersion: measure it.
        aliases: extra lookup names (normalised by :func:`normalize_name`).
    """

    name: str
    model: str
    coefficients: tuple[float, ...]
    lambda_min_m: float
    lambda_max_m: float
    source: str
    nominal: bool = False
    aliases: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise MaterialError(f"material {self.name!r}: unknown model {self.model!r} (expected one of {MODELS})")
        c = self.coefficients
        counts_ok = {
            "sellmeier": len(c) >= 2 and len(c) % 2 == 0,
            "cauchy": len(c) >= 1,
            "polynomial": len(c) >= 1 and len(c) % 2 == 1,
            "constant": len(c) == 1,
        }[self.model]
        if not counts_ok:
            raise MaterialError(f"material {self.name!r}: {len(c)} coefficients do not fit the {self.model} model")
        if not all(math.isfinite(x) for x in c):
            raise MaterialError(f"material {self.name!r}: non-finite coefficient in {c}")
        if not (0.0 <= self.lambda_min_m < self.lambda_max_m):
            raise MaterialError(
                f"material {self.name!r}: bad validity range {self.lambda_min_m!r}..{self.lambda_max_m!r} m"
            )

    def in_range(self, wavelength_m: float) -> bool:
        """True if ``wavelength_m`` (m, vacuum) lies inside the range the coefficients were fitted over."""
        return self.lambda_min_m <= float(wavelength_m) <= self.lambda_max_m

    def index(self, wavelength_m: float) -> float:
        """Refractive index n at the vacuum wavelength ``wavelength_m`` (m).

        Outside the validity range the formula is still evaluated (extrapolated) and an info message is
        logged; callers that must show it to the user check :meth:`in_range` themselves (export warns, the
        material table marks the row).
        """
        lam_m = _check_wavelength(wavelength_m)
        if not self.in_range(lam_m):
            logger.info(
                "%s: wavelength %.4g nm is outside the validity range %.4g–%.4g nm of %s; extrapolating",
                self.name, lam_m * 1e9, self.lambda_min_m * 1e9, self.lambda_max_m * 1e9, self.source,
            )
        n = _evaluate(self.model, self.coefficients, lam_m * 1e6)
        if not (math.isfinite(n) and n > 0.0):
            raise MaterialError(f"{self.name}: the {self.model} formula gives no real index at {lam_m * 1e9:.4g} nm")
        return n

    def to_dict(self) -> dict:
        """JSON description (all lengths in metres)."""
        return {
            "name": self.name,
            "model": self.model,
            "coefficients": list(self.coefficients),
            "lambda_min_m": self.lambda_min_m,
            "lambda_max_m": _finite_or_none(self.lambda_max_m),
            "source": self.source,
            "nominal": self.nominal,
        }


def _finite_or_none(x: float) -> float | None:
    """``x`` if finite, else None (JSON has no infinity); used for open-ended validity ranges."""
    return x if math.isfinite(x) else None


def _optical_wavelength(wavelength_m: float) -> float:
    """:func:`_check_wavelength`, also refusing lengths that are no optical wavelength (e.g. ``780m``)."""
    lam_m = _check_wavelength(wavelength_m)
    if not MIN_WAVELENGTH_M <= lam_m <= MAX_WAVELENGTH_M:
        raise MaterialError(
            f"--wavelength {lam_m:g} m is not an optical wavelength ({MIN_WAVELENGTH_M * 1e9:g} nm … "
            f"{MAX_WAVELENGTH_M * 1e3:g} mm); a plain number is metres: write e.g. 780nm"
        )
    return lam_m


def _check_wavelength(wavelength_m: float) -> float:
    """Return ``wavelength_m`` as a float, refusing non-finite or non-positive values."""
    try:
        lam_m = float(wavelength_m)
    except (TypeError, ValueError):
        raise MaterialError(f"wavelength must be a number in metres, got {wavelength_m!r}") from None
    if not (math.isfinite(lam_m) and lam_m > 0.0):
        raise MaterialError(f"wavelength must be a positive length in metres, got {wavelength_m!r}")
    return lam_m


def _evaluate(model: str, c: tuple[float, ...], lam_um: float) -> float:
    """Evaluate a dispersion model at ``lam_um`` (µm); may return NaN where the formula has no real root."""
    l2 = lam_um * lam_um
    if model == "constant":
        return c[0]
    if model == "cauchy":
        return sum(a / l2**i for i, a in enumerate(c))
    if model == "sellmeier":
        n2 = 1.0 + sum(b * l2 / (l2 - cc) for b, cc in zip(c[0::2], c[1::2]))
    else:  # polynomial
        n2 = c[0] + sum(a * lam_um**p for a, p in zip(c[1::2], c[2::2]))
    return math.sqrt(n2) if n2 > 0.0 else math.nan


def normalize_name(spec: str) -> str:
    """Lower-case a name and drop dashes, underscores, dots and spaces (``"IP-Dip"`` → ``"ipdip"``)."""
    return "".join(ch for ch in spec.strip().lower() if ch not in "-_ .")


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
