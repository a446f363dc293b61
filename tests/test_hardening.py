"""Issue 11: the failures a hostile user found, one test per group (one line, non-zero exit, nothing partial/lost).

Groups: 1 resource bounds, 2 all-or-nothing exports, 3 a failed save keeps the result, 4 verify checks the sheet,
5 OS errors, 6 malformed input, 7 rich markup, 8 overwrites need --force, 9 physical nonsense, 10 messages.
Plus: exports are byte-identical, and the CLI treats only QuatonFabError/OSError as user errors.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from quaton_fab.cli.app import app
from quaton_fab.design import Design
from quaton_fab.errors import QuatonFabError, ResourceError
from quaton_fab.fab.formats import stl as stl_io
from quaton_fab.fab.export import ExportError, ExportOptions, export_design
from quaton_fab.fab.sheet import sheet_digest
from quaton_fab.resources import check_memory
from quaton_fab.analysis.verify import VerifyError, verify_export

runner = CliRunner()
SAMPLE = Path(__file__).parent.parent / "sample_designs" / "rbc-qpi-psq-lt-8"
TINY = ["--preset", "tiny", "--neurons", "20", "--spacing", "10um", "--epochs", "1", "--train-samples", "96",
        "--val-samples", "32", "--test-samples", "40"]


def run(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def one_line_error(result, *needles: str, code: int = 2) -> str:
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    text = result.stderr.strip() if result.stderr else result.output.strip()
    assert "Traceback" not in result.output
    assert len(text.splitlines()) == 1, text
    for needle in needles:
        assert needle in text, text
    return text


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative name → bytes), hidden ones included."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def hidden_siblings(folder: Path) -> list[str]:
    return [p.name for p in folder.parent.iterdir() if p.name.startswith(".")]


@pytest.fixture(scope="module")
def design() -> Design:
    return Design.load(SAMPLE)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run") / "tiny"
    result = run("train", *TINY, "--out", out)
    assert result.exit_code == 0, result.output
    return out


# ------------------------------------------------------------------------------------ 1. resource bounds
def test_group1_grid_and_samples_beyond_memory_are_refused_before_allocating(tmp_path):
    out = tmp_path / "big"
    one_line_error(run("train", *TINY, "--neurons", "100000", "--out", out), "--neurons 100000", "available")
    assert not out.exists()
    one_line_error(run("train", *TINY, "--test-samples", "2000000", "--out", out), "--test-samples 2000000",
                   "available")
    one_line_error(run("quantizers", "--levels", "100000", "--out", tmp_path / "q.png"), "--levels 100000")
    assert not (tmp_path / "q.png").exists()
    with pytest.raises(ResourceError, match=r"--x 5: .* needs about 1\.0 KiB .* has 512 B available"):
        check_memory(1024, "--x 5", "a test", available_bytes=512)


def test_group1_gpu_runs_are_checked_against_the_gpus_free_memory(monkeypatch):
    from types import SimpleNamespace

    from quaton_fab.resources import check_training_memory
    from quaton_fab.training.config import preset

    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (1 << 20, 1 << 30))
    config = preset("tiny")
    check_training_memory(config, SimpleNamespace(type="cpu"))  # fits in this machine's RAM
    with pytest.raises(ResourceError, match="--neurons 24: .* has 1.0 MiB available"):
        check_training_memory(config, SimpleNamespace(type="cuda"))


def test_group1_npz_with_a_huge_label_is_refused(tmp_path):
    path = tmp_path / "big.npz"
    labels = np.arange(40, dtype=np.int64)
    labels[-1] = 10**12
    np.savez(path, images=np.zeros((40, 8, 8), np.float32), labels=labels)
    one_line_error(run("train", *TINY, "--dataset", f"npz:{path}", "--out", tmp_path / "o"), "1000000000000",
                   "at most 1000")


# ------------------------------------------------------------------------------ 2. all-or-nothing exports
def test_group2_a_directory_in_the_way_leaves_the_export_untouched(tiny_run, tmp_path):
    out = tmp_path / "OUT"
    assert run("export", tiny_run, "--format", "gds", "--out", out).exit_code == 0
    (out / "mask_2.stl" / "x").mkdir(parents=True)
    before = snapshot(out)
    one_line_error(run("export", tiny_run, "--format", "all", "--out", out, "--force"), "mask_2.stl", "in the way")
    assert snapshot(out) == before
    assert hidden_siblings(out) == []


def test_group2_a_failure_during_export_leaves_the_old_export_and_no_staging(design, tmp_path, monkeypatch):
    out = tmp_path / "e"
    export_design(design, out, ExportOptions(formats=("gds", "png")))
    before = snapshot(out)
    calls = []
    real = stl_io.write_stl

    def disk_full(path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(stl_io, "write_stl", disk_full)
    with pytest.raises(ExportError) as info:
        export_design(design, out, ExportOptions(formats=("gds", "stl", "png"), force=True))
    message = str(info.value)
    assert "No space left on device" in message and str(out / "mask_2.stl") in message
    assert "staging" not in message
    assert snapshot(out) == before
    assert hidden_siblings(out) == []


def test_group2_stale_staging_is_cleaned_and_user_files_are_kept(design, tmp_path):
    out = tmp_path / "e"
    export_design(design, out, ExportOptions(formats=("stl",)))
    (out / "notes.txt").write_text("mine")
    (out / "sub").mkdir()
    (out / "sub" / "a.txt").write_text("also mine")
    dead = tmp_path / ".e.staging-999999999-abc"  # left by a SIGKILLed export (no such process)
    dead.mkdir()
    (dead / "mask_1.stl").write_bytes(b"x" * 1000)
    alive = tmp_path / f".e.staging-{os.getpid()}-live"  # a concurrent export still running
    alive.mkdir()
    export_design(design, out, ExportOptions(formats=("gds",), force=True))
    assert not dead.exists() and alive.exists()
    assert sorted(p.name for p in out.iterdir()) == ["design.gds", "fab_sheet.json", "fab_sheet.md", "notes.txt",
                                                      "report.html", "sub"]
    assert (out / "notes.txt").read_text() == "mine" and (out / "sub" / "a.txt").read_text() == "also mine"
    alive.rmdir()


def test_group2_the_current_directory_is_not_swapped_away(design, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ExportError, match="current directory"):
        export_design(design, ".", ExportOptions(formats=("gds",)))
    assert os.listdir(tmp_path) == []


def test_exporting_twice_gives_byte_identical_files(tiny_run, tmp_path):
    for name in ("a", "b"):  # the same folder name: report.html names the export folder in its commands
        result = run("export", tiny_run, "--format", "all", "--stack", "--out", tmp_path / name / "export")
        assert result.exit_code == 0, result.output
    a, b = snapshot(tmp_path / "a" / "export"), snapshot(tmp_path / "b" / "export")
    assert sorted(a) == sorted(b)
    expected = {"design.gds", "design.oas", "mask_1.stl", "mask_2.stl", "stack.stl", "mask_1_height.png",
                "mask_2_height.png", "mask_1_height.tif", "mask_2_height.tif", "fab_sheet.json", "fab_sheet.md"}
    assert expected <= set(a)
    for name in a:
        assert a[name] == b[name], name
    sheet = json.loads(a["fab_sheet.json"])
    for entry in sheet["files"]:
        assert entry["sha256"] == hashlib.sha256(b[entry["name"]]).hexdigest()


# ----------------------------------------------------------------------- 3. a failed save loses nothing
def test_group3_a_failed_design_save_can_be_resumed(tiny_run, tmp_path):
    out = tmp_path / "OUT"
    shutil.copytree(tiny_run, out)
    (out / "design.json").unlink()
    (out / "masks.npz").unlink()
    (out / "design.json" / "x").mkdir(parents=True)
    one_line_error(run("train", *TINY, "--out", out, "--force"), "design.json", "--resume")
    assert not (out / "masks.npz").exists()
    shutil.rmtree(out / "design.json")
    result = run("train", "--out", out, "--resume")
    assert result.exit_code == 0, result.output
    assert Design.load(out).metrics["test"]["samples"] == 40
    one_line_error(run("train", "--out", out, "--resume"), "already complete")


# --------------------------------------------------------------------------- 4. verify checks the sheet
@pytest.fixture()
def exported(design, tmp_path) -> Path:
    out = tmp_path / "export"
    export_design(design, out, ExportOptions(formats=("stl",), material="ip-dip"))
    return out


def _edit_sheet(folder: Path, change, *, rehash: bool) -> None:
    path = folder / "fab_sheet.json"
    sheet = json.loads(path.read_text())
    change(sheet)
    if rehash:
        sheet["sheet_sha256"] = sheet_digest(sheet)
    path.write_text(json.dumps(sheet))


@pytest.mark.parametrize(
    "change, needle",
    [
        (lambda s: s["material"].__setitem__("n", 1.7), "material.n"),
        (lambda s: (s["material"].__setitem__("name", "PMMA"), s["level_table"].__setitem__("material", "PMMA")),
         "material table for PMMA"),
        (lambda s: s.__setitem__("wavelength_m", 633e-9), "wavelength_m"),
    ],
    ids=["index", "material", "wavelength"],
)
def test_group4_an_edited_sheet_fails_verification(design, exported, change, needle):
    _edit_sheet(exported, change, rehash=False)
    with pytest.raises(VerifyError, match="edited after export"):
        verify_export(design, exported, samples=4, device="cpu")
    _edit_sheet(exported, change, rehash=True)  # a careful forger: the physics still has to match the design
    with pytest.raises(VerifyError, match=needle):
        verify_export(design, exported, samples=4, device="cpu")


@pytest.mark.parametrize("name", ["../x", "/etc/hostname", "sub/../../x"])
def test_group4_listed_paths_stay_inside_the_export(design, exported, name):
    (exported.parent / "x").write_text("outside")
    _edit_sheet(exported, lambda s: s["files"].append({"name": name, "bytes": 1, "sha256": "0"}), rehash=True)
    with pytest.raises(VerifyError, match="outside the export directory"):
        verify_export(design, exported, samples=4, device="cpu")


def test_group4_symlinked_files_are_refused(design, exported):
    target = exported.parent / "elsewhere.stl"
    shutil.move(exported / "mask_1.stl", target)
    (exported / "mask_1.stl").symlink_to(target)
    with pytest.raises(VerifyError, match="symbolic link"):
        verify_export(design, exported, samples=4, device="cpu")


# ------------------------------------------------------------------------------------- 5. OS errors
def test_group5_os_errors_are_one_line_with_path_and_reason(tiny_run, tmp_path, monkeypatch):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    one_line_error(run("quantizers", "--out", blocker / "q.png"), str(blocker))
    one_line_error(run("export", tiny_run, "--format", "gds", "--out", blocker / "export"), str(blocker))

    from quaton_fab.training import figures

    def full(fig, path):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(figures, "_save", full)
    out = tmp_path / "run"
    one_line_error(run("train", *TINY, "--out", out), "No space left on device", "masks.png")
    assert Design.load(out).metrics["test"]["samples"] == 40  # the design itself was saved first


def test_group5_os_errors_name_the_final_file_not_the_temporary_one(tmp_path):
    from quaton_fab.fileio import atomic_write_with

    def disk_full(handle):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(OSError) as info:
        atomic_write_with(tmp_path / "a.png", disk_full)
    assert info.value.filename == str(tmp_path / "a.png") and info.value.errno == errno.ENOSPC
    assert os.listdir(tmp_path) == []


# ------------------------------------------------------------------------------- 6. malformed input
@pytest.mark.parametrize("content", [b"", b"not a zip file at all"], ids=["empty", "garbage"])
def test_group6_broken_npz_is_one_line(tmp_path, content):
    path = tmp_path / "d.npz"
    path.write_bytes(content)
    one_line_error(run("train", *TINY, "--dataset", f"npz:{path}", "--out", tmp_path / "o"), "cannot read npz")


def test_group6_decompression_bomb_in_a_folder_dataset(tmp_path):
    from PIL import Image

    for cls in ("a", "b"):
        (tmp_path / "data" / cls).mkdir(parents=True)
        for i in range(3):
            Image.new("L", (8, 8)).save(tmp_path / "data" / cls / f"{i}.png")
    Image.new("L", (4200, 4200)).save(tmp_path / "data" / "a" / "bomb.png")
    one_line_error(run("train", *TINY, "--dataset", f"folder:{tmp_path / 'data'}", "--out", tmp_path / "o"),
                   "bomb.png", "4200×4200")


@pytest.mark.parametrize("key", ["software", "propagation", "fabrication"])
def test_group6_design_json_fields_of_the_wrong_type(tmp_path, key):
    folder = tmp_path / "d"
    shutil.copytree(SAMPLE, folder)
    meta = json.loads((folder / "design.json").read_text())
    meta[key] = "a string"
    (folder / "design.json").write_text(json.dumps(meta))
    one_line_error(run("inspect", folder, "--no-figures"), key)
    one_line_error(run("export", folder, "--out", tmp_path / "e"), key)


def test_group6_corrupted_png_and_checkpoint(tiny_run, design, tmp_path):
    out = tmp_path / "e"
    export_design(design, out, ExportOptions(formats=("png",)))
    data = (out / "mask_1_height.png").read_bytes()
    (out / "mask_1_height.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(VerifyError, match="changed since export"):
        verify_export(design, out, samples=4, device="cpu")
    from quaton_fab.fab.formats.heightmap import HeightMapError, read_height_png

    with pytest.raises(HeightMapError, match="not a readable PNG"):
        read_height_png(out / "mask_1_height.png")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    torch.save({"format": "quaton-fab/checkpoint", "version": 1}, run_dir / "checkpoint.pt")
    one_line_error(run("train", "--out", run_dir, "--resume"), "config")


# ------------------------------------------------------------------------------------- 7. rich markup
def test_group7_user_strings_are_shown_literally(tiny_run, tmp_path):
    out = tmp_path / "run[/x]"
    result = run("train", *TINY, "--out", out)
    assert result.exit_code == 0, result.output
    assert "run[/x]" in result.output.replace("\n", "")
    text = one_line_error(run("inspect", tmp_path / "designs" / "run[final]"), "does not exist")
    assert "run[final]" in text
    help_text = runner.invoke(app, ["train", "--help"], env={"COLUMNS": "400"}).output  # no wrapping inside it
    assert "[lo, hi]" in help_text


# ------------------------------------------------------------------------------ 8. overwrites need --force
def test_group8_existing_files_need_force(tiny_run, tmp_path):
    png = tmp_path / "q.png"
    png.write_bytes(b"keep")
    one_line_error(run("quantizers", "--out", png), "--force")
    assert png.read_bytes() == b"keep"
    assert run("quantizers", "--out", png, "--force").exit_code == 0 and png.read_bytes() != b"keep"

    figs = tmp_path / "figs"
    figs.mkdir()
    (figs / "masks.png").write_bytes(b"keep")
    one_line_error(run("inspect", tiny_run, "--out", figs), "--force")
    assert (figs / "masks.png").read_bytes() == b"keep"
    one_line_error(run("inspect", tiny_run), "--force")  # the design's own figures, too
    assert run("inspect", tiny_run, "--out", figs, "--force").exit_code == 0


def test_group8_train_force_removes_stale_figures(tiny_run, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(tiny_run, out)
    assert (out / "figures" / "confusion.png").is_file()
    result = run("train", *TINY, "--task", "qpi", "--out", out, "--force")
    assert result.exit_code == 0, result.output
    assert not (out / "figures" / "confusion.png").exists()


# ----------------------------------------------------------------------------------- 9. physical nonsense
@pytest.mark.parametrize(
    "option, value, needle",
    [("--wavelength", "780", "not an optical wavelength"), ("--spacing", "1000m", "far too long"),
     ("--pitch", "1pm", "λ/10"), ("--levels", "10000", "exporter's limit")],
)
def test_group9_nonsense_geometry_is_refused(tmp_path, option, value, needle):
    one_line_error(run("train", *TINY, option, value, "--out", tmp_path / "o"), option, needle)
    assert not (tmp_path / "o").exists()


def test_group9_nonsense_material_and_datasets(tiny_run, tmp_path):
    one_line_error(run("export", tiny_run, "--material", "n=1.0000001", "--out", tmp_path / "e"), "1 mm")
    one_line_error(run("evaluate", tiny_run, "--dataset", "rbc", "--test-samples", "8", "--device", "cpu"),
                   "phase images")
    path = tmp_path / "many.npz"
    np.savez(path, images=np.random.default_rng(0).random((60, 8, 8)).astype(np.float32),
             labels=np.arange(60) % 12)
    one_line_error(run("evaluate", tiny_run, "--dataset", f"npz:{path}", "--device", "cpu"), "labels up to 11",
                   "10 classes")


def test_group9_borderline_geometry_warns(tmp_path):
    result = run("train", *TINY, "--spacing", "500um", "--epochs", "1", "--out", tmp_path / "o")
    assert result.exit_code == 0, result.output
    assert "warning" in result.output and "--spacing" in result.output


# ---------------------------------------------------------------------------------------- 10. messages
def test_group10_messages_name_the_right_thing(design, tmp_path):
    path = tmp_path / "nan.npz"
    images = np.full((400, 8, 8), 0.5, np.float32)
    images[:, 2, 2] = np.nan
    np.savez(path, images=images, labels=np.arange(400) % 4)
    one_line_error(run("train", *TINY, "--dataset", f"npz:{path}", "--out", tmp_path / "a"), "NaN")
    path = tmp_path / "labels.npz"
    np.savez(path, images=np.full((400, 8, 8), 0.5, np.float32), labels=np.arange(400) % 58)
    one_line_error(run("train", *TINY, "--dataset", f"npz:{path}", "--out", tmp_path / "b"), "58 classes",
                   "labels 0..57")
    one_line_error(run("train", *TINY, "--lr", "100", "--out", tmp_path / "c"), "--lr")

    out = tmp_path / "gds"
    export_design(design, out, ExportOptions(formats=("gds",)))
    data = bytearray((out / "design.gds").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (out / "design.gds").write_bytes(bytes(data))
    with pytest.raises(VerifyError, match="design.gds: changed since export"):
        verify_export(design, out, samples=4, device="cpu")


def test_every_error_class_derives_from_the_common_base():
    from quaton_fab.data.encoding import EncodingError
    from quaton_fab.data.errors import DataError
    from quaton_fab.design import DesignError
    from quaton_fab.errors import FabError
    from quaton_fab.optics.propagation import OpticsError
    from quaton_fab.quant.levels import LevelSetError
    from quaton_fab.quant.quantizers import QuantizerError
    from quaton_fab.tasks.checks import TaskError
    from quaton_fab.tasks.ssim import SSIMError
    from quaton_fab.training.config import ConfigError
    from quaton_fab.simulate import DeviceError
    from quaton_fab.training.trainer import CheckpointError, TrainingDiverged
    from quaton_fab.units import UnitError

    for cls in (EncodingError, DataError, DesignError, FabError, OpticsError, LevelSetError, QuantizerError,
                TaskError, SSIMError, ConfigError, DeviceError, CheckpointError, TrainingDiverged, UnitError,
                VerifyError, ResourceError):
        assert issubclass(cls, QuatonFabError) and issubclass(cls, ValueError), cls


def test_a_bug_is_not_disguised_as_a_user_error(tiny_run, monkeypatch):
    from quaton_fab.design import Design as D

    def broken(*args, **kwargs):
        raise ZeroDivisionError("bug")

    monkeypatch.setattr(D, "load", broken)
    result = run("inspect", tiny_run, "--no-figures")
    assert isinstance(result.exception, ZeroDivisionError)
