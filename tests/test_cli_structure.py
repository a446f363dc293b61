"""The command-line app's structure: readable help at 80 columns, the generated reference, choices from the library,
a light ``--version``, and small modules and functions."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer
import typer.rich_utils
from typer.testing import CliRunner

from quaton_fab.cli import choices
from quaton_fab.cli.app import COMMANDS, app
from quaton_fab.cli.docs import command_name, render

ROOT = Path(__file__).resolve().parent.parent
COMMAND_NAMES = [command_name(func) for func in COMMANDS]
#: Functions allowed over 60 lines (none: every command parses, calls one library function, renders).
LONG_FOR_NOW: set[str] = set()
#: An option row of rich help: "│ " (a required "*" column), then the option's names.
OPTION_ROW = re.compile(r"^│ (?:\*\s+)?((?:-[^\s<│]+\s+)+)")


def help_at_80_columns(args: list[str], monkeypatch: pytest.MonkeyPatch) -> str:
    """``quaton-fab ARGS --help`` rendered as in an 80-column terminal."""
    monkeypatch.setattr(typer.rich_utils, "MAX_WIDTH", 80)  # read from TERMINAL_WIDTH when typer is imported
    result = CliRunner().invoke(app, [*args, "--help"], env={"COLUMNS": "80", "TERMINAL_WIDTH": "80"})
    assert result.exit_code == 0, result.output
    return result.output


def shown_option_names(text: str) -> set[str]:
    """The option names in the option column of rendered help (a truncated one ends in "…")."""
    names: set[str] = set()
    for line in text.splitlines():
        match = OPTION_ROW.match(line)
        if match:
            names.update(match.group(1).split())
    return names


def test_every_command_is_registered_in_order():
    group = typer.main.get_command(app)
    assert list(group.commands) == COMMAND_NAMES


@pytest.mark.parametrize("command", ["", *COMMAND_NAMES])
def test_help_shows_every_option_name_in_full_at_80_columns(command, monkeypatch):
    args = [command] if command else []
    text = help_at_80_columns(args, monkeypatch)
    assert max(len(line) for line in text.splitlines()) <= 80
    group = typer.main.get_command(app)
    params = group.commands[command].params if command else group.params
    expected = {name for p in params for name in [*p.opts, *p.secondary_opts] if name.startswith("-")} | {"--help"}
    shown = shown_option_names(text)
    assert expected <= shown, f"cut or missing at 80 columns: {sorted(expected - shown)}"
    assert not [name for name in shown if name.endswith("…")]


def test_the_truncation_check_can_fail():
    row = "│ --slicing-distan…                       <str>             Override the       │"
    assert shown_option_names(row) == {"--slicing-distan…"}


def test_docs_cli_md_is_up_to_date():
    path = ROOT / "docs" / "CLI.md"
    assert path.read_text(encoding="utf-8") == render(), (
        "docs/CLI.md is out of date: run `python -m quaton_fab.cli.docs > docs/CLI.md`")


def test_the_reference_names_every_option():
    text = render()
    group = typer.main.get_command(app)
    for name in COMMAND_NAMES:
        assert f"## `{name}`" in text
        for param in group.commands[name].params:
            for opt in [*param.opts, *param.secondary_opts]:
                shown = f"`{opt}`" if opt.startswith("-") else f"`{param.name.upper()}`"
                assert shown in text, f"{name}: {opt} is not in docs/CLI.md"


def test_choices_are_the_library_constants():
    from quaton_fab import vocabulary
    from quaton_fab.analysis.tolerance import CRITERIA
    from quaton_fab.fab.export import FORMATS
    from quaton_fab.fab.formats.registry import REGISTRY
    from quaton_fab.optics.relief import ORIENTATIONS
    from quaton_fab.quant.quantizers import METHODS
    from quaton_fab.sweep.spec import EVALUATE
    from quaton_fab.training.config import MODELS, RECOMPUTE, TASKS

    def values(enum):
        return tuple(member.value for member in enum)

    # the modules that act on a choice use the one list in quaton_fab.vocabulary, and so does the CLI
    assert (METHODS, TASKS, MODELS, ORIENTATIONS, RECOMPUTE, FORMATS, EVALUATE, CRITERIA) == (
        vocabulary.METHODS, vocabulary.TASKS, vocabulary.MODELS, vocabulary.ORIENTATIONS, vocabulary.RECOMPUTE,
        vocabulary.FORMATS, vocabulary.FIDELITIES, vocabulary.CRITERIA)
    assert tuple(REGISTRY) == FORMATS
    assert values(choices.Task) == TASKS
    assert values(choices.Method) == METHODS
    assert values(choices.MaskModel) == MODELS
    assert values(choices.Orientation) == ORIENTATIONS
    assert values(choices.Recompute) == RECOMPUTE
    assert values(choices.Format) == (*FORMATS, "all")
    assert values(choices.EvalFidelity) == (*vocabulary.FIDELITIES, "both")
    assert set(values(choices.ToleranceFidelity)) == set(vocabulary.FIDELITIES)
    assert values(choices.Criterion) == CRITERIA
    assert choices.Method("psq-lt") is choices.Method.psq_lt


def test_version_does_not_import_torch():
    code = ("import sys; sys.argv = ['quaton-fab', '--version']\n"
            "from quaton_fab.cli.app import main\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split()[-1] == "False", out


def test_cli_modules_and_functions_are_short():
    long = []
    for path in sorted((ROOT / "cli").rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        if len(source.splitlines()) > 400:
            long.append(f"{path.name}: {len(source.splitlines())} lines")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name not in LONG_FOR_NOW:
                start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                if node.end_lineno - start + 1 > 60:
                    long.append(f"{path.name}:{node.name}: {node.end_lineno - start + 1} lines")
    assert not long, long
