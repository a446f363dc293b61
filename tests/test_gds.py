"""GDSII / OASIS exporter: checked with gdstk's own reader and an independent pixel painter."""

import os

import gdstk
import numpy as np
import pytest

from quaton_fab.fab.formats.gds import GdsError, level_layer_names, read_gds_levels, write_gds

PITCH_M = 0.4e-6
HEIGHTS_M = np.arange(4) * 0.2e-6


def _levels(seed: int = 0, masks: int = 2, n: int = 10, levels: int = 4) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = rng.integers(0, levels, (masks, n, n))
    out[-1, : n // 2, : n // 2] = levels - 1  # a merged block
    return out


def _read_any(path):
    return gdstk.read_oas(str(path)) if str(path).endswith(".oas") else gdstk.read_gds(str(path))


def _painted(cell: gdstk.Cell, n: int, pitch_um: float, layer: int) -> np.ndarray:
    """Independent raster: count, per pixel centre, the polygons of ``layer`` whose bounding box holds it."""
    count = np.zeros((n, n), dtype=int)
    centres_x = (np.arange(n) + 0.5) * pitch_um
    centres_y = (n - np.arange(n) - 0.5) * pitch_um  # row i has y = (N - i - 0.5) p
    for polygon in cell.get_polygons(apply_repetitions=True, layer=layer, datatype=0):
        assert len(polygon.points) == 4
        (x0, y0), (x1, y1) = polygon.bounding_box()
        inside_x = (centres_x > x0) & (centres_x < x1)
        inside_y = (centres_y > y0) & (centres_y < y1)
        count += np.outer(inside_y, inside_x)
    return count


@pytest.mark.parametrize("fmt", ["gds", "oas"])
@pytest.mark.parametrize("omit_level0", [False, True])
def test_round_trip_exact_level_map(tmp_path, fmt, omit_level0):
    levels = _levels()
    path = tmp_path / f"masks.{fmt}"
    stats = write_gds(path, levels, PITCH_M, HEIGHTS_M, fmt=fmt, omit_level0=omit_level0)
    assert stats["file_bytes"] == path.stat().st_size > 0
    assert np.array_equal(read_gds_levels(path, 10, PITCH_M, 4), levels)


@pytest.mark.parametrize("fmt", ["gds", "oas"])
def test_layers_areas_and_pixels_agree_with_gdstk_reader(tmp_path, fmt):
    levels = _levels(seed=1)
    path = tmp_path / f"masks.{fmt}"
    stats = write_gds(path, levels, PITCH_M, HEIGHTS_M, fmt=fmt, layer_offset=5)
    library = _read_any(path)
    cells = {c.name: c for c in library.cells}
    assert set(cells) == {"MASK_1", "MASK_2", "TOP"}
    pitch_um = PITCH_M * 1e6
    for index in range(levels.shape[0]):
        cell = cells[f"MASK_{index + 1}"]
        for k in range(4):
            polygons = cell.get_polygons(apply_repetitions=True, layer=5 + k, datatype=0)
            pixels = int((levels[index] == k).sum())
            area = sum(p.area() for p in polygons)
            assert area == pytest.approx(pixels * pitch_um**2, rel=1e-9, abs=1e-12)
            painted = _painted(cell, 10, pitch_um, 5 + k)
            assert np.array_equal(painted, (levels[index] == k).astype(int))
    per_layer = {entry["layer"]: entry for entry in stats["layers"]}
    for k in range(4):
        assert per_layer[5 + k]["area_um2"] == pytest.approx((levels == k).sum() * pitch_um**2)
        assert per_layer[5 + k]["name"] == level_layer_names(HEIGHTS_M)[k]
    assert stats["polygons"] < stats["naive_polygons"]


def test_units_and_precision(tmp_path):
    path = tmp_path / "masks.gds"
    write_gds(path, _levels(), PITCH_M, HEIGHTS_M)
    unit, precision = gdstk.gds_units(str(path))
    assert unit == pytest.approx(1e-6) and precision == pytest.approx(1e-9)
    info = gdstk.gds_info(str(path))
    assert {(1 + k, 0) for k in range(4)} <= info["layers_and_datatypes"]


def test_oasis_carries_layer_names(tmp_path):
    path = tmp_path / "masks.oas"
    write_gds(path, _levels(), PITCH_M, HEIGHTS_M, fmt="oas")
    names = gdstk.read_oas(str(path)).layer_names
    assert names[(4, 0)][0] == "LVL03_h=0.600um"


def test_level_on_pixel_grid_and_image_upright(tmp_path):
    levels = np.zeros((1, 3, 3), dtype=int)
    levels[0, 0, 2] = 1  # row 0 (top), col 2 (right): top-right corner of the image
    path = tmp_path / "one.gds"
    write_gds(path, levels, 1e-6, [0.0, 1e-6], omit_level0=True, marks=False)
    cell = next(c for c in gdstk.read_gds(str(path)).cells if c.name == "MASK_1")
    (polygon,) = cell.get_polygons(layer=2, datatype=0)
    assert np.allclose(polygon.bounding_box(), [(2.0, 2.0), (3.0, 3.0)])


def test_marks_outside_aperture_and_masks_side_by_side(tmp_path):
    path = tmp_path / "masks.gds"
    write_gds(path, _levels(masks=3), PITCH_M, HEIGHTS_M)
    library = gdstk.read_gds(str(path))
    cells = {c.name: c for c in library.cells}
    aperture = 10 * PITCH_M * 1e6
    marks = cells["MASK_1"].get_polygons(layer=100, datatype=0)
    assert len(marks) == 8  # four frame bars, four crosses
    for polygon in marks:
        (x0, y0), (x1, y1) = polygon.bounding_box()
        assert x1 <= 0 or x0 >= aperture or y1 <= 0 or y0 >= aperture
    boxes = [ref.bounding_box() for ref in cells["TOP"].references]
    assert len(boxes) == 3
    for left, right in zip(boxes, boxes[1:]):
        assert left[1][0] < right[0][0]
    assert len(cells["TOP"].labels) == 3


def test_non_integer_nm_pitch_round_trips(tmp_path):
    levels = _levels(seed=3, n=9)
    path = tmp_path / "odd.gds"
    write_gds(path, levels, 333.3e-9, HEIGHTS_M)
    assert np.array_equal(read_gds_levels(path, 9, 333.3e-9, 4), levels)


def test_all_level_polygons_within_vertex_limit(tmp_path):
    path = tmp_path / "masks.gds"
    write_gds(path, _levels(), PITCH_M, HEIGHTS_M, max_points=8)
    for cell in gdstk.read_gds(str(path)).cells:
        assert all(len(p.points) <= 8 for p in cell.polygons)


def _hand_made(path, rects_um, layer=1, label="quaton-fab MASK_1 levels=2 layer_offset=1 level0=omitted"):
    library = gdstk.Library(unit=1e-6, precision=1e-9)
    cell = library.new_cell("MASK_1")
    for (x0, y0, x1, y1) in rects_um:
        cell.add(gdstk.rectangle((x0, y0), (x1, y1), layer=layer))
    cell.add(gdstk.Label(label, (0, 0), layer=101))
    library.write_gds(str(path))


def test_reader_accepts_hand_made_layout(tmp_path):
    path = tmp_path / "hand.gds"
    _hand_made(path, [(0.0, 1.0, 1.0, 2.0)], layer=2)  # pixel (row 0, col 0) of a 2x2 map at level 1
    assert np.array_equal(read_gds_levels(path, 2, 1e-6, 2), [[[1, 0], [0, 0]]])


@pytest.mark.parametrize(
    "rects, layer, label, message",
    [
        ([(0.0, 0.0, 1.005, 1.0)], 2, None, "off the"),
        ([(0.0, 0.0, 1.0, 1.0), (0.0, 0.0, 2.0, 1.0)], 2, None, "covered 2 times"),
        ([(0.0, 0.0, 1.0, 1.0)], 1, "quaton-fab MASK_1 levels=2 layer_offset=1 level0=drawn", "no level polygon"),
        ([(0.0, 0.0, 3.0, 1.0)], 2, None, "outside"),
        ([(0.0, 0.0, 1.0, 1.0)], 2, "quaton-fab MASK_1 levels=3 layer_offset=1 level0=omitted", "3 levels"),
    ],
)
def test_reader_rejects_bad_layouts(tmp_path, rects, layer, label, message):
    path = tmp_path / "bad.gds"
    if label is None:
        _hand_made(path, rects, layer=layer)
    else:
        _hand_made(path, rects, layer=layer, label=label)
    with pytest.raises(GdsError, match=message) as info:
        read_gds_levels(path, 2, 1e-6, 2)
    assert "\n" not in str(info.value)


def test_reader_rejects_non_manhattan_polygons(tmp_path):
    path = tmp_path / "tri.gds"
    library = gdstk.Library(unit=1e-6, precision=1e-9)
    library.new_cell("MASK_1").add(gdstk.Polygon([(0, 0), (1, 0), (0, 1)], layer=2))
    library.write_gds(str(path))
    with pytest.raises(GdsError, match="Manhattan"):
        read_gds_levels(path, 2, 1e-6, 2)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"level_indices": np.full((1, 2, 2), 1.5)}, "integers"),
        ({"level_indices": np.full((1, 2, 2), 4)}, "out of range"),
        ({"level_indices": np.full((1, 2, 2), -1)}, "out of range"),
        ({"level_indices": np.zeros((2, 2), dtype=int)}, "shape"),
        ({"pitch_m": 0.0}, "pitch_m"),
        ({"pitch_m": -1e-6}, "pitch_m"),
        ({"pitch_m": float("nan")}, "pitch_m"),
        ({"fmt": "dxf"}, "fmt"),
        ({"layer_offset": 98}, "collides"),
        ({"level_heights_m": [0.0, -1e-6]}, "level_heights_m"),
        ({"names": ["a", "b"]}, "names"),
    ],
)
def test_bad_input_raises_one_line_error_and_leaves_no_file(tmp_path, kwargs, message):
    args = {"level_indices": np.zeros((1, 2, 2), dtype=int), "pitch_m": 1e-6, "level_heights_m": HEIGHTS_M}
    args.update(kwargs)
    options = {k: args.pop(k) for k in ("fmt", "layer_offset", "names") if k in args}
    with pytest.raises(GdsError, match=message) as info:
        write_gds(tmp_path / "x.gds", args["level_indices"], args["pitch_m"], args["level_heights_m"], **options)
    assert isinstance(info.value, ValueError)
    assert "\n" not in str(info.value)
    assert os.listdir(tmp_path) == []


def test_failed_write_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "taken"
    target.mkdir()  # os.replace onto a directory fails after the file was written
    with pytest.raises(OSError):
        write_gds(target, _levels(), PITCH_M, HEIGHTS_M)
    assert os.listdir(tmp_path) == ["taken"]
    assert os.listdir(target) == []
