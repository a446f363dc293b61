"""One library call per command: evaluate_design, verify_and_record, crosscheck_and_record, tolerance_study."""

from __future__ import annotations

import contextlib
import json

import pytest

from quaton_fab.analysis.evaluation import AnalysisHooks, evaluate_design, plan_fidelities
from quaton_fab.analysis.record import VerifyHooks, crosscheck_and_record, verify_and_record
from quaton_fab.analysis.tolerance_study import (
    ToleranceStudyError,
    default_magnitudes,
    select_errors,
    tolerance_study,
)
from quaton_fab.design import Design
from quaton_fab.fab.export import ExportOptions, export_design
from quaton_fab.fab.sheet import read_fab_sheet
from quaton_fab.optics.perturbation import ERRORS, parse_magnitude
from quaton_fab.simulate import design_fidelity, reference_fidelity, reference_oversample, simulate_design
from quaton_fab.training import preset
from quaton_fab.training.run import run_training


class Recorder(VerifyHooks):
    """Hooks that note what is reported, in order."""

    def __init__(self):
        self.events: list[tuple] = []

    def fidelity(self, label, description):
        self.events.append(("fidelity", label))

    @contextlib.contextmanager
    def progress(self, label):
        self.events.append(("progress", label))
        yield lambda done, total: self.events.append(("update",)) if done == total else None

    def probe(self, done, total):
        if done == total:
            self.events.append(("probe",))

    def result(self, value):
        self.events.append(("result", type(value).__name__))

    def written(self, paths):
        self.events.append(("written", [p.name for p in paths]))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny relief design and its exact-height (grayscale) GDS export, so verify passes."""
    base = tmp_path_factory.mktemp("calls")
    config = preset("tiny", neurons=12, layers=2, spacing_m=10e-6, epochs=1, train_samples=64, val_samples=16,
                    test_samples=16, batch_size=16, device="cpu")
    run_training(config, base / "design", figures=False)
    export_design(Design.load(base / "design"), base / "export",
                  ExportOptions(formats=("gds",), material="ip-dip", printer="grayscale"))
    return base / "design", base / "export"


def test_evaluate_plans_fidelities_as_the_command_did(trained):
    design = Design.load(trained[0])
    own, ref = design_fidelity(design), reference_fidelity(design)
    assert [f.label for f in plan_fidelities(design)] == ["design", "reference"]
    assert plan_fidelities(design, fidelity="design") == [own]
    assert plan_fidelities(design, fidelity="reference") == [ref]
    (thin,) = plan_fidelities(design, model="thin", fidelity="reference")  # an override: one custom run
    assert thin.label == "custom" and thin.relief is None and thin.oversample == design.geometry.oversample
    (auto,) = plan_fidelities(design, oversample="auto", max_slice_m=50e-9)
    assert auto.relief is not None and auto.relief.max_slice_m == 50e-9
    assert auto.oversample == reference_oversample(design.geometry, auto.relief)
    # --fidelity reference with a finer sampling refines the reference: its slicing stays, s rises (never falls)
    (finer,) = plan_fidelities(design, fidelity="reference", oversample=2 * ref.oversample)
    assert finer.oversample == 2 * ref.oversample and finer.relief == ref.relief and finer.label == "custom"
    (same,) = plan_fidelities(design, fidelity="reference", oversample=1)
    assert same.oversample == ref.oversample and same.relief == ref.relief
    (thinner,) = plan_fidelities(design, fidelity="reference", max_slice_m=ref.relief.max_slice_m / 2)
    assert thinner.oversample == ref.oversample and thinner.relief.max_slice_m == ref.relief.max_slice_m / 2


def test_evaluate_runs_each_fidelity_with_its_progress(trained):
    hooks = Recorder()
    ev = evaluate_design(trained[0], samples=8, device="cpu", hooks=hooks)
    assert [f.label for f in ev.fidelities] == ["design", "reference"]
    assert [e for e in hooks.events if e[0] != "update"] == [
        ("fidelity", "design"), ("progress", "simulating test split (design)"),
        ("fidelity", "reference"), ("progress", "simulating test split (reference)")]
    direct = simulate_design(ev.design, samples=8, fidelity=ev.fidelities[1], device="cpu")
    assert ev.results[1][ev.primary] == direct[ev.primary]
    assert ev.reference_gap() == pytest.approx(ev.results[1][ev.primary] - ev.metrics[ev.primary])
    assert not ev.comparable and ev.reported_gaps() is None  # 8 samples: not the design's own split
    own = evaluate_design(ev.design, fidelity="design", device="cpu")
    assert own.comparable and own.reported_gaps() == [pytest.approx(0.0, abs=1e-12)]


def test_verify_and_record_records_the_verdict_in_the_sheet(trained, tmp_path, monkeypatch):
    design_dir, export_dir = trained
    hooks = Recorder()
    quick = verify_and_record(design_dir, export_dir, samples=8, probe_samples=4, device="cpu", hooks=hooks)
    assert not quick.recorded and quick.record_error is None  # a quick check is not recorded
    assert read_fab_sheet(export_dir).get("verification") is None
    assert hooks.events[0] == ("progress", "re-simulating the printed object") and ("probe",) in hooks.events
    assert hooks.events[-1] == ("result", "VerifyReport")
    import quaton_fab.analysis.verify as verify_module
    import quaton_fab.fab.sheet as sheet_module

    reads = []
    for module in (verify_module, sheet_module):
        original = module.read_fab_sheet
        monkeypatch.setattr(module, "read_fab_sheet", lambda path, _read=original: reads.append(path) or _read(path))
    full = verify_and_record(design_dir, export_dir, probe_samples=None, device="cpu")
    assert len(reads) == 1, reads  # the fab sheet is read once per verify, recording included
    monkeypatch.undo()
    assert full.recorded and full.report.files_ok, full.report.problems  # the model gap may fail; files match
    assert read_fab_sheet(export_dir)["verification"] == json.loads(json.dumps(full.report.to_dict()))


def test_a_sheet_that_cannot_be_written_keeps_the_verdict(trained, monkeypatch):
    import quaton_fab.analysis.record as record

    def read_only(export_dir, verification, sheet=None):
        raise PermissionError(13, "Permission denied", str(export_dir / "fab_sheet.json"))

    monkeypatch.setattr(record, "record_verification", read_only)
    outcome = verify_and_record(trained[0], trained[1], probe_samples=None, device="cpu")
    assert not outcome.recorded and isinstance(outcome.record_error, PermissionError)
    assert outcome.report.files_ok


def test_crosscheck_and_record_writes_the_figure_and_the_entry(trained, tmp_path):
    import shutil

    design_dir, export_dir = trained
    export = tmp_path / "export"
    shutil.copytree(export_dir, export)
    hooks = Recorder()
    out = crosscheck_and_record(design_dir, export, patches=1, patch_pixels=2, harmonics=3, device="cpu",
                                command="quaton-fab crosscheck x y", hooks=hooks)
    assert hooks.events[0] == ("progress", "rigorous solves (RCWA)") and hooks.events[-1][0] == "result"
    assert out.figure == export / "crosscheck.png" and out.figure.read_bytes()[:4] == b"\x89PNG"
    assert read_fab_sheet(export)["crosscheck"]["command"] == "quaton-fab crosscheck x y"


def test_tolerance_study_writes_its_files_and_records_them(trained, tmp_path):
    import shutil

    design_dir, export_dir = trained
    export = tmp_path / "export"
    shutil.copytree(export_dir, export)
    pitch = Design.load(design_dir).geometry.pitch_m
    hooks = Recorder()
    study = tolerance_study(design_dir, export_dir=export, errors=["shift", "blur"], trials=2, samples=8,
                            magnitudes={"shift": [parse_magnitude("shift", "1px", pitch_m=pitch)]},
                            combined_factors=[1], fidelity="design", out=tmp_path / "tol", device="cpu",
                            hooks=hooks)
    assert [(r["error"], r["trials"]) for r in study.run.rows] == [
        ("shift", 2), ("blur", 1), ("blur", 1), ("blur", 1), ("all", 2)]  # blur: its three default magnitudes
    assert study.files == {k: tmp_path / "tol" / f"tolerance.{k}" for k in ("json", "md", "png")}
    assert all(p.is_file() for p in study.files.values()) and study.recorded and study.prints == 8
    assert json.loads(study.files["json"].read_text())["fidelity"] == "design"
    assert [r["error"] for r in read_fab_sheet(export)["tolerance"]["rows"]] == ["shift", "blur", "all"]
    assert [e[0] for e in hooks.events if e[0] != "update"] == ["fidelity", "progress", "result", "written"]
    assert not [p for p in (tmp_path / "tol").iterdir() if p.name.startswith(".")]
    with pytest.raises(ToleranceStudyError, match="already exists; use --force"):
        tolerance_study(design_dir, errors=["blur"], out=tmp_path / "tol")


def test_tolerance_study_refusals_and_defaults():
    assert select_errors(None) == list(ERRORS) and select_errors([" shift", ""]) == ["shift"]
    with pytest.raises(ToleranceStudyError, match="--errors: unknown error 'warp'"):
        select_errors(["warp"])
    assert default_magnitudes("blur") == [ERRORS["blur"].default * f for f in (0.5, 1.0, 2.0)]


def test_tolerance_study_fidelity_refusals(trained, tmp_path):
    design_dir, _ = trained
    with pytest.raises(ToleranceStudyError, match="--oversample refines the reference fidelity"):
        tolerance_study(design_dir, fidelity="design", oversample=4, out=tmp_path / "t")
    config = preset("tiny", neurons=12, layers=1, spacing_m=10e-6, epochs=1, train_samples=16, val_samples=16,
                    test_samples=16, batch_size=16, device="cpu", model="thin")
    run_training(config, tmp_path / "thin", figures=False)
    with pytest.raises(ToleranceStudyError, match="trained with thin masks"):
        tolerance_study(tmp_path / "thin", fidelity="design", out=tmp_path / "t")
    assert not (tmp_path / "t").exists()


def test_hooks_default_to_silence(trained):
    assert isinstance(AnalysisHooks().progress("x"), contextlib.AbstractContextManager)


def test_result_files_are_written_as_one_set(tmp_path):
    from quaton_fab.fileio import write_set

    keep = tmp_path / "a.json"
    keep.write_text("old")

    def broken(path):
        raise OSError(28, "No space left on device", str(path))

    with pytest.raises(OSError) as info:
        write_set({keep: lambda p: p.write_text("new"), tmp_path / "b.png": broken}, prefix=".t-")
    assert info.value.filename == str(tmp_path / "b.png")  # the file asked for, not its staged twin
    assert keep.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]
    assert write_set({keep: lambda p: p.write_text("new")}) == [keep] and keep.read_text() == "new"
