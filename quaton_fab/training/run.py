"""One training run, start to finish: resume policy, Ctrl-C protocol, save, figures, reference gap.

One idea: the life of a run directory. :func:`run_training` is what ``quaton-fab train`` and every sweep cell
call; it never prints. Progress and messages go to a :class:`RunHooks` object (the default shows nothing), so a
renderer passed in reproduces any output. The checkpoint is marked complete only after the design files are
written, so a failed save leaves a run that ``--resume`` turns into the same design again.

Ctrl-C (SIGINT) during training asks the trainer to stop after the current step; the checkpoint is saved and
:class:`RunInterrupted` is raised, so the caller can offer ``--resume``.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager as ContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from quaton_fab.confine import remove_own_files
from quaton_fab.design import DESIGN_JSON, Design
from quaton_fab.errors import QuatonFabError
from quaton_fab.optics.validity import validity_warnings
from quaton_fab.simulate import reference_fidelity
from quaton_fab.training.config import TrainConfig
from quaton_fab.training.distributed import from_environment, shutdown
from quaton_fab.training.reference_gap import ReferenceGap, reference_gap
from quaton_fab.training.report import remove_stale_figures, write_figures, write_metrics
from quaton_fab.training.trainer import Callbacks, Trainer, TrainingInterrupted
from quaton_fab.training.checkpoint import CHECKPOINT_NAME

__all__ = [
    "RunDirError", "RunHooks", "RunInterrupted", "RunOutcome", "RunSaveError", "check_run_dir", "run_training",
    "save_run", "write_run_figures",
]

Resume = bool | Literal["auto"]


class RunDirError(QuatonFabError):
    """A run directory that does not fit the requested start (nothing to resume, or not empty)."""


class RunSaveError(QuatonFabError):
    """The trained design could not be saved; the trained state is kept in the checkpoint.

    ``error`` is the original exception (an ``OSError`` or a :class:`QuatonFabError`), ``checkpoint`` the file
    from which ``--resume`` rebuilds the same design.
    """

    def __init__(self, error: BaseException, checkpoint: Path):
        super().__init__(f"{error}; the trained state is kept in {checkpoint}")
        self.error, self.checkpoint = error, checkpoint


class RunInterrupted(TrainingInterrupted):
    """Training stopped on request (Ctrl-C) after saving its checkpoint; same message as TrainingInterrupted.

    ``run_dir`` is the run to resume; ``world_size`` the number of data-parallel processes (None: one);
    ``resumed`` whether this training had itself continued a checkpoint.
    """

    def __init__(self, stop: TrainingInterrupted, run_dir: Path, world_size: int | None, resumed: bool):
        super().__init__(stop.checkpoint, stop.epoch, stop.step)
        self.run_dir, self.world_size, self.resumed = run_dir, world_size, resumed


class RunHooks:
    """What a run reports, in order; every method does nothing here. A renderer overrides what it shows."""

    def resuming(self, run_dir: Path) -> None:
        """``resume=True``: the configuration is read from the checkpoint in ``run_dir``."""

    def secondary_rank(self) -> None:
        """This process is a data-parallel rank other than 0: it trains but should stay quiet."""

    def warning(self, kind: str, text: str) -> None:
        """A warning: ``kind`` is ``physics`` (configuration, before the build) or ``validity`` (after it)."""

    def stage(self, name: str) -> ContextManager[Any]:
        """A step without progress counts: ``build`` (data and network) or ``figures``."""
        return contextlib.nullcontext()

    def built(self, config: TrainConfig, network: Any) -> None:
        """The network is built (``network``: the DiffractiveNetwork about to be trained)."""

    def training(self, trainer: Trainer, resumed: bool) -> ContextManager[Callbacks | None]:
        """Wraps ``trainer.fit`` (``resumed``: it continues a checkpoint); yields the trainer's callbacks (None:
        keep the trainer's own)."""
        return contextlib.nullcontext()

    def stopping(self) -> None:
        """Ctrl-C was received: the current step finishes and a checkpoint is saved."""

    def saved(self, design: Design, figures: list[Path]) -> None:
        """The design files (and ``figures``) are written and the run is marked complete."""

    def fidelity(self, label: str, description: str) -> None:
        """The fidelity about to be simulated (``reference`` for the reference gap) in words."""

    def progress(self, label: str) -> ContextManager[Callable[[int, int], None] | None]:
        """Wraps a simulation; yields ``update(done, total)`` (None: no progress)."""
        return contextlib.nullcontext()


@dataclass
class RunOutcome:
    """What :func:`run_training` leaves behind.

    ``design`` is None on a data-parallel rank other than 0 (rank 0 saves); ``resumed`` is None when the run
    was already complete (``resume="auto"``), so nothing was trained.
    """

    run_dir: Path
    config: TrainConfig
    design: Design | None
    resumed: bool | None
    figures: list[Path] = field(default_factory=list)
    reference_gap: ReferenceGap | None = None
    world_size: int | None = None


def save_run(trainer: Trainer, design: Design, run_dir: str | Path, *, figures: bool = True) -> list[Path]:
    """Write ``design.json``/``masks.npz``/``metrics.json`` into ``run_dir``, mark the run complete, then figures.

    Returns:
        The figure files written (empty without ``figures``).
    """
    run_dir = Path(run_dir)
    design.save(run_dir)
    write_metrics(design, run_dir)
    trainer.mark_complete()  # only now: a failed save above leaves a run that --resume finishes
    return write_run_figures(design, run_dir) if figures else []


def write_run_figures(design: Design, run_dir: str | Path) -> list[Path]:
    """Write the run's figures into ``run_dir/figures`` and remove stale ones (e.g. an earlier run's confusion.png)."""
    folder = Path(run_dir) / "figures"
    written = write_figures(design, folder)
    remove_stale_figures(folder, written)
    return written


def check_run_dir(run_dir: str | Path, *, resume: Resume = False, force: bool = False) -> None:
    """Refuse a start that does not fit ``run_dir``.

    ``resume=True`` needs its checkpoint; a fresh start (``False``) needs an empty or missing folder unless
    ``force``; ``"auto"`` (a sweep cell) accepts anything here.

    Raises:
        RunDirError: nothing to resume, or a folder that is not empty.
    """
    run_dir = Path(run_dir)
    if resume is True:
        checkpoint = run_dir / CHECKPOINT_NAME
        if not checkpoint.is_file():
            raise RunDirError(f"nothing to resume: {str(checkpoint)!r} does not exist")
    elif resume is False and run_dir.exists() and any(run_dir.iterdir()) and not force:
        raise RunDirError(f"run directory {str(run_dir)!r} is not empty; use --resume, --force or another --out")


def run_training(
    config: TrainConfig | None,
    run_dir: str | Path,
    *,
    resume: Resume = False,
    force: bool = False,
    device: str | None = None,
    figures: bool = True,
    reference_samples: int = 0,
    hooks: RunHooks | None = None,
    own_files: Callable[[str], bool] | None = None,
    abort_on_second_interrupt: bool = True,
) -> RunOutcome:
    """Train (or resume) a design into ``run_dir``, save it, write its figures and measure its reference gap.

    Args:
        config: the configuration; None with ``resume=True`` reads it from the checkpoint (a given one must be
            the checkpoint's, see :meth:`Trainer.fit`).
        resume: ``False`` starts afresh (an empty folder unless ``force``); ``True`` continues the checkpoint;
            ``"auto"`` (a sweep cell) loads a complete run, continues a checkpoint, or starts afresh after
            deleting the entries ``own_files(name)`` accepts (refusing if others exist).
        device: overrides the configuration's device (``cpu``, ``cuda``, ``cuda:N``, ``auto``).
        figures: write the run's figures into ``run_dir/figures``.
        reference_samples: test samples simulated at the printed-object reference for the design-vs-reference
            gap (0: skip).
        hooks: progress and messages (see :class:`RunHooks`).
        abort_on_second_interrupt: a second Ctrl-C restores the previous SIGINT handler (aborts at once).

    Raises:
        RunDirError: see :func:`check_run_dir`.
        RunInterrupted: Ctrl-C (or a stop request) ended training; the checkpoint is saved.
        RunSaveError: the design files could not be written; the checkpoint still holds the trained state.
    """
    hooks = hooks or RunHooks()
    run_dir = Path(run_dir)
    config = _start_config(config, run_dir, resume, force, hooks)
    if device is not None:
        config = config.replace(device=device)
    ranks = from_environment(config.device)  # a data-parallel process under torchrun, else a single process
    try:
        if not ranks.is_main:
            hooks.secondary_rank()
        for warning in config.physics_problems()[1]:
            hooks.warning("physics", warning)
        trainer = Trainer(config, run_dir, distributed=ranks)
        design, resumed = _train(trainer, resume, own_files, hooks, abort_on_second_interrupt)
    finally:
        shutdown(ranks)
    world = ranks.world_size if ranks.active else None
    outcome = RunOutcome(run_dir, config, None, resumed, world_size=world)
    if not ranks.is_main:
        return outcome  # rank 0 writes the design
    outcome.design = design
    if resumed is not None:
        outcome.figures = _save(trainer, design, figures, hooks)
    if reference_samples:
        outcome.reference_gap = _reference_gap(design, reference_samples, config.device, hooks)
    return outcome


def _start_config(config: TrainConfig | None, run_dir: Path, resume: Resume, force: bool,
                  hooks: RunHooks) -> TrainConfig:
    """Apply the resume policy: check ``run_dir``; with ``resume=True`` and no config, read the checkpoint's."""
    check_run_dir(run_dir, resume=resume, force=force)
    if resume is True and config is None:
        config = Trainer.config_from_checkpoint(run_dir)
        hooks.resuming(run_dir)
    if config is None:
        raise ValueError("run_training needs a configuration unless it resumes a checkpoint")
    return config


def _train(trainer: Trainer, resume: Resume, own_files: Callable[[str], bool] | None, hooks: RunHooks,
           abort_on_second: bool) -> tuple[Design, bool | None]:
    """Fit (or, for a complete ``"auto"`` run, load) the design; returns it and whether it was resumed."""
    run_dir = trainer.out_dir
    if resume == "auto":
        state = trainer.load_checkpoint() if trainer.checkpoint_path.is_file() else None
        if state is not None and state.get("complete") and (run_dir / DESIGN_JSON).is_file():
            return Design.load(run_dir), None
        if state is None and own_files is not None:
            # started but never reached a checkpoint: start afresh, deleting only what the caller wrote
            remove_own_files(run_dir, own_files)
        resume = state is not None
    with hooks.stage("build"):
        parts = trainer.build()
    hooks.built(trainer.config, parts.network)
    for warning in validity_warnings(parts.network.geometry, parts.network.relief):
        hooks.warning("validity", warning)
    ranks = trainer.distributed
    with _stop_on_sigint(trainer, hooks, abort_on_second and not ranks.active):
        try:
            with hooks.training(trainer, bool(resume)) as callbacks:
                if callbacks is not None:
                    trainer.callbacks = callbacks
                result = trainer.fit(resume=bool(resume))
        except TrainingInterrupted as stop:
            world = ranks.world_size if ranks.active else None
            raise RunInterrupted(stop, run_dir, world, bool(resume)) from None
    return result.design, bool(resume)


@contextlib.contextmanager
def _stop_on_sigint(trainer: Trainer, hooks: RunHooks, abort_on_second: bool) -> Iterator[None]:
    """While inside, Ctrl-C asks ``trainer`` to stop cleanly (not in the main thread: no handler is installed).

    With ``abort_on_second`` the first Ctrl-C restores the previous handler, so a second one aborts at once
    (under torchrun the signal is repeated to every process, which must keep stopping cleanly).
    """
    previous = signal.getsignal(signal.SIGINT)

    def on_sigint(signum: int, frame: Any) -> None:
        trainer.request_stop()
        if abort_on_second:
            signal.signal(signal.SIGINT, previous)
        hooks.stopping()

    with handling_sigint(on_sigint):
        yield


@contextlib.contextmanager
def handling_sigint(handler: Callable[[int, Any], None]) -> Iterator[None]:
    """While inside, Ctrl-C calls ``handler``; the previous handler is restored on the way out.

    Not in the main thread (some Ray workers) no handler can be installed: then this does nothing.
    """
    try:
        previous = signal.signal(signal.SIGINT, handler)
    except ValueError:
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _save(trainer: Trainer, design: Design, figures: bool, hooks: RunHooks) -> list[Path]:
    """Save the design (marking the run complete), then write its figures; report both to ``hooks.saved``."""
    try:
        save_run(trainer, design, trainer.out_dir, figures=False)
    except (QuatonFabError, OSError) as exc:
        raise RunSaveError(exc, trainer.checkpoint_path) from exc
    written: list[Path] = []
    if figures:
        with hooks.stage("figures"):
            written = write_run_figures(design, trainer.out_dir)
    hooks.saved(design, written)
    return written


def _reference_gap(design: Design, samples: int, device: str, hooks: RunHooks) -> ReferenceGap:
    """The design metric next to the printed-object reference on ``samples`` test samples."""
    hooks.fidelity("reference", reference_fidelity(design).describe(design.geometry))
    with hooks.progress(f"design vs reference ({samples} test samples)") as update:
        return reference_gap(design, samples=samples, device=device, progress=update)
