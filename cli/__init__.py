"""The quaton-fab command-line app (installed as ``quaton_fab.cli``; run as ``quaton-fab``)."""
