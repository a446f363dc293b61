"""Fabrication: materials, phase level → height conversion, exporters and their readers.

Modules (each one idea; none of them knows about training):

* :mod:`~quaton_fab.fab.materials` — refractive-index table with dispersion formulas and sources; media.
* :mod:`~quaton_fab.fab.heights` — :class:`~quaton_fab.fab.heights.LevelTable`: h_k = φ_k·λ0 / (2π(n_mat − n_med)),
  base slab, printer z-step snapping and the resulting phase errors.
* :mod:`~quaton_fab.fab.rectangles` — exact decomposition of pixel level maps into few rectangles.
* :mod:`~quaton_fab.fab.gds` — GDSII/OASIS writer (one cell per mask, one layer per level) and reader.
* :mod:`~quaton_fab.fab.stl` — watertight binary STL height fields (µm), stacked assembly, reader.
* :mod:`~quaton_fab.fab.heightmap_png` — 16-bit PNG/TIFF and 8-bit full-scale PNG/BMP height maps (optionally
  inverted for positive resists) for grayscale lithography, and their readers.
* :mod:`~quaton_fab.fab.printer` — printer profiles (slicing, hatching, scan speed).
* :mod:`~quaton_fab.fab.printjob` — printed volume and estimated print time from the height maps.
* :mod:`~quaton_fab.fab.printability` — isolated pixels, diagonal-only contacts, smallest features; a post-filter.
* :mod:`~quaton_fab.fab.sheet` — ``fab_sheet.json``/``.md``: everything a facility reads (conventions, levels,
  files, checks, print estimate, printability, warnings, verify result).
* :mod:`~quaton_fab.fab.report_html` — ``report.html``: the export as one self-contained page (maps, 3D reliefs,
  printability spots, verification, tolerances, files), rebuilt on every fab sheet write.
* :mod:`~quaton_fab.fab.export` — writes all of the above for a :class:`~quaton_fab.design.Design`, reading
  every file back before it is moved into place.

Every error raised here derives from :class:`FabError` (a ``ValueError``) and carries a one-line message.
"""

from quaton_fab.fab.errors import FabError
from quaton_fab.fab.heights import LevelTable, level_table, printable_phases
from quaton_fab.fab.materials import Material, get_material, parse_medium

__all__ = ["FabError", "LevelTable", "level_table", "printable_phases", "Material", "get_material", "parse_medium"]
