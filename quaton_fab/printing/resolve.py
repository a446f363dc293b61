"""Which print: material, medium, base slab and z-step → the level table. One fallback chain for each choice.

Every place that turns a design's level phases into printed heights (training, simulation of the printed
object, export, the fab-sheet check) resolves its choices here, in the same order:

* material: the one asked for, else the one the design was trained for (its ``fabrication`` record), else
  :data:`~quaton_fab.printing.defaults.DEFAULT_MATERIAL`;
* medium: the one asked for (a name or an index, evaluated at λ0), else the design's ``n_medium``;
* base slab: the one asked for, else the base the design was trained through, else
  :data:`~quaton_fab.printing.defaults.DEFAULT_BASE_M`;
* z-step: the one asked for (None: exact heights).

:func:`build_level_table` then builds the table once; callers pass the built table on instead of rebuilding it.
The design itself is not imported here (it lives above this layer): callers hand over its ``fabrication``
record, a plain mapping.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from quaton_fab.printing.defaults import DEFAULT_BASE_M, DEFAULT_MATERIAL
from quaton_fab.printing.level_table import LevelTable, level_table
from quaton_fab.printing.materials import Material, get_material, parse_medium

__all__ = [
    "PrintChoices",
    "resolve_material",
    "resolve_n_medium",
    "resolve_base_m",
    "resolve_print",
    "build_level_table",
]


@dataclass(frozen=True)
class PrintChoices:
    """The resolved choices of one print.

    Attributes:
        material: the relief material. n_medium: index of the medium around the masks.
        base_m: base slab under every pixel (m). z_step_m: printer z-step (m), None for exact heights.
    """

    material: Material
    n_medium: float
    base_m: float
    z_step_m: float | None = None


def resolve_material(material: str | None, trained: Mapping[str, Any] | None = None) -> Material:
    """The material asked for, else the trained one (``trained["material"]``), else the default."""
    return get_material(material or (trained or {}).get("material") or DEFAULT_MATERIAL)


def resolve_n_medium(medium: str | float | None, wavelength_m: float, n_medium: float) -> float:
    """Index of the medium: ``medium`` (name or index, at ``wavelength_m`` in m) if given, else ``n_medium``."""
    if medium is None:
        return n_medium
    return parse_medium(medium, wavelength_m)[1]


def resolve_base_m(base_m: float | None, trained: Mapping[str, Any] | None = None) -> float:
    """Base slab (m): ``base_m`` if given, else the trained one (``trained["base_m"]``), else the default."""
    if base_m is not None:
        return float(base_m)
    recorded = (trained or {}).get("base_m")
    return float(recorded) if recorded is not None else DEFAULT_BASE_M


def resolve_print(
    trained: Mapping[str, Any] | None,
    *,
    wavelength_m: float,
    n_medium: float,
    material: str | None = None,
    medium: str | float | None = None,
    base_m: float | None = None,
    z_step_m: float | None = None,
) -> PrintChoices:
    """All four choices of a print (module docstring for the order).

    Args:
        trained: the design's fabrication record (``Design.fabrication``), or None.
        wavelength_m: design vacuum wavelength λ0 (m). n_medium: the design's medium index.
        material, medium, base_m, z_step_m: what the user asked for (None: fall back).
    """
    return PrintChoices(
        material=resolve_material(material, trained),
        n_medium=resolve_n_medium(medium, wavelength_m, n_medium),
        base_m=resolve_base_m(base_m, trained),
        z_step_m=z_step_m,
    )


def build_level_table(level_phases_rad: Any, wavelength_m: float, choices: PrintChoices) -> LevelTable:
    """The level table of ``level_phases_rad`` ((n,) rad) at λ0 ``wavelength_m`` (m) for ``choices``."""
    return level_table(
        np.asarray(level_phases_rad, dtype=np.float64), choices.material, wavelength_m, choices.n_medium,
        choices.base_m, choices.z_step_m,
    )
