"""The task metrics have one home: names, primary per task, direction, display and default tolerances."""

from __future__ import annotations

from quaton_fab.tasks import ClassificationTask, QPITask
from quaton_fab.tasks.metrics import (
    ACCURACY,
    SSIM,
    format_metric,
    metric_axis_label,
    metric_spec,
    metric_title,
    primary_for_task,
    primary_metric_name,
)


def test_each_task_names_its_primary_metric_from_the_one_table():
    assert ClassificationTask.primary_metric == ACCURACY == primary_for_task("classify")
    assert QPITask.primary_metric == SSIM == primary_for_task("qpi")


def test_primary_metric_fallbacks():
    assert primary_metric_name({}) == ACCURACY
    assert primary_metric_name({"primary": "ssim"}) == SSIM
    assert primary_metric_name({}, "qpi") == SSIM
    assert primary_metric_name({"primary": None}, "classify") == ACCURACY


def test_display_and_defaults():
    acc, ssim = metric_spec(ACCURACY), metric_spec(SSIM)
    assert (acc.scale, acc.digits, acc.unit) == (100.0, 2, "%")
    assert (ssim.scale, ssim.digits, ssim.unit) == (1.0, 4, "")
    assert acc.higher_is_better and ssim.higher_is_better
    assert (acc.verify_tolerance, ssim.verify_tolerance) == (0.005, 0.01)
    assert (acc.tolerance_loss, ssim.tolerance_loss) == (0.01, 0.02)
    assert metric_spec("mse").digits == 4 and metric_spec("mse").scale == 1.0
    assert metric_spec("mse").verify_tolerance == 0.01 and metric_spec("mse").tolerance_loss == 0.02
    assert metric_title(ACCURACY) == "accuracy" and metric_title(SSIM) == "SSIM"
    assert metric_axis_label(ACCURACY) == "accuracy (%)" and metric_axis_label(SSIM) == "SSIM"
    assert format_metric(0.93412, ACCURACY) == "93.41%" and format_metric(0.81234, SSIM) == "0.8123"
