"""``sweep --device``: cells train and are evaluated on the named device; a bad device is one line, exit 2."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from quaton_fab.cli.app import app
from quaton_fab.sweep import parse_spec, run_sweep
from quaton_fab.sweep.cell import read_cell_record, run_cell
from quaton_fab.sweep.runner import SweepError
from quaton_fab.simulate import DeviceError

TOML = """
name = "d"
eval_samples = 16
[[grid]]
label = "g"
preset = "tiny"
[grid.set]
train_samples = 32
val_samples = 16
test_samples = 16
epochs = 1
neurons = 12
spacing = "8um"
batch_size = 16
[grid.vary]
method = ["psq-lt"]
levels = [4]
seed = [0]
"""


def _spec(tmp_path):
    import tomllib

    return parse_spec(tomllib.loads(TOML), TOML)


def test_cell_trains_and_evaluates_on_the_named_device(tmp_path):
    spec = _spec(tmp_path)
    cell = spec.cells[0]
    record = run_cell(cell.to_dict(), str(tmp_path / "sw"), eval_samples=16, device="cpu")
    assert record["status"] == "done", record.get("error")
    assert record["device"] == "cpu"
    design = json.loads((tmp_path / "sw" / cell.grid / cell.name / "design.json").read_text())
    assert design["training"]["device"] == "cpu"
    # the device is not part of the cell: the same cell is done whatever device a later run names
    again = run_cell(cell.to_dict(), str(tmp_path / "sw"), eval_samples=16, device="auto")
    assert again.get("skipped") and again["fingerprint"] == record["fingerprint"]


def test_run_sweep_checks_the_device_before_anything_is_written(tmp_path):
    spec = _spec(tmp_path)
    with pytest.raises(DeviceError, match="gpu0"):
        run_sweep(spec, tmp_path / "a", workers=1, device="gpu0")
    assert not (tmp_path / "a").exists()
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="no CUDA GPU"):
            run_sweep(spec, tmp_path / "b", workers=1, device="cuda")
        assert not (tmp_path / "b").exists()
    else:  # pragma: no cover - machines with a GPU
        with pytest.raises(SweepError, match="--ray"):
            run_sweep(spec, tmp_path / "b", workers=1, device="cuda", ray_address="local")


def test_cli_sweep_device_cpu_and_bad_device(tmp_path):
    runner = CliRunner()
    spec = tmp_path / "s.toml"
    spec.write_text(TOML)
    res = runner.invoke(app, ["sweep", str(spec), "--out", str(tmp_path / "sw"), "--workers", "1", "--device", "cpu"])
    assert res.exit_code == 0, res.output
    assert "device cpu" in res.output and "1 of 1 cells done" in res.output
    rec = read_cell_record(tmp_path / "sw" / "g" / "method=psq-lt,levels=4,seed=0")
    assert rec["device"] == "cpu"
    res = runner.invoke(app, ["sweep", str(spec), "--out", str(tmp_path / "sw2"), "--device", "tpu"])
    assert res.exit_code == 2 and "tpu" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "sw2").exists()


def test_a_worker_interrupted_before_a_cell_starts_stops_it_at_its_first_step(tmp_path, monkeypatch):
    # Ctrl-C reaches every worker once; a cell the worker picks up afterwards must stop too, not run to the end
    # (Trainer.fit clears stop requests made before it starts).
    import quaton_fab.sweep.cell as cell_module

    monkeypatch.setattr(cell_module, "_interrupted", True)
    cell = _spec(tmp_path).cells[0]
    record = run_cell(cell.to_dict(), str(tmp_path / "sw"), eval_samples=16, device="cpu")
    assert record["status"] == "interrupted", record
    assert "epoch 1, step 0" in record["error"]
    assert (tmp_path / "sw" / cell.grid / cell.name / "checkpoint.pt").is_file()
