"""Printability report on small hand-made maps with known answers, and the isolated-pixel post-filter."""

import numpy as np
import pytest

from quaton_fab.printing.printability import (
    PrintabilityError,
    clean_isolated,
    diagonal_only_contacts,
    isolated_pixels,
    mask_printability,
    narrowest_width_px,
    printability_report,
)


def test_isolated_pixels_by_hand():
    m = np.array([[0, 0, 1],
                  [2, 0, 1],
                  [3, 2, 1]])
    # (1,0)=2: neighbours 0,3,0 -> isolated; (2,0)=3 isolated; (2,1)=2: neighbours 0,3,1 -> isolated
    expected = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0]], bool)
    np.testing.assert_array_equal(isolated_pixels(m), expected)


def test_edge_of_the_aperture_is_no_neighbour():
    m = np.array([[1, 0], [0, 0]])
    assert isolated_pixels(m).tolist() == [[True, False], [False, False]]


def test_diagonal_only_contacts_by_hand():
    assert diagonal_only_contacts(np.array([[1, 0], [0, 1]])).tolist() == [1, 0]  # checkerboard window: two
    assert diagonal_only_contacts(np.array([[1, 0], [2, 1]])).tolist() == [1]
    assert diagonal_only_contacts(np.array([[1, 1], [0, 1]])).size == 0  # joined by an edge too
    assert diagonal_only_contacts(np.array([[1, 2], [3, 4]])).size == 0
    # 3x3 checkerboard: 4 windows, each with two contacts
    board = np.indices((3, 3)).sum(0) % 2
    assert diagonal_only_contacts(board).size == 8


def test_narrowest_width_by_hand():
    r = np.zeros((8, 8), bool)
    r[1:4, 1:6] = True  # a 3×5 block: width 3
    assert narrowest_width_px(r) == 3
    r[4:7, 2] = True  # plus a one-pixel-wide tail
    assert narrowest_width_px(r) == 1
    r = np.zeros((6, 6), bool)
    r[0:2, :] = True
    r[:, 0:2] = True  # L of width 2 touching the aperture edge
    assert narrowest_width_px(r) == 2
    assert narrowest_width_px(np.ones((5, 5), bool)) == 5
    assert narrowest_width_px(np.zeros((3, 3), bool)) == 0


def test_mask_report_by_hand():
    m = np.zeros((6, 6), int)
    m[1:3, 1:3] = 1  # a 2×2 island of level 1
    m[4, 4] = 2  # one isolated pixel of level 2
    rep = mask_printability(m, 0.5e-6, mask=3)
    assert rep.mask == 3 and rep.pixels == 36 and rep.isolated == 1 and rep.diagonal_contacts == 0
    by_level = {f.level: f for f in rep.levels}
    assert by_level[1].regions == 1 and by_level[1].smallest_region_px == 4
    assert by_level[1].smallest_region_um2 == pytest.approx(4 * 0.25)
    assert by_level[1].narrowest_width_px == 2 and by_level[1].narrowest_width_um == pytest.approx(1.0)
    assert by_level[2].isolated == 1 and by_level[2].narrowest_width_px == 1 and by_level[2].narrow_pixels == 1
    # level 0 in no 2×2 of level 0: (0,0), (0,1), (0,2), (1,0), (2,0) beside the island (the aperture edge closes
    # them in) and (4,5), (5,4), (5,5) beside the lone pixel in the corner
    assert by_level[0].narrowest_width_px == 1
    assert by_level[0].narrow_pixels == 8 and rep.narrow_pixels == 8 + 0 + 1


def test_report_of_several_masks_is_json_ready():
    import json

    idx = np.stack([np.eye(4, dtype=int), np.zeros((4, 4), int)])
    rep = printability_report(idx, 1e-6)
    json.dumps(rep)
    assert [m["mask"] for m in rep["masks"]] == [1, 2]
    # each of the 3 diagonal windows of eye(4) holds two: the 1s and the 0s meet only at its centre
    assert rep["masks"][0]["diagonal_contacts"] == 6 and rep["masks"][1]["isolated"] == 0


def test_bad_maps_are_refused():
    with pytest.raises(PrintabilityError, match="2-D"):
        mask_printability(np.zeros(4, int), 1e-6)
    with pytest.raises(PrintabilityError, match="integer"):
        mask_printability(np.zeros((2, 2)), 1e-6)
    with pytest.raises(PrintabilityError, match="pitch"):
        mask_printability(np.zeros((2, 2), int), -1.0)


def test_clean_isolated_by_hand():
    m = np.array([[0, 0, 0],
                  [0, 3, 0],
                  [1, 1, 2]])
    cleaned, changed = clean_isolated(m)
    # (1,1): votes 0,0,0,1 -> 0; (2,2)=2: votes 0 and 1 tie -> nearest index to 2 is 1
    assert cleaned.tolist() == [[0, 0, 0], [0, 0, 0], [1, 1, 1]] and changed == 2
    board = np.indices((4, 4)).sum(0) % 2
    cleaned, _ = clean_isolated(board)
    assert not isolated_pixels(cleaned).any()  # no flip-flop on a checkerboard


def test_clean_isolated_removes_every_isolated_pixel_of_a_random_map():
    rng = np.random.default_rng(0)
    idx = rng.integers(0, 4, (2, 32, 32))
    before = sum(isolated_pixels(m).sum() for m in idx)
    cleaned, changed = clean_isolated(idx, passes=3)
    after = sum(isolated_pixels(m).sum() for m in cleaned)
    assert before > 100 and after < before // 10 and changed > 0
    assert cleaned.dtype == idx.dtype and cleaned.shape == idx.shape
