"""The fixed choices of the options, as the enums typer turns into ``[a|b|…]`` choices.

Each enum is made from the library's own list in ``quaton_fab.vocabulary`` (``METHODS``, ``TASKS``,
``FORMATS``, …), never a re-spelled one. That module imports nothing heavy, so typer can build every command's
options before it answers ``quaton-fab --version`` without loading torch.
The one choice that exists only in the CLI (``evaluate --fidelity both``) is spelled here.
"""

from __future__ import annotations

from enum import Enum

from quaton_fab import vocabulary


def choice(name: str, values: tuple[str, ...]) -> type[Enum]:
    """A ``str`` enum whose members are ``values`` (member names with ``-`` spelled ``_``: ``psq-lt`` → psq_lt)."""
    members = [(v.replace("-", "_"), v) for v in values]
    return Enum(name, members, type=str, module=__name__)  # type: ignore[return-value]


Task = choice("Task", vocabulary.TASKS)
EncodingMode = choice("EncodingMode", vocabulary.ENCODINGS)
Method = choice("Method", vocabulary.METHODS)
MaskInit = choice("MaskInit", vocabulary.MASK_INITS)
MaskModel = choice("MaskModel", vocabulary.MODELS)
Orientation = choice("Orientation", vocabulary.ORIENTATIONS)
Recompute = choice("Recompute", vocabulary.RECOMPUTE)
#: The export formats, plus ``all`` (every format the printer profile allows).
Format = choice("Format", vocabulary.FORMATS + ("all",))

#: ``evaluate --fidelity``: the design's own training model, the printed-object reference, or both
#: (quaton_fab.simulate's design_fidelity / reference_fidelity).
EvalFidelity = choice("EvalFidelity", vocabulary.FIDELITIES + ("both",))
#: ``tolerance --fidelity``: the printed-object reference (default) or the design's training model.
ToleranceFidelity = choice("ToleranceFidelity", vocabulary.FIDELITIES[::-1])  # the default, reference, first
#: ``tolerance --criterion``: what must stay within the loss (quaton_fab.analysis.tolerance.run_tolerance).
Criterion = choice("Criterion", vocabulary.CRITERIA)
