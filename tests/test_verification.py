"""verify: files that match give a zero gap; snapped heights give a real gap; tampered files are caught."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from quaton_fab.design import Design
from quaton_fab.fab.export import ExportError, ExportOptions, export_design
from quaton_fab.analysis.verify import VerifyError, verify_export

SAMPLE = Path(__file__).parent.parent / "sample_designs" / "rbc-qpi-psq-lt-8"


@pytest.fixture(scope="module")
def design() -> Design:
    return Design.load(SAMPLE)


def test_z_step_snapping_is_reported_and_re_simulated(design, tmp_path):
    # The sample sits on the 100 nm grid; an 80 nm grid has to move most of its levels.
    result = export_design(design, tmp_path / "e", ExportOptions(formats=("gds", "png"), z_step_m=80e-9))
    assert any("snapping heights" in w for w in result.warnings)
    snapped = np.asarray(result.table.snapped_height_m)
    np.testing.assert_allclose(snapped / 80e-9, np.round(snapped / 80e-9), atol=1e-9)
    report = verify_export(design, tmp_path / "e", samples=24, device="cpu")
    assert report.files_ok, report.problems
    # The printed phases are the snapped ones, so the fabricated metric differs from the design's.
    assert all(row.level_match == 1.0 for row in report.rows)
    assert any(abs(row.metric - report.design_metric) > 1e-6 for row in report.rows)


def test_tampered_files_fail_verification(design, tmp_path):
    export_design(design, tmp_path / "e", ExportOptions(formats=("stl",)))
    shutil.copy(tmp_path / "e" / "mask_2.stl", tmp_path / "e" / "mask_1.stl")
    report = verify_export(design, tmp_path / "e", samples=8, device="cpu")
    assert not report.ok and not report.files_ok
    assert any(p.startswith("mask_1.stl: changed since export") for p in report.problems)
    assert any(p.startswith("mask_*.stl: heights differ") for p in report.problems)


def test_stale_files_of_an_earlier_export_are_replaced(design, tmp_path):
    out = tmp_path / "e"
    export_design(design, out, ExportOptions(formats=("stl", "png")))
    export_design(design, out, ExportOptions(formats=("gds",), base_m=3e-6, force=True))
    assert sorted(p.name for p in out.iterdir()) == ["design.gds", "fab_sheet.json", "fab_sheet.md", "report.html"]
    assert verify_export(design, out, samples=8, device="cpu").files_ok


def test_tall_parts_export_height_maps_with_a_coarser_grey_step(design, tmp_path):
    # 140 µm of base no longer enters the height maps (relief only), and a coarse grey step is accepted.
    result = export_design(design, tmp_path / "t", ExportOptions(formats=("png", "stl"), base_m=140e-6))
    assert result.sheet["all_checks_passed"]
    # the files are fine, but a 140 µm base cannot sit in the design's 20 µm gaps: verify says so in one line
    with pytest.raises(VerifyError, match="shorter than the printed part"):
        verify_export(design, tmp_path / "t", samples=8, device="cpu")


def test_not_an_export_directory(design, tmp_path):
    with pytest.raises(VerifyError, match="fab_sheet.json"):
        verify_export(design, tmp_path)


def test_medium_mismatch_is_refused(design, tmp_path):
    with pytest.raises(ExportError, match="n_medium"):
        export_design(design, tmp_path / "w", ExportOptions(formats=("gds",), medium="water"))
    assert not (tmp_path / "w").exists()


def test_export_defaults_to_the_material_the_design_was_trained_for_and_the_printer_grid(design, tmp_path):
    import dataclasses

    trained = dataclasses.replace(design, fabrication={"material": "fused silica", "z_step_m": 50e-9})
    result = export_design(trained, tmp_path / "a", ExportOptions(formats=("gds",)))
    # the printer's slicing distance (100 nm by default) is the z-step; a finer training step is flagged
    assert result.table.material == "fused silica" and result.table.z_step_m == pytest.approx(100e-9)
    assert any("50 nm z-step, which is not a whole number" in w for w in result.warnings)
    matched = export_design(trained, tmp_path / "m", ExportOptions(formats=("gds",), slicing_distance_m=50e-9))
    assert matched.table.z_step_m == 50e-9 and not any("z-step, which" in w for w in matched.warnings)
    other = export_design(trained, tmp_path / "b", ExportOptions(formats=("gds",), material="ip-dip"))
    assert any("trained on the printable levels of fused silica" in w for w in other.warnings)


def test_verify_reads_back_every_file_the_sheet_lists(design, tmp_path):
    """All formats with the stack: stack.stl (one solid), mask_*.gwl and stack.gwl are read back and simulated."""
    result = export_design(design, tmp_path / "e", ExportOptions(stack=True))
    assert result.sheet["all_checks_passed"], result.sheet["checks_failed"]
    report = verify_export(design, tmp_path / "e", samples=8, device="cpu")
    assert report.files_ok, report.problems
    labels = {row.file for row in report.rows}
    assert {"stack.stl", "stack.gwl", "mask_*.gwl", "mask_*.stl", "design.gds"} <= labels
    listed = {f["name"] for f in result.sheet["files"]}
    assert set(report.checked_files) == listed
    assert all(row.level_match == 1.0 for row in report.rows)


def test_verify_flags_a_stack_whose_plates_moved(design, tmp_path):
    export_design(design, tmp_path / "e", ExportOptions(formats=("stl",), stack=True))
    sheet_path = tmp_path / "e" / "fab_sheet.json"
    from quaton_fab.fab.sheet import read_fab_sheet, write_fab_sheet

    sheet = read_fab_sheet(sheet_path)
    sheet["extra"]["stack"]["plate_pitch_m"] += 1e-7  # the sheet now promises another plate spacing
    write_fab_sheet(tmp_path / "e", sheet)
    report = verify_export(design, tmp_path / "e", samples=8, device="cpu")
    assert any("stack.stl: plates are not" in p for p in report.problems)
