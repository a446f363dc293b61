"""``quaton-fab evaluate``: re-simulate a saved design from its files, at its training fidelity and as the
printed object."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from ..choices import EvalFidelity, MaskModel
from ..common import console, length, parse_oversample, q, user_errors


@user_errors
def evaluate(
    design_dir: Annotated[Path, typer.Argument(help="A design directory (design.json + masks.npz).")],
    dataset: Annotated[Optional[str], typer.Option(help="Evaluate on another dataset spec (default: the design's own test split).")] = None,
    test_samples: Annotated[Optional[int], typer.Option("--test-samples", min=1, help="Simulate only this many test samples (default: the design's whole test split).")] = None,
    fidelity: Annotated[Optional[EvalFidelity], typer.Option(help="design: the design's own training model (reproduces its reported metric); reference: the printed object (sampling rule + relief model); both (default).")] = None,
    model: Annotated[Optional[MaskModel], typer.Option(help="Override the mask model (relief or thin) of the simulation.")] = None,
    oversample: Annotated[Optional[str], typer.Option(help="Override the oversampling: auto (the sampling rule; inside the material for the relief model) or an integer.")] = None,
    material: Annotated[Optional[str], typer.Option(help="Relief material when the design records none (default ip-dip).")] = None,
    base: Annotated[Optional[str], typer.Option(help="Base slab of the relief (default: the design's, else 2um).")] = None,
    max_slice: Annotated[Optional[str], typer.Option("--max-slice", help="Finer relief slices, e.g. 50nm.")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
) -> None:
    """Re-simulate a saved design from its files: at its training fidelity and as the printed object."""
    import dataclasses

    from quaton_fab.design import Design
    from quaton_fab.simulate import simulate_design
    from quaton_fab.simulate import (
        Fidelity,
        default_relief,
        design_fidelity,
        reference_fidelity,
        reference_oversample,
    )

    from ..progress import eval_progress

    design = Design.load(design_dir)
    g = design.geometry
    s_over = parse_oversample(oversample)
    custom = model is not None or s_over is not None or material is not None or base is not None or max_slice is not None
    runs: list[Fidelity] = []
    if custom:
        relief = None
        if (model or MaskModel(design.model)) is MaskModel.relief:
            relief = default_relief(design, material=material, base_m=length(base, "--base", allow_zero=True))
            if max_slice is not None:
                relief = dataclasses.replace(relief, max_slice_m=length(max_slice, "--max-slice"))
        s_value = reference_oversample(g, relief) if s_over == "auto" else s_over  # the rule of the simulated part
        runs.append(Fidelity(int(s_value or g.oversample), relief, "custom"))
    else:
        which = (fidelity or EvalFidelity.both).value
        if which in ("design", "both"):
            runs.append(design_fidelity(design))
        if which in ("reference", "both"):
            ref = reference_fidelity(design)
            if not runs or ref.to_dict() | {"label": ""} != runs[0].to_dict() | {"label": ""}:
                runs.append(ref)
            else:
                runs[0] = dataclasses.replace(runs[0], label="design = reference")
    results = []
    for fid in runs:
        console.print(f"[dim]{fid.label}:[/] {fid.describe(g)}", highlight=False, soft_wrap=True)
        progress, update = eval_progress(console, f"simulating test split ({fid.label})")
        with progress:
            results.append(simulate_design(design, dataset=dataset, samples=test_samples, fidelity=fid, device=device,
                                           progress=update))
    metrics = results[0]
    primary = design.metrics.get("primary", "accuracy")
    reported = design.metrics.get("test", {}).get(primary)
    for fid, values in zip(runs[1:], results[1:]):
        console.print(f"{primary} at {fid.label} fidelity: {values[primary]:.4f}", soft_wrap=True)
        if runs[0].label == "design" and fid.label == "reference":
            console.print(f"design-vs-reference gap ({fid.label} − design, same {values['samples']} samples): "
                          f"{values[primary] - metrics[primary]:+.4f}", soft_wrap=True)
    table = Table(title=f"{q(design_dir)}: re-simulated from design.json + masks.npz ({runs[0].label})")
    table.add_column("metric")
    table.add_column("re-simulated", justify="right")
    table.add_column("reported", justify="right")
    for key, value in metrics.items():
        if isinstance(value, (int, float)):
            rep = design.metrics.get("test", {}).get(key)
            table.add_row(q(key), f"{value:.4f}" if isinstance(value, float) else str(value),
                          "" if rep is None else (f"{rep:.4f}" if isinstance(rep, float) else str(rep)))
    console.print(table)
    if reported is not None and dataset is None and test_samples is None:
        for fid, values in zip(runs, results):
            gap = values[primary] - reported
            console.print(f"{primary} ({fid.label}): re-simulated {values[primary]:.4f}, reported {reported:.4f}, "
                          f"gap {gap:+.2e}", soft_wrap=True)
