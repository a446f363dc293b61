"""``quaton-fab train``: train a quantized diffractive design and save it (the configuration, the progress, the
closing metrics and the design-vs-reference gap)."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn, Optional

import typer
from rich.table import Table

from quaton_fab.errors import QuatonFabError
from quaton_fab.units import format_length, parse_phase_list

from ..choices import MaskModel, Method, Orientation, Recompute, Task
from ..common import (
    EXIT_INTERRUPTED,
    console,
    err_console,
    fail,
    length,
    option_names,
    os_error_text,
    parse_oversample,
    q,
    user_errors,
)

#: Help panels of `train --help` (grouped so every option's full name fits an 80-column terminal).
GEOMETRY = "Geometry and light"
MASK_MODEL = "Mask model and material"
OPTIMISATION = "Optimisation"
VACCINATION = "Vaccinated training"
RESOURCES = "Device, memory and processes"


@user_errors
def train(
    preset: Annotated[str, typer.Option(help="Starting configuration: quickstart, paper, paper-classify, qpi-quickstart, tiny.")] = "quickstart",
    task: Annotated[Optional[Task], typer.Option(help="classify (detector regions) or qpi (phase → intensity).")] = None,
    dataset: Annotated[Optional[str], typer.Option(help="mnist, fashion-mnist, rbc, synthetic, idx:PATH, cifar10:PATH, folder:PATH, npz:PATH.")] = None,
    method: Annotated[Optional[Method], typer.Option(help="QAT method.")] = None,
    levels: Annotated[Optional[int], typer.Option(help="Number of phase levels n (default set: 2πk/n, uniform on the circle).", min=2)] = None,
    level_range: Annotated[Optional[str], typer.Option("--level-range", help="n levels on \\[lo, hi], both ends included, e.g. 0,1.99pi (the lab's convention).")] = None,
    level_phases: Annotated[Optional[str], typer.Option("--level-phases", help="Explicit level phases, e.g. 0,0.5pi,pi,1.5pi (overrides --levels).")] = None,
    layers: Annotated[Optional[int], typer.Option(help="Number of phase masks L.", min=1, rich_help_panel=GEOMETRY)] = None,
    neurons: Annotated[Optional[int], typer.Option(help="Neurons per side N.", min=1, rich_help_panel=GEOMETRY)] = None,
    pitch: Annotated[Optional[str], typer.Option(help="Neuron pitch, e.g. 1um.", rich_help_panel=GEOMETRY)] = None,
    wavelength: Annotated[Optional[str], typer.Option(help="Vacuum wavelength, e.g. 780nm.", rich_help_panel=GEOMETRY)] = None,
    spacing: Annotated[Optional[str], typer.Option(help="Mask-to-mask distance, e.g. 30um (also d_in/d_out unless given).", rich_help_panel=GEOMETRY)] = None,
    d_in: Annotated[Optional[str], typer.Option("--d-in", help="Input plane → first mask distance.", rich_help_panel=GEOMETRY)] = None,
    d_out: Annotated[Optional[str], typer.Option("--d-out", help="Last mask → detector distance.", rich_help_panel=GEOMETRY)] = None,
    oversample: Annotated[Optional[str], typer.Option(help="Simulation pixels per neuron side: auto (the sampling rule s = ceil(2·pitch·n_med/λ0), default) or an integer.", rich_help_panel=MASK_MODEL)] = None,
    allow_undersampling: Annotated[bool, typer.Option("--allow-undersampling", help="Accept an --oversample below the sampling rule (warned about and recorded).", rich_help_panel=MASK_MODEL)] = False,
    model: Annotated[Optional[MaskModel], typer.Option(help="Mask model: relief (multislice through the printed relief, default) or thin (one phase screen).", rich_help_panel=MASK_MODEL)] = None,
    base: Annotated[Optional[str], typer.Option(help="Base slab under each relief, e.g. 2um (relief model; default 2um).", rich_help_panel=MASK_MODEL)] = None,
    max_slice: Annotated[Optional[str], typer.Option("--max-slice", help="Largest relief slice, e.g. 100nm (default: one slice per level step).", rich_help_panel=MASK_MODEL)] = None,
    orientation: Annotated[Optional[Orientation], typer.Option(help="base-first (light enters through the base, default) or relief-first.", rich_help_panel=MASK_MODEL)] = None,
    epochs: Annotated[Optional[int], typer.Option(min=1, help="Training epochs (default: the preset's).", rich_help_panel=OPTIMISATION)] = None,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", min=1, help="Samples per optimisation step (default: the preset's).", rich_help_panel=OPTIMISATION)] = None,
    lr: Annotated[Optional[float], typer.Option(help="Adam learning rate.", rich_help_panel=OPTIMISATION)] = None,
    train_samples: Annotated[Optional[int], typer.Option("--train-samples", min=1, help="Training samples used (default: the preset's).", rich_help_panel=OPTIMISATION)] = None,
    val_samples: Annotated[Optional[int], typer.Option("--val-samples", min=1, help="Validation samples used (default: the preset's).", rich_help_panel=OPTIMISATION)] = None,
    test_samples: Annotated[Optional[int], typer.Option("--test-samples", min=1, help="Test samples used (default: the preset's).", rich_help_panel=OPTIMISATION)] = None,
    seed: Annotated[Optional[int], typer.Option(help="Random seed (default: the preset's).", rich_help_panel=OPTIMISATION)] = None,
    material: Annotated[Optional[str], typer.Option(help="Train on this material's printable levels (see `materials`).", rich_help_panel=MASK_MODEL)] = None,
    medium: Annotated[Optional[str], typer.Option(help="Surrounding medium: air, water, oil or an index.", rich_help_panel=GEOMETRY)] = None,
    z_step: Annotated[Optional[str], typer.Option("--z-step", help="Printer height step; levels snapped to it (needs --material).", rich_help_panel=MASK_MODEL)] = None,
    device: Annotated[Optional[str], typer.Option(help="auto, cpu or cuda.", rich_help_panel=RESOURCES)] = None,
    vaccinate: Annotated[Optional[str], typer.Option(help="Vaccinated training: draw fabrication errors for every batch from this named set (2pp: every error at its two-photon literature default; 2pp-placement: shift, rotation, spacing). See `quaton-fab tolerance`.", rich_help_panel=VACCINATION)] = None,
    vaccinate_height_scale: Annotated[Optional[str], typer.Option("--vaccinate-height-scale", help="σ of the global height scale, e.g. 3%.", rich_help_panel=VACCINATION)] = None,
    vaccinate_height_noise: Annotated[Optional[str], typer.Option("--vaccinate-height-noise", help="σ of per-pixel height noise, e.g. 20nm.", rich_help_panel=VACCINATION)] = None,
    vaccinate_shift: Annotated[Optional[str], typer.Option("--vaccinate-shift", help="σ of each mask's lateral shift, e.g. 0.5um or 1px.", rich_help_panel=VACCINATION)] = None,
    vaccinate_rotation: Annotated[Optional[str], typer.Option("--vaccinate-rotation", help="σ of each mask's rotation, e.g. 0.5deg.", rich_help_panel=VACCINATION)] = None,
    vaccinate_spacing: Annotated[Optional[str], typer.Option("--vaccinate-spacing", help="σ of each gap, relative, e.g. 2%.", rich_help_panel=VACCINATION)] = None,
    vaccinate_blur: Annotated[Optional[str], typer.Option("--vaccinate-blur", help="Pixel rounding (Gaussian σ), e.g. 170nm.", rich_help_panel=VACCINATION)] = None,
    vaccinate_index: Annotated[Optional[str], typer.Option("--vaccinate-index", help="σ of the material index error, e.g. 0.005.", rich_help_panel=VACCINATION)] = None,
    recompute: Annotated[Optional[Recompute], typer.Option(help="Relief model: recompute each mask's slices in the backward pass instead of storing them (on), never (off), or when storing them would take over half the memory available (auto, default). Same gradients.", rich_help_panel=RESOURCES)] = None,
    micro_batch: Annotated[Optional[int], typer.Option("--micro-batch", min=1, help="Run each batch through forward + backward in pieces of at most this many samples, accumulating the gradients (same gradients, less memory).", rich_help_panel=RESOURCES)] = None,
    nproc: Annotated[Optional[int], typer.Option("--nproc", min=1, help="Data-parallel training in this many processes on this machine (torchrun + DistributedDataParallel; gloo on CPU, NCCL with one GPU each). Same design as one process with the same --batch-size.", rich_help_panel=RESOURCES)] = None,
    out: Annotated[Optional[Path], typer.Option(help="Run directory (design, checkpoint, figures).")] = None,
    resume: Annotated[bool, typer.Option(help="Continue the interrupted run in --out.")] = False,
    force: Annotated[bool, typer.Option(help="Overwrite an existing run directory.")] = False,
    reference_samples: Annotated[int, typer.Option("--reference-samples", min=0, help="Closing summary: test samples simulated at the printed-object reference to show the design-vs-reference gap (0: skip).")] = 500,
) -> None:
    """Train a quantized diffractive design and save it (design.json + masks.npz + figures).

    Ctrl-C stops after the current step and saves a checkpoint; `--resume` continues it to the same result.
    """
    given = {
        k: v for k, v in locals().items()
        if k not in {"preset", "out", "resume", "force", "nproc", "reference_samples"} and v is not None
        and v is not False
    }
    if nproc is not None and nproc > 1 and "WORLD_SIZE" not in os.environ:
        _launch_data_parallel(nproc)
    from quaton_fab.training import Trainer, TrainingInterrupted, preset as make_preset
    from quaton_fab.training.distributed import from_environment, shutdown
    from quaton_fab.training.run import save_run, write_run_figures
    from quaton_fab.optics.validity import validity_warnings

    from ..progress import TrainProgress

    run_dir = out or Path("runs") / preset
    if resume:
        if given:
            fail(f"--resume continues with the configuration saved in the checkpoint; drop --{next(iter(given)).replace('_', '-')}")
        if not (run_dir / "checkpoint.pt").is_file():
            fail(f"nothing to resume: {str(run_dir / 'checkpoint.pt')!r} does not exist")
        config = Trainer.config_from_checkpoint(run_dir)
        console.print(f"Resuming [bold]{q(run_dir)}[/] with the configuration saved in its checkpoint.")
    else:
        if run_dir.exists() and any(run_dir.iterdir()) and not force:
            fail(f"run directory {str(run_dir)!r} is not empty; use --resume, --force or another --out")
        overrides = dict(
            task=task.value if task else None,
            dataset=dataset,
            method=method.value if method else None,
            levels=levels,
            level_range_rad=_level_range(level_range),
            level_phases_rad=tuple(parse_phase_list(level_phases, name="--level-phases")) if level_phases else None,
            layers=layers,
            neurons=neurons,
            pitch_m=length(pitch, "--pitch"),
            wavelength_m=length(wavelength, "--wavelength"),
            spacing_m=length(spacing, "--spacing"),
            d_in_m=length(d_in, "--d-in", allow_zero=True),
            d_out_m=length(d_out, "--d-out", allow_zero=True),
            oversample=parse_oversample(oversample),
            allow_undersampling=allow_undersampling or None,
            model=model.value if model else None,
            base_m=length(base, "--base", allow_zero=True),
            max_slice_m=length(max_slice, "--max-slice"),
            orientation=orientation.value if orientation else None,
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            train_samples=train_samples,
            val_samples=val_samples,
            test_samples=test_samples,
            seed=seed,
            material=material,
            medium=medium,
            z_step_m=length(z_step, "--z-step"),
            device=device,
            recompute=recompute.value if recompute else None,
            micro_batch=micro_batch,
        )
        config = make_preset(preset, **overrides)
        vaccination = _vaccination(vaccinate, {
            "height-scale": vaccinate_height_scale, "height-noise": vaccinate_height_noise,
            "shift": vaccinate_shift, "rotation": vaccinate_rotation, "spacing": vaccinate_spacing,
            "blur": vaccinate_blur, "index": vaccinate_index,
        }, config.pitch_m)
        if vaccination is not None:
            config = config.replace(vaccinate=vaccination)

    ranks = from_environment(config.device)  # a data-parallel process under torchrun, else a single process
    if not ranks.is_main:
        console.quiet = True  # rank 0 reports; the others only train
    for warning in config.physics_problems()[1]:
        err_console.print(f"[yellow]warning:[/] {q(option_names(warning))}", highlight=False)
    trainer = Trainer(config, run_dir, distributed=ranks)
    metric = "accuracy" if config.task == "classify" else "ssim"
    with console.status("loading data and building the network…"):
        parts = trainer.build()
    _print_config(config, parts.network)
    for warning in validity_warnings(parts.network.geometry, parts.network.relief):
        console.print(f"[yellow]warning:[/] {q(warning)}", highlight=False, soft_wrap=True)  # stdout: stderr stays one error line
    previous = signal.getsignal(signal.SIGINT)

    def on_sigint(signum: int, frame: Any) -> None:
        trainer.request_stop()
        if not ranks.active:  # torchrun repeats the signal to its processes: they keep stopping cleanly
            signal.signal(signal.SIGINT, previous)  # a second Ctrl-C aborts at once
        console.print("[yellow]Ctrl-C: finishing the current step and saving a checkpoint…[/]")

    signal.signal(signal.SIGINT, on_sigint)
    try:
        with TrainProgress(console, metric) as progress:
            trainer.callbacks = progress
            result = trainer.fit(resume=resume)
    except TrainingInterrupted as stop:
        console.print(f"[yellow]{q(stop)}[/]")
        again = f" --nproc {ranks.world_size}" if ranks.active else ""
        console.print(f"Continue with: [bold]quaton-fab train --out {q(run_dir)} --resume{again}[/]")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    finally:
        signal.signal(signal.SIGINT, previous)
        shutdown(ranks)

    if not ranks.is_main:
        return  # rank 0 writes the design
    design = result.design
    try:
        save_run(trainer, design, run_dir, figures=False)  # marks the run complete only once the files are written
    except (QuatonFabError, OSError) as exc:
        reason = os_error_text(exc) if isinstance(exc, OSError) else str(exc)
        fail(f"{reason}; the trained state is kept in {run_dir / 'checkpoint.pt'}: fix this, then run "
             f"quaton-fab train --out {run_dir} --resume")
    with console.status("writing figures…"):
        figs = write_run_figures(design, run_dir)
    _print_metrics(design)
    if reference_samples:
        _print_reference_gap(design, reference_samples, config.device)
    console.print(f"Design saved to [bold]{q(run_dir)}[/] (design.json, masks.npz, metrics.json, {len(figs)} figures).")
    console.print(f"Next: [bold]quaton-fab export {q(run_dir)} --format all[/], then [bold]quaton-fab verify {q(run_dir)} {q(run_dir / 'export')}[/]")


def _launch_data_parallel(processes: int) -> NoReturn:
    """Re-run this command under torchrun in ``processes`` processes (without ``--nproc``) and exit with its code.

    Ctrl-C reaches the processes directly (and through torchrun); this process only waits for them.
    """
    import subprocess

    from quaton_fab.training.distributed import launch_command

    argv, skip = [], False
    for arg in sys.argv[1:]:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            argv.append(arg)
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        code = subprocess.call(launch_command(processes, argv))
    finally:
        signal.signal(signal.SIGINT, previous)
    raise typer.Exit(code)


def _vaccination(name: Optional[str], texts: dict[str, Optional[str]], pitch_m: float) -> Optional[dict[str, Any]]:
    """``--vaccinate NAME`` and ``--vaccinate-ERROR`` values → the config's ``vaccinate`` entry (None: plain)."""
    from quaton_fab.optics.perturbation import ToleranceError, parse_magnitude, vaccination_magnitudes

    given = {key: text for key, text in texts.items() if text is not None}
    if name is None and not given:
        return None
    try:
        overrides = {key: parse_magnitude(key, text, pitch_m=pitch_m) for key, text in given.items()}
        mags = vaccination_magnitudes(name, overrides)
    except ToleranceError as exc:
        fail(f"--vaccinate: {exc}")
    if mags.is_zero:
        fail("--vaccinate: every error magnitude is 0; drop --vaccinate for a plain run")
    return {"set": name, "magnitudes": mags.to_dict()}


def _level_range(text: Optional[str]) -> Optional[tuple[float, float]]:
    """``lo,hi`` phases for --level-range."""
    if text is None:
        return None
    values = parse_phase_list(text, name="--level-range")
    if len(values) != 2 or not values[0] < values[1]:
        fail(f"--level-range needs two phases lo,hi with lo < hi, got {text!r}")
    return values[0], values[1]


def _print_config(config: Any, network: Any) -> None:
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
        ("method / levels", f"{config.method} / {config.levels}" + (f" (snapped to {format_length(config.z_step_m)} steps of {config.effective_material})" if config.z_step_m else "")),
        ("masks", f"{config.layers} × {config.neurons}² neurons, pitch {format_length(config.pitch_m)}, {sampling}"),
        ("mask model", mask_model),
        ("distances", f"d_in {format_length(config.d_in)}, spacing {format_length(config.spacing_m)}, d_out {format_length(config.d_out)}"),
        ("light", f"λ0 {format_length(config.wavelength_m)}, medium {config.medium or config.n_medium}"),
        ("optimiser", f"Adam lr {config.lr}, batch {config.batch_size}, {config.epochs} epochs, seed {config.seed}"),
    ]
    if config.vaccinate is not None:
        from quaton_fab.optics.perturbation import ERRORS

        mags = config.vaccinate["magnitudes"]
        rows.append(("vaccination", f"set {config.vaccinate['set'] or '(custom)'}: " + ", ".join(
            f"{name} {spec.display(mags[spec.field]):g} {spec.unit}" for name, spec in ERRORS.items()
            if mags.get(spec.field))))
    for key, value in rows:
        table.add_row(f"[dim]{key}[/]", q(value))
    console.print(table)


def _print_metrics(design: Any) -> None:
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
        primary = design.metrics.get("primary", "accuracy")
        table.add_row(f"{q(primary)} (unquantized FP)", f"{unq.get(primary, float('nan')):.4f}")
    console.print(table)


def _print_reference_gap(design: Any, samples: int, device: str) -> None:
    """The design metric next to the printed-object reference on ``samples`` test samples, and the gap."""
    from quaton_fab.simulate import design_fidelity, reference_fidelity
    from quaton_fab.training.reference_gap import reference_gap

    from ..progress import eval_progress

    g = design.geometry
    console.print(f"[dim]reference:[/] {q(reference_fidelity(design).describe(g))}", highlight=False, soft_wrap=True)
    progress, update = eval_progress(console, f"design vs reference ({samples} test samples)")
    with progress:
        result = reference_gap(design, samples=samples, device=device, progress=update)
    name = result.metric_name
    if result.same_fidelity:
        console.print(f"{name} at the reference = training model ({q(design_fidelity(design).describe(g))}): "
                      f"{result.reference_metric:.4f} on {result.samples} test samples; gap 0 by construction.",
                      soft_wrap=True)
        return
    console.print(f"{name} on {result.samples} test samples: design (training model) "
                  f"{result.design_metric:.4f}, printed-object reference {result.reference_metric:.4f}: "
                  f"design-vs-reference gap {result.gap:+.4f}", soft_wrap=True)
