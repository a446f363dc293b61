"""Height-map PNG/TIFF: exact round trip at 1 nm, scale rule, metadata read by an independent chunk parser."""

import json
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from quaton_fab.fab.formats.heightmap import (
    HeightMapError,
    choose_scale_nm,
    read_height_png,
    read_height_tiff,
    write_height_png,
    write_height_tiff,
)

NM = 1e-9


def png_chunks(path):
    """Parse PNG chunks by hand (independent of Pillow): list of (type, data), CRCs checked."""
    raw = path.read_bytes()
    assert raw[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, []
    while pos < len(raw):
        (length,) = struct.unpack(">I", raw[pos:pos + 4])
        ctype, data = raw[pos + 4:pos + 8], raw[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", raw[pos + 8 + length:pos + 12 + length])
        assert crc == zlib.crc32(ctype + data) & 0xFFFFFFFF
        chunks.append((ctype.decode(), data))
        pos += 12 + length
    return chunks


def level_map(seed=0, shape=(16, 16)):
    rng = np.random.default_rng(seed)
    levels_nm = np.array([0, 144, 288, 432, 576, 720, 864, 1008, 65535])  # includes the 16-bit top
    return levels_nm[rng.integers(0, levels_nm.size, size=shape)] * NM


def test_png_round_trip_exact_at_1nm(tmp_path):
    h = level_map()
    info = write_height_png(tmp_path / "m.png", h, pitch_m=0.5e-6)
    assert info["height_per_grey_nm"] == 1 and info["exact"] and info["max_error_m"] == 0.0
    back, meta = read_height_png(tmp_path / "m.png")
    np.testing.assert_array_equal(np.rint(back / NM).astype(np.int64), np.rint(h / NM).astype(np.int64))
    np.testing.assert_allclose(back, h, rtol=0, atol=1e-15)
    assert meta["height_per_grey_nm"] == 1 and meta["pitch_um"] == 0.5


def test_png_is_16bit_grey_with_text_metadata_independent_reader(tmp_path):
    h = level_map(1, (5, 7))
    write_height_png(tmp_path / "m.png", h, pitch_m=0.8e-6, pixel_repeat=2)
    chunks = png_chunks(tmp_path / "m.png")
    ihdr = dict(chunks)["IHDR"]
    width, height, depth, colour = struct.unpack(">IIBB", ihdr[:10])
    assert (width, height, depth, colour) == (14, 10, 16, 0)  # 16-bit greyscale
    text = {}
    for ctype, data in chunks:
        if ctype == "tEXt":
            key, value = data.split(b"\x00", 1)
            text[key.decode("latin-1")] = value.decode("latin-1")
        elif ctype == "zTXt":
            key, rest = data.split(b"\x00", 1)
            text[key.decode("latin-1")] = zlib.decompress(rest[1:]).decode("latin-1")
    assert json.loads(text["height_per_grey_nm"]) == 1
    assert json.loads(text["pitch_um"]) == pytest.approx(0.4)
    ppm_x, ppm_y, unit = struct.unpack(">IIB", dict(chunks)["pHYs"])
    assert unit == 1 and abs(ppm_x - 1 / 0.4e-6) <= 1 and ppm_x == ppm_y
    with Image.open(tmp_path / "m.png") as im:
        assert im.mode == "I;16"
        grey = np.asarray(im).astype(np.int64)
    np.testing.assert_array_equal(grey, np.kron(np.rint(h / NM).astype(np.int64), np.ones((2, 2), np.int64)))


def test_pixel_repeat_blocks(tmp_path):
    h = level_map(2, (4, 4))
    back, meta = read_height_png(write_height_png(tmp_path / "r.png", h, pixel_repeat=3)["path"])
    assert back.shape == (12, 12) and meta["pixel_repeat"] == 3
    np.testing.assert_allclose(back[::3, ::3], h, atol=1e-15)
    np.testing.assert_allclose(back[2::3, 1::3], h, atol=1e-15)


def test_tiff_round_trip_exact(tmp_path):
    h = level_map(3, (9, 6))
    info = write_height_tiff(tmp_path / "m.tif", h, pitch_m=1e-6)
    assert info["exact"]
    back, meta = read_height_tiff(tmp_path / "m.tif")
    np.testing.assert_allclose(back, h, rtol=0, atol=1e-15)
    assert meta["height_per_grey_nm"] == 1 and meta["pitch_um"] == 1.0
    with Image.open(tmp_path / "m.tif") as im:
        assert im.mode == "I;16" and im.size == (6, 9)


def test_scale_rule():
    assert choose_scale_nm(np.array([0, 359, 65535]) * NM) == (1, True)
    # 100 µm does not fit at 1 nm; 2 nm is the smallest whole scale that fits and divides every height.
    assert choose_scale_nm(np.array([0, 50e3, 100e3]) * NM) == (2, True)
    # mm-scale THz relief: 1.2 mm in 0.4 mm steps; 1.2e6 nm/65535 = 18.3, smallest divisor of 4e5 nm ≥ 19 is 20.
    assert choose_scale_nm(np.array([0, 0.4e-3, 0.8e-3, 1.2e-3])) == (20, True)
    assert choose_scale_nm(np.array([0, 359.08]) * NM) == (1, False)
    assert choose_scale_nm(np.array([0, 300]) * NM, bit_depth=8) == (2, True)
    assert choose_scale_nm(np.zeros(3)) == (1, True)


def test_large_heights_stay_exact(tmp_path):
    h = np.array([[0.0, 0.4e-3], [0.8e-3, 1.2e-3]])
    info = write_height_png(tmp_path / "thz.png", h)
    assert info["height_per_grey_nm"] == 20 and info["exact"] and info["max_grey"] == 60000
    np.testing.assert_allclose(read_height_png(tmp_path / "thz.png")[0], h, rtol=0, atol=1e-15)


def test_inexact_heights_round_to_nearest_nm(tmp_path):
    h = np.array([[0.0, 359.08e-9], [718.16e-9, 1077.24e-9]])
    info = write_height_png(tmp_path / "x.png", h)
    assert not info["exact"] and info["max_error_m"] == pytest.approx(0.24e-9, abs=1e-13)
    back, _ = read_height_png(tmp_path / "x.png")
    np.testing.assert_allclose(back / NM, [[0, 359], [718, 1077]], atol=1e-9)


def test_8bit(tmp_path):
    h = np.array([[0, 100, 200, 300]]) * NM
    info = write_height_png(tmp_path / "g8.png", h, bit_depth=8)
    assert info["height_per_grey_nm"] == 2
    with Image.open(tmp_path / "g8.png") as im:
        assert im.mode == "L"
        np.testing.assert_array_equal(np.asarray(im), [[0, 50, 100, 150]])
    np.testing.assert_allclose(read_height_png(tmp_path / "g8.png")[0], h, atol=1e-15)


def test_atomic_write_leaves_no_temp_and_overwrites(tmp_path):
    write_height_png(tmp_path / "m.png", level_map(4, (3, 3)))
    h2 = level_map(5, (3, 3))
    write_height_png(tmp_path / "m.png", h2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.png"]
    np.testing.assert_allclose(read_height_png(tmp_path / "m.png")[0], h2, atol=1e-15)


@pytest.mark.parametrize("heights, kwargs", [
    (np.array([[0.0, -1e-9]]), {}), (np.array([[0.0, np.nan]]), {}), (np.zeros((2, 2, 2)), {}),
    (np.zeros((2, 2)), {"bit_depth": 12}), (np.zeros((2, 2)), {"pixel_repeat": 0}),
    (np.zeros((2, 2)), {"pitch_m": -1.0}), (np.full((2, 2), 1e-6), {"scale_nm": 0}),
    (np.full((2, 2), 1e-3), {"scale_nm": 1}),
])
def test_refusals(tmp_path, heights, kwargs):
    with pytest.raises(HeightMapError):
        write_height_png(tmp_path / "bad.png", heights, **kwargs)
    assert not any(tmp_path.iterdir())


def test_reader_refuses_foreign_png(tmp_path):
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "plain.png")
    with pytest.raises(HeightMapError, match="height_per_grey_nm"):
        read_height_png(tmp_path / "plain.png")
