"""The seven fabrication errors of a printed design and their magnitudes (the σ of each draw, with its unit).

:data:`ERRORS` describes each error (unit, literature default and source); :class:`ErrorMagnitudes` holds one
magnitude per error, checked; :data:`VACCINATION_SETS` are the named sets vaccinated training draws from;
:func:`parse_magnitude` reads a magnitude as typed on the command line. What a draw does with them is in
:mod:`quaton_fab.optics.perturbation`.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


from quaton_fab.errors import QuatonFabError
from quaton_fab.units import UnitError, parse_length

__all__ = [
    "ToleranceError",
    "ErrorSpec",
    "ERRORS",
    "check_magnitude",
    "ErrorMagnitudes",
    "VACCINATION_SETS",
    "vaccination_magnitudes",
    "parse_magnitude",
]


class ToleranceError(QuatonFabError):
    """A nonsense error magnitude or tolerance request (one line naming the bad value)."""


@dataclass(frozen=True)
class ErrorSpec:
    """One fabrication error: CLI name, field of :class:`ErrorMagnitudes`, display unit and literature default.

    Attributes:
        name: CLI name (``height-noise``). field: the :class:`ErrorMagnitudes` attribute (SI or relative).
        unit: display unit (``nm``, ``µm``, ``%``, ``deg``, ``Δn``). scale: field value × scale = display value.
        default: literature default in the field's units (σ of the draw). bound: largest sane magnitude
        (field units). source: where the default comes from. random: False for a deterministic error (blur).
    """

    name: str
    field: str
    unit: str
    scale: float
    default: float
    bound: float
    source: str
    random: bool = True

    def display(self, value: float) -> float:
        """``value`` (field units) in the display unit."""
        return float(value) * self.scale


_FAB = "fab_spec.md §6 (two-photon perturbation model)"
#: The seven errors, in table order. Defaults: the typical two-photon values of the research notes.
ERRORS: dict[str, ErrorSpec] = {
    spec.name: spec
    for spec in (
        ErrorSpec("height-scale", "height_scale", "%", 100.0, 0.03, 0.5,
                  f"global height scale ±2–5 % from dose or shrinkage ({_FAB})"),
        ErrorSpec("height-noise", "height_noise_m", "nm", 1e9, 20e-9, 2e-6,
                  f"per-pixel height σ 10–50 nm for 2PP ({_FAB})"),
        ErrorSpec("shift", "shift_m", "µm", 1e6, 0.5e-6, 1e-3,
                  f"lateral layer offset ±0.5–2 pixels ({_FAB}); Mengu et al., Nanophotonics 9, 4207 (2020)"),
        ErrorSpec("rotation", "rotation_deg", "deg", 1.0, 0.5, 45.0, f"layer rotation ±0.5° ({_FAB})"),
        ErrorSpec("spacing", "spacing", "%", 100.0, 0.02, 0.3, f"layer spacing ±1–5 % ({_FAB})"),
        ErrorSpec("blur", "blur_m", "nm", 1e9, 170e-9, 10e-6,
                  "pixel rounding: Nanoscribe's reliable lateral feature 400 nm (fab_spec.md summary item 9) "
                  "taken as a Gaussian of FWHM 400 nm (σ = 170 nm)", random=False),
        ErrorSpec("index", "index", "Δn", 1.0, 0.005, 0.5, f"Δn uncertainty ±0.005–0.01 ({_FAB})"),
    )
}


def check_magnitude(spec: ErrorSpec, value: Any) -> float:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0:
        raise ToleranceError(f"{spec.name} magnitude must be a finite number >= 0, got {value!r}")
    if value > spec.bound:
        raise ToleranceError(
            f"{spec.name} magnitude {spec.display(value):g} {spec.unit} is beyond the sane bound "
            f"{spec.display(spec.bound):g} {spec.unit}"
        )
    return float(value)


@dataclass(frozen=True)
class ErrorMagnitudes:
    """Magnitudes of the seven errors (σ of each draw; the blur's σ is applied as is). All default to 0.

    Attributes:
        height_scale: relative σ of the global height scale. height_noise_m: σ of per-pixel height noise (m).
        shift_m: σ of each mask's lateral shift along x and along y (m). rotation_deg: σ of each mask's
        rotation (degrees). spacing: relative σ of each gap. blur_m: σ of the Gaussian pixel rounding (m).
        index: σ of the material index error.
    """

    height_scale: float = 0.0
    height_noise_m: float = 0.0
    shift_m: float = 0.0
    rotation_deg: float = 0.0
    spacing: float = 0.0
    blur_m: float = 0.0
    index: float = 0.0

    def __post_init__(self) -> None:
        for spec in ERRORS.values():
            object.__setattr__(self, spec.field, check_magnitude(spec, getattr(self, spec.field)))

    @property
    def is_zero(self) -> bool:
        """True when every magnitude is 0 (the nominal print)."""
        return all(getattr(self, spec.field) == 0.0 for spec in ERRORS.values())

    def scaled(self, factor: float) -> "ErrorMagnitudes":
        """Every magnitude × ``factor``."""
        return ErrorMagnitudes(**{spec.field: getattr(self, spec.field) * factor for spec in ERRORS.values()})

    def only(self, name: str, value: float) -> "ErrorMagnitudes":
        """Magnitudes with only error ``name`` at ``value`` (field units)."""
        return ErrorMagnitudes(**{ERRORS[name].field: value})

    def to_dict(self) -> dict[str, float]:
        """JSON-ready dict keyed by field name (SI or relative units, see the class docstring)."""
        return {spec.field: getattr(self, spec.field) for spec in ERRORS.values()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ErrorMagnitudes":
        """Inverse of :meth:`to_dict` (unknown keys raise ToleranceError)."""
        fields = {spec.field for spec in ERRORS.values()}
        unknown = sorted(set(data) - fields)
        if unknown:
            raise ToleranceError(f"unknown error magnitude(s) {unknown}; expected {sorted(fields)}")
        return cls(**dict(data))

    @classmethod
    def defaults(cls) -> "ErrorMagnitudes":
        """Every error at its literature default (:data:`ERRORS`)."""
        return cls(**{spec.field: spec.default for spec in ERRORS.values()})


#: Named vaccination sets (``train --vaccinate NAME``): ``2pp`` every error at its literature default,
#: ``2pp-placement`` only the placement errors (shift, rotation, spacing) at their defaults.
VACCINATION_SETS: dict[str, ErrorMagnitudes] = {
    "2pp": ErrorMagnitudes.defaults(),
    "2pp-placement": ErrorMagnitudes(
        shift_m=ERRORS["shift"].default, rotation_deg=ERRORS["rotation"].default, spacing=ERRORS["spacing"].default
    ),
}


def vaccination_magnitudes(name: str | None, overrides: Mapping[str, float] | None = None) -> ErrorMagnitudes:
    """Magnitudes of a named set (:data:`VACCINATION_SETS`; None: all zero) with per-error ``overrides``
    (keyed by CLI name, field units)."""
    if name is None:
        base = ErrorMagnitudes()
    elif name in VACCINATION_SETS:
        base = VACCINATION_SETS[name]
    else:
        raise ToleranceError(f"unknown vaccination set {name!r}; use one of {', '.join(VACCINATION_SETS)}")
    values = base.to_dict()
    for key, value in (overrides or {}).items():
        if key not in ERRORS:
            raise ToleranceError(f"unknown error {key!r}; use one of {', '.join(ERRORS)}")
        values[ERRORS[key].field] = value
    return ErrorMagnitudes(**values)


def parse_magnitude(name: str, text: str | float, *, pitch_m: float | None = None) -> float:
    """One magnitude of error ``name`` from text, in the field's units (see :class:`ErrorMagnitudes`).

    Accepted forms: relative errors ``3%`` or ``0.03``; lengths with a unit (``20nm``, ``0.5um``) or, for shift
    and blur, ``px`` (design pixels, needs ``pitch_m``); rotation ``0.5`` or ``0.5deg``; index ``0.005``.
    """

    if name not in ERRORS:
        raise ToleranceError(f"unknown error {name!r}; use one of {', '.join(ERRORS)}")
    spec = ERRORS[name]
    raw = str(text).strip()
    value: float
    try:
        if spec.unit in ("nm", "µm"):
            if raw.lower().endswith("px"):
                if pitch_m is None:
                    raise ToleranceError(f"{name} magnitude {raw!r} in pixels needs the design's pitch")
                value = float(raw[:-2]) * pitch_m
            else:
                value = parse_length(raw, name=f"{name} magnitude", allow_zero=True)
        elif spec.unit == "%":
            value = float(raw[:-1]) / 100.0 if raw.endswith("%") else float(raw)
        elif spec.unit == "deg":
            value = float(raw[:-3]) if raw.lower().endswith("deg") else float(raw)
        else:
            value = float(raw)
    except UnitError as exc:
        raise ToleranceError(str(exc)) from None
    except ValueError:
        raise ToleranceError(f"{name} magnitude {raw!r} is not a number (unit {spec.unit})") from None
    return check_magnitude(spec, value)
