"""The ``quaton-fab`` typer app: the global options (``--version``, ``--verbose``) and the commands, in the order
``--help`` lists them. Each command lives in :mod:`quaton_fab.cli.commands`; what they share is in
:mod:`quaton_fab.cli.common`. Command modules import the library inside their functions, so building the app
(and answering ``--version``) does not load torch.
"""

from __future__ import annotations

import logging
import sys
from typing import Annotated

import typer

from quaton_fab import __version__

from .commands import analysis, evaluate, export, info, sweep, train
from .common import console

app = typer.Typer(
    name="quaton-fab",
    help="Design diffractive optical networks with n printable phase levels, and export them for fabrication.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode="rich",
)

#: The commands in the order of ``quaton-fab --help``.
COMMANDS = (
    train.train, evaluate.evaluate, info.inspect, info.materials, info.quantizers, export.export,
    analysis.verify, analysis.tolerance, analysis.crosscheck, sweep.sweep, sweep.report,
)


def _version(value: bool) -> None:
    if value:
        console.print(f"quaton-fab {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show the library's log messages.")] = False,
) -> None:
    """quaton-fab: quantization-aware diffractive network design → GDSII / STL."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


for _command in COMMANDS:
    app.command()(_command)


def main() -> None:
    """Console-script entry point (typer reports option-syntax errors itself, with exit code 2)."""
    app()


if __name__ == "__main__":
    main()
