"""The command-line reference (docs/CLI.md), generated from the app itself.

Run ``python -m quaton_fab.cli.docs > docs/CLI.md`` after changing a command or an option;
tests/test_cli_structure.py checks the file is up to date. Option names, defaults and requiredness come from the
built click commands (what ``--help`` shows); types, ranges and help panels from each command function's
``Annotated`` declarations.
"""

from __future__ import annotations

import inspect
import types
import typing
from enum import Enum
from pathlib import Path
from typing import Any, Callable, Optional

import typer
from rich.text import Text

from .app import COMMANDS, app

#: The panel of options declared without ``rich_help_panel`` (as typer names it in ``--help``).
DEFAULT_PANEL = "Options"

HEADER = """\
# Command-line reference

Every `quaton-fab` command with all its options, generated from the app by
`python -m quaton_fab.cli.docs > docs/CLI.md` (a test checks that this file is up to date). The same text, grouped
the same way, is shown by `quaton-fab COMMAND --help`. Lengths take a unit (`780nm`, `0.8um`, `1.5mm`; a plain
number is metres); phases may be written with `pi` (`0,0.5pi,pi,1.5pi`).

Global options (before the command): `--version` shows the version and exits; `--verbose` / `-v` shows the
library's log messages.
"""


def plain(markup: Optional[str]) -> str:
    """Help text without rich markup (``\\[lo, hi]`` → ``[lo, hi]``), on one line."""
    return " ".join(Text.from_markup(markup or "").plain.split())


def cell(text: str) -> str:
    """Text for a Markdown table cell (``|`` escaped)."""
    return text.replace("|", "\\|")


def _base_type(annotation: Any) -> Any:
    """``Optional[X]`` → ``X``; other annotations unchanged."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    optional = typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1
    return args[0] if optional else annotation


def value_text(annotation: Any, info: Any) -> str:
    """The value an option takes: its choices, or its kind with the allowed range (empty for a flag)."""
    kind = _base_type(annotation)
    if isinstance(kind, type) and issubclass(kind, Enum):
        return "|".join(str(member.value) for member in kind)
    if kind is bool:
        return ""
    name = {int: "int", float: "float", str: "text", Path: "path"}.get(kind, getattr(kind, "__name__", str(kind)))
    low, high = getattr(info, "min", None), getattr(info, "max", None)
    bounds = [f"x>={low}"] if low is not None else []
    bounds += [f"x<={high}"] if high is not None else []
    return name + (f" ({', '.join(bounds)})" if bounds else "")


def default_text(param: Any) -> str:
    """The default as ``--help`` shows it: the chosen switch of a ``--x/--no-x`` pair, an enum's value."""
    if param.required:
        return "required"
    default = param.default
    if getattr(param, "is_flag", False) and param.secondary_opts:
        return f"`{param.opts[0] if default else param.secondary_opts[0]}`"
    if default is None or default is False or default == "":
        return ""
    if isinstance(default, Enum):
        default = default.value
    return f"`{default}`" if str(default) else ""


def declarations(func: Callable[..., Any]) -> dict[str, tuple[Any, Any]]:
    """Parameter name → (annotated type, typer OptionInfo/ArgumentInfo) of a command function."""
    hints = typing.get_type_hints(func, include_extras=True)
    out = {}
    for name in inspect.signature(func).parameters:
        annotated = hints[name]
        kind, *extras = typing.get_args(annotated)
        info = next((e for e in extras if isinstance(e, (typer.models.OptionInfo, typer.models.ArgumentInfo))), None)
        out[name] = (kind, info)
    return out


def usage(name: str, params: list[Any]) -> str:
    """``quaton-fab NAME [OPTIONS] ARG [OPTIONAL_ARG]``."""
    words = ["quaton-fab", name, "[OPTIONS]"]
    for param in params:
        if getattr(param, "param_type_name", "") == "argument" or not param.opts[0].startswith("-"):
            arg = param.name.upper()
            words.append(arg if param.required else f"[{arg}]")
    return " ".join(words)


def option_rows(params: list[Any], decl: dict[str, tuple[Any, Any]]) -> dict[str, list[str]]:
    """Panel title → Markdown table rows of its options, panels in ``--help`` order (the default one first)."""
    panels: dict[str, list[str]] = {DEFAULT_PANEL: []}
    for param in params:
        if not param.opts[0].startswith("-"):
            continue
        kind, info = decl[param.name]
        names = " / ".join(f"`{n}`" for n in [*param.opts, *param.secondary_opts])
        panel = getattr(info, "rich_help_panel", None) or DEFAULT_PANEL
        row = f"| {names} | {cell(value_text(kind, info))} | {cell(default_text(param))} | {cell(plain(param.help))} |"
        panels.setdefault(panel, []).append(row)
    return {title: rows for title, rows in panels.items() if rows}


def argument_rows(params: list[Any], decl: dict[str, tuple[Any, Any]]) -> list[str]:
    """Markdown table rows of the positional arguments."""
    rows = []
    for param in params:
        if param.opts[0].startswith("-"):
            continue
        kind, info = decl[param.name]
        need = "required" if param.required else "optional"
        rows.append(f"| `{param.name.upper()}` | {cell(value_text(kind, info))} | {need} | {cell(plain(param.help))} |")
    return rows


def command_section(name: str, func: Callable[..., Any], params: list[Any]) -> list[str]:
    """The Markdown section of one command: synopsis, description, arguments and options by panel."""
    decl = declarations(func)
    doc = inspect.cleandoc(func.__doc__ or "")
    lines = [f"## `{name}`", "", "```", usage(name, params), "```", ""]
    lines += [" ".join(paragraph.split()) + "\n" for paragraph in doc.split("\n\n") if paragraph.strip()]
    arguments = argument_rows(params, decl)
    if arguments:
        lines += ["| argument | value | needed | description |", "|---|---|---|---|", *arguments, ""]
    for title, rows in option_rows(params, decl).items():
        heading = "Options" if title == DEFAULT_PANEL else f"Options: {title}"
        lines += [f"**{heading}**", "", "| option | value | default | description |", "|---|---|---|---|", *rows, ""]
    return lines


def command_name(func: Callable[..., Any]) -> str:
    """The name typer gives a command registered without one: the function's, ``_`` spelled ``-``."""
    return func.__name__.replace("_", "-")


def render() -> str:
    """The whole reference as Markdown (deterministic: no terminal width, no environment)."""
    commands = typer.main.get_command(app).commands
    lines = [HEADER, "## Commands", "", "| command | what it does |", "|---|---|"]
    sections: list[str] = []
    for func in COMMANDS:
        name = command_name(func)
        summary = inspect.cleandoc(func.__doc__ or "").split("\n\n")[0]
        lines.append(f"| [`{name}`](#{name}) | {cell(' '.join(summary.split()))} |")
        sections += command_section(name, func, list(commands[name].params))
    return "\n".join([*lines, "", *sections]).rstrip("\n") + "\n"


if __name__ == "__main__":
    print(render(), end="")
