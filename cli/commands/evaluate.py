"""``quaton-fab evaluate``: re-simulate a saved design from its files, at its training fidelity and as the
printed object."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from quaton_fab.printing.defaults import DEFAULT_MATERIAL

from ..choices import EvalFidelity, MaskModel
from ..common import length, parse_oversample, user_errors


@user_errors
def evaluate(
    design_dir: Annotated[Path, typer.Argument(help="A design directory (design.json + masks.npz).")],
    dataset: Annotated[Optional[str], typer.Option(help="Evaluate on another dataset spec (default: the design's own test split).")] = None,
    test_samples: Annotated[Optional[int], typer.Option("--test-samples", min=1, help="Simulate only this many test samples (default: the design's whole test split).")] = None,
    fidelity: Annotated[Optional[EvalFidelity], typer.Option(help="design: the design's own training model (reproduces its reported metric); reference: the printed object (sampling rule + relief model); both (default).")] = None,
    model: Annotated[Optional[MaskModel], typer.Option(help="Override the mask model (relief or thin) of the simulation.")] = None,
    oversample: Annotated[Optional[str], typer.Option(help="Override the oversampling: auto (the sampling rule; inside the material for the relief model) or an integer; with --fidelity reference, a finer reference (its slicing kept).")] = None,
    material: Annotated[Optional[str], typer.Option(help=f"Relief material when the design records none (default {DEFAULT_MATERIAL}).")] = None,
    base: Annotated[Optional[str], typer.Option(help="Base slab of the relief (default: the design's, else 2um).")] = None,
    max_slice: Annotated[Optional[str], typer.Option("--max-slice", help="Finer relief slices, e.g. 50nm.")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
) -> None:
    """Re-simulate a saved design from its files: at its training fidelity and as the printed object."""
    from quaton_fab.analysis.evaluation import evaluate_design
    from quaton_fab.design import Design

    from ..render_analysis import AnalysisRenderer, show_evaluation

    design = Design.load(design_dir)
    ev = evaluate_design(design, dataset=dataset, samples=test_samples, fidelity=fidelity.value if fidelity else None,
                         model=model.value if model else None, oversample=parse_oversample(oversample),
                         material=material, base_m=length(base, "--base", allow_zero=True),
                         max_slice_m=length(max_slice, "--max-slice"), device=device,
                         hooks=AnalysisRenderer(escape_fidelity=False))
    show_evaluation(design_dir, ev)
