"""Data-parallel training on PyTorch's own engine: DistributedDataParallel under ``torchrun``.

``torchrun --nproc-per-node K --no-python quaton-fab train …`` starts K processes; each reads its rank from the
environment torchrun sets (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``/``MASTER_PORT``) and joins
one process group: gloo on CPU, NCCL on GPUs (one GPU per process, ``cuda:LOCAL_RANK``). Every process draws
the same seeded shuffle and takes its contiguous share of each global batch (sizes differ by at most one), so
K processes compute the gradient of the same global batch as one process (to float rounding; see
:mod:`quaton_fab.training.step` for the weights). Only rank 0 validates, tests and writes the run directory and
its checkpoints; a stop request (Ctrl-C) on any rank stops every rank after the same step. ``--nproc K`` in
the CLI is a shortcut that launches torchrun on this machine (:func:`launch_command`).

Multi-node: run the same torchrun command on every node with ``--nnodes N --node-rank I
--rdzv-backend c10d --rdzv-endpoint HOST:PORT --rdzv-id JOB`` (torchrun's usual rendezvous flags); the run
directory must be on a file system every node can read (``--resume`` loads rank 0's checkpoint everywhere).
"""

from __future__ import annotations

import contextlib
import datetime
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from quaton_fab.training.config import ConfigError

__all__ = ["Distributed", "SINGLE", "from_environment", "launch_command", "shutdown", "TORCHRUN_MODULE"]

#: ``python -m`` module of PyTorch's launcher (the ``torchrun`` console script runs the same).
TORCHRUN_MODULE = "torch.distributed.run"
#: How long a process waits for the others at a collective (rank 0 validating, saving a checkpoint).
_TIMEOUT = datetime.timedelta(minutes=60)


@dataclass(frozen=True)
class Distributed:
    """This process's place in a data-parallel run (``world_size == 1``: a plain single-process run)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        """True on the process that validates and writes files (rank 0)."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        """True when several processes train together."""
        return self.world_size > 1

    def wrap(self, module: nn.Module) -> nn.Module:
        """``module`` in DistributedDataParallel (gradients averaged over the processes), or itself when alone."""
        if not self.active:
            return module
        device_ids = [self.local_rank] if self.backend == "nccl" else None
        # Every rank advances the buffers (quantizer schedules, noise counters) identically; DDP's default sync of
        # rank 0's buffers at each forward copies equal values (a few small tensors).
        return DistributedDataParallel(module, device_ids=device_ids)

    def no_sync(self, wrapped: nn.Module) -> Callable[[], contextlib.AbstractContextManager] | None:
        """DDP's ``no_sync`` of ``wrapped`` (gradient accumulation without all-reduce), None when alone."""
        return wrapped.no_sync if isinstance(wrapped, DistributedDataParallel) else None

    def any(self, flag: bool, device: torch.device) -> bool:
        """True on every rank when ``flag`` is True on any rank (e.g. a stop request)."""
        if not self.active:
            return flag
        value = torch.tensor([1.0 if flag else 0.0], device=self._device(device))
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item() > 0)

    def mean(self, value: float, device: torch.device) -> float:
        """Mean of ``value`` over the processes (the loss of the global batch from the shares' losses)."""
        if not self.active:
            return value
        tensor = torch.tensor([value], dtype=torch.float64, device=self._device(device))
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return float(tensor.item()) / self.world_size

    def _device(self, device: torch.device) -> torch.device:
        return device if self.backend == "nccl" else torch.device("cpu")


#: The single-process context (no process group).
SINGLE = Distributed()


def from_environment(device: str = "auto") -> Distributed:
    """Join the process group torchrun describes in the environment; :data:`SINGLE` when not under torchrun.

    ``device``: the run's device request (``auto``, ``cpu``, ``cuda``): NCCL when it resolves to CUDA (each
    process then uses ``cuda:LOCAL_RANK``), gloo otherwise.

    Raises:
        ConfigError: a CUDA run with more processes on a node than it has GPUs.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return SINGLE
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    if cuda:
        count = torch.cuda.device_count()
        if local >= count:
            raise ConfigError(f"--nproc: process {local} on this node has no GPU (this node has {count})")
        torch.cuda.set_device(local)
    backend = "nccl" if cuda else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, timeout=_TIMEOUT)
    return Distributed(rank=rank, world_size=world, local_rank=local, backend=backend)


def shutdown(context: Distributed) -> None:
    """Leave the process group (no-op when alone)."""
    if context.active and dist.is_initialized():
        dist.destroy_process_group()


def launch_command(processes: int, argv: list[str]) -> list[str]:
    """The torchrun command that runs ``quaton-fab ARGV`` in ``processes`` processes on this machine."""
    if processes < 1:
        raise ConfigError(f"--nproc must be at least 1, got {processes}")
    return [sys.executable, "-m", TORCHRUN_MODULE, "--standalone", "--nproc-per-node", str(processes),
            "-m", "quaton_fab.cli", *argv]
