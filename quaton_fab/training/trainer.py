"""The trainer: Adam over the masks' latent parameters with quantization-aware training.

One epoch = the quantizers' schedules are advanced (``start_epoch``), the shuffled training split is run in
mini-batches (task loss + quantizer regularisers), then the validation split is evaluated with the
*hard-quantized* masks, i.e. exactly what will be printed. The best-validation state is kept; at the end it is
restored, tested on the held-out test split and returned as a :class:`~quaton_fab.design.Design`.

Reproducibility and resume: every random draw comes from generators seeded by ``config.seed`` (mask
initialisation, the per-epoch shuffle; the Gumbel noise comes from each GS quantizer's own seeded stream,
kept in its buffers), and torch's global generator state is checkpointed too. A checkpoint
(``checkpoint.pt`` in the run directory, tensors and plain containers only, loaded with ``weights_only=True``)
is written after every epoch and when a stop is requested (Ctrl-C in the CLI). It stores the position inside
the epoch, the optimizer state and the random state as of the start of the next step, so a resumed run ends in
exactly the same state as an uninterrupted one.

The pieces live by idea: :mod:`~quaton_fab.training.setup` builds what a run trains from its configuration,
:mod:`~quaton_fab.training.checkpoint` reads and writes the checkpoint file, :mod:`~quaton_fab.training.result`
packages the best state as a design. Their names used by callers are importable from here too.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from quaton_fab.data import DatasetSplits, load_dataset
from quaton_fab.errors import QuatonFabError
from quaton_fab.optics.network import DiffractiveNetwork
from quaton_fab.optics.perturbation import draw_perturbation, step_generator
from quaton_fab.optics.propagation import OpticsError
from quaton_fab.resources import check_training_memory, resolve_recompute
from quaton_fab.simulate import evaluate_network, resolve_device
from quaton_fab.training.callbacks import Callbacks, Silent
from quaton_fab.training.checkpoint import (
    CHECKPOINT_FORMAT, CHECKPOINT_NAME, CHECKPOINT_VERSION, CheckpointError, read_checkpoint, write_checkpoint,
)
from quaton_fab.training.config import ConfigError, TrainConfig
from quaton_fab.training.distributed import SINGLE, Distributed
from quaton_fab.training.param_groups import optimizer_groups, set_lr
from quaton_fab.training.result import TrainResult, make_design
from quaton_fab.training.setup import (  # build_level_set … vaccination_of are re-exported for their callers
    RunParts, build_level_set, build_relief, make_encoding, make_geometry, make_quantizers, make_task,
    resolve_base_m, resolve_n_medium, resolve_oversample, vaccination_of,
)
from quaton_fab.training.step import LossModule, accumulate_gradients, split_share

__all__ = [
    "Trainer", "TrainResult", "TrainingInterrupted", "TrainingDiverged", "Callbacks",
    "build_level_set", "build_relief", "resolve_base_m", "resolve_n_medium", "resolve_oversample", "vaccination_of",
    "CHECKPOINT_NAME", "CHECKPOINT_FORMAT", "CHECKPOINT_VERSION", "CheckpointError",
]

log = logging.getLogger(__name__)


class TrainingInterrupted(RuntimeError):
    """Raised by :meth:`Trainer.fit` after a requested stop; the checkpoint has been saved."""

    def __init__(self, checkpoint: Path, epoch: int, step: int):
        super().__init__(f"training stopped at epoch {epoch + 1}, step {step}; checkpoint saved to {checkpoint}")
        self.checkpoint, self.epoch, self.step = checkpoint, epoch, step


class TrainingDiverged(QuatonFabError):
    """The loss became NaN or infinite (the learning rate is usually too high)."""


@dataclass
class _Progress:
    """Where the loop stands: the first epoch and step to run, the records so far and the best state."""

    start_epoch: int = 0
    start_step: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, Any] | None = None
    elapsed_before: float = 0.0
    resumed_loss: tuple[float, int] = (0.0, 0)  # (sum, count) of the interrupted epoch's training losses so far


class Trainer:
    """Train one design. ``fit()`` returns a :class:`TrainResult`; ``request_stop()`` asks for a clean stop.

    Args:
        config: the run's configuration.
        out_dir: run directory (checkpoint, design files, metrics, figures).
        callbacks: progress hooks (see :class:`Callbacks`).
        data: optional pre-loaded splits (tests); default: ``load_dataset(config.dataset, …)``.
        distributed: this process's place in a data-parallel run (default: a single process); only its main
            process validates and writes the run directory (see :mod:`quaton_fab.training.distributed`).
    """

    def __init__(
        self,
        config: TrainConfig,
        out_dir: str | Path,
        *,
        callbacks: Callbacks | None = None,
        data: DatasetSplits | None = None,
        distributed: Distributed = SINGLE,
    ):
        self.config = config
        self.distributed = distributed
        self.out_dir = Path(out_dir)
        self.callbacks = callbacks or Silent()
        self._data = data
        self._stop_requested = False
        self.parts: RunParts | None = None

    # ------------------------------------------------------------------ control
    def request_stop(self) -> None:
        """Ask the loop to stop after the current step and save a checkpoint (safe from a signal handler)."""
        self._stop_requested = True

    @property
    def checkpoint_path(self) -> Path:
        """Where the checkpoint lives."""
        return self.out_dir / CHECKPOINT_NAME

    # ------------------------------------------------------------------ build
    def build(self) -> RunParts:
        """Load the data and build network, quantizers, task and encoding (seeded)."""
        cfg = self.config
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        device = resolve_device(cfg.device)
        n_medium = resolve_n_medium(cfg)
        oversample, rule = resolve_oversample(cfg, n_medium)
        levels, fabrication = build_level_set(cfg)
        relief = build_relief(cfg, levels, fabrication)
        recompute = resolve_recompute(cfg, device, oversample, relief=relief)
        check_training_memory(cfg, device, oversample, relief=relief, recompute=recompute)  # before allocating
        data = self._data or load_dataset(
            cfg.dataset,
            train_samples=cfg.train_samples,
            val_samples=cfg.val_samples,
            test_samples=cfg.test_samples,
            seed=cfg.seed,
        )
        if cfg.task == "qpi" and data.kind != "phase" and cfg.encoding_mode != "phase":
            raise ConfigError("the qpi task needs phase encoding (encoding_mode='phase', --encoding phase)")
        geometry = make_geometry(cfg, n_medium, oversample)
        quantizers = make_quantizers(cfg, levels, torch.Generator().manual_seed(cfg.seed))
        try:
            network = DiffractiveNetwork(geometry, quantizers, relief=relief, recompute=recompute).to(device)
        except OpticsError as exc:
            raise ConfigError(str(exc)) from None
        encoding = make_encoding(cfg, data)
        task = make_task(cfg, data, oversample).to(device)
        self.parts = RunParts(network, task, encoding, levels, fabrication, data, device)
        return self.parts

    def _optimizer(self, parts: RunParts) -> torch.optim.Optimizer:
        """Adam over the quantizers' parameter groups (see :mod:`quaton_fab.training.param_groups`)."""
        return torch.optim.Adam(optimizer_groups(parts.network.phase_modules, parts.task), lr=self.config.lr)

    # ------------------------------------------------------------------ checkpoint
    def _save_checkpoint(self, state: dict[str, Any]) -> None:
        if not self.distributed.is_main:
            return  # one writer: the main process
        write_checkpoint(self.checkpoint_path, state)

    def load_checkpoint(self) -> dict[str, Any]:
        """Read the run directory's checkpoint (tensors and containers only; no code is executed)."""
        return read_checkpoint(self.checkpoint_path, self.out_dir)

    def mark_complete(self) -> None:
        """Record in the checkpoint that the run's design has been saved (``--resume`` then has nothing to do).

        Called after the design files are written, so a failed save leaves a checkpoint that ``--resume``
        turns into the same design again.
        """
        if not self.distributed.is_main:
            return
        state = self.load_checkpoint()
        state["complete"] = True
        self._save_checkpoint({k: v for k, v in state.items() if k not in ("format", "version", "software")})

    @staticmethod
    def config_from_checkpoint(out_dir: str | Path) -> TrainConfig:
        """The configuration stored in a run directory's checkpoint (for ``--resume``)."""
        return TrainConfig.from_dict(Trainer(TrainConfig(), out_dir).load_checkpoint()["config"])

    def _resume(self, parts: RunParts, optimizer: torch.optim.Optimizer) -> _Progress:
        """Load the checkpoint into the network, task, optimizer and torch's generator; where the loop stands."""
        state = self.load_checkpoint()
        if state["config"] != self.config.to_dict():
            raise CheckpointError("the checkpoint was written with another configuration; resume with the same one")
        if state.get("complete"):
            raise CheckpointError(f"the run in {str(self.out_dir)!r} is already complete; nothing to resume")
        try:
            parts.network.load_state_dict(state["network"])
            parts.task.load_state_dict(state["task"])
            optimizer.load_state_dict(state["optimizer"])
            torch.set_rng_state(state["rng"])
            progress = _Progress(
                start_epoch=int(state["epoch"]),
                start_step=int(state["step"]),
                history=list(state["history"]),
                best=state["best"],
                elapsed_before=float(state.get("elapsed_s", 0.0)),
                resumed_loss=(float(state["epoch_loss"][0]), int(state["epoch_loss"][1])),
            )
        except (RuntimeError, KeyError, TypeError, ValueError, IndexError) as exc:
            raise CheckpointError(
                f"checkpoint {str(self.checkpoint_path)!r} does not fit this run ({type(exc).__name__})"
            ) from None
        log.info("resuming at epoch %d, step %d", progress.start_epoch + 1, progress.start_step)
        return progress

    # ------------------------------------------------------------------ loop
    def fit(self, *, resume: bool = False) -> TrainResult:
        """Train (or resume) and return the best-validation design, tested on the test split and saved."""
        cfg = self.config
        self.out_dir.mkdir(parents=True, exist_ok=True)
        parts = self.parts or self.build()
        optimizer = self._optimizer(parts)
        torch.manual_seed(cfg.seed)
        progress = self._resume(parts, optimizer) if resume else _Progress()

        steps = math.ceil(int(parts.data.train.images.shape[0]) / cfg.batch_size)
        t0 = time.perf_counter()
        self._stop_requested = False
        model = self.distributed.wrap(LossModule(parts.network, parts.task))
        for epoch in range(progress.start_epoch, cfg.epochs):
            running, count = self._train_epoch(parts, optimizer, model, progress, epoch, steps, t0)
            if not self.distributed.is_main:
                continue  # only the main process validates, keeps the best state and writes checkpoints
            self._end_epoch(parts, optimizer, progress, epoch, running / max(count, 1), t0)

        train_time = progress.elapsed_before + time.perf_counter() - t0
        if not self.distributed.is_main:
            return TrainResult(design=None, history=progress.history, out_dir=self.out_dir)  # type: ignore[arg-type]
        best = progress.best
        assert best is not None
        parts.network.load_state_dict(best["network"])
        parts.task.load_state_dict(best["task"])
        design = make_design(cfg, parts, progress.history, best, train_time, self.callbacks.on_eval)
        # Not marked complete here: the caller does that (mark_complete) once the design files are saved.
        self._checkpoint(parts, optimizer, torch.get_rng_state(), cfg.epochs, 0, progress, t0)
        return TrainResult(design=design, history=progress.history, out_dir=self.out_dir)

    def _train_epoch(self, parts: RunParts, optimizer: torch.optim.Optimizer, model: torch.nn.Module,
                     progress: _Progress, epoch: int, steps: int, t0: float) -> tuple[float, int]:
        """Run one epoch's optimiser steps (from the resume position); (sum, count) of the training losses.

        Raises:
            TrainingInterrupted: a stop was requested (the checkpoint is saved first).
        """
        cfg, network, ranks = self.config, parts.network, self.distributed
        for q in network.phase_modules:
            q.start_epoch(epoch, cfg.epochs)
        network.train()
        parts.task.train()
        n_train = int(parts.data.train.images.shape[0])
        order = torch.randperm(n_train, generator=torch.Generator().manual_seed(_epoch_seed(cfg.seed, epoch)))
        first = progress.start_step if epoch == progress.start_epoch else 0
        self.callbacks.on_epoch_start(epoch, cfg.epochs, steps, first)
        running, count = progress.resumed_loss if epoch == progress.start_epoch else (0.0, 0)
        vaccination = vaccination_of(cfg)
        for step in range(first, steps):
            rng = torch.get_rng_state()
            if ranks.any(self._stop_requested, parts.device):
                self._checkpoint(parts, optimizer, rng, epoch, step, progress, t0, epoch_loss=(running, count))
                raise TrainingInterrupted(self.checkpoint_path, epoch, step)
            for q in network.phase_modules:  # run-fraction schedules move every step
                q.advance(epoch * steps + step, steps, cfg.epochs)
            value = self._step(parts, optimizer, model, order, epoch, step, steps, vaccination)
            running += value
            count += 1
            self.callbacks.on_step(epoch, step, value, _status(network))
        return running, count

    def _step(self, parts: RunParts, optimizer: torch.optim.Optimizer, model: torch.nn.Module,
              order: torch.Tensor, epoch: int, step: int, steps: int, vaccination: Any) -> float:
        """One optimiser step on this process's share of batch ``step`` of the shuffled ``order``; the loss.

        ``vaccination``: the error magnitudes a fresh print is drawn from for the batch, or None.

        Raises:
            TrainingDiverged: the loss is not finite (checked before the step, so the parameters stay usable).
        """
        cfg, network, ranks, train = self.config, parts.network, self.distributed, parts.data.train
        idx = order[step * cfg.batch_size : (step + 1) * cfg.batch_size]
        share = split_share(len(idx), ranks.rank, ranks.world_size)
        idx = idx[share.start : share.stop]  # this process's share of the global batch
        images = train.images[idx].to(parts.device)
        labels = train.labels[idx].to(parts.device)
        field_in, input_phase = parts.encoding.field_and_phase(images, cfg.neurons, network.geometry.oversample)
        draw = None
        if vaccination is not None:  # a fresh print drawn for this batch (seeded by its position: resume-safe)
            draw = draw_perturbation(vaccination, cfg.layers, cfg.neurons, step_generator(cfg.seed, epoch, step))

        def inputs(lo: int, hi: int):
            phase = None if input_phase is None else input_phase[lo:hi]
            return field_in[lo:hi], labels[lo:hi], phase, draw

        optimizer.zero_grad(set_to_none=True)
        value = accumulate_gradients(
            model, inputs, share, cfg.micro_batch,
            regularizer=lambda: sum(q.regularizer() for q in network.phase_modules),
            no_sync=ranks.no_sync(model), state=network,
        )
        value = ranks.mean(value, parts.device)
        if not math.isfinite(value):
            raise TrainingDiverged(
                f"the loss became {value} at epoch {epoch + 1}, step {step + 1}; lower the learning rate"
            )
        set_lr(optimizer, cfg.lr, cfg.lr_schedule, epoch * steps + step, cfg.epochs * steps)
        optimizer.step()
        return value

    def _end_epoch(self, parts: RunParts, optimizer: torch.optim.Optimizer, progress: _Progress, epoch: int,
                   train_loss: float, t0: float) -> None:
        """Validate with the hard-quantized masks, record the epoch, keep the best state, write the checkpoint."""
        cfg, network, task = self.config, parts.network, parts.task
        val = evaluate_network(
            network, task, parts.encoding, parts.data.val.images, parts.data.val.labels,
            batch_size=cfg.eval_batch_size,
            progress=lambda d, t: self.callbacks.on_eval("validation", d, t),
        )
        record = {
            "epoch": epoch + 1,
            "train_loss": train_loss,
            "val": _scalar_metrics(val),
            "quantizer": _status(network),
            "quantizer_per_mask": [q.status() for q in network.phase_modules],
            "time_s": progress.elapsed_before + time.perf_counter() - t0,
        }
        progress.history.append(record)
        primary = task.primary_metric
        if progress.best is None or val[primary] > progress.best["metric"]:
            progress.best = {
                "metric": float(val[primary]),
                "epoch": epoch + 1,
                "network": copy.deepcopy(network.state_dict()),
                "task": copy.deepcopy(task.state_dict()),
                "val": _scalar_metrics(val),
            }
        self.callbacks.on_epoch_end(epoch, record)
        self._checkpoint(parts, optimizer, torch.get_rng_state(), epoch + 1, 0, progress, t0)

    def _checkpoint(self, parts: RunParts, optimizer: torch.optim.Optimizer, rng: torch.Tensor, epoch: int,
                    step: int, progress: _Progress, t0: float, complete: bool = False,
                    epoch_loss: tuple[float, int] = (0.0, 0)) -> None:
        """Save the state a resume at (``epoch``, ``step``) needs; ``rng`` is torch's generator state then."""
        self._save_checkpoint(
            {
                "config": self.config.to_dict(),
                "epoch": epoch,
                "step": step,
                "network": parts.network.state_dict(),
                "task": parts.task.state_dict(),
                "optimizer": optimizer.state_dict(),
                "rng": rng,
                "history": progress.history,
                "best": progress.best,
                "elapsed_s": progress.elapsed_before + time.perf_counter() - t0,
                "epoch_loss": [float(epoch_loss[0]), int(epoch_loss[1])],
                "complete": complete,
            }
        )


def _epoch_seed(seed: int, epoch: int) -> int:
    """Seed of the shuffle of one epoch (independent of resume position)."""
    return (seed * 1_000_003 + epoch * 7919 + 17) % (2**63 - 1)


def _status(network: DiffractiveNetwork) -> dict[str, float]:
    """Mean of each quantizer status value over the masks (slope, temperature, …) for display."""
    merged: dict[str, list[float]] = {}
    for q in network.phase_modules:
        for key, value in q.status().items():
            merged.setdefault(key, []).append(float(value))
    return {key: float(np.mean(values)) for key, values in merged.items()}


def _scalar_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """Only the scalar entries (drop confusion matrices) for histories."""
    return {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
