"""Classification and QPI tasks: layout, scores, losses, metrics, oversampling, round trips, errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from quaton_fab.tasks import ClassificationTask, QPITask, TaskError, default_regions, ssim, task_from_dict
from quaton_fab.tasks.classify import balanced_rows, validate_regions
from quaton_fab.tasks.qpi import BERHU_MIN_THRESHOLD, berhu


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _lit_regions(task: ClassificationTask, classes: list[int], power: float = 1.0) -> torch.Tensor:
    """Intensity (B, N·s, N·s) with light only inside the detector of each sample's class."""
    s, n = task.oversample, task.neurons
    out = torch.zeros(len(classes), n * s, n * s, dtype=torch.float64)
    for b, k in enumerate(classes):
        r0, c0, r1, c1 = task.regions[k]
        out[b, r0 * s : r1 * s, c0 * s : c1 * s] = power
    return out


# ------------------------------------------------------------------------------------------- layout
def test_default_layout_is_3_4_3_disjoint_inside_and_centred_for_all_sizes():
    for n in range(28, 201):
        regions = default_regions(n)
        side = round(0.1 * n)
        assert len(regions) == 10
        validate_regions(regions, n, 10)  # inside and disjoint (raises otherwise)
        assert all(r1 - r0 == side and c1 - c0 == side for r0, c0, r1, c1 in regions), n
        rows = sorted({r[0] for r in regions})
        assert [sum(r[0] == row for r in regions) for row in rows] == [3, 4, 3], n
        # class order: top row first, left to right
        assert regions == sorted(regions, key=lambda r: (r[0], r[1])), n
        top, left = min(r[0] for r in regions), min(r[1] for r in regions)
        bottom, right = max(r[2] for r in regions), max(r[3] for r in regions)
        assert abs((top + bottom) / 2 - n / 2) <= 0.5 and abs((left + right) / 2 - n / 2) <= 0.5, n
        # gaps of at least one neuron between neighbours in a row and between rows
        for row in rows:
            cols = sorted(r[1] for r in regions if r[0] == row)
            assert all(b - a >= side + 1 for a, b in zip(cols, cols[1:])), n
        assert all(b - a >= side + 1 for a, b in zip(rows, rows[1:])), n


def test_balanced_rows_generalise():
    assert balanced_rows(10) == [3, 4, 3]
    assert balanced_rows(4) == [2, 2]
    assert balanced_rows(2) == [2]
    for k in range(1, 40):
        counts = balanced_rows(k)
        assert sum(counts) == k and max(counts) - min(counts) <= 1
    for k in range(2, 17):
        regions = default_regions(64, k)
        assert validate_regions(regions, 64, k) == regions


def test_small_grid_shrinks_gaps_and_too_large_detectors_fail():
    regions = default_regions(5, 10)  # side 1, no room for gaps of 1 between 4 squares
    assert validate_regions(regions, 5, 10) == regions
    with pytest.raises(TaskError, match="do not fit"):
        default_regions(30, 10, detector_size=8)


@pytest.mark.parametrize(
    "regions, fragment",
    [
        ([(0, 0, 2, 2)] * 2, "overlap"),
        ([(0, 0, 2, 2), (1, 1, 3, 3)], "overlap"),
        ([(0, 0, 2, 2), (6, 6, 9, 9)], "outside"),
        ([(0, 0, 2, 2), (3, 3, 3, 5)], "empty"),
        ([(0, 0, 2, 2)], "2 classes"),
        ([(0, 0, 2, 2), (3, 3, 4.5, 5)], "4 integers"),
    ],
)
def test_user_regions_are_validated(regions, fragment):
    with pytest.raises(TaskError) as info:
        ClassificationTask(8, 1, num_classes=2, regions=regions)
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_touching_user_regions_are_allowed():
    task = ClassificationTask(8, 1, num_classes=2, regions=[(0, 0, 2, 2), (0, 2, 2, 4)])
    assert task.regions == [(0, 0, 2, 2), (0, 2, 2, 4)]


# ------------------------------------------------------------------------------------------- scores
def test_score_equals_hand_sum_over_oversampled_pixels():
    n, s = 12, 2
    task = ClassificationTask(n, s, num_classes=3, regions=[(0, 0, 3, 2), (5, 5, 8, 9), (9, 1, 12, 12)])
    intensity = _rng(1).random((2, n * s, n * s))
    scores = task.scores(torch.from_numpy(intensity)).numpy()
    for b in range(2):
        for k, (r0, c0, r1, c1) in enumerate(task.regions):
            total = 0.0
            for row in range(r0, r1):
                for col in range(c0, c1):
                    for i in range(s):
                        for j in range(s):
                            total += intensity[b, row * s + i, col * s + j]
            assert scores[b, k] == pytest.approx(total, rel=1e-12)


def test_perfect_intensity_gives_accuracy_one_and_the_minimal_loss():
    task = ClassificationTask(28, 1)
    classes = list(range(10))
    intensity = _lit_regions(task, classes)
    labels = torch.tensor(classes)
    # p is exactly one-hot: CE of softmax(10·e_k) is log(1 + 9·e^-10)
    assert float(task.loss(intensity, labels, None)) == pytest.approx(math.log1p(9 * math.exp(-10)), rel=1e-9)
    metrics = task.finalize_metrics(task.update_metrics(None, intensity, labels, None))
    assert metrics["accuracy"] == 1.0 and metrics["samples"] == 10
    assert metrics["confusion"] == np.eye(10, dtype=int).tolist()
    assert metrics["detector_efficiency"] == pytest.approx(1.0)
    mse_task = ClassificationTask(28, 1, loss="mse")
    assert float(mse_task.loss(intensity, labels, None)) == pytest.approx(0.0, abs=1e-15)
    # a wrong label costs more than the right one
    assert float(task.loss(intensity, (labels + 1) % 10, None)) > 5.0


@pytest.mark.parametrize("loss", ["ce", "mse"])
def test_loss_gradient_pushes_light_toward_the_right_detector(loss):
    task = ClassificationTask(28, 2, loss=loss)
    intensity = torch.from_numpy(0.5 + _rng(2).random((1, 56, 56))).requires_grad_(True)
    label = 7
    task.loss(intensity, torch.tensor([label]), None).backward()
    grad = intensity.grad[0]
    s = task.oversample
    for k, (r0, c0, r1, c1) in enumerate(task.regions):
        block = grad[r0 * s : r1 * s, c0 * s : c1 * s]
        if k == label:
            assert (block < 0).all()  # more light on the right detector lowers the loss
        else:
            assert (block > 0).all()
    # gradient descent on the intensity raises the right class's normalised score
    before = task.normalised(task.scores(intensity.detach()))[0, label]
    after = task.normalised(task.scores((intensity - 0.01 * grad).clamp_min(0).detach()))[0, label]
    assert after > before


def test_confusion_matrix_by_hand_accumulates_over_batches():
    task = ClassificationTask(30, 1, num_classes=4)
    true_1, pred_1 = [0, 1, 2, 3, 3], [0, 2, 2, 3, 0]
    true_2, pred_2 = [1, 1, 0], [1, 2, 3]
    state = task.update_metrics(None, _lit_regions(task, pred_1), torch.tensor(true_1), None)
    state = task.update_metrics(state, _lit_regions(task, pred_2), torch.tensor(true_2), None)
    metrics = task.finalize_metrics(state)
    expected = np.zeros((4, 4), dtype=int)
    for t, p in zip(true_1 + true_2, pred_1 + pred_2):
        expected[t, p] += 1
    assert metrics["confusion"] == expected.tolist()
    assert metrics["accuracy"] == pytest.approx(4 / 8)
    assert metrics["samples"] == 8


def test_detector_efficiency_counts_light_outside_the_detectors():
    task = ClassificationTask(20, 1, num_classes=2, regions=[(0, 0, 2, 2), (10, 10, 12, 12)])
    intensity = torch.zeros(1, 20, 20, dtype=torch.float64)
    intensity[0, 0:2, 0:2] = 1.0  # 4 units on detector 0
    intensity[0, 15:19, 15:18] = 1.0  # 12 units on no detector
    metrics = task.finalize_metrics(task.update_metrics(None, intensity, torch.tensor([0]), None))
    assert metrics["detector_efficiency"] == pytest.approx(4 / 16)


def test_classification_is_independent_of_oversampling():
    n = 28
    coarse = torch.from_numpy(_rng(3).random((4, n, n)))
    fine = coarse.repeat_interleave(2, dim=1).repeat_interleave(2, dim=2)
    labels = torch.tensor([0, 3, 5, 9])
    t1, t2 = ClassificationTask(n, 1), ClassificationTask(n, 2)
    assert t1.regions == t2.regions
    torch.testing.assert_close(t2.scores(fine), 4 * t1.scores(coarse))
    assert float(t1.loss(coarse, labels, None)) == pytest.approx(float(t2.loss(fine, labels, None)), rel=1e-12)
    m1 = t1.finalize_metrics(t1.update_metrics(None, coarse, labels, None))
    m2 = t2.finalize_metrics(t2.update_metrics(None, fine, labels, None))
    assert m1["confusion"] == m2["confusion"]
    assert m1["detector_efficiency"] == pytest.approx(m2["detector_efficiency"], rel=1e-12)


# ------------------------------------------------------------------------------------------- QPI
def _phase_batch(n: int, batch: int = 3, seed: int = 4) -> torch.Tensor:
    return torch.from_numpy(_rng(seed).random((batch, n, n)) * 1.2 * math.pi)  # some values above φ_max = π


def test_berhu_matches_hand_formula_and_task_threshold():
    rng = _rng(5)
    pred, target = rng.random(500) * 1.5, rng.random(500)
    c = 0.3
    d = np.abs(pred - target)
    hand = np.where(d <= c, d, (d**2 + c**2) / (2 * c)).mean()
    assert float(berhu(torch.from_numpy(pred), torch.from_numpy(target), c)) == pytest.approx(hand, rel=1e-12)

    n, s = 16, 1
    task = QPITask(n, s, crop=12, gain_init=1.7)
    phase = _phase_batch(n)
    intensity = torch.from_numpy(rng.random((3, n, n)))
    tgt = np.clip(phase.numpy() / math.pi, 0, 1)[:, 2:14, 2:14]
    prd = 1.7 * intensity.numpy()[:, 2:14, 2:14]
    c = 0.98 * tgt.std(ddof=1)
    d = np.abs(prd - tgt)
    hand = np.where(d <= c, d, (d**2 + c**2) / (2 * c)).mean()
    assert task.loss(intensity, None, phase).item() == pytest.approx(hand, rel=1e-6)
    mse_task = QPITask(n, s, crop=12, loss="mse", gain_init=1.7)
    assert mse_task.loss(intensity, None, phase).item() == pytest.approx(((prd - tgt) ** 2).mean(), rel=1e-6)


def test_berhu_threshold_guard_for_a_constant_target():
    task = QPITask(12, 1)
    intensity = torch.full((2, 12, 12), 0.5, dtype=torch.float64, requires_grad=True)
    loss = task.loss(intensity, None, torch.zeros(2, 12, 12, dtype=torch.float64))  # std(target) = 0
    c = BERHU_MIN_THRESHOLD
    assert loss.item() == pytest.approx((0.5**2 + c**2) / (2 * c), rel=1e-6)
    loss.backward()
    assert torch.isfinite(intensity.grad).all() and torch.isfinite(task.gain.grad)


def test_qpi_intensity_equal_to_target_over_gain_is_perfect():
    n, s, crop, gain = 24, 2, 16, 2.5
    task = QPITask(n, s, crop=crop, gain_init=gain)
    phase = _phase_batch(n)
    target = torch.clamp(phase / math.pi, 0, 1)
    intensity = (target / gain).repeat_interleave(s, dim=1).repeat_interleave(s, dim=2)
    intensity[:, :4, :] = 7.0  # light outside the crop does not matter
    metrics = task.finalize_metrics(task.update_metrics(None, intensity, None, phase))
    assert metrics["ssim"] == pytest.approx(1.0, abs=1e-9)
    assert metrics["ssim_ri"] == pytest.approx(1.0, abs=1e-9)
    assert metrics["mse"] == pytest.approx(0.0, abs=1e-20)
    assert metrics["gain"] == pytest.approx(gain) and metrics["samples"] == 3
    assert task.loss(intensity.float(), None, phase.float()).item() == pytest.approx(0.0, abs=1e-6)


def test_qpi_metrics_match_an_independent_computation():
    n, s, crop, gain = 21, 2, 14, 0.8  # odd margin: the crop starts at (21 - 14) // 2 = 3
    task = QPITask(n, s, crop=crop, gain_init=gain)
    rng = _rng(6)
    phase = _phase_batch(n, seed=7)
    intensity = rng.random((3, n * s, n * s))
    per_neuron = intensity.reshape(3, n, s, n, s).mean(axis=(2, 4))
    lo = (n - crop) // 2
    pred = gain * per_neuron[:, lo : lo + crop, lo : lo + crop]
    tgt = np.clip(phase.numpy() / math.pi, 0, 1)[:, lo : lo + crop, lo : lo + crop]
    state = task.update_metrics(None, torch.from_numpy(intensity[:2]), None, phase[:2])
    metrics = task.finalize_metrics(task.update_metrics(state, torch.from_numpy(intensity[2:]), None, phase[2:]))
    want_ssim = ssim(torch.from_numpy(pred), torch.from_numpy(tgt)).mean()
    want_ri = ssim(torch.from_numpy(pred), torch.from_numpy(tgt), k1=1e-6, k2=1e-6).mean()
    assert metrics["ssim"] == pytest.approx(float(want_ssim), abs=1e-6)
    assert metrics["ssim_ri"] == pytest.approx(float(want_ri), abs=1e-6)
    assert metrics["mse"] == pytest.approx(((pred - tgt) ** 2).mean(), rel=1e-6)


def test_qpi_is_independent_of_oversampling():
    n = 16
    phase = _phase_batch(n)
    coarse = torch.from_numpy(_rng(8).random((3, n, n)))
    fine = coarse.repeat_interleave(3, dim=1).repeat_interleave(3, dim=2)
    t1, t3 = QPITask(n, 1, crop=12), QPITask(n, 3, crop=12)
    assert t1.loss(coarse, None, phase).item() == pytest.approx(t3.loss(fine, None, phase).item(), rel=1e-9)
    m1 = t1.finalize_metrics(t1.update_metrics(None, coarse, None, phase))
    m3 = t3.finalize_metrics(t3.update_metrics(None, fine, None, phase))
    for key in ("ssim", "ssim_ri", "mse"):
        assert m1[key] == pytest.approx(m3[key], rel=1e-9)


def test_gain_is_a_learnable_parameter_saved_in_state_dict_and_to_dict():
    n = 16
    task = QPITask(n, 1, crop=12)
    assert [name for name, _ in task.named_parameters()] == ["gain"]
    phase = _phase_batch(n)
    intensity = torch.from_numpy(_rng(9).random((3, n, n))) * 0.1  # too dark: the gain should grow
    task.loss(intensity, None, phase).backward()
    assert task.gain.grad is not None and float(task.gain.grad) < 0
    with torch.no_grad():
        task.gain.fill_(3.25)
    assert float(task.state_dict()["gain"]) == 3.25
    d = json.loads(json.dumps(task.to_dict()))
    assert d["gain"] == 3.25 and d["crop"] == 12 and d["crop_box"] == [2, 2, 14, 14]
    assert d["phase_max_rad"] == pytest.approx(math.pi)
    assert d["ssim"]["win_size"] == 11 and d["ssim_ri"]["k1"] == 1e-6
    rebuilt = task_from_dict(d, n, 1)
    assert isinstance(rebuilt, QPITask) and rebuilt.gain.item() == 3.25
    assert rebuilt.to_dict() == d


def test_small_crop_uses_a_smaller_recorded_window():
    task = QPITask(12, 1, crop=8)
    assert task.to_dict()["ssim"]["win_size"] == 7
    phase = _phase_batch(12)
    metrics = task.finalize_metrics(task.update_metrics(None, torch.rand(3, 12, 12, dtype=torch.float64), None, phase))
    assert -1.0 <= metrics["ssim"] <= 1.0


# ------------------------------------------------------------------------------------------- round trip, errors
def test_classification_dict_round_trip():
    task = ClassificationTask(40, 2, num_classes=6, detector_size=5, loss="mse", temperature=4.0)
    d = json.loads(json.dumps(task.to_dict()))
    rebuilt = task_from_dict(d, 40, 2)
    assert isinstance(rebuilt, ClassificationTask)
    assert rebuilt.regions == task.regions and rebuilt.to_dict() == d
    intensity = torch.from_numpy(_rng(10).random((2, 80, 80)))
    labels = torch.tensor([1, 5])
    assert float(rebuilt.loss(intensity, labels, None)) == float(task.loss(intensity, labels, None))


def test_task_from_dict_rejects_unknown_kind_and_other_grid():
    with pytest.raises(TaskError, match="unknown task kind"):
        task_from_dict({"kind": "segment"}, 28, 1)
    with pytest.raises(TaskError, match="28-neuron"):
        task_from_dict(ClassificationTask(28, 1).to_dict(), 32, 1)


@pytest.mark.parametrize(
    "call, fragment",
    [
        (lambda t, q: t.loss(torch.zeros(2, 28, 28), torch.tensor([0, 1]), None), "(B, 56, 56)"),
        (lambda t, q: t.loss(torch.zeros(2, 56, 56), torch.tensor([0, 1, 2]), None), "labels must have shape (2,)"),
        (lambda t, q: t.loss(torch.zeros(2, 56, 56), torch.tensor([0, 10]), None), "label 10"),
        (lambda t, q: t.loss(torch.zeros(2, 56, 56), torch.tensor([0.0, 1.0]), None), "integer"),
        (lambda t, q: t.loss(torch.zeros(2, 56, 56, dtype=torch.complex64), torch.tensor([0, 1]), None), "real"),
        (lambda t, q: q.loss(torch.zeros(2, 56, 56), None, torch.zeros(2, 56, 56)), "input_phase must have shape"),
        (lambda t, q: q.update_metrics(None, torch.zeros(1, 56, 56), None, torch.zeros(2, 28, 28)), "(1, 28, 28)"),
        (lambda t, q: ClassificationTask(28, 0), "oversample"),
        (lambda t, q: ClassificationTask(28, 1, loss="hinge"), "hinge"),
        (lambda t, q: ClassificationTask(28, 1, temperature=0), "temperature"),
        (lambda t, q: QPITask(28, 1, crop=29), "crop"),
        (lambda t, q: QPITask(28, 1, phase_max_rad=-1.0), "phase_max_rad"),
        (lambda t, q: QPITask(28, 1, loss="l1"), "l1"),
        (lambda t, q: t.finalize_metrics(None), "no samples"),
    ],
)
def test_bad_input_raises_one_line_task_error(call, fragment):
    task, qpi = ClassificationTask(28, 2), QPITask(28, 2, crop=20)
    with pytest.raises(TaskError) as info:
        call(task, qpi)
    assert isinstance(info.value, ValueError)
    assert fragment in str(info.value) and "\n" not in str(info.value)
