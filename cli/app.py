"""The ``quaton-fab`` command-line app: parses arguments, calls the library, renders with rich.

Errors a user can cause (a bad length, an unknown material, a missing design, …) are shown as one red line on
stderr with exit code 2 and no traceback. Only the library's :class:`~quaton_fab.errors.QuatonFabError` and
``OSError`` (path + the system's reason) are treated so; anything else is a bug and keeps its traceback. Every
string that comes from the user or from a file is escaped before rich renders it (``[/x]`` in a path is text).
"""

from __future__ import annotations

import functools
import logging
import os
import re
import shlex
import signal
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Callable, NoReturn, Optional, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from quaton_fab import __version__
from quaton_fab.errors import QuatonFabError
from quaton_fab.units import format_length, parse_length, parse_phase_list

app = typer.Typer(
    name="quaton-fab",
    help="Design diffractive optical networks with n printable phase levels, and export them for fabrication.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode="rich",
)
console = Console()
err_console = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class Task(str, Enum):
    classify = "classify"
    qpi = "qpi"


class Method(str, Enum):
    fp = "fp"
    pq = "pq"
    ste = "ste"
    gs = "gs"
    psq = "psq"
    psq_lt = "psq-lt"


class MaskModel(str, Enum):
    relief = "relief"
    thin = "thin"


class Orientation(str, Enum):
    base_first = "base-first"
    relief_first = "relief-first"


class Recompute(str, Enum):
    auto = "auto"
    on = "on"
    off = "off"


class EvalFidelity(str, Enum):
    design = "design"
    reference = "reference"
    both = "both"


class Format(str, Enum):
    stl = "stl"
    gds = "gds"
    oas = "oas"
    png = "png"
    tiff = "tiff"
    png8 = "png8"
    bmp = "bmp"
    gwl = "gwl"
    all = "all"


def q(value: object) -> str:
    """A user- or file-supplied value as rich text that is shown literally (markup escaped)."""
    return escape(str(value))


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """Print one error line (shown literally: no rich markup is interpreted in ``message``) and exit."""
    text = " ".join(message.split("\n")[0].split()) if message else "error"
    err_console.print(f"[bold red]error:[/] {q(text)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


#: Training-configuration field names → the option a user types (so messages name what the user can change).
CONFIG_OPTIONS = {
    "level_range_rad": "--level-range", "level_phases_rad": "--level-phases", "pitch_m": "--pitch",
    "wavelength_m": "--wavelength", "spacing_m": "--spacing", "d_in_m": "--d-in", "d_out_m": "--d-out",
    "z_step_m": "--z-step", "z_step": "--z-step", "batch_size": "--batch-size", "train_samples": "--train-samples",
    "val_samples": "--val-samples", "test_samples": "--test-samples", "levels": "--levels", "layers": "--layers",
    "neurons": "--neurons", "oversample": "--oversample", "epochs": "--epochs", "lr": "--lr",
}


def _option_names(message: str) -> str:
    """Replace internal configuration field names in a ConfigError message by the CLI options."""
    return re.sub(r"(?<!-)\b(" + "|".join(sorted(CONFIG_OPTIONS, key=len, reverse=True)) + r")\b",
                  lambda m: CONFIG_OPTIONS[m.group(1)], message)


def os_error_text(exc: OSError) -> str:
    """One line for an operating-system error: the path it concerns and the system's reason."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    path = exc.filename
    if path is None:
        return reason
    return f"{os.fsdecode(path)}: {reason}"


def user_errors(func: F) -> F:
    """Turn the library's user errors (QuatonFabError) and OS errors into one line + exit 2.

    Any other exception is a bug and propagates with its traceback.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except QuatonFabError as exc:
            from quaton_fab.training.config import ConfigError

            message = str(exc) or type(exc).__name__
            fail(_option_names(message) if isinstance(exc, ConfigError) else message)
        except OSError as exc:
            fail(os_error_text(exc))
        except KeyboardInterrupt:
            fail("interrupted", EXIT_INTERRUPTED)

    return wrapper  # type: ignore[return-value]


def _command_line() -> Optional[str]:
    """The command line that started this process, when it is this app (None when called from Python)."""
    if os.path.basename(sys.argv[0]) not in ("quaton-fab", "__main__.py"):
        return None
    return shlex.join(["quaton-fab", *sys.argv[1:]])


def length(text: Optional[str], name: str, *, allow_zero: bool = False) -> Optional[float]:
    """Parse an optional length option (metres)."""
    if text is None:
        return None
    return parse_length(text, name=name, allow_zero=allow_zero)


def _version(value: bool) -> None:
    if value:
        console.print(f"quaton-fab {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show the library's log messages.")] = False,
) -> None:
    """quaton-fab: quantization-aware diffractive network design → GDSII / STL."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


# ---------------------------------------------------------------------------------------------------- train
@app.command()
@user_errors
def train(
    preset: Annotated[str, typer.Option(help="Starting configuration: quickstart, paper, paper-classify, qpi-quickstart, tiny.")] = "quickstart",
    task: Annotated[Optional[Task], typer.Option(help="classify (detector regions) or qpi (phase → intensity).")] = None,
    dataset: Annotated[Optional[str], typer.Option(help="mnist, fashion-mnist, rbc, synthetic, idx:PATH, cifar10:PATH, folder:PATH, npz:PATH.")] = None,
    method: Annotated[Optional[Method], typer.Option(help="QAT method.")] = None,
    levels: Annotated[Optional[int], typer.Option(help="Number of phase levels n (default set: 2πk/n, uniform on the circle).", min=2)] = None,
    level_range: Annotated[Optional[str], typer.Option("--level-range", help="n levels on \\[lo, hi], both ends included, e.g. 0,1.99pi (the lab's convention).")] = None,
    level_phases: Annotated[Optional[str], typer.Option("--level-phases", help="Explicit level phases, e.g. 0,0.5pi,pi,1.5pi (overrides --levels).")] = None,
    layers: Annotated[Optional[int], typer.Option(help="Number of phase masks L.", min=1)] = None,
    neurons: Annotated[Optional[int], typer.Option(help="Neurons per side N.", min=1)] = None,
    pitch: Annotated[Optional[str], typer.Option(help="Neuron pitch, e.g. 1um.")] = None,
    wavelength: Annotated[Optional[str], typer.Option(help="Vacuum wavelength, e.g. 780nm.")] = None,
    spacing: Annotated[Optional[str], typer.Option(help="Mask-to-mask distance, e.g. 30um (also d_in/d_out unless given).")] = None,
    d_in: Annotated[Optional[str], typer.Option("--d-in", help="Input plane → first mask distance.")] = None,
    d_out: Annotated[Optional[str], typer.Option("--d-out", help="Last mask → detector distance.")] = None,
    oversample: Annotated[Optional[str], typer.Option(help="Simulation pixels per neuron side: auto (the sampling rule s = ceil(2·pitch·n_med/λ0), default) or an integer.")] = None,
    allow_undersampling: Annotated[bool, typer.Option("--allow-undersampling", help="Accept an --oversample below the sampling rule (warned about and recorded).")] = False,
    model: Annotated[Optional[MaskModel], typer.Option(help="Mask model: relief (multislice through the printed relief, default) or thin (one phase screen).")] = None,
    base: Annotated[Optional[str], typer.Option(help="Base slab under each relief, e.g. 2um (relief model; default 2um).")] = None,
    max_slice: Annotated[Optional[str], typer.Option("--max-slice", help="Largest relief slice, e.g. 100nm (default: one slice per level step).")] = None,
    orientation: Annotated[Optional[Orientation], typer.Option(help="base-first (light enters through the base, default) or relief-first.")] = None,
    epochs: Annotated[Optional[int], typer.Option(min=1)] = None,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", min=1)] = None,
    lr: Annotated[Optional[float], typer.Option(help="Adam learning rate.")] = None,
    train_samples: Annotated[Optional[int], typer.Option("--train-samples", min=1)] = None,
    val_samples: Annotated[Optional[int], typer.Option("--val-samples", min=1)] = None,
    test_samples: Annotated[Optional[int], typer.Option("--test-samples", min=1)] = None,
    seed: Annotated[Optional[int], typer.Option()] = None,
    material: Annotated[Optional[str], typer.Option(help="Train on this material's printable levels (see `materials`).")] = None,
    medium: Annotated[Optional[str], typer.Option(help="Surrounding medium: air, water, oil or an index.")] = None,
    z_step: Annotated[Optional[str], typer.Option("--z-step", help="Printer height step; levels snapped to it (needs --material).")] = None,
    device: Annotated[Optional[str], typer.Option(help="auto, cpu or cuda.")] = None,
    vaccinate: Annotated[Optional[str], typer.Option(help="Vaccinated training: draw fabrication errors for every batch from this named set (2pp: every error at its two-photon literature default; 2pp-placement: shift, rotation, spacing). See `quaton-fab tolerance`.")] = None,
    vaccinate_height_scale: Annotated[Optional[str], typer.Option("--vaccinate-height-scale", help="σ of the global height scale, e.g. 3%.")] = None,
    vaccinate_height_noise: Annotated[Optional[str], typer.Option("--vaccinate-height-noise", help="σ of per-pixel height noise, e.g. 20nm.")] = None,
    vaccinate_shift: Annotated[Optional[str], typer.Option("--vaccinate-shift", help="σ of each mask's lateral shift, e.g. 0.5um or 1px.")] = None,
    vaccinate_rotation: Annotated[Optional[str], typer.Option("--vaccinate-rotation", help="σ of each mask's rotation, e.g. 0.5deg.")] = None,
    vaccinate_spacing: Annotated[Optional[str], typer.Option("--vaccinate-spacing", help="σ of each gap, relative, e.g. 2%.")] = None,
    vaccinate_blur: Annotated[Optional[str], typer.Option("--vaccinate-blur", help="Pixel rounding (Gaussian σ), e.g. 170nm.")] = None,
    vaccinate_index: Annotated[Optional[str], typer.Option("--vaccinate-index", help="σ of the material index error, e.g. 0.005.")] = None,
    recompute: Annotated[Optional[Recompute], typer.Option(help="Relief model: recompute each mask's slices in the backward pass instead of storing them (on), never (off), or when storing them would take over half the memory available (auto, default). Same gradients.")] = None,
    micro_batch: Annotated[Optional[int], typer.Option("--micro-batch", min=1, help="Run each batch through forward + backward in pieces of at most this many samples, accumulating the gradients (same gradients, less memory).")] = None,
    nproc: Annotated[Optional[int], typer.Option("--nproc", min=1, help="Data-parallel training in this many processes on this machine (torchrun + DistributedDataParallel; gloo on CPU, NCCL with one GPU each). Same design as one process with the same --batch-size.")] = None,
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

    from .progress import TrainProgress

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
            oversample=_oversample(oversample),
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
        err_console.print(f"[yellow]warning:[/] {q(_option_names(warning))}", highlight=False)
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


def _oversample(text: Optional[str]) -> int | str | None:
    """``auto`` or a positive integer for --oversample."""
    if text is None or text.strip().lower() == "auto":
        return None if text is None else "auto"
    try:
        value = int(text)
    except ValueError:
        fail(f"--oversample must be 'auto' or a positive integer, got {text!r}")
    if value < 1:
        fail(f"--oversample must be 'auto' or a positive integer, got {text!r}")
    return value


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

    from .progress import eval_progress

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


# ---------------------------------------------------------------------------------------------------- evaluate
@app.command()
@user_errors
def evaluate(
    design_dir: Annotated[Path, typer.Argument(help="A design directory (design.json + masks.npz).")],
    dataset: Annotated[Optional[str], typer.Option(help="Evaluate on another dataset spec (default: the design's own test split).")] = None,
    test_samples: Annotated[Optional[int], typer.Option("--test-samples", min=1)] = None,
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

    from .progress import eval_progress

    design = Design.load(design_dir)
    g = design.geometry
    s_over = _oversample(oversample)
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


# ---------------------------------------------------------------------------------------------------- inspect
@app.command()
@user_errors
def inspect(
    design_dir: Annotated[Path, typer.Argument(help="A design directory.")],
    figures: Annotated[bool, typer.Option(help="Write figures into DESIGN_DIR/figures (or --out).")] = True,
    out: Annotated[Optional[Path], typer.Option(help="Folder for the figures.")] = None,
    force: Annotated[bool, typer.Option(help="Overwrite existing figure files.")] = False,
) -> None:
    """Summarise a design (geometry, levels, method, metrics, level usage) and write its figures."""
    from quaton_fab.design import Design
    from quaton_fab.training.report import planned_figures

    design = Design.load(design_dir)
    figure_dir = out or Path(design_dir) / "figures"
    if figures and not force:
        clashes = [figure_dir / name for name in planned_figures(design) if (figure_dir / name).exists()]
        if clashes:
            fail(f"{clashes[0]} already exists; use --force to rewrite the figures, --no-figures, or another --out")
    g = design.geometry
    table = Table(title=f"design {q(design_dir)}", show_header=False)
    table.add_column(style="dim")
    table.add_column()
    table.add_row("software / schema", q(f"quaton-fab {design.software_version}, created {design.created}"))
    table.add_row("task", q(f"{design.task.get('kind')}  ({design.dataset.get('spec', '?')})"))
    table.add_row("method", q(design.method.get("name")))
    table.add_row("masks", f"{g.layers} × {g.neurons}×{g.neurons}, pitch {format_length(g.pitch_m)}, "
                  f"aperture {format_length(g.neurons * g.pitch_m)}")
    table.add_row("distances", f"d_in {format_length(g.d_in_m)}, spacing {format_length(g.spacing_m)}, "
                  f"d_out {format_length(g.d_out_m)}")
    table.add_row("light", f"λ0 {format_length(g.wavelength_m)}, n_medium {g.n_medium}")
    table.add_row("sampling", f"oversample {g.oversample}, rule s ≥ {g.rule_oversample}: "
                  + ("met" if g.meets_sampling_rule else "[red]NOT MET (under-sampled: the printed part differs)[/]"))
    if design.relief is None:
        table.add_row("mask model", "[yellow]thin phase screens[/] (not trained through the printed relief)")
    else:
        r = design.relief
        table.add_row("mask model", f"printed relief, n {r.n_material:.4f}, base {format_length(r.base_m)}, top "
                      f"{format_length(r.top_m)}, {len(r.slice_edges_m()) - 1} slices, {r.orientation}")
    table.add_row("levels", f"{design.levels.n} ({design.levels.kind}): "
                  + ", ".join(f"{p:.3f}" for p in design.levels.phases) + " rad")
    usage = design.level_counts().sum(axis=0)
    table.add_row("level usage", ", ".join(f"{k}: {c / usage.sum():.1%}" for k, c in enumerate(usage)))
    for key, value in design.metrics.get("test", {}).items():
        if isinstance(value, (int, float)):
            table.add_row(f"test {q(key)}", f"{value:.4f}" if isinstance(value, float) else str(value))
    if design.fabrication:
        table.add_row("fabrication", q(f"{design.fabrication.get('material')} in {design.fabrication.get('medium')}, "
                                       f"z-step {design.fabrication.get('z_step_m')}"))
    console.print(table)
    if figures:
        from quaton_fab.training.report import write_figures

        with console.status("writing figures…"):
            written = write_figures(design, figure_dir)
        for path in written:
            console.print(f"  wrote {q(path)}")


# ---------------------------------------------------------------------------------------------------- materials
@app.command()
@user_errors
def materials(
    wavelength: Annotated[Optional[str], typer.Option(help="Show n and the 2π height at this wavelength, e.g. 633nm.")] = None,
) -> None:
    """The material table: dispersion model, index, validity range and source of every entry."""
    from quaton_fab.printing.materials import material_table

    wl = length(wavelength, "--wavelength")
    rows = material_table(wl)
    shown_at = wl if wl else (rows[0].get("wavelength_m") if rows else None)
    table = Table(title="materials" + (f", n at λ0 = {format_length(shown_at)}" if shown_at else ""))
    for col in ("name", "model", "n", "h_2π in air", "valid range", "source"):
        table.add_column(col, overflow="fold")
    for row in rows:
        n = row.get("n")
        h2pi = f"{shown_at / (n - 1) * 1e6:.3f} µm" if (shown_at and n and n > 1) else ""
        table.add_row(
            q(row["name"]) + (" [yellow](nominal)[/]" if row.get("nominal") else ""),
            q(row["model"]),
            "" if n is None else f"{n:.4f}" + ("" if row.get("in_range", True) else " [red](outside range)[/]"),
            h2pi,
            q(row.get("range", "")),
            q(row.get("source", "")),
        )
    console.print(table)
    console.print("Custom index: --material n=1.52 ; media: air, water, oil, or a number (--medium 1.33).")


# ---------------------------------------------------------------------------------------------------- quantizers
@app.command()
@user_errors
def quantizers(
    levels: Annotated[int, typer.Option(help="Number of levels.", min=2)] = 4,
    out: Annotated[Path, typer.Option(help="PNG to write.")] = Path("quantizers.png"),
    force: Annotated[bool, typer.Option(help="Overwrite an existing --out file.")] = False,
) -> None:
    """Plot every quantizer's transfer curve and gradient (like Fig. 2D of the QuATON paper)."""
    from quaton_fab.quant import LevelSet
    from quaton_fab.quant.figure import plot_transfer_curves
    from quaton_fab.resources import check_level_count

    check_level_count(levels, "--levels")
    if out.exists() and not force:
        fail(f"{out} already exists; use --force to overwrite it or another --out")

    path = plot_transfer_curves(LevelSet.uniform(levels), out)
    console.print(f"wrote {q(path)}")


# ---------------------------------------------------------------------------------------------------- export
@app.command()
@user_errors
def export(
    design_dir: Annotated[Path, typer.Argument(help="A design directory.")],
    format: Annotated[Format, typer.Option("--format", "-f", help="stl, gds, oas, png, tiff, png8 (8-bit full-scale PNG), bmp (8-bit full-scale BMP), gwl (Nanoscribe job) or all.")] = Format.all,
    material: Annotated[Optional[str], typer.Option(help="Material (see `quaton-fab materials`) or n=1.52; default: the one the design was trained for, else ip-dip.")] = None,
    medium: Annotated[Optional[str], typer.Option(help="air, water, oil or an index (default: the design's n_medium).")] = None,
    base: Annotated[Optional[str], typer.Option(help="Base slab thickness under every pixel, e.g. 2um (default: the base the design was trained through, else 2um).")] = None,
    z_step: Annotated[Optional[str], typer.Option("--z-step", help="Printer height step: another name for --slicing-distance.")] = None,
    printer: Annotated[Optional[str], typer.Option("--printer", help="Printer profile: 2pp-63x-ip-dip (default; 100 nm slicing and hatching), 2pp-25x-ip-n162 or grayscale (exact heights). Every top, base included, is put on its slicing grid.")] = None,
    slicing_distance: Annotated[Optional[str], typer.Option("--slicing-distance", help="Override the profile's slicing distance (z-step), e.g. 100nm.")] = None,
    hatching_distance: Annotated[Optional[str], typer.Option("--hatching-distance", help="Override the profile's hatching distance (GWL line spacing), e.g. 100nm.")] = None,
    stack: Annotated[bool, typer.Option(help="Also write one STL with all masks stacked at the design spacings.")] = False,
    omit_level0: Annotated[bool, typer.Option("--omit-level0/--keep-level0", help="GDS: leave level 0 (the base top) out.")] = False,
    invert: Annotated[bool, typer.Option(help="Grayscale maps: store max grey − grey (tallest level black), for positive resists.")] = False,
    full_scale: Annotated[bool, typer.Option("--full-scale", help="16-bit PNG/TIFF maps use the whole grey range (default: 1 nm per grey where exact).")] = False,
    report: Annotated[bool, typer.Option("--report/--no-report", help="Also write report.html, the self-contained design report (opens offline in any browser).")] = True,
    out: Annotated[Optional[Path], typer.Option(help="Export directory (default DESIGN_DIR/export).")] = None,
    force: Annotated[bool, typer.Option(help="Overwrite existing files.")] = False,
) -> None:
    """Convert the design's levels to heights and write fabrication files plus fab_sheet.json/.md."""
    from quaton_fab.design import Design
    from quaton_fab.fab.export import FORMATS, ExportOptions, export_design, export_printer

    design = Design.load(design_dir)
    formats = FORMATS if format is Format.all else (format.value,)
    if format is Format.all and not export_printer(ExportOptions(
            printer=printer, z_step_m=length(z_step, "--z-step"),
            slicing_distance_m=length(slicing_distance, "--slicing-distance"))).has_grid:
        formats = tuple(f for f in FORMATS if f != "gwl")  # GWL jobs need a slicing grid (not grayscale)
    options = ExportOptions(
        formats=formats,
        material=material,
        medium=medium,
        base_m=length(base, "--base"),
        z_step_m=length(z_step, "--z-step"),
        printer=printer,
        slicing_distance_m=length(slicing_distance, "--slicing-distance"),
        hatching_distance_m=length(hatching_distance, "--hatching-distance"),
        stack=stack,
        omit_level0=omit_level0,
        invert=invert,
        full_scale=full_scale,
        force=force,
        report=report,
        command=_command_line(),
    )
    target = out or Path(design_dir) / "export"
    with console.status(f"exporting to {q(target)}…"):
        result = export_design(design, target, options)
    for warning in result.warnings:
        err_console.print(f"[yellow]warning:[/] {q(warning)}", highlight=False)
    table = Table(title=f"level table ({q(result.sheet['material']['name'])}, n = {result.sheet['material']['n']:.4f})")
    for col in ("k", "phase (rad)", "height (µm)", "snapped (µm)", "phase error (rad)"):
        table.add_column(col, justify="right")
    for row in result.sheet["levels"]:
        table.add_row(str(row["k"]), f"{row['phase_rad']:.4f}", f"{row['height_um']:.4f}",
                      f"{row['snapped_height_um']:.4f}", f"{row['phase_error_rad']:+.4f}")
    console.print(table)
    for path in result.files:
        console.print(f"  wrote {q(path)} ({path.stat().st_size / 1024:.1f} KiB)")
    if report:
        console.print(f"Design report: open [bold]{q(target / 'report.html')}[/] in a browser (works offline)")
    console.print(f"Check it: [bold]quaton-fab verify {q(design_dir)} {q(target)}[/]")


# ---------------------------------------------------------------------------------------------------- verify
@app.command()
@user_errors
def verify(
    design_dir: Annotated[Path, typer.Argument(help="A design directory.")],
    export_dir: Annotated[Path, typer.Argument(help="The export directory written by `quaton-fab export`.")],
    test_samples: Annotated[Optional[int], typer.Option("--test-samples", min=1, help="Fewer test samples for a quick check (the result is then not recorded in the fab sheet).")] = None,
    tolerance: Annotated[Optional[float], typer.Option(help="Largest accepted loss of the metric, as a fraction (default 0.005 accuracy = 0.5 points, 0.01 SSIM).", min=0.0)] = None,
    oversample: Annotated[Optional[int], typer.Option(help="Finer reference sampling than the rule.", min=1)] = None,
    max_slice: Annotated[Optional[str], typer.Option("--max-slice", help="Finer reference slicing of the relief, e.g. 50nm.")] = None,
    probe: Annotated[bool, typer.Option(help="Convergence probe: the design as printed at twice the reference sampling and half its slices, on --probe-samples test samples; 'not converged' (exit 1) when it differs by more than the tolerance.")] = True,
    probe_samples: Annotated[int, typer.Option("--probe-samples", min=1, help="Test samples of the convergence probe (the design's test split drawn at that size).")] = 500,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
) -> None:
    """Read the exported files back and re-simulate them as the printed object; pass only within the tolerance
    and when the reference is converged (a finer simulation on a subset agrees)."""
    from quaton_fab.design import Design
    from quaton_fab.fab.sheet import record_verification
    from quaton_fab.analysis.verify import verify_export

    from .progress import eval_progress

    design = Design.load(design_dir)
    progress, update = eval_progress(console, "re-simulating the printed object")
    probe_task = None

    def probe_update(done: int, total: int) -> None:
        nonlocal probe_task
        if probe_task is None:  # shown once the probe starts
            probe_task = progress.add_task("convergence probe (finer sampling and slicing)", total=total, info="")
        progress.update(probe_task, completed=done, total=total)

    with progress:
        report = verify_export(design, export_dir, samples=test_samples, device=device, progress=update,
                               tolerance=tolerance, oversample=oversample,
                               max_slice_m=length(max_slice, "--max-slice"),
                               probe_samples=probe_samples if probe else None, probe_progress=probe_update)
    table = Table(title=f"verify {q(export_dir)}: files read back and simulated as the printed object")
    for col in ("file", "read back", "level match", "max height error", report.metric_name, "gap to design"):
        table.add_column(col, justify="right")
    for row in report.rows:
        table.add_row(q(row.file), q(row.reader), f"{row.level_match:.4%}", format_length(row.max_height_error_m),
                      f"{row.metric:.4f}", f"{row.metric - report.design_metric:+.4f}")
    console.print(table)
    summary = Table(show_header=False, box=None)
    summary.add_row("design (training model)", f"{report.design_metric:.4f}", q(report.design_fidelity))
    summary.add_row("design as printed object", f"{report.reference_design_metric:.4f}", q(report.reference_fidelity))
    summary.add_row("files as printed object (worst)", f"{report.files_metric:.4f}", "")
    summary.add_row("gap (a) files vs design", f"{report.gap_files:+.4f}", "export: material, base, z-step, files")
    summary.add_row("gap (b) design vs reference", f"{report.gap_model:+.4f}",
                    "reference − training model: sampling and relief")
    summary.add_row("total gap", f"{report.total_gap:+.4f}", f"tolerance −{report.tolerance:.4f}")
    if report.probe is not None:
        p = report.probe
        summary.add_row(f"convergence probe ({p.samples} samples)", f"{p.difference:+.4f}",
                        q(f"{p.reference_metric:.4f} at s={p.reference['oversample']} → {p.probe_metric:.4f} at "
                          f"s={p.probe['oversample']}, slices ≤ {p.probe['max_slice_m'] * 1e9:.4g} nm"
                          if p.probe["max_slice_m"] else f"{p.reference_metric:.4f} → {p.probe_metric:.4f} at "
                          f"s={p.probe['oversample']}"))
    console.print(summary)
    console.print(f"{report.metric_name} on {report.samples} test samples.")
    if test_samples is None:
        try:
            record_verification(export_dir, report.to_dict())
            console.print(f"[dim]recorded in {q(export_dir)}/fab_sheet.json and fab_sheet.md[/]")
        except OSError as exc:  # a read-only export still gets its verdict; only the record is skipped
            err_console.print(f"[yellow]warning:[/] not recorded in the fab sheet: {q(os_error_text(exc))}",
                              soft_wrap=True)
    if report.converged is False:
        err_console.print("[red]not converged:[/] " + q(report.probe.summary()) + ": the reference cannot be trusted "
                          "to the tolerance; measure at a finer --oversample/--max-slice", highlight=False)
    if not report.ok:
        failures = [f for f in report.failures() if not f.startswith("not converged")]
        if not failures:
            raise typer.Exit(1)
        fail("verification failed: " + "; ".join(failures), 1)
    console.print("[green]verified:[/] the exported files, simulated as the printed object, reproduce the design "
                  f"within {report.tolerance:.4f} {report.metric_name}.")


# ---------------------------------------------------------------------------------------------------- tolerance
class ToleranceFidelity(str, Enum):
    reference = "reference"
    design = "design"


class Criterion(str, Enum):
    p5 = "p5"
    mean = "mean"


def _magnitudes(name: str, text: Optional[str], pitch_m: float) -> list[float]:
    """A comma-separated magnitude list of one error (default: its literature default × 0.5, 1, 2)."""
    from quaton_fab.optics.perturbation import ERRORS, ToleranceError, parse_magnitude

    if text is None:
        return [ERRORS[name].default * f for f in (0.5, 1.0, 2.0)]
    parts = [p for p in text.split(",") if p.strip()]
    if not parts:
        fail(f"--{name} needs at least one magnitude, got {text!r}")
    try:
        return [parse_magnitude(name, p, pitch_m=pitch_m) for p in parts]
    except ToleranceError as exc:
        fail(f"--{name}: {exc}")


@app.command()
@user_errors
def tolerance(
    design_dir: Annotated[Path, typer.Argument(help="A design directory.")],
    export_dir: Annotated[Optional[Path], typer.Argument(help="Optional export directory: the acceptance tolerances are written into its fab sheet.")] = None,
    trials: Annotated[int, typer.Option(help="Prints drawn per magnitude (the deterministic blur is simulated once).", min=1)] = 4,
    seed: Annotated[int, typer.Option(help="Monte-Carlo seed.")] = 0,
    samples: Annotated[int, typer.Option(help="Test samples simulated per print.", min=1)] = 300,
    loss: Annotated[Optional[float], typer.Option(help="Allowed loss of the metric (default 0.01 accuracy = 1 point, 0.02 SSIM).")] = None,
    criterion: Annotated[Criterion, typer.Option(help="p5: the 5th percentile of the trials must stay within the loss; mean: their mean.")] = Criterion.p5,
    fidelity: Annotated[ToleranceFidelity, typer.Option(help="reference: the printed object (sampling rule, converged relief slicing; default); design: the design's own training model (faster).")] = ToleranceFidelity.reference,
    errors: Annotated[Optional[str], typer.Option(help="Errors to sweep, comma-separated (default all): height-scale, height-noise, shift, rotation, spacing, blur, index.")] = None,
    height_scale: Annotated[Optional[str], typer.Option("--height-scale", help="σ list of the global height scale, e.g. 1%,3%,5% (default 1.5%,3%,6%).")] = None,
    height_noise: Annotated[Optional[str], typer.Option("--height-noise", help="σ list of per-pixel height noise, e.g. 10nm,20nm,40nm.")] = None,
    shift: Annotated[Optional[str], typer.Option(help="σ list of each mask's lateral shift (x and y), e.g. 0.25um,0.5um,1um or 1px.")] = None,
    rotation: Annotated[Optional[str], typer.Option(help="σ list of each mask's rotation in degrees, e.g. 0.25,0.5,1.")] = None,
    spacing: Annotated[Optional[str], typer.Option(help="σ list of each gap, relative, e.g. 1%,2%,4%.")] = None,
    blur: Annotated[Optional[str], typer.Option(help="Pixel rounding (Gaussian σ) list, e.g. 85nm,170nm,340nm.")] = None,
    index: Annotated[Optional[str], typer.Option(help="σ list of the material index error, e.g. 0.0025,0.005,0.01.")] = None,
    combined: Annotated[str, typer.Option(help="Also every error at once at its default × these factors ('' for none).")] = "0.5,1,2",
    oversample: Annotated[Optional[int], typer.Option(help="Finer reference sampling than the rule (sub-pixel shifts and rounding are resolved on a finer grid).", min=1)] = None,
    out: Annotated[Optional[Path], typer.Option(help="Folder for tolerance.json/.md/.png (default DESIGN_DIR/tolerance).")] = None,
    force: Annotated[bool, typer.Option(help="Overwrite existing result files.")] = False,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
) -> None:
    """Monte-Carlo re-simulation of the printed object under fabrication errors; the largest error of each kind
    that keeps the metric within the allowed loss (written into the fab sheet with EXPORT_DIR)."""
    import json

    from quaton_fab.design import Design
    from quaton_fab.fileio import atomic_write_bytes
    from quaton_fab.optics.perturbation import ERRORS
    from quaton_fab.analysis.tolerance import run_tolerance, tolerance_markdown, tolerance_sheet_entry
    from quaton_fab.analysis.tolerance_figure import plot_tolerance
    from quaton_fab.simulate import design_fidelity, reference_fidelity

    from .progress import eval_progress

    design = Design.load(design_dir)
    names = list(ERRORS) if errors is None else [e.strip() for e in errors.split(",") if e.strip()]
    for name in names:
        if name not in ERRORS:
            fail(f"--errors: unknown error {name!r}; use {', '.join(ERRORS)}")
    texts = {"height-scale": height_scale, "height-noise": height_noise, "shift": shift, "rotation": rotation,
             "spacing": spacing, "blur": blur, "index": index}
    sweeps = {name: _magnitudes(name, texts[name], design.geometry.pitch_m) for name in names}
    try:
        factors = [float(f) for f in combined.split(",") if f.strip()]
    except ValueError:
        fail(f"--combined must be comma-separated numbers, got {combined!r}")
    if any(not (f >= 0 and f < 1e3) for f in factors):
        fail(f"--combined factors must be finite numbers >= 0, got {combined!r}")
    if loss is not None and not (0 <= loss <= 1):
        fail(f"--loss must be in [0, 1], got {loss}")
    target = out or Path(design_dir) / "tolerance"
    files = {k: target / f"tolerance.{k}" for k in ("json", "md", "png")}
    if not force:
        clash = next((p for p in files.values() if p.exists()), None)
        if clash is not None:
            fail(f"{clash} already exists; use --force to overwrite it or another --out")
    sheet = None
    if export_dir is not None:  # check the export before minutes of simulation
        from quaton_fab.fab.sheet import read_fab_sheet
        from quaton_fab.analysis.sheet_check import check_sheet

        sheet = read_fab_sheet(export_dir)
        check_sheet(sheet, design, export_dir)
    if oversample is not None and fidelity is not ToleranceFidelity.reference:
        fail("--oversample refines the reference fidelity; drop it or use --fidelity reference")
    fid = (reference_fidelity(design, oversample=oversample) if fidelity is ToleranceFidelity.reference
           else design_fidelity(design))
    if fid.relief is None:
        fail("the design was trained with thin masks; use --fidelity reference (the printed relief)")
    console.print(f"[dim]{fid.label}:[/] {q(fid.describe(design.geometry))}", highlight=False, soft_wrap=True)
    progress, update = eval_progress(console, "tolerance Monte-Carlo (prints simulated)")
    with progress:
        run = run_tolerance(design, sweeps, trials=trials, seed=seed, samples=samples, fidelity=fid,
                            allowed_loss=loss, criterion=criterion.value, combined_factors=factors, device=device,
                            progress=lambda done, total, label: update(done, total))
    result = run.to_dict()
    table = Table(title=f"{q(design_dir)}: {run.metric} under fabrication errors ({run.trials} trials, "
                        f"{run.samples} samples, {run.fidelity} fidelity; nominal {run.nominal:.4f})")
    for col in ("error", "σ", "trials", f"mean {run.metric}", "5th pct", "min", "within loss"):
        table.add_column(col, justify="right")
    for r in run.rows:
        table.add_row(q(r["error"]), f"{r['magnitude']:g} {q(r['unit'])}", str(r["trials"]), f"{r['mean']:.4f}",
                      f"{r['p5']:.4f}", f"{r['min']:.4f}", "[green]yes[/]" if r["within"] else "[red]no[/]")
    console.print(table)
    limits = Table(title=f"acceptance tolerances ({run.criterion} within −{run.allowed_loss:g} {run.metric})")
    for col in ("error", "largest σ within the loss", "source"):
        limits.add_column(col, overflow="fold")
    for lim in run.limits():
        value = lim["max_magnitude"]
        limits.add_row(q(lim["error"]), "[red]< smallest swept[/]" if value is None else f"{value:g} {q(lim['unit'])}",
                       q(lim["source"]))
    console.print(limits)
    import shutil
    import tempfile

    from quaton_fab.fileio import commit_set

    target.mkdir(parents=True, exist_ok=True)  # the three files are staged, then moved in together (or none)
    stage = Path(tempfile.mkdtemp(prefix=".tolerance-", dir=target))
    try:
        staged = {k: stage / p.name for k, p in files.items()}
        atomic_write_bytes(staged["json"], (json.dumps(result, indent=2, allow_nan=False) + "\n").encode())
        atomic_write_bytes(staged["md"], tolerance_markdown(run).encode())
        plot_tolerance(result, staged["png"])
        commit_set([(staged[k], files[k]) for k in files])
    except OSError as exc:  # name the file the user asked for, not its staged twin
        if exc.filename is not None and Path(os.fsdecode(exc.filename)).parent == stage:
            raise OSError(exc.errno, exc.strerror or str(exc), str(target / Path(os.fsdecode(exc.filename)).name)
                          ) from None
        raise
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    for path in files.values():
        console.print(f"  wrote {q(path)}")
    if export_dir is not None:
        from quaton_fab.fab.sheet import record_tolerance

        record_tolerance(export_dir, tolerance_sheet_entry(run))
        console.print(f"[dim]acceptance tolerances recorded in {q(export_dir)}/fab_sheet.json and fab_sheet.md[/]")
    console.print(f"{run.time_s:.0f} s for {sum(r['trials'] for r in run.rows) + 1} simulated prints.")


# --------------------------------------------------------------------------------------------------- crosscheck
@app.command()
@user_errors
def crosscheck(
    design_dir: Annotated[Path, typer.Argument(help="A design directory.")],
    export_dir: Annotated[Path, typer.Argument(help="The export directory written by `quaton-fab export`.")],
    patches: Annotated[int, typer.Option(help="Periodic patches cut from the exported relief.")] = 4,
    patch_pixels: Annotated[int, typer.Option("--patch-pixels", help="Relief pixels per side of a patch.")] = 4,
    harmonics: Annotated[Optional[int], typer.Option(help="Fourier harmonics M of the rigorous solver ((2M+1)² kept; default: largest propagating order + 2, at least 2 per pixel).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the patch positions.")] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda (the rigorous solver runs there).")] = "auto",
) -> None:
    """Compare the mask models with a rigorous solver (RCWA) on periodic patches of the exported relief."""
    import shlex

    from quaton_fab.analysis.crosscheck import crosscheck_export, sheet_entry
    from quaton_fab.analysis.crosscheck_figure import plot_crosscheck
    from quaton_fab.design import Design
    from quaton_fab.fab.sheet import record_crosscheck

    from .progress import eval_progress

    design = Design.load(design_dir)
    progress, update = eval_progress(console, "rigorous solves (RCWA)")
    with progress:
        result = crosscheck_export(design, export_dir, patches=patches, patch_pixels=patch_pixels,
                                   harmonics=harmonics, seed=seed, device=device, progress=update)
    table = Table(title=f"crosscheck {q(export_dir)}: scalar models vs {q(result.solver)}")
    for col in ("model", "polarisation", "L1 mean / worst", "complex mean / worst"):
        table.add_column(col, justify="right")
    for r in result.rows:
        table.add_row(q(r["model"]), r["polarisation"], f"{r['l1_mean']:.3f} / {r['l1_worst']:.3f}",
                      f"{r['complex_mean']:.3f} / {r['complex_worst']:.3f}")
    console.print(table)
    console.print(q(result.note()))
    command = "quaton-fab crosscheck " + " ".join(shlex.quote(a) for a in sys.argv[2:])
    entry = sheet_entry(result, command)
    figure = plot_crosscheck(entry, result.convergence, Path(export_dir) / entry["figure"])
    record_crosscheck(export_dir, entry)
    console.print(f"[dim]wrote {q(figure)}; recorded in {q(export_dir)}/fab_sheet.json and fab_sheet.md[/]")


# Commands that live in their own modules register themselves on `app` when imported.
from . import sweep_cmds  # noqa: E402,F401


def main() -> None:
    """Console-script entry point (typer reports option-syntax errors itself, with exit code 2)."""
    app()


if __name__ == "__main__":
    main()
