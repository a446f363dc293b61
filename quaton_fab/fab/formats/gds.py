"""GDSII / OASIS export of quantised phase masks, and the reader that rebuilds the level map.

File layout (library unit 1 µm, precision 1 nm, written with gdstk):

* one cell per mask, ``MASK_1`` .. ``MASK_L``, each with its origin at the mask's lower-left corner;
* one layer per level: level k -> layer ``layer_offset + k``, datatype 0 (default: level 0 -> layer 1).
  With ``omit_level0`` the level-0 pixels (the unexposed / base top) are not drawn, and a reader
  treats every pixel covered by no level polygon as level 0;
* geometry: the exact rectangle decomposition of each level (:mod:`.rectangles`), 4 vertices each,
  so every vertex limit (GDSII 199, 8190) is met without fracturing. Rectangles of one size and
  level share one polygon with an explicit repetition: OASIS stores it compactly, GDSII expands it
  to one BOUNDARY per rectangle;
* marks (``marks=True``) on ``mark_layer`` (100): an outline frame and four alignment crosses, all
  outside the aperture, at least 2 pixels wide and at least 2 pixels away from it; a text label on
  ``label_layer`` (101) records levels, layer offset, level-0 handling and pitch;
* a ``TOP`` cell placing all masks side by side (left to right, mask 1 first) with a text label each.

OASIS files also carry layer names ``LVLkk_h=<height>um`` (gdstk ``Library.layer_names``); GDSII has
no layer names, so the same mapping is returned in the stats for the fab sheet.

Pixel convention (shared with :mod:`quaton_fab.fab.formats.stl`): pixel (row i, col j) of an (N, N) map
covers x in [j·p, (j+1)·p], y in [(N-1-i)·p, (N-i)·p]; the image is upright seen from above, row 0
at the top. Lattice positions are rounded once to the 1 nm database grid (x = round(j·p / 1 nm)).
"""

from __future__ import annotations

from quaton_fab.fab.formats.gds_base import GDS_TIMESTAMP, LABEL_LAYER, MARK_LAYER, GdsError, level_layer_names
from quaton_fab.fab.formats.gds_read import read_gds_levels
from quaton_fab.fab.formats.gds_write import MARK_MIN_PIXELS, write_gds

__all__ = ["GdsError", "MARK_LAYER", "LABEL_LAYER", "GDS_TIMESTAMP", "MARK_MIN_PIXELS", "level_layer_names",
           "write_gds", "read_gds_levels"]
