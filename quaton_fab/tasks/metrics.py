"""The task metrics: their names, which one is each task's headline, their direction, display and defaults.

One home for what every report, check and summary used to spell out again: ``accuracy`` (classification) and
``ssim`` (QPI) are the primary metrics, higher is better for both; accuracy is shown in percent with 2 decimals,
SSIM as a number with 4. A design that records no primary metric is an older classifier: ``accuracy``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ACCURACY",
    "SSIM",
    "DEFAULT_PRIMARY",
    "PRIMARY_BY_TASK",
    "HEADLINE_ORDER",
    "MetricSpec",
    "METRICS",
    "metric_spec",
    "primary_metric_name",
    "primary_for_task",
    "metric_title",
    "metric_axis_label",
    "format_metric",
]

ACCURACY = "accuracy"
SSIM = "ssim"
#: Primary metric of a design or record that names none.
DEFAULT_PRIMARY = ACCURACY
#: Each task kind's primary metric.
PRIMARY_BY_TASK: dict[str, str] = {"classify": ACCURACY, "qpi": SSIM}
#: Metrics looked for, in this order, as a design's headline test metric.
HEADLINE_ORDER: tuple[str, ...] = (ACCURACY, SSIM)


@dataclass(frozen=True)
class MetricSpec:
    """How one metric is read and shown.

    Attributes:
        name: the key in the metrics dictionaries. higher_is_better: its direction.
        scale, digits, unit: display as ``value·scale`` with ``digits`` decimals and ``unit`` (``"%"`` or ``""``).
        verify_tolerance: default gap ``verify`` accepts between the design and the printed files (metric units).
        tolerance_loss: default loss the tolerance analysis allows (metric units).
    """

    name: str
    higher_is_better: bool = True
    scale: float = 1.0
    digits: int = 4
    unit: str = ""
    verify_tolerance: float = 0.01
    tolerance_loss: float = 0.02


METRICS: dict[str, MetricSpec] = {
    ACCURACY: MetricSpec(ACCURACY, scale=100.0, digits=2, unit="%", verify_tolerance=0.005, tolerance_loss=0.01),
    SSIM: MetricSpec(SSIM, verify_tolerance=0.01, tolerance_loss=0.02),
}


def metric_spec(name: str) -> MetricSpec:
    """The spec of ``name``; an unknown name is shown as a plain number (4 decimals), higher is better."""
    return METRICS.get(name) or MetricSpec(name)


def primary_for_task(kind: str | None) -> str:
    """Primary metric of a task kind (``classify`` → accuracy; anything else → SSIM, the QPI metric)."""
    return ACCURACY if kind == "classify" else SSIM


def primary_metric_name(metrics: Mapping[str, Any], task_kind: str | None = None) -> str:
    """The primary metric a design's ``metrics`` record names.

    Without one: the task's (``task_kind`` given), else :data:`DEFAULT_PRIMARY`.
    """
    if task_kind is not None:
        return metrics.get("primary") or primary_for_task(task_kind)
    return metrics.get("primary", DEFAULT_PRIMARY)


def metric_title(name: str) -> str:
    """Column title of a metric: ``accuracy``, else the name in capitals (``SSIM``)."""
    return ACCURACY if name == ACCURACY else name.upper()


def metric_axis_label(name: str) -> str:
    """Axis/column label with the unit: ``accuracy (%)``, else the name in capitals."""
    return "accuracy (%)" if name == ACCURACY else name.upper()


def format_metric(value: float, name: str) -> str:
    """``value`` shown as its metric is (e.g. ``93.41%``, ``0.8123``)."""
    spec = metric_spec(name)
    return f"{value * spec.scale:.{spec.digits}f}{spec.unit}"
