"""Size norms of docs/ARCHITECTURE.md: modules ≤ 400 lines, functions and methods ≤ 60 lines.

Every ``.py`` file under ``quaton_fab/`` and ``cli/`` is read with :mod:`ast`. A function's size is
``end_lineno − lineno + 1`` of its ``def`` (decorators not counted); a module's size is its number of lines. An
exception is allowed only when argued: the function's (or module's) docstring has a line that starts with
``Long:`` saying why (a table, a format's byte layout).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def source_files() -> list[Path]:
    """The library's and the command-line app's Python files, sorted."""
    return sorted([*(ROOT / "quaton_fab").rglob("*.py"), *(ROOT / "cli").rglob("*.py")])


def argued(node: ast.AST) -> bool:
    """True when ``node``'s docstring has a line starting with ``Long:`` (the argued exception)."""
    doc = ast.get_docstring(node, clean=True) or ""
    return any(line.strip().startswith("Long:") for line in doc.splitlines())


def offenders(path: Path, root: Path = ROOT) -> list[str]:
    """``path:line name (n lines)`` (relative to ``root``) for the module and each function over its limit and
    not argued."""
    text = path.read_text(encoding="utf-8")
    tree = ast.parse(text, filename=str(path))
    rel = path.relative_to(root)
    found = []
    n_lines = len(text.splitlines())
    if n_lines > MAX_MODULE_LINES and not argued(tree):
        found.append(f"{rel}: module ({n_lines} lines > {MAX_MODULE_LINES})")
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            size = node.end_lineno - node.lineno + 1
            if size > MAX_FUNCTION_LINES and not argued(node):
                found.append(f"{rel}:{node.lineno} {node.name} ({size} lines > {MAX_FUNCTION_LINES})")
    return found


def test_modules_and_functions_keep_their_size():
    bad = [line for path in source_files() for line in offenders(path)]
    head = f"{len(bad)} over the size norms (argue an exception with a 'Long:' docstring line):"
    assert not bad, "\n".join([head, *bad])


def test_the_checker_sees_a_long_function_and_accepts_an_argued_one(tmp_path):
    """The check can fail, and a ``Long:`` line in the docstring lifts it."""
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    plain = tmp_path / "plain.py"
    plain.write_text(f"def f():\n{body}\n")
    argued_file = tmp_path / "argued.py"
    argued_file.write_text(f'def f():\n    """A table.\n\n    Long: one row a line.\n    """\n{body}\n')
    assert offenders(plain, tmp_path) == [f"plain.py:1 f ({MAX_FUNCTION_LINES + 1} lines > {MAX_FUNCTION_LINES})"]
    assert offenders(argued_file, tmp_path) == []
