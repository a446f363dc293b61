"""Cost of one training step of a configuration: time, peak memory, and the memory the estimate predicted.

Builds the run's network and task exactly as training does (on generated data of the run's geometry), then
times forward + backward of one batch and measures its peak memory (:mod:`quaton_fab.profiling`). Used by the
scale table and step benchmarks in ``benchmarks/`` and by the memory-estimate test.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from quaton_fab.data import load_dataset
from quaton_fab.profiling import measure_peak_bytes, peak_method, time_best_s
from quaton_fab.resources import training_memory_parts
from quaton_fab.training.config import TrainConfig
from quaton_fab.training.step import LossModule, accumulate_gradients, split_share
from quaton_fab.training.trainer import Trainer

__all__ = ["StepCost", "StepRunner", "measure_step"]


@dataclass
class StepCost:
    """One configuration's step: ``step_s`` (best of the repeats), ``samples_per_s``, ``peak_bytes`` (measured,
    None where it cannot be), ``estimate_bytes`` (the resource estimate of a training step: kept fields and
    transfer functions), ``method`` (how the peak was measured), ``recomputed`` (recompute as resolved)."""

    step_s: float
    samples_per_s: float
    peak_bytes: int | None
    estimate_bytes: float
    method: str | None
    recomputed: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return dict(self.__dict__)


class StepRunner:
    """The network, task and one batch of a configuration, ready to run training steps.

    Args:
        config: the run (its dataset is replaced by generated data of its geometry: only sizes matter here).
        device: ``"cpu"``, ``"cuda"`` or ``"auto"`` (the config's own device request when None).
    """

    def __init__(self, config: TrainConfig, device: str | None = None) -> None:
        batch = config.batch_size
        config = config.replace(dataset="synthetic", train_samples=max(batch, 16), val_samples=8, test_samples=8,
                                device=device or config.device)
        data = load_dataset("synthetic", train_samples=config.train_samples, val_samples=8, test_samples=8,
                            seed=config.seed)
        self.config = config
        self.parts = Trainer(config, "unused", data=data).build()
        net = self.parts.network
        images = data.train.images[:batch].to(self.parts.device)
        self.labels = data.train.labels[:batch].to(self.parts.device)
        self.field, self.input_phase = self.parts.encoding.field_and_phase(images, config.neurons,
                                                                           net.geometry.oversample)
        self.model = LossModule(net, self.parts.task)

    @property
    def device(self) -> torch.device:
        """Where the network lives."""
        return self.parts.device

    def step(self) -> float:
        """One forward + backward of the batch (micro-batched as configured); returns the loss."""
        net = self.parts.network
        for p in self.model.parameters():
            p.grad = None

        def inputs(lo: int, hi: int) -> tuple:
            phase = None if self.input_phase is None else self.input_phase[lo:hi]
            return self.field[lo:hi], self.labels[lo:hi], phase, None

        share = split_share(int(self.field.shape[0]), 0, 1)
        return accumulate_gradients(
            self.model, inputs, share, self.config.micro_batch,
            regularizer=lambda: sum(q.regularizer() for q in net.phase_modules), state=net,
        )

    def estimate_bytes(self) -> float:
        """The resource estimate of one training step (kept and working fields, transfer functions)."""
        net = self.parts.network
        parts, _ = training_memory_parts(self.config, net.geometry.oversample, relief=net.relief,
                                         recompute=net.recompute)
        return parts["train"] + parts["transfer"]


def measure_step(config: TrainConfig, device: str | None = None, *, repeats: int = 2) -> StepCost:
    """Build ``config``'s step, measure its peak memory once (after a warm-up step) and its best time."""
    runner = StepRunner(config, device)
    runner.step()  # warm-up: FFT plans, lazily built propagators
    for p in runner.model.parameters():
        p.grad = None
    peak, _ = measure_peak_bytes(runner.step, runner.device)
    best = time_best_s(runner.step, repeats=repeats, device=runner.device) if repeats > 0 else float("nan")
    return StepCost(
        step_s=best,
        samples_per_s=runner.config.batch_size / best if best == best else float("nan"),
        peak_bytes=peak,
        estimate_bytes=runner.estimate_bytes(),
        method=peak_method(runner.device),
        recomputed=runner.parts.network.recompute,
    )
