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
    assert report.ok, report.problems
    # The printed phases are the snapped ones, so the fabricated metric differs from the design's.
    assert all(row.level_match == 1.0 for row in report.rows)
    assert any(abs(row.metric - report.design_metric) > 1e-6 for row in report.rows)


def test_tampered_files_fail_verification(design, tmp_path):
    export_design(design, tmp_path / "e", ExportOptions(formats=("stl",)))
    shutil.copy(tmp_path / "e" / "mask_2.stl", tmp_path / "e" / "mask_1.stl")
    report = verify_export(design, tmp_path / "e", samples=8, device="cpu")
    assert not report.ok and "mask_*.stl" in report.problems[0]


def test_not_an_export_directory(design, tmp_path):
    with pytest.raises(VerifyError, match="fab_sheet.json"):
        verify_export(design, tmp_path)


def test_medium_mismatch_is_refused(design, tmp_path):
    with pytest.raises(ExportError, match="n_medium"):
        export_design(design, tmp_path / "w", ExportOptions(formats=("gds",), medium="water"))
    assert not (tmp_path / "w").exists()
