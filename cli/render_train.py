"""What ``quaton-fab train`` prints: :func:`~quaton_fab.training.run.run_training`'s hooks rendered with rich
(the configuration, warnings, progress bars, the test metrics) and the closing design-vs-reference gap.

Imported inside the command (it loads the library, hence torch), so ``--version`` stays light.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.table import Table

from quaton_fab.optics.perturbation import ERRORS
from quaton_fab.simulate import design_fidelity
from quaton_fab.tasks.metrics import primary_for_task, primary_metric_name
from quaton_fab.training.run import RunHooks
from quaton_fab.units import format_length

from .common import console, err_console, option_names, q
from .progress import TrainProgress
from .render_analysis import progress_bar

__all__ = ["TrainRenderer", "print_config", "print_metrics", "print_reference_gap"]

#: What the console shows while a stage without progress counts runs.
STAGES = {"build": "loading data and building the network…", "figures": "writing figures…"}


class TrainRenderer(RunHooks):
    """run_training's hooks as ``quaton-fab train`` prints them."""

    def resuming(self, run_dir: Path) -> None:
        console.print(f"Resuming [bold]{q(run_dir)}[/] with the configuration saved in its checkpoint.")

    def secondary_rank(self) -> None:
        console.quiet = True  # rank 0 reports; the others only train

    def warning(self, kind: str, text: str) -> None:
        if kind == "physics":
            err_console.print(f"[yellow]warning:[/] {q(option_names(text))}", highlight=False)
        else:  # stdout: stderr stays one error line
            console.print(f"[yellow]warning:[/] {q(text)}", highlight=False, soft_wrap=True)

    def stage(self, name: str) -> Any:
        return console.status(STAGES[name])

    def built(self, config: Any, network: Any) -> None:
        print_config(config, network)

    def training(self, trainer: Any, resumed: bool) -> Any:
        return TrainProgress(console, primary_for_task(trainer.config.task))

    def stopping(self) -> None:
        console.print("[yellow]Ctrl-C: finishing the current step and saving a checkpoint…[/]")

    def saved(self, design: Any, figures: list[Path]) -> None:
        print_metrics(design)

    def fidelity(self, label: str, description: str) -> None:
        console.print(f"[dim]{label}:[/] {q(description)}", highlight=False, soft_wrap=True)

    def progress(self, label: str) -> Any:
        return progress_bar(label)


def print_config(config: Any, network: Any) -> None:
    """The training configuration table (geometry, sampling, mask model, distances, light, optimiser, vaccination)."""
    g = network.geometry
    table = Table(title="training configuration", show_header=False, box=None)
    sampling = f"oversample {g.oversample} (rule: s ≥ {g.rule_oversample}" + (
        ")" if g.meets_sampling_rule else ", [red]NOT MET: under-sampled[/])"
    )
    if network.relief is None:
        mask_model = "thin phase screens"
    else:
        r = network.relief
        mask_model = (f"printed relief in {config.effective_material} (n {r.n_material:.4f}), base "
                      f"{format_length(r.base_m)}, top {format_length(r.top_m)}, {len(r.slice_edges_m()) - 1} slices, "
                      f"{r.orientation}")
    rows = [
        ("task / dataset", f"{config.task} / {config.dataset}"),
        ("method / levels", f"{config.method} / {config.levels}" + (
            f" (snapped to {format_length(config.z_step_m)} steps of {config.effective_material})"
            if config.z_step_m else "")),
        ("masks", f"{config.layers} × {config.neurons}² neurons, pitch {format_length(config.pitch_m)}, {sampling}"),
        ("mask model", mask_model),
        ("distances", f"d_in {format_length(config.d_in)}, spacing {format_length(config.spacing_m)}, "
                      f"d_out {format_length(config.d_out)}"),
        ("light", f"λ0 {format_length(config.wavelength_m)}, medium {config.medium or config.n_medium}"),
        ("optimiser", f"Adam lr {config.lr}, batch {config.batch_size}, {config.epochs} epochs, seed {config.seed}"),
    ]
    if config.vaccinate is not None:
        mags = config.vaccinate["magnitudes"]
        rows.append(("vaccination", f"set {config.vaccinate['set'] or '(custom)'}: " + ", ".join(
            f"{name} {spec.display(mags[spec.field]):g} {spec.unit}" for name, spec in ERRORS.items()
            if mags.get(spec.field))))
    for key, value in rows:
        table.add_row(f"[dim]{key}[/]", q(value))
    console.print(table)


def print_metrics(design: Any) -> None:
    """The test metrics table (exported level phases, and the unquantized primary metric when recorded)."""
    test = design.metrics.get("test", {})
    table = Table(title="test metrics (exported level phases)")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in test.items():
        if isinstance(value, float):
            table.add_row(q(key), f"{value:.4f}")
        elif isinstance(value, int):
            table.add_row(q(key), str(value))
    if "test_unquantized" in design.metrics:
        unq = design.metrics["test_unquantized"]
        primary = primary_metric_name(design.metrics)
        table.add_row(f"{q(primary)} (unquantized FP)", f"{unq.get(primary, float('nan')):.4f}")
    console.print(table)


def print_reference_gap(design: Any, result: Any) -> None:
    """The design metric next to the printed-object reference, and the gap (``result``: a
    :class:`~quaton_fab.training.reference_gap.ReferenceGap`)."""
    name = result.metric_name
    if result.same_fidelity:
        console.print(f"{name} at the reference = training model "
                      f"({q(design_fidelity(design).describe(design.geometry))}): "
                      f"{result.reference_metric:.4f} on {result.samples} test samples; gap 0 by construction.",
                      soft_wrap=True)
        return
    console.print(f"{name} on {result.samples} test samples: design (training model) "
                  f"{result.design_metric:.4f}, printed-object reference {result.reference_metric:.4f}: "
                  f"design-vs-reference gap {result.gap:+.4f}", soft_wrap=True)
