"""Fabrication files: the exporters, their readers, the fab sheet and the all-or-nothing export.

* :mod:`~quaton_fab.fab.formats` — one module per file format (GDSII/OASIS, STL, stacked STL, grayscale height
  maps, Nanoscribe GWL): writer and reader each.
* :mod:`~quaton_fab.fab.rectangles` — exact decomposition of pixel level maps into few rectangles.
* :mod:`~quaton_fab.fab.sheet` — ``fab_sheet.json``/``.md``: everything a facility reads (conventions, levels,
  files, checks, print estimate, printability, warnings, verify result), and the sheet's own hash.
* :mod:`~quaton_fab.fab.report_html` — ``report.html``: the export as one self-contained page.
* :mod:`~quaton_fab.fab.export` — writes all of the above for a :class:`~quaton_fab.design.Design`, reading
  every file back before it is moved into place.

The printed object without files (materials, the level table, printer profiles, print cost, printability) is
:mod:`quaton_fab.printing`. Nothing here knows about training. Every error raised here derives from
:class:`quaton_fab.errors.FabError` (a ``ValueError``) and carries a one-line message.
"""
