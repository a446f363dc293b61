"""quaton-fab: design diffractive optical networks whose phase masks take only n printable levels.

Train with quantization-aware training (QuATON's PSQ-LT and baselines), convert the levels to material heights
and export GDSII/OASIS/STL/PNG files that are verified by reading them back.

Entry points: :func:`quaton_fab.optics.propagate`, :class:`quaton_fab.Design`, :mod:`quaton_fab.training`,
:mod:`quaton_fab.fab`. The command-line app is ``quaton-fab``.
"""

from quaton_fab._version import __version__

__all__ = ["__version__", "Design"]


def __getattr__(name: str):
    # Design pulls in torch; import it lazily so `quaton-fab --version` stays fast.
    if name == "Design":
        from quaton_fab.design import Design

        return Design
    raise AttributeError(f"module 'quaton_fab' has no attribute {name!r}")
