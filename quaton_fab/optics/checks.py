"""The optics package's error and the checks of its arguments (lengths in metres, indices, grid sizes).

Each check returns the value as a plain ``float``/``int`` or raises :class:`OpticsError` naming the bad value.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from quaton_fab.errors import QuatonFabError

__all__ = ["OpticsError", "check_positive_length", "check_distance", "check_index", "check_padding", "check_pixels"]


class OpticsError(QuatonFabError):
    """Bad optical input (geometry, distance, field shape or dtype); the message names the bad value."""


# ----------------------------------------------------------------------------------------------- validation
def check_positive_length(name: str, value: float) -> float:
    """Return ``value`` as float if it is a finite number > 0 (metres), else raise OpticsError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
        raise OpticsError(f"{name} must be a finite length > 0 in metres, got {value!r}")
    return float(value)


def check_distance(value: float) -> float:
    """Return the propagation distance (metres, any sign, finite) as float, else raise OpticsError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise OpticsError(f"distance must be a finite length in metres, got {value!r}")
    return float(value)


def check_index(value: float) -> float:
    """Return the refractive index of the medium as float if finite and > 0, else raise OpticsError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
        raise OpticsError(f"n_medium must be a finite refractive index > 0, got {value!r}")
    return float(value)


def check_padding(value: str | int) -> str | int:
    """Return ``"auto"`` or a non-negative int (pixels per side), else raise OpticsError."""
    if value == "auto":
        return "auto"
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise OpticsError(f"padding must be 'auto' or an int >= 0 (pixels per side), got {value!r}")
    return int(value)


def check_pixels(name: str, value: int) -> int:
    """Return a grid size (pixels) as int if it is an integer >= 1, else raise OpticsError."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise OpticsError(f"{name} must be an int >= 1, got {value!r}")
    return int(value)
