"""The fixed choices of the options, as the enums typer turns into ``[a|b|…]`` choices.

Each enum is made from the library's own constant (``METHODS``, ``TASKS``, ``FORMATS``, …), never a re-spelled
list. The constants are read from the library's source (``ast.literal_eval`` of the module-level assignment)
rather than imported: importing those modules loads torch, and typer builds every command's options before it
answers ``quaton-fab --version``, which must stay fast. tests/test_cli_structure.py checks each enum against the
imported constant. The few choices that exist only in the CLI (``both``, the tolerance criterion) are spelled
here, next to the library names they stand for.
"""

from __future__ import annotations

import ast
from enum import Enum
from functools import lru_cache
from pathlib import Path

import quaton_fab

_LIBRARY = Path(quaton_fab.__file__).resolve().parent


@lru_cache(maxsize=None)
def _module_constants(module: str) -> dict[str, object]:
    """Every literal module-level constant (``NAME = literal``) of a library module, by name."""
    path = _LIBRARY.joinpath(*module.split(".")[1:]).with_suffix(".py")
    found: dict[str, object] = {}
    for node in ast.parse(path.read_text(encoding="utf-8"), filename=str(path)).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
        elif isinstance(node, ast.AnnAssign):
            target = node.target
        else:
            continue
        if isinstance(target, ast.Name) and node.value is not None:
            try:
                found[target.id] = ast.literal_eval(node.value)
            except ValueError:
                continue  # not a literal (a dict of classes, a computed value): not a choice list
    return found


def library_constant(module: str, name: str) -> tuple[str, ...]:
    """The string tuple ``module.name`` of the library, read from its source (no import)."""
    value = _module_constants(module).get(name)
    if not isinstance(value, tuple) or not all(isinstance(v, str) for v in value):
        raise RuntimeError(f"{module}.{name} is not a literal tuple of strings")
    return value


def choice(name: str, values: tuple[str, ...]) -> type[Enum]:
    """A ``str`` enum whose members are ``values`` (member names with ``-`` spelled ``_``: ``psq-lt`` → psq_lt)."""
    members = [(v.replace("-", "_"), v) for v in values]
    return Enum(name, members, type=str, module=__name__)  # type: ignore[return-value]


#: Where each enum comes from: (library module, constant), in the library's order.
SOURCES = {
    "Task": ("quaton_fab.training.config", "TASKS"),
    "Method": ("quaton_fab.quant.quantizers", "METHODS"),
    "MaskModel": ("quaton_fab.training.config", "MODELS"),
    "Orientation": ("quaton_fab.optics.relief", "ORIENTATIONS"),
    "Recompute": ("quaton_fab.training.config", "RECOMPUTE"),
    "Format": ("quaton_fab.fab.export", "FORMATS"),
}

Task = choice("Task", library_constant(*SOURCES["Task"]))
Method = choice("Method", library_constant(*SOURCES["Method"]))
MaskModel = choice("MaskModel", library_constant(*SOURCES["MaskModel"]))
Orientation = choice("Orientation", library_constant(*SOURCES["Orientation"]))
Recompute = choice("Recompute", library_constant(*SOURCES["Recompute"]))
#: The export formats, plus ``all`` (every format the printer profile allows).
Format = choice("Format", library_constant(*SOURCES["Format"]) + ("all",))

#: ``evaluate --fidelity``: the design's own training model, the printed-object reference, or both
#: (quaton_fab.simulate's design_fidelity / reference_fidelity).
EvalFidelity = choice("EvalFidelity", ("design", "reference", "both"))
#: ``tolerance --fidelity``: the printed-object reference (default) or the design's training model.
ToleranceFidelity = choice("ToleranceFidelity", ("reference", "design"))
#: ``tolerance --criterion``: what must stay within the loss (quaton_fab.analysis.tolerance.run_tolerance).
Criterion = choice("Criterion", ("p5", "mean"))
