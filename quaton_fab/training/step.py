"""One optimisation step's gradients, in micro-batches: any batch fits, the gradients stay those of the batch.

A batch of ``B`` samples is cut into micro-batches of at most ``M``; each runs forward and backward on its own
and the gradients add up in the parameters' ``.grad``. The task losses are means over their samples, so chunk
``i`` of ``n_i`` samples is weighted ``n_i / B``: the summed gradient is the gradient of the batch mean (up to
float rounding). The quantizers' regularisers are added once. Every micro-batch sees the same module state:
buffers that a forward pass advances (the Gumbel-softmax noise counter) are rewound before each further
micro-batch, so a step draws exactly what the whole batch would have drawn.

In data-parallel training (:mod:`quaton_fab.training.distributed`) each process holds one share of the global
batch; the weights use the global batch size and are multiplied by the number of processes, because
DistributedDataParallel averages the processes' gradients.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from quaton_fab.optics.network import DiffractiveNetwork
from quaton_fab.optics.perturbation import PerturbationDraw, perturbed_forward

__all__ = ["LossModule", "StepShare", "accumulate_gradients", "micro_batches", "split_share"]


class LossModule(nn.Module):
    """The network and the task as one module, so a data-parallel wrapper sees every trained parameter.

    ``forward(field, labels, input_phase, draw)`` → the task loss (mean over the samples); ``draw``: an optional
    fabrication-error draw (vaccinated training) applied to the printed relief.
    """

    def __init__(self, network: DiffractiveNetwork, task: nn.Module) -> None:
        super().__init__()
        self.network = network
        self.task = task

    def forward(
        self,
        field: torch.Tensor,
        labels: torch.Tensor,
        input_phase: torch.Tensor | None,
        draw: PerturbationDraw | None = None,
    ) -> torch.Tensor:
        intensity = self.network(field) if draw is None else perturbed_forward(self.network, field, draw)
        return self.task.loss(intensity, labels, input_phase)


@dataclass(frozen=True)
class StepShare:
    """This process's share of one step: samples ``[start, stop)`` of a global batch of ``total`` samples.

    ``processes``: how many processes average their gradients (1 without data parallelism).
    """

    start: int
    stop: int
    total: int
    processes: int = 1

    @property
    def size(self) -> int:
        """Samples in this share."""
        return self.stop - self.start


def split_share(batch: int, rank: int, processes: int) -> StepShare:
    """Rank ``rank``'s contiguous share of a batch of ``batch`` samples (sizes differ by at most one)."""
    base, extra = divmod(batch, processes)
    start = rank * base + min(rank, extra)
    return StepShare(start, start + base + (1 if rank < extra else 0), batch, processes)


def micro_batches(size: int, micro_batch: int | None) -> list[tuple[int, int]]:
    """``[(start, stop), …]`` cutting ``size`` samples into chunks of at most ``micro_batch`` (None: one chunk)."""
    if size <= 0:
        return []
    step = size if micro_batch is None else max(1, int(micro_batch))
    return [(lo, min(lo + step, size)) for lo in range(0, size, step)]


def accumulate_gradients(
    model: nn.Module,
    inputs: Callable[[int, int], tuple],
    share: StepShare,
    micro_batch: int | None,
    regularizer: Callable[[], torch.Tensor] | None = None,
    no_sync: Callable[[], contextlib.AbstractContextManager] | None = None,
    state: nn.Module | None = None,
) -> float:
    """Run forward + backward over ``share`` in micro-batches; gradients accumulate in ``.grad``.

    Args:
        model: called as ``model(*inputs(lo, hi))`` → mean loss of samples ``lo:hi`` of the share (local indices).
        inputs: builds the arguments of one micro-batch.
        share: this process's samples of the global batch (see :class:`StepShare`).
        micro_batch: largest micro-batch (None: the whole share at once).
        regularizer: optional extra loss (added once, with weight 1).
        no_sync: optional context factory suppressing the gradient all-reduce (DDP's ``no_sync``) for every
            micro-batch but the last.
        state: module whose buffers are rewound before every micro-batch after the first (default: ``model``).

    Returns the loss of this share as it enters the gradient (float): weighted task losses + regulariser.
    """
    chunks = micro_batches(share.size, micro_batch)
    holder = model if state is None else state
    saved = [b.detach().clone() for b in holder.buffers()] if len(chunks) > 1 else []
    total = 0.0
    for index, (lo, hi) in enumerate(chunks):
        if index:
            with torch.no_grad():
                for buffer, value in zip(holder.buffers(), saved):
                    buffer.copy_(value)
        last = index == len(chunks) - 1
        context = no_sync() if (no_sync is not None and not last) else contextlib.nullcontext()
        with context:
            loss = model(*inputs(lo, hi)) * ((hi - lo) * share.processes / share.total)
            if regularizer is not None and index == 0:
                loss = loss + regularizer()
            loss.backward()
        total += float(loss.detach())
    return total

