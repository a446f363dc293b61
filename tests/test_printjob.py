"""Printed volume and print-time estimate: hand values on small height maps."""

import dataclasses

import numpy as np
import pytest

from quaton_fab.printing.printer import get_profile
from quaton_fab.printing.printjob import PrintJobError, estimate_print, mask_volume_um3


def test_volume_by_hand():
    h = np.array([[0.0, 0.5e-6], [1.0e-6, 0.3e-6]])  # 1.8 µm of columns over 4 pixels of 2 µm
    # base 2 µm under 4 × 4 µm² = 32 µm³, plus 4 µm² × 1.8 µm = 7.2 µm³
    assert mask_volume_um3(h, 2e-6, 2e-6) == pytest.approx(39.2)


def test_slices_hatch_length_and_time_by_hand():
    profile = get_profile("2pp-63x-ip-dip")  # slicing 0.1 µm, hatching 0.1 µm, 10 mm/s
    h = np.array([[0.0, 0.5e-6], [1.0e-6, 0.3e-6]])  # on the 0.1 µm grid
    est = estimate_print(h[None], 1e-6, 1e-6, profile, slice_overhead_s=0.5)
    (m,) = est.masks
    # tops 1.0, 1.5, 2.0, 1.3 µm -> 10 + 15 + 20 + 13 = 58 slice-pixels of 1 µm² each; 20 slices
    assert m.slices == 20
    assert m.sliced_volume_um3 == pytest.approx(58 * 0.1)
    assert m.volume_um3 == pytest.approx(4 * 1.0 + 1.8)  # on the grid: sliced = true volume
    assert m.hatch_length_mm == pytest.approx(58 / 0.1 * 1e-3)  # 580 µm of lines
    assert m.time_s == pytest.approx(580 / 10_000 + 20 * 0.5)
    assert est.total_time_s == pytest.approx(m.time_s) and est.total_volume_um3 == pytest.approx(5.8)
    assert "0.5 s per slice" in est.assumptions and "not counted" in est.assumptions
    d = est.to_dict()
    assert d["profile"] == "2pp-63x-ip-dip" and d["slicing_distance_um"] == 0.1 and len(d["masks"]) == 1


def test_off_grid_tops_are_written_to_the_mid_slice_rule():
    profile = dataclasses.replace(get_profile(), slicing_distance_m=1e-6, hatching_distance_m=1e-6)
    # top 1.4 µm: mid-planes 0.5 (solid), 1.5 (not) -> 1 slice; top 1.6 µm: 0.5 and 1.5 -> 2 slices
    est = estimate_print(np.array([[0.4e-6, 0.6e-6]]), 1e-6, 1e-6, profile, slice_overhead_s=0.0)
    assert est.masks[0].slices == 2 and est.masks[0].sliced_volume_um3 == pytest.approx(3.0)
    assert est.masks[0].volume_um3 == pytest.approx(3.0)


def test_every_mask_and_the_totals():
    h = np.zeros((3, 4, 4))
    h[1] = 1e-6
    est = estimate_print(h, 1e-6, 2e-6)
    assert [m.mask for m in est.masks] == [1, 2, 3]
    assert est.masks[1].volume_um3 == pytest.approx(16 * 3.0)
    assert est.total_volume_um3 == pytest.approx(16 * 2 * 3 + 16)


def test_bad_input_is_refused():
    with pytest.raises(PrintJobError, match="no slicing"):
        estimate_print(np.zeros((2, 2)), 1e-6, 1e-6, get_profile("grayscale"))
    with pytest.raises(PrintJobError, match="finite"):
        estimate_print(np.full((2, 2), -1.0), 1e-6, 1e-6)
    with pytest.raises(PrintJobError, match="pitch"):
        estimate_print(np.zeros((2, 2)), 0.0, 1e-6)
    with pytest.raises(PrintJobError, match="slice overhead"):
        estimate_print(np.zeros((2, 2)), 1e-6, 1e-6, slice_overhead_s=-1)
