"""File formats of an export: one module per format, each with its writer and its reader.

* :mod:`~quaton_fab.fab.formats.gds` — GDSII/OASIS (one cell per mask, one layer per level).
* :mod:`~quaton_fab.fab.formats.stl` — watertight binary STL height fields in µm, and the reader.
* :mod:`~quaton_fab.fab.formats.stack` — the masks stacked at their design spacings in one STL.
* :mod:`~quaton_fab.fab.formats.heightmap` — 16-bit PNG/TIFF and 8-bit full-scale PNG/BMP height maps.
* :mod:`~quaton_fab.fab.formats.gwl` — Nanoscribe GWL print jobs and their parser.
"""
