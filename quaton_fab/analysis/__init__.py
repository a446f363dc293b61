"""Judging an export as the printed object: verify, the sheet check, tolerances and the rigorous cross-check.

* :mod:`~quaton_fab.analysis.sheet_check` — a fab sheet checked against its hash, the design and the materials.
* :mod:`~quaton_fab.analysis.verify` — read every exported file back and re-simulate the printed object.
* :mod:`~quaton_fab.analysis.convergence` — the sampling convergence probe ``verify`` runs.
* :mod:`~quaton_fab.analysis.tolerance` — the Monte-Carlo over fabrication errors (+ its figure).
* :mod:`~quaton_fab.analysis.crosscheck` — the scalar models against a rigorous solver on patches (+ figure).

Never imports training: an export is judged from its design and files alone.
"""
