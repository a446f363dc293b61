"""Issue 22: a fuzz test over the files a user hands to quaton-fab (design.json, fab_sheet.json, sweep specs).

For every generated input the command must end with exit code 0, 1 or 2 and no traceback (the CLI shows only
the library's user errors, as one line), and no file outside the command's own target may change. The inputs
come from hypothesis, derandomized (the same examples on every run). Sweep specs drive the CLI in-process;
design.json and fab_sheet.json drive the readers the CLI calls (``Design.load``; verify's sheet checks and
read-back), which must either succeed or raise the library's user error (:class:`QuatonFabError`, which the CLI
turns into one line and exit 2) — the CLI's simulation after them would only make each example slower.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from quaton_fab.cli.app import app
from quaton_fab.design import Design
from quaton_fab.errors import QuatonFabError
from quaton_fab.fab.export import ExportOptions, export_design
from quaton_fab.printing.level_table import LevelTable
from quaton_fab.fab.sheet import read_fab_sheet
from quaton_fab.analysis.sheet_check import check_sheet
from quaton_fab.fab.sheet import sheet_digest
from quaton_fab.analysis.verify import read_back

runner = CliRunner()
SAMPLE = Path(__file__).parent.parent / "sample_designs" / "rbc-qpi-psq-lt-8"
FUZZ = settings(max_examples=100, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

#: JSON values a hostile file may hold: extreme numbers, odd strings, nesting.
SCALARS = (st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
           | st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([0, -1, 1e-15, 1e308, 10**7, 100000])
           | st.text(max_size=20) | st.sampled_from(["..", "/etc/passwd", "auto", "none", "[/x]", "1e-15m"]))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)


def tree(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` with its SHA-256 (links as their target)."""
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_symlink():
            out[str(p.relative_to(folder))] = "link"
        elif p.is_file():
            out[str(p.relative_to(folder))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def check(result) -> None:
    assert result.exit_code in (0, 1, 2), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output


def _paths(obj: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key path into a JSON object (dict keys and list indices)."""
    out = [prefix] if prefix else []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj[:8]):
            out += _paths(v, prefix + (i,))
    return out


def mutate(obj: Any, choice: int, value: Any, how: int) -> Any:
    """``obj`` with the entry at path number ``choice`` replaced by ``value`` (how 0), deleted (1) or kept (2)."""
    data = json.loads(json.dumps(obj))
    paths = _paths(data)
    path = paths[choice % len(paths)]
    parent = data
    for key in path[:-1]:
        parent = parent[key]
    if how == 0:
        parent[path[-1]] = value
    elif how == 1:
        del parent[path[-1]]
    return data


def _dump(data: Any) -> str:
    return json.dumps(data, allow_nan=True)


# ------------------------------------------------------------------------------------------ design.json
@FUZZ
@given(choice=st.integers(0, 10**6), value=VALUES, how=st.integers(0, 2))
def test_fuzz_design_json(choice, value, how):
    meta = json.loads((SAMPLE / "design.json").read_text())
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        design = root / "design"
        shutil.copytree(SAMPLE, design)
        (root / "bystander.txt").write_text("mine")
        (design / "design.json").write_text(_dump(mutate(meta, choice, value, how)))
        before = tree(root)
        try:
            Design.load(design)
        except QuatonFabError:
            pass  # the CLI's one line, exit 2
        assert tree(root) == before  # reading writes nothing


# ------------------------------------------------------------------------------------------ fab_sheet.json
DESIGN = Design.load(SAMPLE)


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("fuzz") / "export"
    export_design(DESIGN, out, ExportOptions(formats=("gds", "png", "stl")))
    return out


@FUZZ
@given(choice=st.integers(0, 10**6), value=VALUES, how=st.integers(0, 1), rehash=st.booleans())
def test_fuzz_fab_sheet(export_dir, choice, value, how, rehash):
    sheet = json.loads((export_dir / "fab_sheet.json").read_text())
    sheet = mutate(sheet, choice, value, how)
    if rehash and isinstance(sheet, dict):  # a careful forger: the sheet's own hash matches its content
        try:
            sheet["sheet_sha256"] = sheet_digest(sheet)
        except (TypeError, ValueError):
            pass
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        out = root / "export"
        shutil.copytree(export_dir, out)
        (root / "bystander.txt").write_text("mine")
        (out / "fab_sheet.json").write_text(_dump(sheet))
        before = tree(root)
        try:
            read = read_fab_sheet(out)
            check_sheet(read, DESIGN, out)
            listed = {f["name"] for f in read["files"]}
            read_back(DESIGN, out, LevelTable.from_dict(read["level_table"]), listed, read)
        except QuatonFabError:
            pass  # the CLI's one line, exit 2
        assert tree(root) == before  # reading writes nothing


# ------------------------------------------------------------------------------------------ sweep specs
SPEC = {
    "name": "fuzz", "evaluate": "reference", "eval_samples": 8,
    "grid": [{"label": "g", "preset": "tiny",
              "set": {"epochs": 1, "train_samples": 32, "neurons": 12, "spacing": "8um"},
              "vary": {"method": ["ste", "psq"], "levels": [2, 4], "seed": [0, 1]},
              "only": {"ste": {"levels": [4]}}}],
}


@FUZZ
@given(choice=st.integers(0, 10**6), value=VALUES, how=st.integers(0, 2), yaml=st.booleans(),
       noise=st.lists(st.tuples(st.integers(0, 10**6), st.binary(max_size=3)), max_size=3))
def test_fuzz_sweep_specs(choice, value, how, yaml, noise):
    data = mutate(SPEC, choice, value, how)
    text = _dump(data).encode() if yaml else _toml(data).encode()
    rng = random.Random(choice)
    for position, chunk in noise:  # byte-level damage: the parser must still answer with one line
        at = (position + rng.randrange(7)) % (len(text) + 1)
        text = text[:at] + chunk + text[at:]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        spec = root / ("spec.yaml" if yaml else "spec.toml")
        spec.write_bytes(text)
        (root / "cell").mkdir()
        (root / "cell" / "important.txt").write_text("mine")
        before = tree(root)
        result = runner.invoke(app, ["sweep", str(spec), "--dry-run", "--out", str(root / "sw")])
        check(result)
        assert tree(root) == before  # a dry run writes nothing


def _toml(data: Any) -> str:
    """A small TOML writer for the spec's shape (values as JSON, which TOML reads for these types)."""
    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{json.dumps(str(k))} = {value(x)}" for k, x in v.items()) + " }"
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if v is None:
            return '"none"'
        if isinstance(v, float) and v != v:
            return "nan"
        if isinstance(v, float) and v in (float("inf"), float("-inf")):
            return "inf" if v > 0 else "-inf"
        return json.dumps(v)

    if not isinstance(data, dict):
        return value(data)
    lines = [f"{json.dumps(str(k))} = {value(v)}" for k, v in data.items() if k != "grid"]
    grids = data.get("grid")
    if isinstance(grids, list):
        for grid in grids:
            lines.append("[[grid]]")
            if isinstance(grid, dict):
                lines += [f"{json.dumps(str(k))} = {value(v)}" for k, v in grid.items()]
            else:
                lines.append(f"x = {value(grid)}")
    elif "grid" in data:
        lines.append(f"grid = {value(grids)}")
    return "\n".join(lines) + "\n"
