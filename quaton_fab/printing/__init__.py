"""The printed object without files: what is printed, in what, on which printer.

* :mod:`~quaton_fab.printing.defaults` — the default material and base slab.
* :mod:`~quaton_fab.printing.materials` — refractive-index table with dispersion formulas and sources; media
  (the dispersion model itself: :mod:`~quaton_fab.printing.material_model`).
* :mod:`~quaton_fab.printing.level_table` — :class:`~quaton_fab.printing.level_table.LevelTable`: phase level →
  height, base slab, printer z-step snapping and the resulting phase errors.
* :mod:`~quaton_fab.printing.resolve` — which material, medium, base and z-step a print uses (one fallback chain)
  and the one builder of its level table; :mod:`~quaton_fab.printing.print_notes` — warnings on those choices.
* :mod:`~quaton_fab.printing.printer` — printer profiles (slicing, hatching, scan speed).
* :mod:`~quaton_fab.printing.printjob` — printed volume and estimated print time from the height maps.
* :mod:`~quaton_fab.printing.printability` — isolated pixels, diagonal-only contacts, smallest features.

Errors derive from :class:`quaton_fab.errors.FabError`.
"""
