"""fab_sheet.md alone answers the facility's list (issue 9, item 4): rendered from a real export, every item is
present with its value; the keys other exporters add (printer, stack, gwl, snapping, warnings, tolerance) are
rendered when present."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from quaton_fab.design import Design
from quaton_fab.fab.export import ExportOptions, export_design
from quaton_fab.printing.level_table import level_table
from quaton_fab.printing.printability import isolated_pixels
from quaton_fab.fab.sheet import build_fab_sheet, read_fab_sheet, record_verification, render_fab_sheet_md
from quaton_fab.analysis.sheet_check import check_sheet
from quaton_fab.analysis.verify import read_back

# The previous sample design (exact, evenly spaced heights): the hand-computed greys and volumes below assume it.
SAMPLE = Path(__file__).parent / "data" / "mnist-exact-heights"


@pytest.fixture(scope="module")
def design() -> Design:
    return Design.load(SAMPLE)


@pytest.fixture(scope="module")
def export(design, tmp_path_factory):
    out = tmp_path_factory.mktemp("x") / "export"
    result = export_design(design, out, ExportOptions(stack=True, base_m=2.5e-6, invert=True))
    return out, result


def _row(md: str, label: str) -> str:
    """The Markdown table row whose first cell is ``label``."""
    hits = [line for line in md.splitlines() if line.startswith(f"| {label} |")]
    assert hits, f"no row {label!r}"
    return hits[0]


def test_sheet_md_answers_every_item_with_its_value(design, export):
    out, result = export
    md = (out / "fab_sheet.md").read_text(encoding="utf-8")
    sheet = read_fab_sheet(out)
    g = design.geometry
    p_um, n = g.pitch_m * 1e6, g.neurons
    # conventions
    for label in ("axes", "handedness", "pixel (0, 0)", "view direction", "light-entry face", "mirroring"):
        _row(md, label)
    assert f"y ∈ [{(n - 1) * p_um:.4f}, {n * p_um:.4f}] µm in STL and GDS" in _row(md, "pixel (0, 0)")
    assert "travels along +z" in _row(md, "light-entry face")
    # optical path outside the part
    assert f"{g.d_in_m * 1e6:.3f} µm" in _row(md, "input plane → top of mask 1's base (d_in)")
    assert f"{g.d_out_m * 1e6:.3f} µm" in _row(md, "top of the last base → detector plane (d_out)")
    assert "0 µm: no substrate is simulated" in _row(md, "substrate thickness")
    # per-level heights and base
    for k, h in enumerate(result.table.snapped_height_m):
        assert f"| {k} | {result.table.phase_rad[k]:.4f} | {result.table.height_m[k] * 1e6:.4f} | {h * 1e6:.4f} | " \
               f"{(h + 2.5e-6) * 1e6:.4f} |" in md
    assert "2.5000 µm" in _row(md, "base slab")
    # plate spacing with its reason, supports
    stack = sheet["extra"]["stack"]
    pitch_um = stack["plate_pitch_um"] if "plate_pitch_um" in stack else stack["plate_pitch_m"] * 1e6
    assert f"{pitch_um:.4f} µm" in _row(md, "plate pitch (bottom of one plate → bottom of the next)")
    assert _row(md, "why this pitch") != "| why this pitch | — |"
    if isinstance(stack.get("supports"), dict):  # the stack exporter's support description
        assert f"{stack['supports']['size_um']}" in _row(md, "supports: size")
    else:
        assert f"{stack['pillar_um']:.3f} µm" in _row(md, "supports")
    # marks and their layers
    marks = sheet["extra"]["gds"]["marks"]
    assert f"bars {marks['frame']['bar_width_um']:.3f} µm wide" in _row(md, "layer 100/0: frame")
    assert marks["bar_width_px"] >= 2 and marks["clearance_px"] >= 2
    assert f"{marks['crosses']['size_um']:.3f} µm across" in _row(md, "layer 100/0: alignment crosses")
    _row(md, "layer 101: labels")
    for k in range(result.table.n):
        assert f"| {k} | {k + 1}/0 |" in md  # level k on layer 1 + k
    # height-map scales (16-bit whole nm, 8-bit full scale, inverted: tallest level black)
    assert _row(md, "png").startswith("| png | 16 | 1 nm per grey | whole nm | height = (65535 − grey) × scale |")
    scale8 = result.table.snapped_height_m[-1] * 1e9 / 255
    greys8 = ", ".join(str(int(np.floor(255 - h * 1e9 / scale8 + 0.5))) for h in result.table.snapped_height_m)
    assert f"| png8 | 8 | {scale8:.6g} nm per grey | full-scale | height = (255 − grey) × scale | 100.0% | " \
           f"{greys8} |" in md
    assert "| bmp | 8 |" in md and "BMP files carry none" in md
    # printer profile and recommended settings
    assert "2pp-63x-ip-dip" in _row(md, "profile") and "0.1000 µm" in _row(md, "slicing distance (Δz)")
    assert "10 mm/s" in _row(md, "scan speed") and "calibrate" in _row(md, "laser power")
    # printed volume per mask and total, print time with its assumptions (volumes by hand: base + columns)
    heights = np.asarray(result.table.snapped_height_m)[design.level_indices]
    volumes = [(n * n * 2.5e-6 + h.sum()) * g.pitch_m**2 * 1e18 for h in heights]
    for l, v in enumerate(volumes):
        assert f"| {l + 1} | {v:.1f} |" in md
    assert f"Total: **{sum(volumes):.1f} µm³**" in md and "Assumptions: slices of 0.1 µm" in md
    assert f"{sheet['extra']['printjob']['total_time_s']:.0f} s" in md
    # printability per mask
    for l, m in enumerate(design.level_indices):
        iso = int(isolated_pixels(m).sum())
        assert f"| {l + 1} | {iso} ({iso / m.size:.1%}) |" in md
    # every warning raised during export
    assert result.warnings and sheet["extra"]["warnings"] == result.warnings
    assert any("2.5 µm base" in w for w in result.warnings)
    for w in result.warnings:
        assert f"- {w}" in md


def test_verify_reads_the_8bit_and_bmp_maps_back(design, export):
    out, result = export
    sheet = read_fab_sheet(out)
    check_sheet(sheet, design, out)  # what verify checks first: the sheet's hash, design and paths
    items = read_back(design, out, result.table, {f["name"] for f in sheet["files"]}, sheet)
    by_label = {i.label: i for i in items}
    for label in ("mask_*_height8.png", "mask_*_height.bmp", "mask_*_height.png", "mask_*_height.tif"):
        np.testing.assert_array_equal(by_label[label].levels, design.level_indices)
        assert np.max(np.abs(by_label[label].heights_m - np.asarray(result.table.snapped_height_m)[
            design.level_indices])) <= by_label[label].tolerance_m
    assert {"mask_*_height8.png", "mask_*_height.bmp"} <= set(by_label)
    # the sheet's grey of each level is the grey in every file (Pillow's raw pixels): a dose table
    from PIL import Image

    for fmt, name in (("png", "mask_{}_height.png"), ("png8", "mask_{}_height8.png"), ("bmp", "mask_{}_height.bmp")):
        greys = np.asarray(sheet["extra"]["grayscale"][fmt]["level_greys"])
        for l, levels in enumerate(design.level_indices):
            with Image.open(out / name.format(l + 1)) as im:
                np.testing.assert_array_equal(np.asarray(im).astype(int), greys[levels])


def test_keys_added_by_other_exporters_are_rendered():
    table = level_table(2 * math.pi * np.arange(4) / 4, "IP-Dip", 780e-9, base_m=2e-6, z_step_m=0.1e-6)
    extra = {
        "printer": {"name": "2pp-63x-ip-dip", "description": "two-photon", "slicing_distance_um": 0.1,
                    "hatching_distance_um": 0.1, "scan_speed_m_per_s": 0.01, "laser_power": "20 mW",
                    "objective": "63×", "resin": "IP-Dip", "source": "recipe",
                    "convention": "tops at whole slices; coordinates at slice boundaries"},
        "stack": {"plate_pitch_um": 30.904, "plate_thickness_um": 3.1, "pitch_reason": "spacing plus the base slab",
                  "supports": {"rule": "one pillar per 20 µm of span", "count": 4, "size_um": 5.0,
                               "positions_um": [[-5.0, -5.0], [45.0, -5.0]]},
                  "drainage": "open sides, 10 µm", "bodies": 1, "volume_um3": 12345.6},
        "gwl": {"files": [{"name": "mask_1.gwl", "lines": 1234}], "slicing_distance_um": 0.1,
                "hatching_distance_um": 0.1, "line_counts": [1234]},
        "snapping": {"convention": "mid-slice planes", "levels": [
            {"k": 1, "ideal_um": 0.3591, "printed_um": 0.4, "phase_error_rad": 0.178}]},
        "warnings": ["material out of range", "snapped heights"],
        "tolerance": {"metric": "accuracy", "allowed_loss": 0.005, "trials": 8,
                      "rows": [{"error": "height scale", "unit": "%", "max_magnitude": 2.5, "source": "sweep"}]},
    }
    sheet = build_fab_sheet(table, pitch_m=1e-6, neurons=40, layers=2, spacing_m=30e-6, d_in_m=10e-6,
                            d_out_m=10e-6, extra=extra)
    md = render_fab_sheet_md(sheet)
    assert "tops at whole slices" in _row(md, "height convention") and "20 mW" in _row(md, "laser power")
    assert "30.9040 µm" in md and "spacing plus the base slab" in _row(md, "why this pitch")
    assert "3.1000 µm" in _row(md, "plate thickness")
    assert "one pillar per 20 µm" in _row(md, "supports: rule") and "(45.000, -5.000)" in md
    assert "open sides, 10 µm" in _row(md, "drainage") and "12345.6 µm³" in _row(md, "printed volume")
    assert "## Nanoscribe GWL jobs" in md and "| mask_1.gwl | 1234 |" in md and "[1234]" in md
    assert "mid-slice planes" in md and "| 1 | 0.3591 | 0.4000 | 0.1780 |" in md
    assert "- material out of range" in md and "- snapped heights" in md
    assert "| height scale | % | 2.5000 | sweep |" in md and "0.0050 of accuracy (8 trials" in md
    assert "## Other" not in md


def test_the_verify_result_is_recorded_and_rendered(export):
    from quaton_fab.analysis.verify import VerifyReport, VerifyRow

    out, _ = export
    report = VerifyReport(metric_name="accuracy", design_metric=0.9026, reported_metric=0.9026,
                          reference_design_metric=0.9023, samples=10000,
                          rows=[VerifyRow("design.gds", "gdstk.read_gds", 1.0, 0.0, 0.9023),
                                VerifyRow("mask_*_height8.png", "Pillow", 1.0, 1e-10, 0.9010)],
                          problems=[], tolerance=0.005, design_fidelity="training", reference_fidelity="reference")
    record_verification(out, report.to_dict())
    md = (out / "fab_sheet.md").read_text(encoding="utf-8")
    assert "0.9010 (reference)" in _row(md, "files as printed object (worst file)")
    assert "-0.0013" in _row(md, "gap (a) files vs design") and "-0.0003" in _row(md, "gap (b) reference model vs "
                                                                                   "training model")
    assert _row(md, "result") == "| result | PASSED |"
    assert read_fab_sheet(out)["verification"]["passed"] is True


def test_an_edited_bmp_scale_is_refused_even_with_a_fresh_hash(design, tmp_path):
    import json

    from quaton_fab.fab.sheet import SHEET_HASH_KEY, sheet_digest
    from quaton_fab.analysis.sheet_check import VerifyError

    out = tmp_path / "e"
    export_design(design, out, ExportOptions(formats=("bmp",)))
    sheet = read_fab_sheet(out)
    check_sheet(sheet, design, out)
    sheet["extra"]["bmp"][0]["height_per_grey_nm"] *= 1.01
    sheet[SHEET_HASH_KEY] = sheet_digest(sheet)
    (out / "fab_sheet.json").write_text(json.dumps(sheet))
    with pytest.raises(VerifyError, match="mask_1_height.bmp"):
        check_sheet(read_fab_sheet(out), design, out)
