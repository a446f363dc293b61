"""Issue 22, groups 1-3 and 6 for sweeps and reports: nothing outside the sweep folder is written or deleted, a
finished cell's record survives a refusal, ``report`` is confined, atomic and needs ``--force``, and malformed
specs or sweep folders are one red line."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from quaton_fab.cli.app import app
from quaton_fab.sweep import parse_spec, read_spec, write_report
from quaton_fab.sweep.cell import CELL_FILE, CELL_SCHEMA, read_cell_record, run_cell
from quaton_fab.sweep.runner import SWEEP_FILE, SweepError, load_records, prepare_sweep_dir
from quaton_fab.sweep.spec import MAX_CELLS, SpecError
from test_hardening import one_line_error  # the CLI helpers shared by the hardening tests

runner = CliRunner()

SET = ('[grid.set]\nepochs = 1\ntrain_samples = 32\nval_samples = 16\ntest_samples = 16\nneurons = 12\n'
       'spacing = "8um"\nbatch_size = 16\n')


def spec_text(label: str = "g", extra: str = "", vary: str = "seed = [0]") -> str:
    return f'name = "t"\n[[grid]]\nlabel = "{label}"\npreset = "tiny"\n{SET}{extra}[grid.vary]\n{vary}\n'


def write_spec(tmp_path: Path, text: str | bytes, name: str = "s.toml") -> Path:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def tree(folder: Path) -> dict[str, bytes | str]:
    """Every entry under ``folder`` (links as their target text), to compare before/after."""
    out: dict[str, bytes | str] = {}
    for p in sorted(folder.rglob("*")):
        key = str(p.relative_to(folder))
        out[key] = "link:" + os.readlink(p) if p.is_symlink() else (p.read_bytes() if p.is_file() else "dir")
    return out


# ------------------------------------------------------------------------------ 1. sweep stays in its folder
@pytest.mark.parametrize("label", ["..", ".", ".hidden", ""])
def test_group1_labels_that_leave_the_sweep_folder_are_refused(tmp_path, label):
    (tmp_path / "cell").mkdir()
    (tmp_path / "cell" / "important.txt").write_text("x")
    spec = write_spec(tmp_path, spec_text(label))
    before = tree(tmp_path)
    result = runner.invoke(app, ["sweep", str(spec), "--out", str(tmp_path / "sw")])
    one_line_error(result, "label")
    assert tree(tmp_path) == before


def _cell(tmp_path: Path) -> dict:
    return read_spec(write_spec(tmp_path, spec_text())).cells[0].to_dict()


def test_group1_a_cell_folder_that_is_a_link_is_not_followed(tmp_path):
    target = tmp_path / "elsewhere"
    target.mkdir()
    (target / "important.txt").write_text("x")
    sweep = tmp_path / "sw"
    (sweep / "g").mkdir(parents=True)
    cell = _cell(tmp_path)
    (sweep / "g" / cell["name"]).symlink_to(target)
    before = tree(tmp_path)
    record = run_cell(cell, str(sweep))
    assert record["status"] == "failed" and "symbolic link" in record["error"]
    assert tree(tmp_path) == before
    (sweep / "g" / cell["name"]).unlink()
    (sweep / "g").rmdir()
    (sweep / "g").symlink_to(target)  # a link one level up is refused too
    assert "symbolic link" in run_cell(cell, str(sweep))["error"]
    assert (target / "important.txt").read_text() == "x" and sorted(os.listdir(target)) == ["important.txt"]


def test_group1_a_user_file_in_a_cell_folder_is_never_deleted(tmp_path):
    sweep = tmp_path / "sw"
    cell = _cell(tmp_path)
    folder = sweep / "g" / cell["name"]
    folder.mkdir(parents=True)
    (folder / "important.txt").write_text("x")
    (folder / "status.json").write_text("{}")
    before = tree(tmp_path)
    record = run_cell(cell, str(sweep))
    assert record["status"] == "failed"
    assert "important.txt" in record["error"] and "not written by quaton-fab" in record["error"]
    assert tree(tmp_path) == before  # nothing deleted, no failure record written into the user's folder


def test_group1_a_refusal_never_overwrites_a_finished_record(tmp_path):
    sweep = tmp_path / "sw"
    cell = _cell(tmp_path)
    folder = sweep / "g" / cell["name"]
    folder.mkdir(parents=True)
    done = {"schema": CELL_SCHEMA, "version": 1, "status": "done", "fingerprint": "0123456789abcdef",
            "cell": cell, "key": f"g/{cell['name']}", "metrics": {}}
    (folder / CELL_FILE).write_text(json.dumps(done))
    before = tree(tmp_path)
    record = run_cell(cell, str(sweep))  # another configuration: refused
    assert record["status"] == "failed" and "another configuration" in record["error"]
    assert tree(tmp_path) == before
    assert read_cell_record(folder)["status"] == "done"


def test_group6_bad_workers_or_missing_ray_create_no_folder(tmp_path):
    spec = write_spec(tmp_path, spec_text())
    out = tmp_path / "sw"
    one_line_error(runner.invoke(app, ["sweep", str(spec), "--out", str(out), "--workers", "0"]), "workers")
    assert not out.exists()


# ------------------------------------------------------------------------------ 3/4/6. malformed specs
@pytest.mark.parametrize("text, needle", [
    (b"name = \"\xff\xfe\"\n", "UTF-8"),
    (spec_text().replace("[grid.set]\n", "set = [1, 2]\n[grid.unused]\n"), "grid 1"),
    ('evaluate = 5\n' + spec_text(), "evaluate"),
    (spec_text(extra='level_phases_rad = "abc"\n').replace("[grid.vary]", "[grid.vary]"), "abc"),
    (spec_text(vary="seed = [-1]"), "seed"),
    ('eval_samples = true\n' + spec_text(), "eval_samples"),
    ("[" * 100_000, "nests deeper"),
    (spec_text(vary="seed = [" + ", ".join(map(str, range(200))) + "]\nlr = ["
               + ", ".join(str(0.001 * (i + 1)) for i in range(200)) + "]"), f"at most {MAX_CELLS}"),
])
def test_group3_bad_toml_specs_are_one_line(tmp_path, text, needle):
    if isinstance(text, str) and 'level_phases_rad = "abc"' in text:
        text = text.replace('level_phases_rad = "abc"\n', "")
        text = text.replace("[grid.set]\n", '[grid.set]\nlevel_phases_rad = "abc"\n')
    spec = write_spec(tmp_path, text)
    one_line_error(runner.invoke(app, ["sweep", str(spec), "--dry-run", "--out", str(tmp_path / "sw")]), needle)
    assert not (tmp_path / "sw").exists()


@pytest.mark.parametrize("text, needle", [
    ('a: &a ["x","x","x","x","x","x","x","x","x"]\n' + "".join(
        f'{chr(98 + i)}: &{chr(98 + i)} [' + ",".join([f"*{chr(97 + i)}"] * 9) + "]\n" for i in range(9)),
     "aliases"),
    ("name: a\nname: b\ngrid: []\n", "appears twice"),
    ("name: t\ngrid:\n  - label: g\n    preset: tiny\n    vary: {seed: [2024-01-01]}\n", "timestamp"),
])
def test_group4_yaml_bombs_duplicates_and_dates_are_refused(tmp_path, text, needle):
    spec = write_spec(tmp_path, text, "s.yaml")
    one_line_error(runner.invoke(app, ["sweep", str(spec), "--dry-run"]), needle)


def test_group4_a_million_cell_grid_is_refused_quickly():
    grid = {"label": "g", "preset": "tiny", "vary": {"seed": list(range(1000)), "lr": [0.001 * (i + 1)
                                                                                       for i in range(1000)]}}
    with pytest.raises(SpecError, match="at most"):
        parse_spec({"grid": [grid]})


# ------------------------------------------------------------------------------ 2. report
def _sweep_with_record(tmp_path: Path, record_changes: dict | None = None, meta_changes: dict | None = None):
    spec = read_spec(write_spec(tmp_path, spec_text(vary='method = ["ste", "gs"]\nlevels = [2, 4]')))
    sweep = prepare_sweep_dir(spec, tmp_path / "sw")
    for i, cell in enumerate(spec.cells):
        folder = sweep / cell.grid / cell.name
        folder.mkdir(parents=True)
        rec = {"schema": CELL_SCHEMA, "version": 1, "status": "done", "cell": cell.to_dict(), "key": cell.key,
               "fingerprint": cell.fingerprint(), "primary": "accuracy",
               "metrics": {"reference": {"accuracy": 0.5 + 0.01 * i}, "training": {"accuracy": 0.6}}}
        if i == 0 and record_changes:
            rec.update(record_changes)
        (folder / CELL_FILE).write_text(json.dumps(rec))
    if meta_changes:
        meta = json.loads((sweep / SWEEP_FILE).read_text())
        meta.update(meta_changes)
        (sweep / SWEEP_FILE).write_text(json.dumps(meta))
    return sweep


@pytest.mark.parametrize("grid", ["/tmp/escape", "../escape", "..", ".x"])
def test_group2_report_keeps_figures_inside_its_folder(tmp_path, grid):
    sweep = _sweep_with_record(tmp_path)
    for rec_path in sweep.rglob(CELL_FILE):
        rec = json.loads(rec_path.read_text())
        rec["cell"]["grid"] = grid
        rec_path.write_text(json.dumps(rec))
    before = tree(tmp_path)
    one_line_error(runner.invoke(app, ["report", str(sweep)]), "grid")
    assert tree(tmp_path) == before
    assert not Path("/tmp/escape_levels.png").exists()


def test_group2_report_needs_force_and_leaves_nothing_partial(tmp_path):
    sweep = _sweep_with_record(tmp_path)
    notes = tmp_path / "notes.md"
    notes.write_text("mine")
    (tmp_path / "notes.json").write_text("mine too")
    before = tree(tmp_path)
    one_line_error(runner.invoke(app, ["report", str(sweep), "--out", str(notes)]), "notes.md", "--force")
    assert tree(tmp_path) == before
    # --out naming a directory: refused, nothing left (no .tmp, no figures)
    (tmp_path / "adir.md").mkdir()
    before = tree(tmp_path)
    one_line_error(runner.invoke(app, ["report", str(sweep), "--out", str(tmp_path / "adir.md"), "--force"]),
                   "adir.md")
    assert tree(tmp_path) == before
    result = runner.invoke(app, ["report", str(sweep), "--out", str(notes), "--force"])
    assert result.exit_code == 0, result.output
    assert notes.read_text().startswith("# t: results")
    assert json.loads((tmp_path / "notes.json").read_text())["done"] == 4
    assert not [p for p in tmp_path.rglob(".*") if p.name.endswith(".tmp")]


def test_group2_a_failed_report_write_leaves_the_old_report_and_no_leftovers(tmp_path, monkeypatch):
    import errno

    from quaton_fab import fileio

    sweep = _sweep_with_record(tmp_path)
    write_report(sweep)
    before = tree(tmp_path)
    real = os.replace
    calls = []

    def full(src, dst, *a, **k):
        calls.append(dst)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dst))
        return real(src, dst, *a, **k)

    monkeypatch.setattr(fileio.os, "replace", full)
    result = runner.invoke(app, ["report", str(sweep), "--force"])
    one_line_error(result, "No space left")
    monkeypatch.setattr(fileio.os, "replace", real)
    assert tree(tmp_path) == before


@pytest.mark.parametrize("record, meta, needle", [
    (None, {"cells": "abc"}, "list of cells"),
    (None, {"cells": [{"name": "x"}]}, "None"),
    ({"cell": None}, None, "cell"),
    ({"metrics": {"reference": {"accuracy": "high"}}}, None, "accuracy"),
    ({"cell": {"grid": "g", "params": {"method": "ste", "levels": "2"}, "preset": "tiny", "overrides": {}}},
     None, "levels '2' is not an integer"),
    ({"metrics": {"reference": {"accuracy": float("nan")}}}, None, None),
])
def test_group3_malformed_sweep_folders_are_one_line(tmp_path, record, meta, needle):
    sweep = _sweep_with_record(tmp_path, record, meta)
    result = runner.invoke(app, ["report", str(sweep)])
    if needle is None:  # readable: the report is written and its JSON twin is valid JSON
        assert result.exit_code == 0, result.output
        json.loads((sweep / "report.json").read_text(), parse_constant=lambda c: pytest.fail(c))
    else:
        one_line_error(result, needle)


def test_group3_a_sweep_json_that_is_a_list_and_bad_notes(tmp_path):
    sweep = _sweep_with_record(tmp_path)
    notes = tmp_path / "n.md"
    notes.write_bytes(b"\xff\xfe bad")
    one_line_error(runner.invoke(app, ["report", str(sweep), "--notes", str(notes)]), "n.md", "UTF-8")
    (sweep / SWEEP_FILE).write_text("[1, 2]")
    one_line_error(runner.invoke(app, ["report", str(sweep)]), SWEEP_FILE)
    with pytest.raises(SweepError):
        load_records(sweep)


def test_group6_a_corrupted_cell_record_is_listed_not_dropped(tmp_path):
    sweep = _sweep_with_record(tmp_path)
    first = sorted(sweep.rglob(CELL_FILE))[0]
    first.write_text("{ not json")
    result = runner.invoke(app, ["report", str(sweep)])
    assert result.exit_code == 0, result.output
    report = json.loads((sweep / "report.json").read_text())
    assert report["done"] == 3
    assert any(f["status"] == "unreadable" and "not valid JSON" in f["error"] for f in report["failed"])


def test_group3_a_full_disk_in_a_cell_is_one_line_without_a_traceback(tmp_path, monkeypatch, caplog):
    from quaton_fab.training import trainer as trainer_module

    def full(*args, **kwargs):
        raise RuntimeError("[enforce fail at inline_container.cc:603] . unexpected pos 64 vs 0")

    monkeypatch.setattr(trainer_module.torch, "save", full)
    monkeypatch.setattr("quaton_fab.sweep.cell._free_bytes", lambda folder: 0)
    record = run_cell(_cell(tmp_path), str(tmp_path / "sw"))
    assert record["status"] == "failed"
    assert "cannot write the checkpoint (No space left on device)" in record["error"]
    assert "Traceback" not in caplog.text


def test_group6_a_design_with_absurd_spacing_warns_when_read(tmp_path, caplog):
    import shutil

    from quaton_fab.design import Design

    sample = Path(__file__).parent.parent / "sample_designs" / "rbc-qpi-psq-lt-8"
    folder = tmp_path / "d"
    shutil.copytree(sample, folder)
    meta = json.loads((folder / "design.json").read_text())
    meta["geometry"]["spacing_m"] = 1000.0
    (folder / "design.json").write_text(json.dumps(meta))
    Design.load(folder)
    assert "spacing_m" in caplog.text and "far too long" in caplog.text


def test_group4_an_oversized_spec_is_refused_unread(tmp_path):
    spec = write_spec(tmp_path, spec_text() + "# " + "x" * (2 * 1024 * 1024) + "\n")
    one_line_error(runner.invoke(app, ["sweep", str(spec), "--dry-run"]), "larger than 1.0 MiB")
