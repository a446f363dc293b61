"""GDS alignment marks: at least two pixels wide everywhere, at least two pixels clear of the aperture, and
described (shape, size, position, layer) as they are in the file."""

import gdstk
import numpy as np
import pytest

from quaton_fab.fab.formats.gds import MARK_LAYER, write_gds


def _marks(path):
    lib = gdstk.read_gds(str(path))
    cell = next(c for c in lib.cells if c.name == "MASK_1")
    return [p for p in cell.get_polygons() if p.layer == MARK_LAYER]


@pytest.mark.parametrize("neurons, pitch_m", [(48, 0.78e-6), (64, 1e-6), (8, 2e-6), (200, 0.4e-6)])
def test_marks_are_two_pixels_wide_and_two_pixels_clear(tmp_path, neurons, pitch_m):
    levels = np.random.default_rng(0).integers(0, 4, (1, neurons, neurons))
    stats = write_gds(tmp_path / "d.gds", levels, pitch_m, [0.0, 0.3e-6, 0.6e-6, 0.9e-6])
    p_um, a_um = pitch_m * 1e6, neurons * pitch_m * 1e6
    marks = _marks(tmp_path / "d.gds")
    assert len(marks) == 8  # 4 frame bars + 4 crosses
    area = sum(m.area() for m in marks)
    # width ≥ 2 pixels everywhere: an opening by 0.98 pixel on each side keeps every polygon whole (a bar of
    # 1.96 pixels or less would vanish)
    d = 0.98 * p_um
    opened = gdstk.offset(gdstk.offset(marks, -d, join="miter"), d, join="miter")
    assert sum(o.area() for o in opened) == pytest.approx(area, rel=1e-6)
    # clearance ≥ 2 pixels: nothing of the marks inside the aperture grown by 2 pixels (less 1 nm)
    grown = gdstk.rectangle((-2 * p_um + 1e-3, -2 * p_um + 1e-3), (a_um + 2 * p_um - 1e-3, a_um + 2 * p_um - 1e-3))
    assert gdstk.boolean(marks, grown, "and") == []
    desc = stats["marks"]
    assert desc["layer"] == MARK_LAYER and desc["bar_width_px"] >= 2 and desc["clearance_px"] >= 2
    # the description is the file: frame bar from outer to inner square, crosses centred where stated
    frame = desc["frame"]
    assert frame["inner_square_um"][0] - frame["outer_square_um"][0] == pytest.approx(frame["bar_width_um"])
    assert -frame["inner_square_um"][0] == pytest.approx(frame["clearance_um"])
    lo = np.min([m.bounding_box()[0] for m in marks], axis=0)
    hi = np.max([m.bounding_box()[1] for m in marks], axis=0)
    half = desc["crosses"]["size_um"] / 2
    centres = np.array(desc["crosses"]["centres_um"])
    np.testing.assert_allclose(lo, centres.min(axis=0) - half, atol=1e-3)
    np.testing.assert_allclose(hi, centres.max(axis=0) + half, atol=1e-3)
    boxes = sorted(tuple(np.round(np.mean(m.bounding_box(), axis=0), 3)) for m in marks
                   if np.ptp(np.array(m.bounding_box())[:, 0]) == pytest.approx(desc["crosses"]["size_um"]))
    assert boxes == sorted(tuple(np.round(c, 3)) for c in centres)


def test_no_marks_no_description(tmp_path):
    stats = write_gds(tmp_path / "d.gds", np.zeros((1, 4, 4), int), 1e-6, [0.0], marks=False)
    assert stats["marks"] is None and _marks(tmp_path / "d.gds") == []
