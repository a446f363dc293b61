"""verify: files that match give a zero gap; snapped heights give a real gap; tampered files are caught."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from quaton_fab.design import Design
from quaton_fab.fab.export import ExportError, ExportOptions, export_design
from quaton_fab.verification import VerifyError, verify_export

SAMPLE = Path(__file__).parent.parent / "sample_designs" / "rbc-qpi-psq-lt-8"


@pytest.fixture(scope="module")
def design() -> Design:
    return Design.load(SAMPLE)


def test_z_step_snapping_is_reported_and_re_simulated(design, tmp_path):
    result = export_design(design, tmp_path / "e", ExportOptions(formats=("gds", "png"), z_step_m=100e-9))
    assert any("snapping heights" in w for w in result.warnings)
    snapped = np.asarray(result.table.snapped_height_m)
    np.testing.assert_allclose(snapped / 100e-9, np.round(snapped / 100e-9), atol=1e-9)
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
    assert sorted(p.name for p in out.iterdir()) == ["design.gds", "fab_sheet.json", "fab_sheet.md"]
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


def test_export_defaults_to_the_material_and_z_step_the_design_was_trained_for(design, tmp_path):
    import dataclasses

    trained = dataclasses.replace(design, fabrication={"material": "fused silica", "z_step_m": 50e-9})
    result = export_design(trained, tmp_path / "a", ExportOptions(formats=("gds",)))
    assert result.table.material == "fused silica" and result.table.z_step_m == 50e-9
    other = export_design(trained, tmp_path / "b", ExportOptions(formats=("gds",), material="ip-dip"))
    assert any("trained on the printable levels of fused silica" in w for w in other.warnings)
