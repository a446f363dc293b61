"""The design-vs-reference gap of train's closing summary: paired, recorded with both fidelities."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from quaton_fab.cli.app import app
from quaton_fab.design import Design
from quaton_fab.simulate import design_fidelity, reference_fidelity, simulate_design
from quaton_fab.training.reference_gap import reference_gap

runner = CliRunner()


def test_train_closing_summary_shows_the_gap_and_it_is_the_paired_difference(tmp_path):
    out = tmp_path / "run"
    result = runner.invoke(app, ["train", "--preset", "tiny", "--neurons", "12", "--epochs", "1", "--train-samples",
                                 "64", "--val-samples", "16", "--test-samples", "16", "--out", str(out),
                                 "--reference-samples", "16"])
    assert result.exit_code == 0, result.output
    assert "design-vs-reference gap" in result.output
    assert "s=4 (meets the in-material rule s>=4)" in result.output  # the reference is named with its sampling
    design = Design.load(out)
    gap = reference_gap(design, samples=100, device="cpu")  # capped at the design's 16 test samples
    assert gap.samples == 16 and not gap.same_fidelity
    assert gap.design["oversample"] == 2 and gap.reference["oversample"] == 4
    own = simulate_design(design, samples=16, fidelity=design_fidelity(design), device="cpu")["accuracy"]
    ref = simulate_design(design, samples=16, fidelity=reference_fidelity(design), device="cpu")["accuracy"]
    assert gap.gap == pytest.approx(ref - own, abs=0)
    assert f"{gap.gap:+.4f}" in result.output
