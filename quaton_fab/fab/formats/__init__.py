"""File formats of an export: one registry of format specs, and per format its writer and its reader.

* :mod:`~quaton_fab.fab.formats.registry` — ``REGISTRY``: every format's spec (files, writer, read-backs,
  tolerance, slicing grid, fab-sheet sections); the export and verify loop over it.
  :mod:`~quaton_fab.fab.formats.spec` — what a spec, a write job and a read-back are.
* GDSII/OASIS: :mod:`~quaton_fab.fab.formats.gds` (one cell per mask, one layer per level; writer in ``gds_write``,
  reader in ``gds_read``), as an export format in ``gds_spec``.
* STL: :mod:`~quaton_fab.fab.formats.stl` (watertight binary height fields in µm and the reader; the mesh in
  ``stl_lattice``, ``stl_faces``, ``stl_mesh``), :mod:`~quaton_fab.fab.formats.stack` (all masks stacked in
  one solid; the layout in ``stack_layout``), as an export format in ``stl_spec``.
* :mod:`~quaton_fab.fab.formats.heightmap` — 16-bit PNG/TIFF and 8-bit full-scale PNG/BMP height maps (grey
  scales in ``heightmap_scale``), as export formats in ``heightmap_spec``.
* :mod:`~quaton_fab.fab.formats.gwl` — Nanoscribe GWL print jobs (the parser in ``gwl_job``), as an export
  format in ``gwl_spec``.
"""
