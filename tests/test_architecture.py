"""The import graph keeps the layers of docs/ARCHITECTURE.md: no circles, no upward imports, no hidden imports.

The layers are read from the ``layers`` block of docs/ARCHITECTURE.md (the one place they are written), the
imports from the source with :mod:`ast` (every ``import``/``from … import`` at any depth, relative ones
resolved). A line of the block is one layer, the top first; names on one line separated by ``|`` are
independent (neither may import the other), names separated by ``:`` may import each other. A module belongs to
the longest name that prefixes it. The command-line app (folder ``cli/``) is installed as ``quaton_fab.cli``.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ARCHITECTURE = ROOT / "docs" / "ARCHITECTURE.md"
#: Function-local imports of project modules allowed in the library, each with its reason.
LAZY_ALLOWED = {
    ("quaton_fab", "quaton_fab.design"): "the package root stays light so `quaton-fab --version` does not load torch",
}


def module_files() -> dict[str, Path]:
    """Dotted module name → file, for the library and the CLI."""
    out = {}
    for base, prefix in ((ROOT / "quaton_fab", "quaton_fab"), (ROOT / "cli", "quaton_fab.cli")):
        for path in sorted(base.rglob("*.py")):
            parts = list(path.relative_to(base).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join([prefix, *parts])] = path
    return out


def imports(name: str, path: Path, known: set[str]) -> list[tuple[str, int, bool]]:
    """Project modules that ``name`` imports: (target, line, inside a function or class)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = []

    def resolve(target: str) -> str | None:
        while target and target not in known:
            target = target.rsplit(".", 1)[0] if "." in target else ""
        return target or None

    def visit(node: ast.AST, nested: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = nested or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
            if isinstance(child, ast.Import):
                for alias in child.names:
                    if (hit := resolve(alias.name)) is not None:
                        found.append((hit, child.lineno, nested))
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")
                    anchor = anchor[: len(anchor) - child.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                for alias in child.names:  # `from pkg import submodule` imports the submodule
                    hit = resolve(f"{base}.{alias.name}") if f"{base}.{alias.name}" in known else resolve(base)
                    if hit is not None:
                        found.append((hit, child.lineno, nested))
            visit(child, inner)

    visit(tree, False)
    return [(t, line, nested) for t, line, nested in found if t != name]


def layers() -> list[list[list[str]]]:
    """The layers block: top first; each layer a list of independent groups, each group a list of names."""
    block = re.search(r"```layers\n(.*?)```", ARCHITECTURE.read_text(), re.S)
    assert block, f"{ARCHITECTURE} has no ```layers block"
    rows = [line.split("#")[0].strip() for line in block.group(1).splitlines()]
    return [[[n.strip() for n in group.split(":")] for group in row.split("|")] for row in rows if row]


def place(module: str, table: list[list[list[str]]]) -> tuple[int, int, str] | None:
    """(layer index from the top, group index, the block's name) of the longest name prefixing ``module``."""
    best = None
    for i, row in enumerate(table):
        for j, group in enumerate(row):
            for entry in group:
                full = f"quaton_fab.{entry}" if entry != "quaton_fab" else entry
                if module == full or module.startswith(full + "."):
                    if best is None or len(full) > len(best[2]):
                        best = (i, j, full)
    return best


def graph() -> dict[str, list[tuple[str, int, bool]]]:
    files = module_files()
    return {name: imports(name, path, set(files)) for name, path in files.items()}


def test_every_module_has_a_layer():
    table = layers()
    missing = [m for m in module_files() if m != "quaton_fab" and place(m, table) is None]
    assert not missing, f"modules not placed in the layers of {ARCHITECTURE.name}: {missing}"


def test_no_upward_or_sideways_imports():
    table = layers()
    bad = []
    for module, targets in graph().items():
        if module == "quaton_fab":
            continue
        here = place(module, table)
        for target, line, _ in targets:
            there = place(target, table)
            if target == "quaton_fab" or there is None or here is None or there[2] == here[2]:
                continue
            upward = there[0] < here[0]
            sideways = there[0] == here[0] and there[1] != here[1]
            if upward or sideways:
                kind = "up" if upward else "across independent"
                bad.append(f"{module}:{line} imports {target} ({kind}: {here[2]} -> {there[2]})")
    assert not bad, "\n".join(bad)


def test_no_import_circles():
    g = {m: sorted({t for t, _, _ in ts}) for m, ts in graph().items()}
    index, low, stack, on, circles = {}, {}, [], set(), []

    def strong(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in g.get(v, []):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                circles.append(sorted(comp))

    for v in g:
        if v not in index:
            strong(v)
    assert not circles, f"import circles: {circles}"


def test_no_function_local_project_imports_in_the_library():
    bad = []
    for module, targets in graph().items():
        if module.startswith("quaton_fab.cli"):
            continue
        for target, line, nested in targets:
            if nested and (module, target) not in LAZY_ALLOWED:
                bad.append(f"{module}:{line} imports {target} inside a function")
    assert not bad, "\n".join(bad)


def test_the_checker_sees_a_planted_upward_import(tmp_path, monkeypatch):
    """The check can fail: an optics module importing the training package is reported."""
    table = layers()
    here, there = place("quaton_fab.optics.relief", table), place("quaton_fab.training.trainer", table)
    assert here is not None and there is not None and there[0] < here[0]
    planted = tmp_path / "relief.py"
    planted.write_text("def f():\n    from quaton_fab.training.trainer import Trainer\n")
    found = imports("quaton_fab.optics.relief", planted, set(module_files()))
    assert found == [("quaton_fab.training.trainer", 2, True)]
