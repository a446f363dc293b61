"""The converged reference: the in-material sampling rule, the convergence probe, the design-vs-reference gap."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from quaton_fab.cli.app import app
from quaton_fab.design import Design
from quaton_fab.fab.export import ExportOptions, export_design
from quaton_fab.training import Trainer, preset
from quaton_fab.analysis.convergence import probe_fidelity, run_probe
from quaton_fab.simulate import REFERENCE_SLICE_FRACTION, Fidelity, reference_fidelity, reference_oversample
from quaton_fab.analysis.verify import verify_export

runner = CliRunner()
SAMPLE = Path(__file__).parent.parent / "sample_designs" / "mnist-psq-lt-4"


def test_reference_samples_at_the_in_material_rule_for_the_sample_geometry():
    design = Design.load(SAMPLE)
    g, relief = design.geometry, design.relief
    n_mat = relief.n_material
    assert n_mat == pytest.approx(1.5430, abs=1e-4)  # IP-Dip at 780 nm
    assert (g.pitch_m, g.wavelength_m) == (1e-6, 780e-9)
    expected = math.ceil(2 * 1e-6 * n_mat / 780e-9)  # ⌈2·1·1.543/0.78⌉ = ⌈3.957⌉
    assert expected == 4
    ref = reference_fidelity(design)
    assert ref.oversample == reference_oversample(g, ref.relief) == 4
    assert g.rule_oversample == 3  # the rule in the medium (air); the design was trained at the material's, 4
    assert g.oversample == 4
    # the relief is sliced at most λ0·REFERENCE_SLICE_FRACTION; the record says where the number was measured
    ident = ref.identifier(g)
    assert ident["oversample"] == 4 and ident["rule_oversample"] == 4 and ident["rule_oversample_medium"] == 3
    assert ident["n_material"] == pytest.approx(n_mat) and ident["n_medium"] == 1.0
    assert ident["max_slice_m"] <= g.wavelength_m * REFERENCE_SLICE_FRACTION + 1e-15
    assert ref.describe(g).startswith("s=4 (meets the in-material rule s>=4)")
    assert "BELOW the in-material rule s>=4" in Fidelity(3, ref.relief).describe(g)


def test_thin_simulation_keeps_the_medium_rule_and_a_finer_request_is_kept():
    g = Design.load(SAMPLE).geometry
    assert reference_oversample(g, None) == g.rule_oversample == 3
    # water around the part: the medium rule rises, the material rule stays the larger one
    wet = dataclasses.replace(g, n_medium=1.33)
    assert reference_oversample(wet, None) == math.ceil(2 * 1.33 * 1e-6 / 780e-9) == 4
    design = Design.load(SAMPLE)
    assert reference_fidelity(design, oversample=6).oversample == 6
    assert reference_fidelity(design, oversample=3).oversample == 4  # never below the rule


def test_probe_fidelity_doubles_sampling_and_halves_slices():
    design = Design.load(SAMPLE)
    ref = reference_fidelity(design)
    finer = probe_fidelity(ref)
    thickest = ref.identifier(design.geometry)["max_slice_m"]
    assert finer.oversample == 8
    assert finer.identifier(design.geometry)["max_slice_m"] <= 0.5 * thickest + 1e-15


# ------------------------------------------------------------------------------------------------ probe verdicts
def _tiny(**overrides):
    values = dict(train_samples=128, val_samples=32, test_samples=48, epochs=2, neurons=12, layers=2,
                  batch_size=32, lr=0.1, threads=None)
    values.update(overrides)
    return preset("tiny", **values)


@pytest.fixture(scope="module")
def converged(tmp_path_factory) -> tuple[Design, Path]:
    """2 µm pixels (few diffraction orders inside the relief), trained at the in-material rule and reference
    slicing: the design's own fidelity is the reference, and the probe agrees with it."""
    out = tmp_path_factory.mktemp("converged")
    config = _tiny(pitch_m=2e-6, oversample=8, spacing_m=60e-6, max_slice_m=780e-9 * REFERENCE_SLICE_FRACTION)
    design = Trainer(config, out / "run").fit().design
    design.save(out / "design")
    export_design(design, out / "export", ExportOptions(formats=("gds",), printer="grayscale"))
    return design, out


def test_probe_says_not_converged_on_a_deliberately_under_resolved_reference(converged):
    design, _ = converged
    # one sample per 2 µm pixel and one slice per level step: far below the rule ⌈2·2·1.543/0.78⌉ = 8
    coarse = Fidelity(1, dataclasses.replace(design.relief, max_slice_m=None), "under-resolved")
    result = run_probe(design, coarse, samples=48, tolerance=0.005, device="cpu")
    assert result.samples == 48 and result.probe["oversample"] == 2
    assert not result.converged and abs(result.difference) > 0.005
    assert "beyond the tolerance" in result.summary()


def test_verify_says_verified_on_a_converged_tiny_case_and_records_the_probe(converged, tmp_path):
    design, out = converged
    assert reference_fidelity(design).oversample == design.geometry.oversample == 8
    report = verify_export(design, out / "export", device="cpu", probe_samples=48)
    assert report.probe is not None and report.probe.samples == 48
    assert report.converged and report.ok, report.failures()
    assert report.probe.probe["oversample"] == 16
    result = runner.invoke(app, ["verify", str(out / "design"), str(out / "export"), "--probe-samples", "48"])
    assert result.exit_code == 0, result.output
    assert "verified" in result.output and "convergence probe (48 samples)" in result.output
    assert "design vs reference" in result.output
    sheet = json.loads((out / "export" / "fab_sheet.json").read_text())
    ver = sheet["verification"]
    assert ver["passed"] is True and ver["converged"] is True  # the existing keys stay, the probe's are added
    assert ver["probe"]["samples"] == 48 and ver["probe"]["probe_fidelity"]["oversample"] == 16
    assert ver["fidelity_ids"]["reference"]["n_material"] == pytest.approx(design.relief.n_material)
    assert "convergence probe (48 test samples)" in (out / "export" / "fab_sheet.md").read_text()
    assert "converged" in (out / "export" / "fab_sheet.md").read_text()


def test_probe_smaller_than_the_judged_samples_estimates_their_change_with_an_interval(converged):
    design, out = converged
    coarse = Fidelity(1, dataclasses.replace(design.relief, max_slice_m=None), "under-resolved")
    exact = run_probe(design, coarse, samples=48, tolerance=0.005, device="cpu")  # every sample: no spread
    assert exact.estimate.standard_error == 0.0 and exact.population == exact.samples == 48
    part = run_probe(design, coarse, samples=16, tolerance=0.005, device="cpu")
    assert (part.population, part.samples, part.census) == (48, 16, 8)
    assert part.reference_metric == pytest.approx(exact.reference_metric)
    assert part.estimate.standard_error > 0 and part.verdict in ("not converged", "undecided")
    assert abs(part.difference - exact.difference) <= 3 * part.estimate.standard_error + 1e-12
    assert "the 8 nearest a changed decision and 8 drawn from the rest" in part.summary()
    record = part.to_dict()
    assert record["population"] == 48 and record["census"] == 8 and record["verdict"] == part.verdict
    low, high = record["interval_95"]
    assert low < part.difference < high
    # the true reference changes nothing on all 48 (see above), but 16 samples cannot show that to 0.5 points
    result = runner.invoke(app, ["verify", str(out / "design"), str(out / "export"), "--probe-samples", "16"])
    assert result.exit_code == 0, result.output
    assert "convergence undecided" in result.output and "convergence is undecided" in result.output
    ver = json.loads((out / "export" / "fab_sheet.json").read_text())["verification"]
    assert ver["converged"] is None and ver["probe"]["verdict"] == "undecided" and ver["probe"]["population"] == 48
    md = (out / "export" / "fab_sheet.md").read_text()
    assert "convergence probe (16 test samples of 48)" in md and "UNDECIDED" in md
    assert "the reference's convergence is undecided" in md


@pytest.fixture(scope="module")
def under_resolved(tmp_path_factory) -> tuple[Design, Path]:
    """QPI (SSIM, a continuous metric) through an IP-Dip relief at 0.63 µm pixels and λ0 632.8 nm, trained at the
    in-material rule s = 4 and the reference slicing: pixels this close to λ0 are not converged at the rule."""
    out = tmp_path_factory.mktemp("under")
    config = preset("qpi-quickstart", train_samples=64, val_samples=16, test_samples=16, epochs=1, neurons=12,
                    layers=2, batch_size=16, oversample=4, max_slice_m=632.8e-9 * REFERENCE_SLICE_FRACTION,
                    pitch_m=0.63e-6, spacing_m=10e-6, d_in_m=None, mask_init="uniform", threads=None)
    design = Trainer(config, out / "run").fit().design
    design.save(out / "design")
    export_design(design, out / "export", ExportOptions(formats=("gds",)))  # the design's own 100 nm grid
    return design, out


def test_verify_says_not_converged_and_exits_non_zero(under_resolved):
    design, out = under_resolved
    assert reference_fidelity(design).oversample == design.geometry.oversample == 4
    report = verify_export(design, out / "export", device="cpu", probe_samples=16)
    assert report.files_ok and report.gap_files == 0.0 and report.gap_model == 0.0  # files and model agree …
    assert report.converged is False and not report.ok  # … but the reference itself is not converged
    assert abs(report.probe.difference) > report.tolerance == 0.01
    assert any(f.startswith("not converged") for f in report.failures())
    result = runner.invoke(app, ["verify", str(out / "design"), str(out / "export"), "--probe-samples", "16"])
    assert result.exit_code == 1
    assert "not converged" in result.output and "verified:" not in result.output
    ver = json.loads((out / "export" / "fab_sheet.json").read_text())["verification"]
    assert ver["converged"] is False and ver["passed"] is False and ver["total_gap"] == 0.0
    md = (out / "export" / "fab_sheet.md").read_text()
    assert "NOT CONVERGED" in md and "reference not converged" in md


def test_no_probe_option_skips_it(converged):
    design, out = converged
    result = runner.invoke(app, ["verify", str(out / "design"), str(out / "export"), "--no-probe",
                                 "--test-samples", "16"])
    assert result.exit_code == 0, result.output
    assert "convergence probe" not in result.output


def test_evaluate_shows_the_design_vs_reference_gap(tmp_path):
    out = tmp_path / "run"
    design = Trainer(_tiny(epochs=1, test_samples=16), out).fit().design  # trained at s=2, reference s=4
    design.save(tmp_path / "design")
    result = runner.invoke(app, ["evaluate", str(tmp_path / "design")])
    assert result.exit_code == 0, result.output
    assert "design-vs-reference gap" in result.output
    assert "s=4 (meets the in-material rule s>=4)" in result.output
