"""Exact rectangle decomposition of pixel maps: property tests against a naive painter."""

import numpy as np
import pytest

from quaton_fab.fab.rectangles import RectangleError, Rectangles, label_rectangles, mask_rectangles


def _paint(rects: Rectangles, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Independent reference: paint every rectangle pixel by pixel; return cover counts and labels."""
    count = np.zeros(shape, dtype=int)
    label = np.full(shape, -999, dtype=int)
    for r0, c0, r1, c1, lab in zip(rects.r0, rects.c0, rects.r1, rects.c1, rects.label):
        for i in range(r0, r1):
            for j in range(c0, c1):
                count[i, j] += 1
                label[i, j] = lab
    return count, label


def _maps():
    rng = np.random.default_rng(7)
    yield rng.integers(0, 16, (13, 11))
    yield rng.integers(0, 2, (20, 20))
    yield np.indices((9, 9)).sum(axis=0) % 2  # checkerboard
    yield np.zeros((6, 5), dtype=int)
    yield np.array([[3]])
    yield rng.integers(0, 3, (1, 17))
    yield rng.integers(0, 3, (17, 1))
    blocks = np.kron(rng.integers(0, 4, (4, 5)), np.ones((3, 4), dtype=int))
    yield blocks
    yield rng.integers(-5, 5, (8, 8)) * 1_000_000_007  # wide label range


@pytest.mark.parametrize("labels", list(_maps()))
def test_label_rectangles_cover_exactly_once_with_the_right_label(labels):
    rects = label_rectangles(labels)
    assert all(a.dtype == np.int64 for a in (rects.r0, rects.c0, rects.r1, rects.c1, rects.label))
    assert np.all(rects.r1 > rects.r0) and np.all(rects.c1 > rects.c0)
    count, painted = _paint(rects, labels.shape)
    assert np.array_equal(count, np.ones_like(count)), "every pixel exactly once, no overlaps"
    assert np.array_equal(painted, labels)
    assert rects.area.sum() == labels.size


@pytest.mark.parametrize("labels", list(_maps()))
def test_mask_rectangles_union_is_the_mask(labels):
    mask = labels == labels.flat[0]
    rects = mask_rectangles(mask)
    count, _ = _paint(rects, mask.shape)
    assert np.array_equal(count, mask.astype(int))
    assert np.all(rects.label == 1)


def test_vertical_runs_merge_into_one_rectangle():
    labels = np.zeros((6, 7), dtype=int)
    labels[1:5, 2:6] = 4
    rects = label_rectangles(labels)
    block = rects.select(rects.label == 4)
    assert len(block) == 1
    assert (block.r0[0], block.c0[0], block.r1[0], block.c1[0]) == (1, 2, 5, 6)
    assert len(label_rectangles(np.ones((50, 40), dtype=int))) == 1


def test_l_shape_needs_two_rectangles():
    mask = np.zeros((4, 4), dtype=bool)
    mask[:, 0] = True
    mask[3, :] = True
    assert len(mask_rectangles(mask)) == 2


def test_random_maps_use_no_more_rectangles_than_row_runs():
    labels = np.random.default_rng(3).integers(0, 3, (30, 30))
    runs = int((labels[:, 1:] != labels[:, :-1]).sum() + labels.shape[0])
    assert len(label_rectangles(labels)) < runs


def test_empty_mask_and_empty_map():
    assert len(mask_rectangles(np.zeros((3, 3), dtype=bool))) == 0
    assert len(label_rectangles(np.zeros((0, 4), dtype=int))) == 0


@pytest.mark.parametrize(
    "bad, call",
    [
        (np.zeros((2, 2, 2), dtype=int), label_rectangles),
        (np.zeros((3, 3), dtype=float), label_rectangles),
        (np.zeros(4, dtype=int), label_rectangles),
        (np.zeros((3, 3), dtype=int), mask_rectangles),
    ],
)
def test_bad_input_raises_one_line_value_error(bad, call):
    with pytest.raises(RectangleError) as info:
        call(bad)
    assert isinstance(info.value, ValueError)
    assert "\n" not in str(info.value)
