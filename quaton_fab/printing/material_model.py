"""A material as a dispersion model: the :class:`Material` record and the evaluation of its index formula.

The tables of named materials and media, and the lookups by name, are in :mod:`quaton_fab.printing.materials`.
Dispersion formulas take the wavelength in micrometres internally (that is the unit every published coefficient
set uses); the public API takes and returns SI (metres).

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

#: The index warnings keep the logger name they always had (the public module, where users filter them).
logger = logging.getLogger("quaton_fab.printing.materials")


MODELS: tuple[str, ...] = ("sellmeier", "cauchy", "polynomial", "constant")


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
