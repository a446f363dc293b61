"""The command-line app end to end: train → evaluate → inspect → export → verify, and its error handling."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from quaton_fab.cli.app import app

runner = CliRunner()
TINY = ["--preset", "tiny", "--neurons", "20", "--spacing", "10um", "--epochs", "1", "--train-samples", "96",
        "--val-samples", "32", "--test-samples", "40"]


def run(*args: str):
    return runner.invoke(app, list(args))


def assert_one_line_error(result, *needles: str) -> None:
    assert result.exit_code == 2, result.output
    text = result.stderr.strip() if result.stderr else result.output.strip()
    assert "Traceback" not in result.output
    assert len(text.splitlines()) == 1, text
    for needle in needles:
        assert needle in text, text


@pytest.fixture(scope="module")
def design_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run") / "tiny"
    result = run("train", *TINY, "--out", str(out))
    assert result.exit_code == 0, result.output
    return out


def test_help_and_version():
    assert run("--help").exit_code == 0
    result = run("--version")
    assert result.exit_code == 0 and "quaton-fab" in result.output


def test_train_writes_a_complete_design(design_dir):
    for name in ("design.json", "masks.npz", "metrics.json", "checkpoint.pt", "figures/masks.png",
                 "figures/training.png", "figures/confusion.png", "figures/examples.png"):
        assert (design_dir / name).is_file(), name
    meta = json.loads((design_dir / "design.json").read_text())
    assert meta["metrics"]["test"]["samples"] == 40


@pytest.mark.parametrize("value", ["5 parsecs", "-3um", "nan", ""])
def test_bad_lengths_are_one_line_errors(tmp_path, value):
    result = run("train", *TINY, "--pitch", value, "--out", str(tmp_path / "x"))
    assert_one_line_error(result, "--pitch")
    assert not (tmp_path / "x").exists()


def test_train_refuses_non_empty_run_dir_and_missing_resume(design_dir, tmp_path):
    assert_one_line_error(run("train", *TINY, "--out", str(design_dir)), "not empty")
    assert_one_line_error(run("train", "--out", str(tmp_path / "none"), "--resume"), "nothing to resume")
    assert_one_line_error(run("train", "--preset", "nope", "--out", str(tmp_path / "p")), "unknown preset")


def test_evaluate_reproduces_the_reported_metric(design_dir):
    result = run("evaluate", str(design_dir), "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert "gap +0.00e+00" in result.output


def test_inspect_and_materials(design_dir, tmp_path):
    result = run("inspect", str(design_dir), "--out", str(tmp_path / "figs"))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "figs" / "masks.png").is_file()
    result = run("materials", "--wavelength", "633nm")
    assert result.exit_code == 0 and "IP-Dip" in result.output
    assert_one_line_error(run("materials", "--wavelength", "blue"), "--wavelength")


def test_export_then_verify_round_trip(design_dir, tmp_path):
    out = tmp_path / "export"
    # exact heights (grayscale profile: no slicing grid, so `all` leaves GWL out): the files are the design
    result = run("export", str(design_dir), "--format", "all", "--material", "ip-dip", "--printer", "grayscale",
                 "--out", str(out), "--stack")
    assert result.exit_code == 0, result.output
    names = {p.name for p in out.iterdir()}
    assert {"design.gds", "design.oas", "mask_1.stl", "mask_2.stl", "stack.stl", "mask_1_height.png",
            "mask_2_height.tif",
            "fab_sheet.json", "fab_sheet.md"} <= names
    assert not [n for n in names if n.startswith(".")]
    # the round trip of the files; the convergence probe is tested in test_reference_fidelity.py
    result = run("verify", str(design_dir), str(out), "--device", "cpu", "--no-probe")
    assert result.exit_code == 0, result.output
    assert "verified" in result.output
    assert "total gap" in result.output and "+0.0000" in result.output


def test_export_bad_inputs_leave_nothing_behind(design_dir, tmp_path):
    out = tmp_path / "e"
    assert_one_line_error(run("export", str(design_dir), "--material", "unobtainium", "--out", str(out)), "unobtainium")
    assert_one_line_error(run("export", str(design_dir), "--material", "n=1.0", "--out", str(out)))
    assert_one_line_error(run("export", str(design_dir), "--z-step", "-3nm", "--out", str(out)), "--z-step")
    assert_one_line_error(run("export", str(tmp_path / "missing"), "--out", str(out)), "does not exist")
    assert not out.exists() or not any(out.iterdir())
    assert run("export", str(design_dir), "--format", "gds", "--out", str(out)).exit_code == 0
    before = (out / "design.gds").read_bytes()
    assert_one_line_error(run("export", str(design_dir), "--format", "gds", "--out", str(out)), "already exists")
    assert (out / "design.gds").read_bytes() == before
    assert run("export", str(design_dir), "--format", "gds", "--out", str(out), "--force").exit_code == 0
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]


def test_ctrl_c_saves_a_checkpoint_that_resume_continues(tmp_path):
    out = tmp_path / "run"
    args = [sys.executable, "-m", "quaton_fab.cli", "train", "--preset", "tiny", "--neurons", "20", "--spacing",
            "10um", "--epochs", "12", "--train-samples", "256", "--out", str(out)]
    env = {**os.environ, "COLUMNS": "120"}
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)
    deadline = time.time() + 60
    while not (out / "checkpoint.pt").exists() and time.time() < deadline:  # first epoch done
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, output
    assert "--resume" in output and "Traceback" not in output
    assert not (out / "design.json").exists()
    assert_one_line_error(run("train", "--out", str(out), "--resume", "--epochs", "2"), "--resume")
    result = run("train", "--out", str(out), "--resume")
    assert result.exit_code == 0, result.output
    assert "Resuming" in result.output and (out / "design.json").is_file()


def test_encoding_option_is_recorded_and_qpi_needs_phase_objects(tmp_path):
    out = tmp_path / "amplitude"
    assert run("train", *TINY, "--encoding", "amplitude", "--out", str(out)).exit_code == 0
    encoding = json.loads((out / "design.json").read_text())["encoding"]
    assert encoding["mode"] == "amplitude" and encoding["background"] == "dark"
    small = ["--train-samples", "16", "--val-samples", "8", "--test-samples", "8", "--neurons", "16", "--layers", "1"]
    assert_one_line_error(run("train", "--task", "qpi", "--dataset", "synthetic", *small, "--out",
                              str(tmp_path / "qpi")), "--encoding phase")


def test_mask_init_option_starts_flat_and_is_recorded(tmp_path):
    out = tmp_path / "flat"
    result = run("train", *TINY, "--mask-init", "flat", "--epochs", "1", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert json.loads((out / "design.json").read_text())["training"]["mask_init"] == "flat"


def test_level_set_options(tmp_path):
    out = tmp_path / "range"
    assert run("train", *TINY, "--levels", "4", "--level-range", "0,1.99pi", "--out", str(out)).exit_code == 0
    levels = json.loads((out / "design.json").read_text())["levels"]
    assert levels["kind"] == "range" and levels["phases_rad"][-1] == pytest.approx(1.99 * 3.141592653589793)
    out = tmp_path / "list"
    assert run("train", *TINY, "--level-phases", "0,0.5pi,pi", "--out", str(out)).exit_code == 0
    assert len(json.loads((out / "design.json").read_text())["levels"]["phases_rad"]) == 3
    assert_one_line_error(run("train", *TINY, "--level-range", "pi,0", "--out", str(tmp_path / "x")), "--level-range")
    assert_one_line_error(run("train", *TINY, "--level-phases", "0,1 turn", "--out", str(tmp_path / "y")),
                          "--level-phases")
