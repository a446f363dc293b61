"""Tasks: what the detector-plane intensity is asked to do, its loss and its metrics.

Every task is an ``nn.Module`` (the trainer optimises ``task.parameters()`` with the masks) with
``loss(intensity, labels, input_phase)``, ``update_metrics(state, intensity, labels, input_phase)``,
``finalize_metrics(state)``, ``primary_metric`` (higher is better) and ``to_dict()``; shapes are
intensity ``(B, N·s, N·s)``, labels ``(B,)`` int64, input_phase ``(B, N, N)`` radians. Metric names, each task's
primary metric, their direction and display: :mod:`quaton_fab.tasks.metrics`.
"""

from __future__ import annotations

from typing import Any

from .checks import TaskError
from .classify import ClassificationTask, default_regions
from .qpi import QPITask
from .ssim import ssim

__all__ = ["ClassificationTask", "QPITask", "TaskError", "Task", "task_from_dict", "default_regions", "ssim", "TASKS"]

Task = ClassificationTask | QPITask
#: Task classes by their ``kind`` key.
TASKS: dict[str, type[ClassificationTask] | type[QPITask]] = {"classify": ClassificationTask, "qpi": QPITask}


def task_from_dict(d: dict[str, Any], neurons: int, oversample: int) -> Task:
    """Rebuild a task from its ``to_dict()`` output on a detector grid of ``neurons`` × ``oversample``.

    Raises:
        TaskError: unknown ``kind``, or a stored ``neurons`` that differs from the given grid.
    """
    kind = d.get("kind")
    if kind not in TASKS:
        raise TaskError(f"unknown task kind {kind!r}; expected one of {', '.join(TASKS)}")
    stored = d.get("neurons")
    if stored is not None and int(stored) != neurons:
        raise TaskError(f"task was made for a {stored}-neuron grid, not {neurons}")
    return TASKS[kind].from_dict(d, neurons, oversample)
