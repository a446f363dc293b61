"""The optimiser's parameter groups and the learning rate of each at every step.

One idea: which parameters move at which rate. Each quantizer declares its groups
(:meth:`~quaton_fab.quant.quantizers.Quantizer.param_groups`): most parameters take the run's learning rate
times an ``lr_scale`` (GS logits: ×4) and follow its schedule (constant or cosine); PSQ-LT's temperature κ has a
learning rate of its own (``kappa_lr``), which the phase schedule leaves alone unless asked
(``kappa_lr_schedule = "follow"``). The task's parameters (e.g. the QPI gain) take the run's rate.
"""

from __future__ import annotations

import math
from typing import Any

import torch

__all__ = ["optimizer_groups", "group_lr", "set_lr"]


def optimizer_groups(phase_modules: Any, task: torch.nn.Module) -> list[dict[str, Any]]:
    """Parameter groups for ``torch.optim.Adam``: every quantizer's groups, then the task's parameters.

    Groups without parameters are left out (Adam refuses an empty group).
    """
    groups = [dict(g) for q in phase_modules for g in q.param_groups()]
    task_params = list(task.parameters())
    if task_params:
        groups.append({"params": task_params, "lr_scale": 1.0})
    return [g for g in groups if list(g["params"])]


def group_lr(group: dict[str, Any], base_lr: float, scheduled_lr: float) -> float:
    """Learning rate of one group at a step where the run's schedule gives ``scheduled_lr`` (base ``base_lr``).

    ``fixed_lr`` groups: their own rate, scaled by ``scheduled_lr / base_lr`` only with ``follow_schedule``;
    other groups: ``scheduled_lr × lr_scale``.
    """
    if "fixed_lr" in group:
        factor = scheduled_lr / base_lr if group.get("follow_schedule") else 1.0
        return float(group["fixed_lr"]) * factor
    return scheduled_lr * float(group.get("lr_scale", 1.0))


def set_lr(optimizer: torch.optim.Optimizer, base_lr: float, schedule: str, step: int, total: int) -> None:
    """Set every group's learning rate for global step ``step`` of ``total`` (a pure function of the position:
    resume-safe). ``schedule``: ``"cosine"`` (half a cosine from ``base_lr`` to 0) or constant otherwise.
    """
    lr = base_lr
    if schedule == "cosine":
        lr = base_lr * 0.5 * (1.0 + math.cos(math.pi * step / max(total, 1)))
    for group in optimizer.param_groups:
        group["lr"] = group_lr(group, base_lr, lr)
