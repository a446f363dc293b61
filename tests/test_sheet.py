"""Fab sheet: JSON and Markdown contents, file sizes/hashes, checks, refusals, atomic writes."""

import hashlib
import json
import math

import numpy as np
import pytest

from quaton_fab.printing.level_table import LevelTable, level_table
from quaton_fab.fab.sheet import (
    SheetError,
    build_fab_sheet,
    read_fab_sheet,
    render_fab_sheet_md,
    write_fab_sheet,
)

GEOMETRY = dict(pitch_m=0.8e-6, neurons=50, layers=3, spacing_m=40e-6, d_in_m=20e-6, d_out_m=60e-6)


@pytest.fixture
def table():
    return level_table(2 * math.pi * np.arange(4) / 4, "IP-Dip", 780e-9, base_m=2e-6, z_step_m=0.1e-6)


@pytest.fixture
def files(tmp_path):
    a = tmp_path / "mask_1.stl"
    a.write_bytes(b"solid" + bytes(range(200)))
    b = tmp_path / "sub" / "masks.gds"
    b.parent.mkdir()
    b.write_bytes(b"\x00\x06\x00\x02" * 100)
    return [a, b]


def test_sheet_contents(table, files, tmp_path):
    sheet = build_fab_sheet(table, **GEOMETRY, files=files, root=tmp_path,
                            checks={"stl watertight": True, "gds levels": True, "dz integer": "skipped"},
                            extra={"design": "demo", "levels": np.int64(4)})
    data = json.loads(json.dumps(sheet, default=int))
    assert data["material"]["name"] == "IP-Dip" and data["material"]["n"] == pytest.approx(1.5430, abs=1e-4)
    assert data["wavelength_m"] == 780e-9 and data["n_medium"] == 1.0 and data["base_m"] == 2e-6
    assert data["geometry"]["layer_size_m"] == pytest.approx(40e-6)
    rows = data["levels"]
    assert [r["k"] for r in rows] == [0, 1, 2, 3]
    # hand value: h_1 = 0.78/(4·0.5430) = 0.3591 µm, snapped to 0.4 µm, printed at 2.4 µm
    assert rows[1]["height_um"] == pytest.approx(0.3591, abs=1e-4)
    assert rows[1]["snapped_height_um"] == pytest.approx(0.4, abs=1e-12)
    assert rows[1]["total_height_um"] == pytest.approx(2.4, abs=1e-12)
    assert rows[1]["phase_error_rad"] == pytest.approx(2 * math.pi * 0.5430 * (0.4 - 0.3591) / 0.78, abs=1e-3)
    assert rows[1]["z_steps"] == 4
    names = {f["name"]: f for f in data["files"]}
    assert set(names) == {"mask_1.stl", "sub/masks.gds"}
    assert names["mask_1.stl"]["bytes"] == 205
    assert names["sub/masks.gds"]["sha256"] == hashlib.sha256(b"\x00\x06\x00\x02" * 100).hexdigest()
    assert data["checks_passed"] == ["stl watertight", "gds levels"] and data["checks_failed"] == []
    assert data["all_checks_passed"] is True
    back = LevelTable.from_dict(data["level_table"])
    np.testing.assert_array_equal(back.snapped_height_m, table.snapped_height_m)


def test_write_json_and_markdown(table, files, tmp_path):
    out = tmp_path / "export"
    sheet = build_fab_sheet(table, **GEOMETRY, files=files,
                            checks={"stl watertight": True, "re-simulation gap": False, "note": "dz ok"})
    paths = write_fab_sheet(out, sheet)
    assert sorted(p.name for p in out.iterdir()) == ["fab_sheet.json", "fab_sheet.md"]
    loaded = read_fab_sheet(out)
    assert loaded == json.loads(paths["json"].read_text())
    assert loaded["all_checks_passed"] is False and loaded["checks_failed"] == ["re-simulation gap"]
    md = paths["md"].read_text(encoding="utf-8")
    for expected in ("IP-Dip", "780.00 nm", "1.00000", "0.8000 µm", "50 × 50 neurons = 40.000 µm × 40.000 µm",
                     "20.000 µm", "40.000 µm", "60.000 µm", "0.1000 µm", "2.0000 µm",
                     "| 1 | 1.5708 | 0.3591 | 0.4000 | 2.4000 |",
                     "mask_1.stl", "| 205 |", "masks.gds", "| stl watertight | passed |",
                     "| re-simulation gap | FAILED |", "| note | dz ok |", "FAILED: re-simulation gap."):
        assert expected in md, expected
    assert md == render_fab_sheet_md(loaded)


def test_nominal_material_is_flagged(files):
    t = level_table([0.0, math.pi], "IP-S", 633e-9)
    sheet = build_fab_sheet(t, **GEOMETRY, files=files)
    assert sheet["material"]["nominal"] is True
    assert "nominal: measure it" in render_fab_sheet_md(sheet)
    assert "(no checks run)" in render_fab_sheet_md(sheet)


@pytest.mark.parametrize("change, match", [
    ({"pitch_m": -1e-6}, "pitch"), ({"pitch_m": float("nan")}, "pitch"), ({"neurons": 0}, "neurons"),
    ({"layers": 1.5}, "layers"), ({"spacing_m": -1.0}, "spacing"), ({"d_out_m": float("inf")}, "d_out"),
])
def test_refuses_bad_geometry(table, change, match):
    with pytest.raises(SheetError, match=match):
        build_fab_sheet(table, **{**GEOMETRY, **change})


def test_refuses_missing_file_and_bad_check(table, tmp_path):
    with pytest.raises(SheetError, match="does not exist"):
        build_fab_sheet(table, **GEOMETRY, files=[tmp_path / "nope.stl"])
    with pytest.raises(SheetError, match="check 'x'"):
        build_fab_sheet(table, **GEOMETRY, checks={"x": 3})


def test_refuses_non_json_extra_and_foreign_sheet(table, tmp_path):
    sheet = build_fab_sheet(table, **GEOMETRY, extra={"obj": object()})
    with pytest.raises(SheetError, match="JSON"):
        write_fab_sheet(tmp_path, sheet)
    (tmp_path / "fab_sheet.json").write_text('{"schema": "other"}')
    with pytest.raises(SheetError, match="schema"):
        read_fab_sheet(tmp_path)
    with pytest.raises(SheetError, match="no fab sheet"):
        read_fab_sheet(tmp_path / "missing")
