"""The printed object without files: what is printed, in what, on which printer.

* :mod:`~quaton_fab.printing.defaults` — the default material and base slab.
* :mod:`~quaton_fab.printing.materials` — refractive-index table with dispersion formulas and sources; media.
* :mod:`~quaton_fab.printing.level_table` — :class:`~quaton_fab.printing.level_table.LevelTable`: phase level →
  height, base slab, printer z-step snapping and the resulting phase errors.
* :mod:`~quaton_fab.printing.printer` — printer profiles (slicing, hatching, scan speed).
* :mod:`~quaton_fab.printing.printjob` — printed volume and estimated print time from the height maps.
* :mod:`~quaton_fab.printing.printability` — isolated pixels, diagonal-only contacts, smallest features.

Errors derive from :class:`quaton_fab.errors.FabError`.
"""
