"""The printed object is what we simulate: sampling rule by default, training through the relief, honest verify."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from quaton_fab.cli.app import app
from quaton_fab.design import Design
from quaton_fab.fab.export import ExportOptions, export_design
from quaton_fab.training import Trainer, preset
from quaton_fab.training.config import ConfigError
from quaton_fab.simulate import design_fidelity, reference_fidelity, simulate_design
from quaton_fab.analysis.verify import verify_export

runner = CliRunner()


def tiny(**overrides):
    # slices of λ0/16 and s = 4, the rule inside IP-Dip (⌈2·0.78·1.543/0.78⌉): the design's own relief model is
    # then the reference one (gaps are exactly zero)
    values = dict(train_samples=256, val_samples=32, test_samples=64, epochs=3, neurons=20, layers=2,
                  spacing_m=12e-6, batch_size=32, lr=0.1, max_slice_m=780e-9 / 16, oversample=4, threads=None)
    values.update(overrides)
    return preset("tiny", **values)


@pytest.fixture(scope="module")
def relief_design(tmp_path_factory) -> tuple[Design, Path]:
    out = tmp_path_factory.mktemp("relief")
    # Trained on the default printer's 100 nm slicing grid, so the default export prints exactly these heights:
    # on exact heights, whether the export's snapping changes a prediction depends on the trained design.
    design = Trainer(tiny(z_step_m=100e-9), out / "run").fit().design
    design.save(out / "design")
    return design, out


@pytest.fixture(scope="module")
def thin_undersampled(tmp_path_factory) -> tuple[Design, Path]:
    """A design trained the old way: thin masks, one sample per printed pixel."""
    out = tmp_path_factory.mktemp("thin")
    design = Trainer(tiny(model="thin", oversample=1, allow_undersampling=True, pitch_m=1e-6), out / "run").fit().design
    design.save(out / "design")
    return design, out


# ------------------------------------------------------------------------------------------------ sampling rule
def test_oversample_auto_meets_the_rule_and_is_recorded(relief_design):
    g = Trainer(tiny(oversample="auto"), "unused").build().network.geometry
    assert g.oversample == g.rule_oversample == 2  # 0.78 µm pixels at 780 nm in air
    design, out = relief_design
    assert design.sampling == {**design.sampling, "requested": 4, "meets_rule": True, "oversample": 4}
    meta = json.loads((out / "design" / "design.json").read_text())
    assert meta["propagation"]["sampling"]["meets_rule"] is True
    assert meta["propagation"]["mask_model"] == "relief"


def test_undersampling_needs_an_explicit_opt_in():
    with pytest.raises(ConfigError, match=r"oversample 1 is below the sampling rule \(s >= 3"):
        Trainer(tiny(oversample=1, pitch_m=1e-6), "unused").build()


def test_undersampled_design_is_flagged_everywhere(thin_undersampled, tmp_path):
    design, out = thin_undersampled
    assert design.sampling["meets_rule"] is False and design.sampling["requested"] == 1
    result = runner.invoke(app, ["inspect", str(out / "design"), "--no-figures"])
    assert result.exit_code == 0 and "NOT MET" in result.output and "thin phase screens" in result.output
    exported = export_design(design, tmp_path / "e", ExportOptions(formats=("gds",)))
    assert any("under-sampled" in w for w in exported.warnings)
    assert any("thin masks" in w for w in exported.warnings)
    assert exported.sheet["extra"]["simulation"]["meets_rule"] is False
    assert "NOT MET" in (tmp_path / "e" / "fab_sheet.md").read_text()


# ------------------------------------------------------------------------------------------ training through relief
def test_relief_training_reaches_every_quantizer_and_ends_on_exact_levels(relief_design):
    design, _ = relief_design
    assert design.relief is not None and design.fabrication["material"] == "IP-Dip"
    assert design.relief.base_m == pytest.approx(2e-6)
    np.testing.assert_allclose(design.relief.level_heights_m, design.fabrication["level_heights_m"])
    # the exported (evaluated) masks are exactly on the levels
    assert np.all(np.isin(design.phases_rad(), np.asarray(design.levels.phases)))
    trainer = Trainer(tiny(epochs=1, train_samples=32), "unused")
    parts = trainer.build()
    for q in parts.network.phase_modules:
        q.start_epoch(0, 1)
    parts.network.train()
    field, phase = parts.encoding.field_and_phase(parts.data.train.images[:4], 20, 4)
    parts.task.loss(parts.network(field), parts.data.train.labels[:4], phase).backward()
    for q in parts.network.phase_modules:
        assert q.latent.grad is not None and torch.count_nonzero(q.latent.grad) > 0


def test_relief_design_round_trips_and_evaluates_to_its_metric(relief_design):
    design, out = relief_design
    loaded = Design.load(out / "design")
    assert loaded.relief == design.relief and loaded.sampling == design.sampling
    again = simulate_design(loaded, device="cpu")
    assert again["accuracy"] == pytest.approx(design.metrics["test"]["accuracy"], abs=1e-12)
    # trained at the in-material rule with the relief sliced at λ0/16: its own fidelity is the reference fidelity
    assert reference_fidelity(loaded).to_dict() | {"label": ""} == design_fidelity(loaded).to_dict() | {"label": ""}
    # a coarser design is refined to the reference slicing and sampling, never coarsened
    coarse = dataclasses.replace(loaded, relief=dataclasses.replace(loaded.relief, max_slice_m=None),
                                 geometry=dataclasses.replace(loaded.geometry, oversample=2))
    ref = reference_fidelity(coarse)
    assert ref.relief.max_slice_m == pytest.approx(780e-9 / 16) and ref.oversample == 4
    assert len(ref.relief.slice_edges_m()) > len(coarse.relief.slice_edges_m())


# ------------------------------------------------------------------------------------------------ honest verify
def test_verify_passes_a_relief_design_exported_with_its_own_settings(relief_design, tmp_path):
    design, out = relief_design
    # its own settings: exact heights (the design was trained without a z-step, so no slicing grid); the subject
    # is the round trip, so no convergence probe (tests/test_reference_fidelity.py covers it)
    export_design(design, tmp_path / "e", ExportOptions(formats=("gds", "stl", "png"), printer="grayscale"))
    result = runner.invoke(app, ["verify", str(out / "design"), str(tmp_path / "e"), "--no-probe"])
    assert result.exit_code == 0, result.output
    report = verify_export(design, tmp_path / "e", device="cpu", probe_samples=None)
    assert report.ok and report.gap_files == 0.0 and report.gap_model == 0.0
    sheet = json.loads((tmp_path / "e" / "fab_sheet.json").read_text())
    assert sheet["verification"]["passed"] is True and sheet["all_checks_passed"] is True
    assert "All checks passed, printed-object verification included." in (tmp_path / "e" / "fab_sheet.md").read_text()


def test_verify_fails_an_old_style_design_and_names_the_model_as_cause(thin_undersampled, tmp_path):
    design, out = thin_undersampled
    export_design(design, tmp_path / "e", ExportOptions(formats=("gds",)))
    report = verify_export(design, tmp_path / "e", device="cpu")
    assert report.files_ok  # the files are perfect …
    assert report.reference_fidelity.startswith("s=4 (meets the in-material rule s>=4)")  # … but simulated as printed
    assert report.gap_model < -report.tolerance and not report.ok
    assert "printed-object model" in report.largest_cause
    result = runner.invoke(app, ["verify", str(out / "design"), str(tmp_path / "e")])
    assert result.exit_code == 1
    assert "verification failed" in result.output and "printed-object model" in result.output
    md = (tmp_path / "e" / "fab_sheet.md").read_text()
    assert "FAILED: printed-object verification" in md and "All checks passed" not in md
    assert json.loads((tmp_path / "e" / "fab_sheet.json").read_text())["all_checks_passed"] is False


def test_verify_names_the_export_when_the_files_cost_accuracy(relief_design, tmp_path):
    design, out = relief_design
    # a 300 nm z-step moves the 4 levels (0, 0.36, 0.72, 1.08 µm) to 0, 0.3, 0.6, 1.2 µm; no probe: the
    # subject is the files' gap (tests/test_reference_fidelity.py covers the probe)
    export_design(design, tmp_path / "e", ExportOptions(formats=("gds",), z_step_m=300e-9))
    report = verify_export(design, tmp_path / "e", device="cpu", tolerance=0.0, probe_samples=None)
    assert report.files_ok and report.gap_model == 0.0 and report.gap_files != 0.0
    assert report.ok == (report.total_gap >= 0.0)  # tolerance 0: any loss fails
    assert report.gap_files < 0 and not report.ok  # measured: the snapped levels cost accuracy
    assert "exported files" in report.largest_cause and "exported files" in report.failures()[0]
