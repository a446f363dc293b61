"""Length parsing and formatting for user-facing input.

Lengths inside the library are plain floats in metres. Users type them with a unit (``780nm``, ``0.8um``,
``0.8µm``, ``40um``, ``1.5mm``) or as a plain number, which is taken as metres (``2e-6``).
"""

from __future__ import annotations

import math
import re

from quaton_fab.errors import QuatonFabError

__all__ = ["UnitError", "parse_length", "format_length", "parse_phase", "parse_phase_list", "LENGTH_UNITS"]

#: Accepted unit suffixes and their size in metres.
LENGTH_UNITS: dict[str, float] = {
    "m": 1.0,
    "cm": 1e-2,
    "mm": 1e-3,
    "um": 1e-6,
    "µm": 1e-6,  # U+00B5 MICRO SIGN
    "μm": 1e-6,  # U+03BC GREEK SMALL LETTER MU
    "micron": 1e-6,
    "microns": 1e-6,
    "nm": 1e-9,
    "pm": 1e-12,
}

_NUMBER = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_PATTERN = re.compile(rf"^\s*({_NUMBER})\s*([^\d\s.+-][^\s]*)?\s*$")


class UnitError(QuatonFabError):
    """A length that cannot be understood (unknown unit, not a number, not positive, not finite)."""


def parse_length(text: str | float | int, *, name: str = "length", allow_zero: bool = False) -> float:
    """Parse a length such as ``"780nm"`` or ``"2e-6"`` and return it in metres.

    Plain numbers are metres. The value must be finite and positive (or zero when ``allow_zero``).

    Raises:
        UnitError: one line naming ``name`` and the offending text.
    """
    if isinstance(text, bool):
        raise UnitError(f"{name}: {text!r} is not a length")
    if isinstance(text, (int, float)):
        value = float(text)
        shown = repr(text)
    else:
        shown = repr(text)
        match = _PATTERN.match(text or "")
        if not match:
            raise UnitError(
                f"{name}: cannot read {shown} as a length; use a number with a unit such as 780nm, 0.8um, "
                "40um, 1.5mm, or plain metres such as 2e-6"
            )
        number, unit = match.groups()
        if unit is None:
            scale = 1.0
        else:
            key = unit if unit in LENGTH_UNITS else unit.lower()
            if key not in LENGTH_UNITS:
                known = ", ".join(sorted({u for u in LENGTH_UNITS if u.isascii()}))
                raise UnitError(f"{name}: unknown length unit {unit!r} in {shown} (known: {known})")
            scale = LENGTH_UNITS[key]
        value = float(number) * scale
    if not math.isfinite(value):
        raise UnitError(f"{name}: {shown} is not a finite length")
    if value < 0 or (value == 0 and not allow_zero):
        need = "zero or positive" if allow_zero else "positive"
        raise UnitError(f"{name}: {shown} must be {need}")
    return value


def format_length(value_m: float, *, digits: int = 4) -> str:
    """Format a length in metres with a readable unit (nm, µm, mm or m)."""
    magnitude = abs(value_m)
    if magnitude == 0:
        return "0 m"
    for unit, scale in (("nm", 1e-9), ("µm", 1e-6), ("mm", 1e-3)):
        if magnitude < scale * 1000:
            return f"{value_m / scale:.{digits}g} {unit}"
    return f"{value_m:.{digits}g} m"


_PHASE_UNITS = {"rad": 1.0, "pi": math.pi, "π": math.pi, "deg": math.pi / 180.0}
_PHASE_PATTERN = re.compile(rf"^\s*({_NUMBER})?\s*(rad|pi|π|deg)?\s*$")


def parse_phase(text: str, *, name: str = "phase") -> float:
    """Parse a phase such as ``1.99pi``, ``π``, ``3.1rad``, ``90deg`` or ``1.57`` (plain numbers are radians).

    Returns radians (finite, ≥ 0: phases here are material delays). Raises UnitError naming ``name``.
    """
    match = _PHASE_PATTERN.match(text or "")
    if not match or (match.group(1) is None and match.group(2) in (None, "rad", "deg")):
        raise UnitError(f"{name}: cannot read {text!r} as a phase; use e.g. 1.99pi, 3.1rad, 90deg or 1.57")
    number, unit = match.groups()
    value = (1.0 if number is None else float(number)) * _PHASE_UNITS[unit or "rad"]
    if not math.isfinite(value) or value < 0:
        raise UnitError(f"{name}: {text!r} must be a finite phase ≥ 0")
    return value


def parse_phase_list(text: str, *, name: str = "phases") -> list[float]:
    """Parse comma-separated phases (see :func:`parse_phase`), e.g. ``0,1.99pi`` → ``[0.0, 6.2518…]``."""
    parts = [p for p in (text or "").split(",")]
    if not text or any(not p.strip() for p in parts):
        raise UnitError(f"{name}: expected comma-separated phases such as 0,1.99pi, got {text!r}")
    return [parse_phase(p, name=name) for p in parts]
