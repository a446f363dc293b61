"""One module per group of commands; :mod:`quaton_fab.cli.app` registers their functions on the typer app."""
