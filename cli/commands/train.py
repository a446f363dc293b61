"""``quaton-fab train``: train a quantized diffractive design and save it (the configuration, the progress, the
closing metrics and the design-vs-reference gap)."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Annotated, Any, NoReturn, Optional

import typer

from quaton_fab.units import parse_phase_list

from ..choices import EncodingMode, MaskInit, MaskModel, Method, Orientation, Recompute, Task
from ..common import (
    EXIT_INTERRUPTED,
    console,
    fail,
    length,
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
    encoding: Annotated[Optional[EncodingMode], typer.Option(help="How images enter: amplitude (transmission object on a dark field; quickstart's) or phase (phase object in a plane wave; qpi needs it).")] = None,
    method: Annotated[Optional[Method], typer.Option(help="QAT method.")] = None,
    mask_init: Annotated[Optional[MaskInit], typer.Option("--mask-init", help="How the masks start: uniform (random phases over the level range) or flat (every pixel at the lowest level; qpi-quickstart's, which lets narrow-cone QPI learn).")] = None,
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
    o = SimpleNamespace(**locals())
    if nproc is not None and nproc > 1 and "WORLD_SIZE" not in os.environ:
        _launch_data_parallel(nproc)
    run_dir = out or Path("runs") / preset
    _run(_start_config(o, run_dir), run_dir, o)


#: Options that choose how a run starts, not what it trains (allowed with --resume).
RUN_OPTIONS = {"preset", "out", "resume", "force", "nproc", "reference_samples"}


def _start_config(o: SimpleNamespace, run_dir: Path) -> Any:
    """Check the run directory, then the configuration the options ask for (None with --resume: the checkpoint's)."""
    from quaton_fab.training.run import check_run_dir

    given = [k for k, v in vars(o).items() if k not in RUN_OPTIONS and v is not None and v is not False]
    if o.resume and given:
        fail(f"--resume continues with the configuration saved in the checkpoint; drop --{given[0].replace('_', '-')}")
    check_run_dir(run_dir, resume=o.resume, force=o.force)  # before the options are checked
    return None if o.resume else _config(o)


def _config(o: SimpleNamespace) -> Any:
    """The preset with the given options applied (lengths and phases parsed, the vaccination checked)."""
    from quaton_fab.training import preset as make_preset

    overrides = dict(
        task=o.task.value if o.task else None,
        dataset=o.dataset,
        encoding_mode=o.encoding.value if o.encoding else None,
        method=o.method.value if o.method else None,
        mask_init=o.mask_init.value if o.mask_init else None,
        levels=o.levels,
        level_range_rad=_level_range(o.level_range),
        level_phases_rad=tuple(parse_phase_list(o.level_phases, name="--level-phases")) if o.level_phases else None,
        layers=o.layers,
        neurons=o.neurons,
        pitch_m=length(o.pitch, "--pitch"),
        wavelength_m=length(o.wavelength, "--wavelength"),
        spacing_m=length(o.spacing, "--spacing"),
        d_in_m=length(o.d_in, "--d-in", allow_zero=True),
        d_out_m=length(o.d_out, "--d-out", allow_zero=True),
        oversample=parse_oversample(o.oversample),
        allow_undersampling=o.allow_undersampling or None,
        model=o.model.value if o.model else None,
        base_m=length(o.base, "--base", allow_zero=True),
        max_slice_m=length(o.max_slice, "--max-slice"),
        orientation=o.orientation.value if o.orientation else None,
        epochs=o.epochs,
        batch_size=o.batch_size,
        lr=o.lr,
        train_samples=o.train_samples,
        val_samples=o.val_samples,
        test_samples=o.test_samples,
        seed=o.seed,
        material=o.material,
        medium=o.medium,
        z_step_m=length(o.z_step, "--z-step"),
        device=o.device,
        recompute=o.recompute.value if o.recompute else None,
        micro_batch=o.micro_batch,
    )
    config = make_preset(o.preset, **overrides)
    vaccination = _vaccination(o.vaccinate, {
        "height-scale": o.vaccinate_height_scale, "height-noise": o.vaccinate_height_noise,
        "shift": o.vaccinate_shift, "rotation": o.vaccinate_rotation, "spacing": o.vaccinate_spacing,
        "blur": o.vaccinate_blur, "index": o.vaccinate_index,
    }, config.pitch_m)
    return config if vaccination is None else config.replace(vaccinate=vaccination)


def _run(config: Any, run_dir: Path, o: SimpleNamespace) -> None:
    """Train (or resume) through the library's one call, rendering its progress; then the closing lines."""
    from quaton_fab.training.run import RunInterrupted, RunSaveError, run_training

    from ..render_train import TrainRenderer, print_reference_gap

    try:
        outcome = run_training(config, run_dir, resume=o.resume, force=o.force,
                               reference_samples=o.reference_samples, hooks=TrainRenderer())
    except RunInterrupted as stop:
        console.print(f"[yellow]{q(stop)}[/]")
        again = f" --nproc {stop.world_size}" if stop.world_size else ""
        console.print(f"Continue with: [bold]quaton-fab train --out {q(run_dir)} --resume{again}[/]")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except RunSaveError as exc:
        reason = os_error_text(exc.error) if isinstance(exc.error, OSError) else str(exc.error)
        fail(f"{reason}; the trained state is kept in {exc.checkpoint}: fix this, then run "
             f"quaton-fab train --out {run_dir} --resume")
    if outcome.design is None:
        return  # rank 0 writes the design
    if outcome.reference_gap is not None:
        print_reference_gap(outcome.design, outcome.reference_gap)
    console.print(f"Design saved to [bold]{q(run_dir)}[/] (design.json, masks.npz, metrics.json, "
                  f"{len(outcome.figures)} figures).")
    console.print(f"Next: [bold]quaton-fab export {q(run_dir)} --format all[/], then "
                  f"[bold]quaton-fab verify {q(run_dir)} {q(run_dir / 'export')}[/]")


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
