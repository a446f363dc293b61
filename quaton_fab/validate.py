"""Shared validators for plain values (lengths in metres, counts), each raising the caller's error class.

One place for the rules and wording that used to be repeated as private helpers in the fab modules
(``_positive``, ``_check_positive_length``, ``_check_length``, ``_count``). Each takes the error class to raise,
so every module keeps raising its own :class:`~quaton_fab.errors.QuatonFabError` subclass.
"""

from __future__ import annotations

import math
from typing import Any, overload

import numpy as np

from quaton_fab.errors import QuatonFabError

__all__ = ["length_m", "count"]


@overload
def length_m(value: Any, what: str, *, allow_zero: bool = ..., optional: bool = ...,
             error: type[Exception] = ...) -> float: ...


@overload
def length_m(value: None, what: str, *, allow_zero: bool = ..., optional: bool = ...,
             error: type[Exception] = ...) -> float | None: ...


def length_m(value: Any, what: str, *, allow_zero: bool = False, optional: bool = False,
             error: type[Exception] = QuatonFabError) -> float | None:
    """A finite length in metres, > 0 (or ≥ 0 with ``allow_zero``); None passes through if ``optional``.

    Raises:
        error: not a number, not finite, negative, or zero when zero is not allowed (one line naming ``what``).
    """
    if value is None and optional:
        return None
    need = "≥ 0" if allow_zero else "> 0"
    if isinstance(value, bool):
        raise error(f"{what} must be a finite length {need} in metres, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise error(f"{what} must be a length in metres, got {value!r}") from None
    if not math.isfinite(number) or number < 0 or (number == 0 and not allow_zero):
        raise error(f"{what} must be a finite length {need} in metres, got {value!r}")
    return number


def count(value: Any, what: str, *, error: type[Exception] = QuatonFabError) -> int:
    """A whole number ≥ 1 (bool refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise error(f"{what} must be a whole number ≥ 1, got {value!r}")
    return int(value)
