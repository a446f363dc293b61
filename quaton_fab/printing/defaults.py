"""The printed object's defaults when neither the user nor the design says otherwise.

One home for each: the material a design is trained for and exported in, and the base slab under every pixel.
"""

from __future__ import annotations

__all__ = ["DEFAULT_MATERIAL", "DEFAULT_BASE_M"]

#: Material (a name in :data:`quaton_fab.printing.materials.MATERIALS`) when none is given.
DEFAULT_MATERIAL = "ip-dip"
#: Base slab thickness under every pixel (m) when none is given: a free-standing plate that survives handling.
DEFAULT_BASE_M = 2e-6
