"""The design report (report.html) and the study page without a browser: content, atomic export set, hashes,
rebuild on every sheet write, verify's read-back, missing sections, the 3D downsampling rule and page size."""

from __future__ import annotations

import hashlib
import html
import json
import re
from pathlib import Path

import numpy as np
import pytest

from quaton_fab.design import Design
from quaton_fab.fab.export import ExportOptions, export_design
from quaton_fab.printing.level_table import level_table
from quaton_fab.printing.materials import get_material
from quaton_fab.fab.report_html import (
    REPORT_NAME,
    ReportError,
    aspect_ratios,
    block_size,
    read_report,
    read_report_levels,
    refresh_report,
    render_design_report,
    write_design_report,
)
from quaton_fab.fab.sheet import build_fab_sheet, read_fab_sheet, record_tolerance, write_fab_sheet
from quaton_fab.analysis.sheet_check import check_sheet
from quaton_fab.html_page import read_page_data
from quaton_fab.analysis.verify import verify_export

SAMPLE = Path(__file__).parent.parent / "sample_designs" / "mnist-psq-lt-4"
NUM = re.compile(r'<span class="num" data-key="([^"]+)" data-value="([^"]+)" data-scale="([^"]+)" '
                 r'data-digits="(\d+)">([^<]*)</span>')

#: A hand-made cross-check entry in the shape ``record_crosscheck`` writes (see fab/report_html.py).
CROSSCHECK = {
    "command": "quaton-fab crosscheck runs/d runs/d/export", "solver": "grcwa (RCWA)", "patches": 6,
    "patch_pixels": 8, "harmonics": 41,
    "rows": [{"model": "multislice relief", "polarisation": "TE", "l1_mean": 0.061, "l1_worst": 0.11,
              "complex_mean": 0.072, "complex_worst": 0.13},
             {"model": "thin mask", "polarisation": "mean", "l1_mean": 0.2, "l1_worst": 0.31, "complex_mean": 0.25,
              "complex_worst": 0.4}],
    "note": "TE and TM differ by 0.16 themselves", "figure": "crosscheck.png",
}


def resolve(sheet: dict, key: str):
    """The value at a dotted path (list indices as numbers) of the fab sheet."""
    value = sheet
    for part in key.split("."):
        value = value[int(part)] if isinstance(value, list) else value[part]
    return value


def shown_numbers_match(text: str, sheet: dict) -> int:
    """Assert every keyed number of the page equals the sheet's (exact value and shown digits); return the count."""
    found = NUM.findall(text)
    for key, value, scale, digits, shown in found:
        expected = resolve(sheet, html.unescape(key))
        assert float(value) == pytest.approx(float(expected), rel=0, abs=0), key
        number = float(re.match(r"-?[\d.]+", html.unescape(shown)).group(0))
        assert abs(number - float(expected) * float(scale)) <= 0.5 * 10 ** -int(digits) + 1e-12, key
    return len(found)


@pytest.fixture(scope="module")
def design() -> Design:
    return Design.load(SAMPLE)


@pytest.fixture(scope="module")
def export(design, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("rep") / "export"
    export_design(design, out, ExportOptions(formats=("gds", "png")))
    return out


def test_export_writes_the_report_into_the_set_with_its_hash(design, export):
    sheet = read_fab_sheet(export)
    entry = next(f for f in sheet["files"] if f["name"] == REPORT_NAME)
    data = (export / REPORT_NAME).read_bytes()
    assert entry["sha256"] == hashlib.sha256(data).hexdigest() and entry["bytes"] == len(data)
    check_sheet(sheet, design, export)
    text = data.decode()
    # self-contained: no external source in the page's own markup (the browser test blocks and counts requests)
    markup = re.sub(r"<script>.*?</script>", "", text, flags=re.DOTALL)
    assert not re.search(r'(src|href)="(https?:)?//', markup) and "<link" not in markup
    shown = read_report_levels(export / REPORT_NAME, design.geometry.neurons, design.num_masks)
    np.testing.assert_array_equal(shown, design.level_indices)
    assert shown_numbers_match(text, sheet) >= 40
    # every file but the page itself, with its hash as text
    for f in sheet["files"]:
        if f["name"] != REPORT_NAME:
            assert f["sha256"] in text and html.escape(f["name"]) in text
    # sections not run yet name their command
    for what, command in (("verify", "quaton-fab verify DESIGN_DIR export"),
                          ("crosscheck", "quaton-fab crosscheck DESIGN_DIR export"),
                          ("tolerance", "quaton-fab tolerance DESIGN_DIR export")):
        assert f"not run yet — command: <code>{command}</code>" in text, what
    assert "Ask before printing" in text  # no verification yet: never "ready"
    assert len(data) < 5 * 2**20
    assert refresh_report(export, sheet) is False  # made from this very sheet: not rendered again


def test_same_export_twice_gives_the_same_report(design, export, tmp_path):
    again = tmp_path / "export"
    export_design(design, again, ExportOptions(formats=("gds", "png")))
    assert (again / REPORT_NAME).read_bytes() == (export / REPORT_NAME).read_bytes()


def test_no_report_option(design, tmp_path):
    result = export_design(design, tmp_path / "e", ExportOptions(formats=("gds",), report=False))
    assert not (tmp_path / "e" / REPORT_NAME).exists()
    assert REPORT_NAME not in {f["name"] for f in result.sheet["files"]}


def test_a_report_of_the_user_in_the_way_needs_force_and_the_cli_can_skip_it(design, tmp_path):
    from typer.testing import CliRunner

    from quaton_fab.cli.app import app
    from quaton_fab.fab.export import ExportError

    out = tmp_path / "e"
    out.mkdir()
    (out / REPORT_NAME).write_text("mine")
    with pytest.raises(ExportError, match="report.html' already exists"):
        export_design(design, out, ExportOptions(formats=("gds",)))
    assert (out / REPORT_NAME).read_text() == "mine"
    result = CliRunner().invoke(app, ["export", str(SAMPLE), "--format", "gds", "--no-report", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / REPORT_NAME).read_text() == "mine" and "Design report" not in result.output
    result = CliRunner().invoke(app, ["export", str(SAMPLE), "--format", "gds", "--out", str(out), "--force"])
    assert result.exit_code == 0 and "Design report: open" in result.output
    assert REPORT_NAME in {f["name"] for f in read_fab_sheet(out)["files"]}


def test_recording_rebuilds_the_report_and_verify_reads_it_back(design, export, tmp_path):
    out = tmp_path / "e"
    export_design(design, out, ExportOptions(formats=("gds",)))
    before = (out / REPORT_NAME).read_bytes()
    report = verify_export(design, out, samples=8, device="cpu")
    assert report.files_ok, report.problems
    assert REPORT_NAME in {row.file for row in report.rows}
    row = next(r for r in report.rows if r.file == REPORT_NAME)
    assert row.level_match == 1.0 and row.metric == next(r.metric for r in report.rows if r.file == "design.gds")
    from quaton_fab.fab.sheet import record_verification

    record_verification(out, report.to_dict())
    sheet = read_fab_sheet(out)
    text = (out / REPORT_NAME).read_text()
    assert text.encode() != before and 'data-notrun="Printed-object verification"' not in text
    assert shown_numbers_match(text, sheet) > shown_numbers_match(before.decode(), sheet)
    assert "verification.total_gap" in text
    entry = next(f for f in sheet["files"] if f["name"] == REPORT_NAME)
    assert entry["sha256"] == hashlib.sha256(text.encode()).hexdigest()
    check_sheet(sheet, design, out)
    assert verify_export(design, out, samples=8, device="cpu").files_ok


def test_crosscheck_section_from_a_hand_made_entry(export, tmp_path):
    sheet = read_fab_sheet(export)
    from PIL import Image

    Image.new("RGB", (40, 30), (200, 30, 30)).save(tmp_path / "crosscheck.png")
    sheet["crosscheck"] = CROSSCHECK
    levels = read_report_levels(export / REPORT_NAME)
    text = render_design_report(sheet, levels, export_dir=tmp_path, export_name="export")
    assert 'data-notrun="Rigorous cross-check (RCWA)"' not in text
    assert "grcwa (RCWA)" in text and "TE and TM differ by 0.16 themselves" in text
    assert 'src="data:image/png;base64,' in text
    assert shown_numbers_match(text, sheet) >= 40
    assert 'data-key="crosscheck.rows.1.complex_worst" data-value="0.4"' in text
    # the figure file missing: the section says so instead of breaking
    text = render_design_report(sheet, levels, export_dir=tmp_path / "nowhere", export_name="export")
    assert "crosscheck.png is not in the export folder" in text


def test_tolerance_section_with_curves(export, tmp_path):
    sheet = read_fab_sheet(export)
    sheet["tolerance"] = {
        "metric": "accuracy", "allowed_loss": 0.01, "trials": 3, "samples": 50, "seed": 0, "fidelity": "reference",
        "rows": [{"error": "shift", "unit": "µm", "max_magnitude": 0.25, "source": "stage"}], "nominal": 0.9,
        "curves": [{"error": "shift", "magnitude": m, "unit": "µm", "mean": 0.9 - m / 10, "p5": 0.88 - m / 10,
                    "min": 0.8, "within": m < 0.5} for m in (0.125, 0.25, 0.5)],
    }
    text = render_design_report(sheet, read_report_levels(export / REPORT_NAME), export_name="export")
    data = read_page_data(text)
    assert data["tolerance_curves"][0]["x"] == [0.125, 0.25, 0.5]
    assert 'id="tolerance-curves"' in text and 'data-notrun="Fabrication tolerances"' not in text


def test_a_changed_report_is_not_rebuilt_over_and_verify_flags_it(design, tmp_path):
    out = tmp_path / "e"
    export_design(design, out, ExportOptions(formats=("gds",)))
    page = out / REPORT_NAME
    page.write_bytes(page.read_bytes().replace(b"Part at a glance", b"Part at a glimpse"))
    tampered = page.read_bytes()
    record_tolerance(out, {"metric": "accuracy", "allowed_loss": 0.01, "trials": 1, "samples": 4, "seed": 0,
                           "fidelity": "design", "rows": []})
    assert page.read_bytes() == tampered
    report = verify_export(design, out, samples=8, device="cpu")
    assert any(p.startswith(f"{REPORT_NAME}: changed since export") for p in report.problems)


def test_verify_finds_a_report_whose_level_maps_differ(design, tmp_path):
    out = tmp_path / "e"
    export_design(design, out, ExportOptions(formats=("gds",)))
    sheet = read_fab_sheet(out)
    wrong = design.level_indices.copy()
    wrong[2, 5, 7] = (wrong[2, 5, 7] + 1) % 4
    write_design_report(out, sheet, wrong, export_name="e")
    entry = next(f for f in sheet["files"] if f["name"] == REPORT_NAME)
    entry["sha256"] = hashlib.sha256((out / REPORT_NAME).read_bytes()).hexdigest()
    write_fab_sheet(out, sheet)
    report = verify_export(design, out, samples=8, device="cpu")
    assert f"{REPORT_NAME}: level map differs from the design at 1 pixels" in report.problems


def test_reader_rejects_a_page_without_data(tmp_path):
    (tmp_path / REPORT_NAME).write_text("<html><body>hello</body></html>")
    with pytest.raises(ReportError, match="no data block"):
        read_report(tmp_path / REPORT_NAME)


def test_downsampling_rule_and_aspect_ratio():
    assert [block_size(n) for n in (48, 64, 65, 128, 1000)] == [1, 1, 2, 2, 16]
    levels = np.zeros((5, 5), dtype=int)
    heights = np.zeros((5, 5))
    levels[2, 2], heights[2, 2] = 1, 2e-6  # a lone 2 µm pillar on a 1 µm pitch: aspect 2
    levels[0, 0:2], heights[0, 0:2] = 1, 1e-6  # a two-pixel wall, 1 µm tall: aspect 1 (one pixel wide)
    ar = aspect_ratios(heights, levels, 1e-6)
    assert ar[2, 2] == pytest.approx(2.0) and ar[0, 0] == pytest.approx(1.0) and ar[4, 4] == 0.0


def test_a_1000_pixel_mask_page_stays_small_and_reads_back(tmp_path):
    """A 1000×1000 mask: the page stays far below 5 MB (compressed level maps) and round-trips exactly."""
    table = level_table(np.linspace(0, 1.5 * np.pi, 4), get_material("ip-dip"), 780e-9, 1.0, 2e-6, 100e-9)
    sheet = build_fab_sheet(table, pitch_m=400e-9, neurons=1000, layers=1, spacing_m=40e-6, d_in_m=40e-6,
                            d_out_m=40e-6)
    rng = np.random.default_rng(0)
    levels = rng.integers(0, 4, size=(1, 1000, 1000))
    path = write_design_report(tmp_path, sheet, levels, export_name="big")
    assert path.stat().st_size < 5 * 2**20
    back, data = read_report(path)
    np.testing.assert_array_equal(back, levels)
    assert data["view3d"]["block"] == 16
    counts = {k: sum(m["spots"][k]["count"] for m in data["masks"]) for k in ("isolated", "corner", "aspect")}
    assert counts["isolated"] > 10000 and all(len(m["spots"]["isolated"]["rc"]) == 4000 for m in data["masks"])


def test_sweep_page_from_the_study_results(tmp_path):
    """The study page of docs/RESULTS.json: tables, one figure per method × levels grid, ranking, cell links."""
    from quaton_fab.sweep.report import FIDELITY_NAMES, FIDELITY_ORDER
    from quaton_fab.sweep.report_html import render_sweep_page

    twin = json.loads((Path(__file__).parent.parent / "docs" / "RESULTS.json").read_text())
    label, grid = next(iter(twin["grids"].items()))
    for name, g in twin["grids"].items():
        for r in g["rows"]:
            r["cells"] = [f"{name}/{r['params'].get('method')}-{r['params'].get('levels')}-s{s}" for s in r["seeds"]]
    exported = tmp_path / label / f"{grid['rows'][0]['params']['method']}-{grid['rows'][0]['params']['levels']}-s0"
    (exported / "export").mkdir(parents=True)
    (exported / "export" / REPORT_NAME).write_text("x")
    ranks = {k: [(r["method"], r["mean_rank"], r["wins"]) for r in v] for k, v in twin["ranking"].items()}
    text = render_sweep_page({"name": twin["name"], "cells": [0] * twin["cells"], "spec_text": twin["spec_text"]},
                             twin, ranks, tmp_path, tmp_path / "report.html", fid_names=FIDELITY_NAMES,
                             fid_order=FIDELITY_ORDER)
    data = read_page_data(text)
    assert [g["label"] for g in data["grids"]] == list(twin["grids"])
    assert text.count('class="cell-report"') == 1
    assert f'href="{label}/{exported.name}/export/report.html"' in text
    assert f'href="{label}/{exported.name.replace("-s0", "-s1")}/"' in text  # not exported: the folder
    assert text.count('class="figure wide plot2d" id="levels-') == sum(
        1 for g in twin["grids"].values() if set(g["group_by"]) == {"method", "levels"})
    first = grid["rows"][0]["metrics"]["reference"]
    assert f'{first["mean"] * 100:.2f} ± {first["std"] * 100:.2f}' in text
