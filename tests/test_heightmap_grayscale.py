"""8-bit full-scale, inverted and 16-bit full-scale height maps (PNG/TIFF/BMP): greys, metadata, read-back."""

import json

import numpy as np
import pytest
from PIL import Image

from quaton_fab.fab.formats.heightmap import (
    HeightMapError,
    level_greys,
    read_height_bmp,
    read_height_map,
    read_height_png,
    read_height_tiff,
    write_height_bmp,
    write_height_png,
    write_height_tiff,
)

LEVELS_M = np.array([0.0, 0.3591e-6, 0.7182e-6, 1.0773e-6])  # 4 uniform levels of IP-Dip at 780 nm


def _mask(seed=0, shape=(6, 7)):
    return LEVELS_M[np.random.default_rng(seed).integers(0, 4, shape)]


def test_8bit_full_scale_keeps_four_distinct_greys(tmp_path):
    h = _mask()
    meta = write_height_png(tmp_path / "m.png", h, bit_depth=8, full_scale=True, top_m=LEVELS_M.max())
    with Image.open(tmp_path / "m.png") as im:  # independent reader: Pillow's raw pixels
        assert im.mode == "L"
        grey = np.asarray(im)
        assert json.loads(im.text["height_per_grey_nm"]) == pytest.approx(1077.3 / 255)
    assert sorted(np.unique(grey).tolist()) == [0, 85, 170, 255]
    assert meta["scale_rule"] == "full-scale" and meta["range_used"] == pytest.approx(1.0)
    back, _ = read_height_png(tmp_path / "m.png")
    np.testing.assert_allclose(back, h, atol=1e-15)  # 3 divides 255: exact


def test_a_naive_8bit_conversion_is_what_full_scale_avoids(tmp_path):
    # the 16-bit map stores nm; clipping it to 8 bits (a naive conversion) makes the 4-level mask binary
    write_height_png(tmp_path / "m16.png", _mask())
    with Image.open(tmp_path / "m16.png") as im:
        naive = np.clip(np.asarray(im).astype(np.int64), 0, 255)
    assert np.unique(naive).tolist() == [0, 255]


def test_inverted_map_for_positive_resist(tmp_path):
    h = _mask(1)
    meta = write_height_png(tmp_path / "i.png", h, bit_depth=8, full_scale=True, invert=True)
    with Image.open(tmp_path / "i.png") as im:
        grey = np.asarray(im).astype(int)
    assert grey[h == LEVELS_M.max()].tolist() == [0] * int((h == LEVELS_M.max()).sum())  # tallest is black
    assert grey[h == 0].min() == 255
    assert meta["inverted"] and meta["height_of_grey"] == "height = (255 - grey) * height_per_grey"
    back, _ = read_height_png(tmp_path / "i.png")
    np.testing.assert_allclose(back, h, atol=1e-15)


@pytest.mark.parametrize("writer, reader, suffix", [(write_height_png, read_height_png, "png"),
                                                    (write_height_tiff, read_height_tiff, "tif")])
def test_16bit_full_scale_reads_back_within_half_a_grey(tmp_path, writer, reader, suffix):
    h = _mask(2) * 1.2345
    meta = writer(tmp_path / f"f.{suffix}", h, full_scale=True, invert=True)
    assert meta["bit_depth"] == 16 and meta["range_used"] == pytest.approx(1.0)
    back, read_meta = reader(tmp_path / f"f.{suffix}")
    assert read_meta["height_per_grey_nm"] == pytest.approx(h.max() * 1e9 / 65535)
    assert np.max(np.abs(back - h)) <= 0.5 * meta["height_per_grey_m"] + 1e-18


def test_bmp_round_trip_with_its_metadata_or_the_sheet(tmp_path):
    h = _mask(3)
    meta = write_height_bmp(tmp_path / "m.bmp", h, pitch_m=0.78e-6, top_m=LEVELS_M.max(), invert=True)
    with Image.open(tmp_path / "m.bmp") as im:
        assert im.format == "BMP" and im.mode == "L"
        assert sorted(np.unique(np.asarray(im)).tolist()) == [0, 85, 170, 255]
    back, _ = read_height_bmp(tmp_path / "m.bmp", meta)
    np.testing.assert_allclose(back, h, atol=1e-15)
    with pytest.raises(HeightMapError, match="no fab_sheet.json"):
        read_height_bmp(tmp_path / "m.bmp")
    (tmp_path / "fab_sheet.json").write_text(json.dumps({"extra": {"bmp": [{**meta, "file": "m.bmp", "path": None}]}}))
    back, _ = read_height_map(tmp_path / "m.bmp")
    np.testing.assert_allclose(back, h, atol=1e-15)


def test_level_greys_is_the_dose_table_column():
    assert level_greys(LEVELS_M, 8, full_scale=True) == ([0, 85, 170, 255], pytest.approx(1077.3 / 255))
    assert level_greys(LEVELS_M, 8, full_scale=True, invert=True)[0] == [255, 170, 85, 0]
    assert level_greys(np.array([0, 0.4e-6, 0.7e-6, 1.1e-6]), 16, full_scale=False) == ([0, 400, 700, 1100], 1)
    with pytest.raises(HeightMapError, match="share grey"):
        level_greys(np.array([0.0, 1e-9, 2e-6]), 8, full_scale=True)


def test_full_scale_refuses_a_top_below_the_tallest_height(tmp_path):
    with pytest.raises(HeightMapError, match="top_m"):
        write_height_png(tmp_path / "x.png", _mask(), bit_depth=8, full_scale=True, top_m=0.5e-6)
    with pytest.raises(HeightMapError, match="either a scale"):
        write_height_png(tmp_path / "x.png", _mask(), full_scale=True, scale_nm=2)
    with pytest.raises(HeightMapError, match="suffix"):
        read_height_map(tmp_path / "x.jpg")
