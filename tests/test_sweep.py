"""Sweeps: spec expansion, local and Ray runs of the same cells, resume, and the report."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from quaton_fab.cli.app import app
from quaton_fab.sweep import parse_spec, read_spec, run_sweep, summarize, write_report
from quaton_fab.sweep.cell import read_cell_record, run_cell
from quaton_fab.sweep.report import ranking
from quaton_fab.sweep.runner import SweepError, prepare_sweep_dir
from quaton_fab.sweep.spec import SpecError
from quaton_fab.training import Trainer, TrainingInterrupted

TINY_SET = {
    "train_samples": 32, "val_samples": 16, "test_samples": 16, "epochs": 1, "neurons": 12,
    "spacing": "8um", "batch_size": 16,
}

TOML = """
name = "t"
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
method = ["fp", "ste", "psq-lt"]
levels = [2, 4]
seed = [0]
[grid.only]
fp = { levels = [4] }
"""

YAML = """
name: t
eval_samples: 16
grid:
  - label: g
    preset: tiny
    set: {train_samples: 32, val_samples: 16, test_samples: 16, epochs: 1, neurons: 12, spacing: 8um,
          batch_size: 16}
    vary: {method: [fp, ste, psq-lt], levels: [2, 4], seed: [0]}
    only: {fp: {levels: [4]}}
"""


def _spec(tmp_path: Path, text: str = TOML, name: str = "s.toml"):
    path = tmp_path / name
    path.write_text(text)
    return read_spec(path)


def test_spec_expands_grid_with_only_rule(tmp_path):
    spec = _spec(tmp_path)
    keys = [c.key for c in spec.cells]
    assert keys == [
        "g/method=fp,levels=4,seed=0",
        "g/method=ste,levels=2,seed=0", "g/method=ste,levels=4,seed=0",
        "g/method=psq-lt,levels=2,seed=0", "g/method=psq-lt,levels=4,seed=0",
    ]
    cfg = spec.cells[1].config()
    assert cfg.spacing_m == pytest.approx(8e-6) and cfg.method == "ste" and cfg.levels == 2 and cfg.neurons == 12


def test_yaml_and_toml_give_the_same_cells(tmp_path):
    a = _spec(tmp_path, TOML, "a.toml")
    b = _spec(tmp_path, YAML, "b.yaml")
    assert [c.to_dict() for c in a.cells] == [c.to_dict() for c in b.cells]
    assert [c.fingerprint() for c in a.cells] == [c.fingerprint() for c in b.cells]


@pytest.mark.parametrize(
    "grid, message",
    [
        ({"preset": "tiny", "set": {"bogus": 1}}, "unknown training option 'bogus'"),
        ({"preset": "tiny", "set": {"threads": 2}}, "set by the sweep itself"),
        ({"preset": "nope"}, "unknown preset 'nope'"),
        ({"preset": "tiny", "set": {"spacing": 5}}, "give spacing with a unit"),
        ({"preset": "tiny", "set": {"spacing": "5 parsecs"}}, "spacing"),
        ({"preset": "tiny", "vary": {"levels": []}}, "vary.levels must be a non-empty list"),
        ({"preset": "tiny", "vary": {"levels": [1]}}, "cell"),
        ({"preset": "tiny", "vary": {"levels": [2]}, "only": {"2": {"seed": [0]}}}, "'seed' is not a varied option"),
    ],
)
def test_bad_specs_name_the_bad_entry(grid, message):
    with pytest.raises(SpecError, match=message):
        parse_spec({"grid": [grid]})


def test_bad_top_level_and_duplicates():
    with pytest.raises(SpecError, match="needs at least one"):
        parse_spec({"name": "x"})
    with pytest.raises(SpecError, match="unknown top-level key 'grids'"):
        parse_spec({"grids": []})
    with pytest.raises(SpecError, match="two grids have this label"):
        parse_spec({"grid": [{"label": "a", "preset": "tiny"}, {"label": "a", "preset": "tiny"}]})
    with pytest.raises(SpecError, match="evaluate 'printed'"):
        parse_spec({"grid": [{"preset": "tiny"}], "evaluate": "printed"})


def test_local_sweep_runs_skips_and_reports(tmp_path):
    spec = _spec(tmp_path)
    out = tmp_path / "sw"
    progress = run_sweep(spec, out, workers=2)
    assert [s.state for s in progress.states] == ["done"] * 5
    rec = read_cell_record(out / "g" / "method=ste,levels=2,seed=0")
    assert rec["status"] == "done" and rec["primary"] == "accuracy"
    assert set(rec["metrics"]) == {"training", "reference"}
    assert rec["metrics"]["reference"]["samples"] == 16
    # An ordinary run directory: design files and a completed checkpoint.
    for name in ("design.json", "masks.npz", "metrics.json", "checkpoint.pt"):
        assert (out / "g" / "method=ste,levels=2,seed=0" / name).is_file()
    assert "training_unquantized" in read_cell_record(out / "g" / "method=fp,levels=4,seed=0")["metrics"]
    # Running again does not train anything again.
    design = out / "g" / "method=ste,levels=2,seed=0" / "design.json"
    mtime = design.stat().st_mtime_ns
    again = run_sweep(spec, out, workers=1)
    assert all(s.state == "done" and s.skipped for s in again.states)
    assert design.stat().st_mtime_ns == mtime
    written = write_report(out)
    md = written["md"].read_text()
    assert "| STE |" in md and "| PSQ-LT |" in md and "2 levels" in md
    twin = json.loads(written["json"].read_text())
    row = next(r for r in twin["grids"]["g"]["rows"] if r["params"] == {"method": "ste", "levels": 2})
    assert row["metrics"]["reference"]["mean"] == pytest.approx(rec["metrics"]["reference"]["accuracy"])
    assert all(p.is_file() for p in written["figures"]) and len(written["figures"]) == 2
    # the study page links each cell; once a cell is exported, its design report
    page = written["html"].read_text()
    assert page.count('class="cell-dir"') == 5 and 'class="cell-report"' not in page
    from quaton_fab.design import Design
    from quaton_fab.fab.export import ExportOptions, export_design

    cell = out / "g" / "method=ste,levels=2,seed=0"
    export_design(Design.load(cell), cell / "export", ExportOptions(formats=("gds",)))
    page = write_report(out, force=True)["html"].read_text()
    assert page.count('class="cell-report"') == 1
    assert 'href="g/method=ste,levels=2,seed=0/export/report.html"' in page


def test_interrupted_cell_resumes_to_the_uninterrupted_result(tmp_path):
    text = TOML.replace('method = ["fp", "ste", "psq-lt"]', 'method = ["psq-lt"]').replace(
        "levels = [2, 4]", "levels = [4]").replace("epochs = 1", "epochs = 2")
    spec = _spec(tmp_path, text)
    (cell,) = spec.cells
    straight = tmp_path / "straight"
    run_sweep(spec, straight, workers=1)

    resumed = tmp_path / "resumed"
    prepare_sweep_dir(spec, resumed)
    trainer = Trainer(cell.config(), resumed / cell.grid / cell.name)

    class StopAfterFirstEpoch:
        def on_epoch_start(self, *a): pass
        def on_step(self, epoch, step, loss, status):
            if epoch == 1:
                trainer.request_stop()
        def on_eval(self, *a): pass
        def on_epoch_end(self, *a): pass

    trainer.callbacks = StopAfterFirstEpoch()
    with pytest.raises(TrainingInterrupted):
        trainer.fit()
    progress = run_sweep(spec, resumed, workers=1)
    assert progress.states[0].state == "done"
    rec = read_cell_record(resumed / cell.grid / cell.name)
    assert rec["resumed"] is True
    ref = read_cell_record(straight / cell.grid / cell.name)
    assert rec["metrics"] == ref["metrics"]


def test_cell_folder_of_another_configuration_is_refused(tmp_path):
    spec = _spec(tmp_path)
    out = tmp_path / "sw"
    cell = spec.cells[1]
    run_cell(cell.to_dict(), str(out), eval_samples=16)
    changed = cell.to_dict()
    changed["overrides"] = dict(changed["overrides"], lr=0.123)
    rec = run_cell(changed, str(out), eval_samples=16)
    assert rec["status"] == "failed" and "another configuration" in rec["error"]


def test_ray_runs_the_same_cells_with_the_same_results(tmp_path):
    pytest.importorskip("ray", reason="the Ray path needs the optional extra quaton-fab[ray]")
    text = TOML.replace('method = ["fp", "ste", "psq-lt"]', 'method = ["ste", "psq-lt"]').replace(
        "levels = [2, 4]", "levels = [4]")
    spec = _spec(tmp_path, text)
    local = run_sweep(spec, tmp_path / "local", workers=2)
    on_ray = run_sweep(spec, tmp_path / "ray", ray_address="local", workers=2)
    assert [s.state for s in on_ray.states] == ["done", "done"]
    for a, b in zip(local.states, on_ray.states):
        assert a.cell.key == b.cell.key
        assert a.record["metrics"] == b.record["metrics"]
        assert a.record["fingerprint"] == b.record["fingerprint"]


def _record(grid, method, levels, seed, value, primary="accuracy"):
    return {
        "status": "done", "primary": primary, "key": f"{grid}/{method}{levels}{seed}",
        "cell": {"grid": grid, "params": {"method": method, "levels": levels, "seed": seed}},
        "metrics": {"reference": {primary: value}, "training": {primary: value + 0.01}},
        "train_time_s": 10.0,
    }


def test_summary_statistics_and_ranking_by_hand():
    recs = [_record("g", "ste", 2, s, v) for s, v in enumerate([0.5, 0.6, 0.7])]
    recs += [_record("g", "psq", 2, s, v) for s, v in enumerate([0.8, 0.8, 0.8])]
    recs += [_record("g", "ste", 4, s, 0.9) for s in range(3)]
    recs += [_record("g", "psq", 4, s, 0.7) for s in range(3)]
    recs.append({"status": "failed", "key": "g/x", "error": "boom"})
    summary = summarize(recs)
    grid = summary["grids"]["g"]
    ste2 = next(r for r in grid["rows"] if r["params"] == {"method": "ste", "levels": 2})
    assert ste2["metrics"]["reference"]["mean"] == pytest.approx(0.6)
    assert ste2["metrics"]["reference"]["std"] == pytest.approx(0.1)  # sample std (ddof = 1)
    assert ste2["seeds"] == [0, 1, 2]
    assert [r["params"]["method"] for r in grid["rows"]] == ["ste", "ste", "psq", "psq"]  # study order
    rank = ranking(grid)
    assert [(m, r, w) for m, r, w in rank] == [("ste", 1.5, 1), ("psq", 1.5, 1)]
    assert summary["failed"] == [{"key": "g/x", "status": "failed", "error": "boom"}]
    assert math.isclose(summary["done"], 12)


def test_summary_groups_a_varied_table_by_its_text():
    """A grid varying a table (quantizer = { psq-lt = { kappa_lr = … } }) tabulates one row per table, by text."""
    recs = []
    for lr, values in ((0.003, [0.4, 0.5]), (0.03, [0.6, 0.8])):
        for seed, v in enumerate(values):
            rec = _record("k", "psq-lt", 4, seed, v)
            rec["key"] = f"k/{lr}{seed}"
            rec["cell"]["params"] = {"quantizer": {"psq-lt": {"kappa_lr": lr}}, "levels": 4, "seed": seed}
            recs.append(rec)
    rows = summarize(recs)["grids"]["k"]["rows"]
    by_text = {r["params"]["quantizer"]: r["metrics"]["reference"]["mean"] for r in rows}
    assert by_text == {"psq-lt.kappa_lr=0.003": pytest.approx(0.45), "psq-lt.kappa_lr=0.03": pytest.approx(0.7)}
    bad = _record("k", "psq-lt", 4, 0, 0.5)
    bad["cell"]["params"]["quantizer"] = {"psq-lt": {"kappa_lr": [0.1, 0.2]}}  # a list inside: not plain
    with pytest.raises(SweepError, match="not a plain value"):
        summarize([bad])


def test_cli_sweep_dry_run_report_and_errors(tmp_path):
    runner = CliRunner()
    spec = tmp_path / "s.toml"
    spec.write_text(TOML)
    res = runner.invoke(app, ["sweep", str(spec), "--out", str(tmp_path / "sw"), "--dry-run"])
    assert res.exit_code == 0, res.output
    assert "g/method=psq-lt,levels=4,seed=0" in res.output and "5 cells" in res.output
    res = runner.invoke(app, ["sweep", str(spec), "--out", str(tmp_path / "sw"), "--workers", "1"])
    assert res.exit_code == 0, res.output
    assert "5 of 5 cells done" in res.output
    res = runner.invoke(app, ["report", str(tmp_path / "sw"), "--out", str(tmp_path / "r" / "RESULTS.md")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "r" / "RESULTS.json").is_file() and (tmp_path / "r" / "RESULTS_figures").is_dir()
    assert (tmp_path / "r" / "RESULTS.html").is_file() and "study page" in res.output
    bad = tmp_path / "bad.toml"
    bad.write_text("[[grid]]\npreset = 'tiny'\n[grid.set]\nlevels = 1\n")
    res = runner.invoke(app, ["sweep", str(bad)])
    assert res.exit_code == 2 and "error:" in res.output and "Traceback" not in res.output
    res = runner.invoke(app, ["report", str(tmp_path)])
    assert res.exit_code == 2 and "not a sweep folder" in res.output
    res = runner.invoke(app, ["sweep", str(spec), "--out", str(tmp_path / "sw2"), "--workers", "0"])
    assert res.exit_code == 2 and "workers" in res.output
    os.makedirs(tmp_path / "full")
    (tmp_path / "full" / "x").write_text("x")
    res = runner.invoke(app, ["sweep", str(spec), "--out", str(tmp_path / "full")])
    assert res.exit_code == 2 and "holds no sweep.json" in res.output
