"""The level set: the phases (radians) of the n levels a phase mask may take.

Three kinds (see docs/QUANTIZERS.md):

- ``"circle"`` (default): ``LevelSet.uniform(n)``, φ_k = 2πk/n. The levels are uniform on the unit circle,
  so level 0 and "level n" are the same phase; nearest-level mapping is wrap-aware (φ and φ + 2π give the
  same level).
- ``"range"``: ``LevelSet.range(n, lo, hi)``, φ_k = lo + k(hi − lo)/(n − 1), both ends included (the QuATON
  lab code uses [0, 1.99π]). Nearest-level mapping clamps to [lo, hi] (no wrap), as in the lab code.
- ``"list"``: ``LevelSet.explicit(phases)``, any n distinct phases, e.g. what a printer can really make. The
  phases are taken mod 2π and sorted; nearest-level mapping is wrap-aware.

A ``LevelSet`` is immutable and knows nothing of torch modules; it only maps phases to level indices and back.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from quaton_fab.errors import QuatonFabError

logger = logging.getLogger(__name__)

TWO_PI = 2.0 * math.pi
KINDS = ("circle", "range", "list", "ladder")
#: Two levels closer than this (radians, modulo 2π) are considered the same phase.
MIN_SEPARATION_RAD = 1e-9


class LevelSetError(QuatonFabError):
    """A level set was given an invalid value (one-line message naming it)."""


def _check_count(n: Any) -> int:
    """Return ``n`` as an int ≥ 2, or raise LevelSetError."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise LevelSetError(f"number of levels must be an integer ≥ 2, got {n!r}")
    if n < 2:
        raise LevelSetError(f"number of levels must be ≥ 2, got {n}")
    return int(n)


def _check_finite(name: str, value: Any) -> float:
    """Return ``value`` as a finite float (radians), or raise LevelSetError naming ``name``."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise LevelSetError(f"{name} must be a number (radians), got {value!r}") from None
    if not math.isfinite(x):
        raise LevelSetError(f"{name} must be finite, got {value!r}")
    return x


def _circular_gaps(sorted_phases: np.ndarray) -> np.ndarray:
    """Gaps (rad) between consecutive sorted phases in [0, 2π), including the wrap gap last → first + 2π."""
    return np.diff(np.append(sorted_phases, sorted_phases[0] + TWO_PI))


def _check_distinct_mod_2pi(phases: np.ndarray) -> None:
    """Raise LevelSetError if two phases coincide modulo 2π (within MIN_SEPARATION_RAD)."""
    wrapped = np.sort(_wrap_0_2pi(phases))
    gaps = _circular_gaps(wrapped)
    i = int(np.argmin(gaps))
    if gaps[i] < MIN_SEPARATION_RAD:
        j = (i + 1) % len(wrapped)
        raise LevelSetError(
            f"levels must be distinct modulo 2π, but {wrapped[i]:.12g} rad and {wrapped[j]:.12g} rad coincide"
        )


def _phase_list(phases: Sequence[float] | np.ndarray) -> np.ndarray:
    """``phases`` as a flat float64 array (radians), or LevelSetError naming what was given."""
    try:
        arr = np.array(phases, dtype=np.float64)
    except (TypeError, ValueError):
        raise LevelSetError(f"level phases must be a list of numbers (radians), got {phases!r}") from None
    if arr.ndim != 1:
        raise LevelSetError(f"level phases must be a flat list, got an array of shape {arr.shape}")
    return arr


def _wrap_0_2pi(phases: np.ndarray) -> np.ndarray:
    """Phases mod 2π in [0, 2π) (np.mod may round a tiny negative value up to exactly 2π; map that to 0)."""
    wrapped = np.mod(phases, TWO_PI)
    wrapped[wrapped >= TWO_PI] = 0.0
    return wrapped


@dataclass(frozen=True, eq=False)
class LevelSet:
    """The n printable phase levels, in radians, sorted ascending.

    Build with ``LevelSet.uniform(n)``, ``LevelSet.range(n, lo, hi)`` or ``LevelSet.explicit(phases)``.
    ``phases`` is a read-only float64 array of shape (n,).
    """

    kind: str
    phases: np.ndarray

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise LevelSetError(f"level-set kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        phases = np.array(self.phases, dtype=np.float64).reshape(-1)
        _check_count(len(phases))
        if not np.all(np.isfinite(phases)):
            raise LevelSetError(f"level phases must be finite, got {phases.tolist()}")
        if np.any(np.diff(phases) <= 0):
            raise LevelSetError(f"level phases must be strictly increasing, got {phases.tolist()}")
        if phases[0] < 0:
            raise LevelSetError(f"level phases are material phase delays and must be ≥ 0, got {phases[0]!r} rad")
        if self.periodic and phases[-1] >= TWO_PI:
            raise LevelSetError(f"{self.kind} level phases must lie in [0, 2π), got {phases.tolist()}")
        _check_distinct_mod_2pi(phases)
        phases.setflags(write=False)
        object.__setattr__(self, "phases", phases)

    # ----------------------------------------------------------------------------------------- constructors
    @classmethod
    def uniform(cls, n: int) -> LevelSet:
        """n levels uniform on the circle: φ_k = 2πk/n, k = 0…n−1 (kind ``"circle"``)."""
        n = _check_count(n)
        return cls("circle", TWO_PI * np.arange(n, dtype=np.float64) / n)

    @classmethod
    def range(cls, n: int, lo: float, hi: float) -> LevelSet:  # noqa: A003  (name fixed by the interface)
        """n levels uniform on [lo, hi] (radians), both ends included (kind ``"range"``; lab: [0, 1.99π])."""
        n = _check_count(n)
        lo_f = _check_finite("lo", lo)
        hi_f = _check_finite("hi", hi)
        if not lo_f < hi_f:
            raise LevelSetError(f"range needs lo < hi, got lo={lo_f!r} rad, hi={hi_f!r} rad")
        if lo_f < 0:
            raise LevelSetError(f"range lo is a material phase delay and must be ≥ 0, got lo={lo_f!r} rad")
        return cls("range", np.linspace(lo_f, hi_f, n, dtype=np.float64))

    @classmethod
    def ladder(cls, phases: Sequence[float] | np.ndarray) -> LevelSet:
        """Any n ≥ 2 ascending phases ≥ 0 (radians) that do **not** wrap (kind ``"ladder"``).

        The level set of a printed relief: its levels are heights, and no height is "the top level + one step"
        = level 0 again. Quantizers treat it like a ``range`` (clamped ends, no wrap step), so a soft
        quantizer's output moves between neighbouring heights only. Phases must be distinct modulo 2π.
        """
        return cls("ladder", np.sort(_phase_list(phases)))

    @classmethod
    def explicit(cls, phases: Sequence[float] | np.ndarray) -> LevelSet:
        """Any n ≥ 2 phases (radians), taken mod 2π and sorted (kind ``"list"``); must be distinct mod 2π."""
        arr = _phase_list(phases)
        _check_count(len(arr))
        if not np.all(np.isfinite(arr)):
            raise LevelSetError(f"level phases must be finite, got {arr.tolist()}")
        _check_distinct_mod_2pi(arr)
        return cls("list", np.sort(_wrap_0_2pi(arr)))

    # ----------------------------------------------------------------------------------------- geometry
    @property
    def n(self) -> int:
        """Number of levels."""
        return len(self.phases)

    @property
    def periodic(self) -> bool:
        """True for ``circle`` and ``list``: level mapping wraps modulo 2π. False for ``range`` and ``ladder``."""
        return self.kind not in ("range", "ladder")

    @property
    def steps(self) -> np.ndarray:
        """Phase steps Δ_i (rad) between consecutive levels.

        Shape (n−1,) for ``range``; shape (n,) for periodic sets, whose last step goes from the top level to
        level 0 + 2π (so the steps sum to 2π).
        """
        if self.periodic:
            return _circular_gaps(self.phases)
        return np.diff(self.phases)

    @property
    def thresholds(self) -> np.ndarray:
        """Decision thresholds (rad): mid-points c_i = φ_i + Δ_i/2, same shape as ``steps``."""
        return self.phases[: len(self.steps)] + 0.5 * self.steps

    @property
    def min_step(self) -> float:
        """Smallest phase step Δ_min (rad), the reference step for dimensionless slopes k·Δ."""
        return float(np.min(self.steps))

    # ----------------------------------------------------------------------------------------- mapping
    def nearest_index(self, phi: torch.Tensor) -> torch.Tensor:
        """Index of the nearest level for each phase in ``phi`` (radians, any shape); int64, same shape.

        Wrap-aware for ``circle`` and ``list`` (φ and φ + 2π give the same level); ``range`` and ``ladder``
        clamp values outside [lo, hi] to the end levels. Computed in float64 without gradient. Ties go to the
        lower index (``range``, ``ladder``, ``list``) or round-half-to-even (``circle``).
        """
        x = torch.as_tensor(phi).detach().to(torch.float64)
        if self.kind == "circle":
            step = TWO_PI / self.n
            return torch.remainder(torch.round(x / step), self.n).to(torch.int64)
        if self.kind == "range":
            lo, hi = float(self.phases[0]), float(self.phases[-1])
            step = (hi - lo) / (self.n - 1)
            return torch.clamp(torch.round((x - lo) / step), 0, self.n - 1).to(torch.int64)
        if self.kind == "ladder":  # nearest on the line: count the mid-point thresholds below (ties go lower)
            thresholds = torch.as_tensor(self.thresholds, dtype=torch.float64, device=x.device)
            return torch.searchsorted(thresholds, x.contiguous(), right=False).to(torch.int64)
        return self.circular_nearest_index(x)

    def circular_nearest_index(self, phi: torch.Tensor) -> torch.Tensor:
        """Index of the level closest to ``phi`` on the circle (mod 2π), for any kind; int64, same shape.

        Used to post-quantize unconstrained phases (PQ, FP export): for a ``range`` set this is the level
        with the smallest phase error, which clamping would not give when [lo, hi] does not span 2π.
        """
        x = torch.as_tensor(phi).detach().to(torch.float64)
        levels = torch.tensor(self.phases, dtype=torch.float64, device=x.device)
        diff = torch.remainder(x.unsqueeze(-1) - levels + math.pi, TWO_PI) - math.pi
        return torch.argmin(diff.abs(), dim=-1)

    def index_to_phase(
        self,
        idx: torch.Tensor,
        *,
        dtype: torch.dtype = torch.float64,
        device: torch.device | str | None = None,
    ) -> torch.Tensor:
        """Phases (rad) of level indices ``idx`` (int tensor, any shape): exactly ``phases[idx]``.

        The float64 level table is indexed first and the result cast to ``dtype`` afterwards, so a float32
        result is the float32 rounding of the exact level phase. Raises LevelSetError for indices outside
        0…n−1.
        """
        index = torch.as_tensor(idx)
        if index.dtype.is_floating_point or index.dtype.is_complex or index.dtype == torch.bool:
            raise LevelSetError(f"level indices must be an integer tensor, got dtype {index.dtype}")
        if index.numel() and (int(index.min()) < 0 or int(index.max()) >= self.n):
            bad = int(index.min()) if int(index.min()) < 0 else int(index.max())
            raise LevelSetError(f"level index {bad} is outside 0…{self.n - 1}")
        target = index.device if device is None else torch.device(device)
        table = torch.tensor(self.phases, dtype=torch.float64, device=index.device)
        return table[index.to(torch.int64)].to(device=target, dtype=dtype)

    # ----------------------------------------------------------------------------------------- (de)serialise
    def to_dict(self) -> dict[str, Any]:
        """JSON-able description: ``kind``, ``n``, ``phases_rad`` (every level, float radians) and, for
        ``range``, ``lo_rad``/``hi_rad``."""
        d: dict[str, Any] = {"kind": self.kind, "n": self.n, "phases_rad": [float(p) for p in self.phases]}
        if self.kind == "range":
            d["lo_rad"] = float(self.phases[0])
            d["hi_rad"] = float(self.phases[-1])
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LevelSet:
        """Rebuild a level set from ``to_dict()`` output; stored phases must match the rebuilt ones."""
        if not isinstance(d, Mapping):
            raise LevelSetError(f"level set must be a mapping, got {type(d).__name__}")
        allowed = {"kind", "n", "phases_rad", "lo_rad", "hi_rad"}
        unknown = sorted(set(d) - allowed)
        if unknown:
            raise LevelSetError(f"unknown level-set key {unknown[0]!r} (expected {', '.join(sorted(allowed))})")
        kind = d.get("kind", "circle")
        stored = d.get("phases_rad")
        if kind == "circle":
            levels = cls.uniform(d.get("n", len(stored or ())))
        elif kind == "range":
            if "lo_rad" not in d or "hi_rad" not in d:
                raise LevelSetError("range level set needs 'lo_rad' and 'hi_rad'")
            levels = cls.range(d.get("n", len(stored or ())), d["lo_rad"], d["hi_rad"])
        elif kind in ("list", "ladder"):
            if stored is None:
                raise LevelSetError(f"{kind} level set needs 'phases_rad'")
            levels = cls.explicit(stored) if kind == "list" else cls.ladder(stored)
        else:
            raise LevelSetError(f"level-set kind must be one of {', '.join(KINDS)}, got {kind!r}")
        if "n" in d and d["n"] != levels.n:
            raise LevelSetError(f"level set says n={d['n']!r} but has {levels.n} levels")
        if stored is not None:
            arr = np.array(stored, dtype=np.float64).reshape(-1)
            if arr.shape != levels.phases.shape or not np.allclose(arr, levels.phases, rtol=0, atol=1e-12):
                raise LevelSetError(f"stored phases_rad {list(stored)} do not match the {kind} level set")
        return levels

    # ----------------------------------------------------------------------------------------- value semantics
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LevelSet):
            return NotImplemented
        return self.kind == other.kind and np.array_equal(self.phases, other.phases)

    def __hash__(self) -> int:
        return hash((self.kind, self.phases.tobytes()))

    def __repr__(self) -> str:
        return f"LevelSet(kind={self.kind!r}, phases={np.round(self.phases, 6).tolist()})"
