"""What the GDSII/OASIS writer and reader share: layers, units, the error, input checks and the 1 nm lattice.

See :mod:`quaton_fab.fab.formats.gds` for the file layout.
"""

from __future__ import annotations

import datetime
import math
from typing import Sequence

import numpy as np

from quaton_fab.errors import FabError

__all__ = ["GdsError", "MARK_LAYER", "LABEL_LAYER", "GDS_TIMESTAMP", "level_layer_names"]

#: Layer of the outline frame and alignment crosses.
MARK_LAYER = 100
#: Layer of the text labels.
LABEL_LAYER = 101

#: Modification/access time written into GDSII headers. Fixed (not "now") so that exporting the same design twice
#: gives byte-identical files with the same SHA-256.
GDS_TIMESTAMP = datetime.datetime(2000, 1, 1, 0, 0, 0)

_UNIT_M = 1e-6
_PRECISION_M = 1e-9
_NM_PER_UM = 1000.0
_MAX_LAYER = 65535
_OASIS_MAGIC = b"%SEMI-OASIS"


class GdsError(FabError):
    """Bad input for the GDSII/OASIS exporter, or a layout file that is not a valid level map."""


def _check_pitch(pitch_m: float) -> float:
    try:
        value_m = float(pitch_m)
    except (TypeError, ValueError):
        raise GdsError(f"pitch_m must be a length in metres, got {pitch_m!r}") from None
    if not math.isfinite(value_m) or value_m <= 0:
        raise GdsError(f"pitch_m must be a positive finite length in metres, got {pitch_m!r}")
    if value_m < 2 * _PRECISION_M:
        raise GdsError(f"pitch_m = {value_m:.3g} m is below the 1 nm database grid")
    return value_m


def _check_levels(level_indices: np.ndarray, n_levels: int) -> np.ndarray:
    array = np.asarray(level_indices)
    if array.ndim != 3 or min(array.shape) < 1:
        raise GdsError(f"level_indices must be a non-empty (L, N, N) array, got shape {array.shape}")
    if np.issubdtype(array.dtype, np.floating):
        bad = ~np.isfinite(array) | (array != np.round(array))
        if bad.any():
            raise GdsError(f"level_indices must be integers, got {array[bad].flat[0]!r}")
    elif not np.issubdtype(array.dtype, np.integer):
        raise GdsError(f"level_indices must be integers, got dtype {array.dtype}")
    array = array.astype(np.int64)
    if array.min() < 0 or array.max() >= n_levels:
        bad = array.min() if array.min() < 0 else array.max()
        raise GdsError(f"level index {bad} is out of range for {n_levels} levels (0..{n_levels - 1})")
    return array


def _check_heights(level_heights_m: Sequence[float]) -> np.ndarray:
    heights = np.asarray(level_heights_m, dtype=np.float64)
    if heights.ndim != 1 or heights.size < 1:
        raise GdsError(f"level_heights_m must be a non-empty 1-D sequence, got shape {heights.shape}")
    if not np.all(np.isfinite(heights)) or heights.min() < 0:
        raise GdsError(f"level_heights_m must be finite and >= 0, got {heights.tolist()!r}")
    return heights


def level_layer_names(level_heights_m: Sequence[float]) -> list[str]:
    """Default layer names ``LVLkk_h=<height in µm, 3 decimals>um`` for levels k = 0..n-1."""
    width = max(2, len(str(len(level_heights_m) - 1)))
    return [f"LVL{k:0{width}d}_h={h * 1e6:.3f}um" for k, h in enumerate(level_heights_m)]


def _check_layers(n_levels: int, layer_offset: int, marks: bool, mark_layer: int, label_layer: int) -> None:
    if int(layer_offset) != layer_offset or layer_offset < 0:
        raise GdsError(f"layer_offset must be a non-negative integer, got {layer_offset!r}")
    last = layer_offset + n_levels - 1
    if last > _MAX_LAYER:
        raise GdsError(f"levels use layers {layer_offset}..{last}, beyond the GDSII maximum {_MAX_LAYER}")
    for name, layer in (("label_layer", label_layer), ("mark_layer", mark_layer)):
        if name == "mark_layer" and not marks:
            continue
        if layer_offset <= layer <= last:
            raise GdsError(f"{name} {layer} collides with the level layers {layer_offset}..{last}")


def _lattice_nm(count: int, pitch_nm: float) -> np.ndarray:
    """Positions (int64 nm) of the count+1 pixel edges 0, p, 2p, … rounded once to the 1 nm grid."""
    return np.round(np.arange(count + 1) * pitch_nm).astype(np.int64)
