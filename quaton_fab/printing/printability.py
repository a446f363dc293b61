"""Printability of a level map: isolated pixels, diagonal-only contacts and the smallest feature per level.

One idea: measure, per mask and per level, the features a facility cannot print reliably, on the pixel grid
itself (no physics). Definitions (pixel (row i, col j); neighbours outside the N×N aperture do not count):

* **isolated pixel**: a pixel none of whose 4-neighbours (up, down, left, right) has the same level. It prints
  as a lone pillar (or a lone pit) one pixel wide.
* **diagonal-only contact**: a 2×2 window whose two pixels on one diagonal share a level that neither pixel of
  the other diagonal has. Two regions of that level touch only at a corner: in GDS two polygons of one layer
  meet at a point (a corner-to-corner DRC violation); in a print the two pillars meet along a line.
* **smallest feature** of a level: the smallest 4-connected region of the level (pixels and µm²), and its
  *narrowest width* w: the largest w such that every pixel of the level lies in a w×w square of pixels that
  are all of the level and inside the aperture (a morphological opening with a w×w square leaves the level
  unchanged). ``narrow_pixels`` counts the pixels of a level that lie in no 2×2 square of it (width 1).

:func:`clean_isolated` is an optional post-filter: each isolated pixel takes the most common level among its
4-neighbours (ties: the neighbour level nearest in index, then the lower; red-black order); it changes the
design, so a cleaned design must be re-evaluated (``quaton-fab evaluate``) before it is exported.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage

from quaton_fab.errors import FabError

__all__ = [
    "PrintabilityError",
    "LevelFeatures",
    "MaskPrintability",
    "isolated_pixels",
    "diagonal_only_contacts",
    "diagonal_contact_windows",
    "narrowest_width_px",
    "mask_printability",
    "printability_report",
    "clean_isolated",
]

logger = logging.getLogger(__name__)

_FOUR = ndimage.generate_binary_structure(2, 1)  # 4-connectivity


class PrintabilityError(FabError):
    """A level map that is not a 2-D (or L×N×N) array of level indices."""


def _check_map(levels: np.ndarray) -> np.ndarray:
    """Validate a 2-D integer level map. Returns int64 (R, C)."""
    a = np.asarray(levels)
    if a.ndim != 2 or a.size == 0:
        raise PrintabilityError(f"level map must be a non-empty 2-D array, got shape {a.shape}")
    if not np.issubdtype(a.dtype, np.integer):
        raise PrintabilityError(f"level map must hold integer level indices, got dtype {a.dtype}")
    if a.min() < 0:
        raise PrintabilityError(f"level index {int(a.min())} is negative")
    return a.astype(np.int64)


def _same_as_neighbours(levels: np.ndarray) -> np.ndarray:
    """int (R, C): how many of each pixel's 4-neighbours (inside the map) share its level."""
    same = np.zeros(levels.shape, dtype=np.int64)
    eq_v = levels[1:, :] == levels[:-1, :]
    eq_h = levels[:, 1:] == levels[:, :-1]
    same[1:, :] += eq_v
    same[:-1, :] += eq_v
    same[:, 1:] += eq_h
    same[:, :-1] += eq_h
    return same


def isolated_pixels(levels: np.ndarray) -> np.ndarray:
    """Boolean (R, C): pixels with no 4-neighbour of the same level (see the module docstring)."""
    return _same_as_neighbours(_check_map(levels)) == 0


def diagonal_only_contacts(levels: np.ndarray) -> np.ndarray:
    """Level of every diagonal-only contact, one entry per contact (int64, (K,)).

    A 2×2 window [[a, b], [c, d]] holds a contact of level a when a == d, b != a and c != a, and one of level b
    when b == c, a != b and d != b (a checkerboard window holds two).
    """
    m = _check_map(levels)
    main, anti = diagonal_contact_windows(m)
    return np.concatenate([m[:-1, :-1][main], m[:-1, 1:][anti]])


def diagonal_contact_windows(levels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Boolean (R − 1, C − 1) maps of the 2×2 windows (by top-left pixel) holding a diagonal-only contact along
    the main diagonal (a == d) and along the anti-diagonal (b == c); see :func:`diagonal_only_contacts`."""
    m = _check_map(levels)
    a, b, c, d = m[:-1, :-1], m[:-1, 1:], m[1:, :-1], m[1:, 1:]
    return (a == d) & (b != a) & (c != a), (b == c) & (a != b) & (d != b)


def narrowest_width_px(region: np.ndarray) -> int:
    """Largest w such that every True pixel lies in a w×w all-True square inside the map (0 for no pixel).

    Squares may not reach outside the map (the aperture edge is a boundary). The property is monotone in w, so a
    binary search needs O(log N) passes of :func:`_in_square`.
    """
    r = np.asarray(region, dtype=bool)
    if not r.any():
        return 0
    lo, hi = 1, min(r.shape)  # lo always holds; find the largest w that holds
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if np.array_equal(_in_square(r, mid), r):
            lo = mid
        else:
            hi = mid - 1
    return lo


def _in_square(region: np.ndarray, w: int) -> np.ndarray:
    """Boolean: pixels of ``region`` that lie in some w×w all-True square of it (inside the map)."""
    if w <= 1:
        return region.copy()
    rows, cols = region.shape
    if w > min(rows, cols):
        return np.zeros_like(region)
    r = region.astype(np.int64)
    # all-True w×w squares by their top-left corner, from a summed-area table
    sat = np.zeros((rows + 1, cols + 1), dtype=np.int64)
    sat[1:, 1:] = r.cumsum(0).cumsum(1)
    full = (sat[w:, w:] - sat[:-w, w:] - sat[w:, :-w] + sat[:-w, :-w]) == w * w
    covered = np.zeros((rows + 1, cols + 1), dtype=np.int64)  # spread each square over its w×w pixels
    ii, jj = np.nonzero(full)
    np.add.at(covered, (ii, jj), 1)
    np.add.at(covered, (ii + w, jj), -1)
    np.add.at(covered, (ii, jj + w), -1)
    np.add.at(covered, (ii + w, jj + w), 1)
    return covered.cumsum(0).cumsum(1)[:rows, :cols] > 0


@dataclass(frozen=True)
class LevelFeatures:
    """Features of one level in one mask (counts in pixels; µm values from the pitch)."""

    level: int
    pixels: int
    isolated: int
    diagonal_contacts: int
    regions: int
    smallest_region_px: int
    smallest_region_um2: float
    narrowest_width_px: int
    narrowest_width_um: float
    narrow_pixels: int


@dataclass(frozen=True)
class MaskPrintability:
    """Printability of one mask: totals and one :class:`LevelFeatures` per level present."""

    mask: int
    pixels: int
    isolated: int
    isolated_fraction: float
    diagonal_contacts: int
    narrow_pixels: int
    levels: tuple[LevelFeatures, ...]

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        d = asdict(self)
        d["levels"] = [asdict(f) for f in self.levels]
        return d


def mask_printability(levels: np.ndarray, pitch_m: float, mask: int = 1) -> MaskPrintability:
    """Printability of one (R, C) level map with pixel pitch ``pitch_m`` (m); ``mask`` is its 1-based number."""
    m = _check_map(levels)
    if not (np.isfinite(pitch_m) and pitch_m > 0):
        raise PrintabilityError(f"pitch must be a positive length in metres, got {pitch_m!r}")
    pitch_um = float(pitch_m) * 1e6
    iso = _same_as_neighbours(m) == 0
    contacts = diagonal_only_contacts(m)
    rows = []
    for k in np.unique(m).tolist():
        region = m == k
        labels, count = ndimage.label(region, structure=_FOUR)
        sizes = np.bincount(labels.ravel())[1:]
        width = narrowest_width_px(region)
        rows.append(LevelFeatures(
            level=int(k),
            pixels=int(region.sum()),
            isolated=int((iso & region).sum()),
            diagonal_contacts=int(np.count_nonzero(contacts == k)),
            regions=int(count),
            smallest_region_px=int(sizes.min()),
            smallest_region_um2=float(sizes.min()) * pitch_um**2,
            narrowest_width_px=width,
            narrowest_width_um=width * pitch_um,
            narrow_pixels=int((region & ~_in_square(region, 2)).sum()),
        ))
    return MaskPrintability(
        mask=int(mask),
        pixels=int(m.size),
        isolated=int(iso.sum()),
        isolated_fraction=float(iso.mean()),
        diagonal_contacts=int(contacts.size),
        narrow_pixels=int(sum(r.narrow_pixels for r in rows)),
        levels=tuple(rows),
    )


def printability_report(level_indices: np.ndarray, pitch_m: float) -> dict:
    """Printability of every mask of an (L, N, N) level map, JSON-ready (for the fab sheet).

    Returns:
        {"definitions": text, "pitch_um": …, "masks": [MaskPrintability.to_dict(), …]}.
    """
    idx = np.asarray(level_indices)
    if idx.ndim != 3:
        raise PrintabilityError(f"level indices must be an (L, N, N) array, got shape {idx.shape}")
    return {
        "definitions": (
            "isolated pixel: no 4-neighbour at the same level; diagonal-only contact: a 2x2 window whose one "
            "diagonal shares a level that neither pixel of the other diagonal has; smallest region: smallest "
            "4-connected region of the level; narrowest width w: every pixel of the level lies in a w x w square "
            "of that level; narrow pixels: pixels in no 2x2 square of their level"
        ),
        "pitch_um": float(pitch_m) * 1e6,
        "masks": [mask_printability(m, pitch_m, l + 1).to_dict() for l, m in enumerate(idx)],
    }


def clean_isolated(levels: np.ndarray, passes: int = 1, min_votes: int = 1) -> tuple[np.ndarray, int]:
    """Majority filter of isolated pixels: each takes the most common level among its 4-neighbours.

    Ties go to the neighbour level nearest in index to the pixel's own, then to the lower one. A pass updates
    the pixels with even i + j first, then the odd ones (red-black order: no two neighbours change at once, so
    a checkerboard does not just flip).

    Args:
        levels: (R, C) or (L, R, C) integer level map.
        passes: how many times to apply the filter (≥ 1).
        min_votes: change an isolated pixel only when its winning level holds at least this many of its
            4-neighbours (1: every isolated pixel; 4: only pixels enclosed by one level).

    Returns:
        (cleaned copy, number of pixels changed).
    """
    a = np.asarray(levels)
    if a.ndim == 3:
        out, changed = [], 0
        for m in a:
            c, n = clean_isolated(m, passes, min_votes)
            out.append(c)
            changed += n
        return np.stack(out).astype(a.dtype), changed
    m = _check_map(a)
    if int(passes) != passes or passes < 1:
        raise PrintabilityError(f"passes must be an integer ≥ 1, got {passes!r}")
    if min_votes not in (1, 2, 3, 4):
        raise PrintabilityError(f"min_votes must be 1, 2, 3 or 4, got {min_votes!r}")
    n_levels = int(m.max()) + 1
    rr, cc = np.indices(m.shape)
    parity = (rr + cc) % 2
    changed = 0
    for _ in range(int(passes)):
        before = changed
        for colour in (0, 1):  # red-black order: the 4-neighbours of one colour are all of the other
            iso = (_same_as_neighbours(m) == 0) & (parity == colour)
            if not iso.any():
                continue
            votes = np.zeros((n_levels,) + m.shape, dtype=np.int64)
            for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1)):
                r2, c2 = rr + dr, cc + dc
                ok = (r2 >= 0) & (r2 < m.shape[0]) & (c2 >= 0) & (c2 < m.shape[1])
                np.add.at(votes, (m[r2[ok], c2[ok]], rr[ok], cc[ok]), 1)
            best = votes.max(axis=0)
            iso &= best >= min_votes
            k = np.arange(n_levels)[:, None, None]
            # among the levels with the most votes: nearest in index, then lower (one score)
            score = np.where(votes == best[None], np.abs(k - m[None]) * (n_levels + 1) + k, np.iinfo(np.int64).max)
            new = np.where(iso, np.argmin(score, axis=0), m)
            changed += int(np.count_nonzero(new != m))
            m = new
        if changed == before:
            break
    return m.astype(a.dtype), changed
