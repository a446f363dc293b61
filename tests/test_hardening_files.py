"""Issue 22, groups 3-5 for files: every request is bounded before allocation, every file reader is bounded, and
verify reads everything it passes (GWL jobs completely, file types by content, the sheet never a link)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from quaton_fab.design import Design
from quaton_fab.errors import QuatonFabError, ResourceError
from quaton_fab.fab.export import ExportOptions, export_design
from quaton_fab.fab.formats.gwl import GwlError
from quaton_fab.printing.level_table import LevelTable
from quaton_fab.fab.sheet import read_fab_sheet
from quaton_fab.fab.sheet import sheet_digest
from quaton_fab.analysis.verify import read_back, verify_export
from test_hardening import one_line_error, run  # the CLI helpers shared by the hardening tests

SAMPLE = Path(__file__).parent.parent / "sample_designs" / "rbc-qpi-psq-lt-8"


@pytest.fixture(scope="module")
def design() -> Design:
    return Design.load(SAMPLE)


def edited_design(tmp_path: Path, change) -> Path:
    folder = tmp_path / "d"
    shutil.copytree(SAMPLE, folder)
    meta = json.loads((folder / "design.json").read_text())
    change(meta)
    (folder / "design.json").write_text(json.dumps(meta))
    return folder


# ------------------------------------------------------------------------ 4. requests bounded before allocation
@pytest.mark.parametrize("change, needle", [
    (lambda m: m["propagation"]["relief"].__setitem__("max_slice_m", 1e-15), "slices"),
    (lambda m: m["geometry"].__setitem__("oversample", 100000), "available"),
    (lambda m: m["geometry"].__setitem__("padding", 10**7), "available"),
    (lambda m: m["geometry"].__setitem__("pitch_m", 1e308), "design.json"),
    (lambda m: m.__setitem__("x", json.loads("[" * 60 + "]" * 60)), None),  # deep but within the limit: loads
])
def test_group4_design_json_requests_are_refused_before_allocating(tmp_path, change, needle):
    folder = edited_design(tmp_path, change)
    result = run("inspect", folder, "--no-figures")
    if needle is None:
        assert result.exit_code == 0, result.output
    else:
        one_line_error(result, needle)


def test_group3_design_json_nesting_nan_and_encoding(tmp_path):
    folder = edited_design(tmp_path, lambda m: None)
    path = folder / "design.json"
    for text, needle in (("[" * 100_000 + "]" * 100_000, "nests deeper"), ('{"schema": NaN}', "NaN"),
                         (b'{"schema": "\xff"}', "UTF-8")):
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        one_line_error(run("inspect", folder, "--no-figures"), needle)


def _npy_bytes(shape: tuple[int, ...], dtype: str, payload: bytes) -> bytes:
    out = io.BytesIO()
    np.lib.format.write_array_header_1_0(out, {"descr": dtype, "fortran_order": False, "shape": shape})
    return out.getvalue() + payload


def test_group4_npy_headers_and_bombs_are_refused_before_inflating(tmp_path):
    folder = edited_design(tmp_path, lambda m: None)
    npz = folder / "masks.npz"
    with zipfile.ZipFile(npz, "w") as archive:  # a header claiming 10^15 bytes, with 8 bytes of data
        archive.writestr("level_indices.npy", _npy_bytes((10**6, 10**6, 1000), "|u1", b"\0" * 8))
    with pytest.raises(ResourceError, match="needs about"):
        Design.load(folder)
    with zipfile.ZipFile(npz, "w", compression=zipfile.ZIP_DEFLATED) as archive:  # inflates past its claim
        archive.writestr("level_indices.npy", _npy_bytes((4,), "|u1", b"\0" * 50_000_000))
    assert npz.stat().st_size < 200_000
    with pytest.raises(QuatonFabError, match="inflates beyond"):
        Design.load(folder)


def test_group4_a_gzip_idx_bomb_is_refused_while_inflating(tmp_path, monkeypatch):
    from quaton_fab.data import idx

    monkeypatch.setattr(idx, "MAX_IDX_BYTES", 1_000_000)
    path = tmp_path / "bomb-images-idx3-ubyte.gz"
    with gzip.open(path, "wb") as handle:
        handle.write(b"\x00\x00\x08\x01" + (5_000_000).to_bytes(4, "big") + b"\0" * 5_000_000)
    assert path.stat().st_size < 50_000
    with pytest.raises(QuatonFabError, match="inflates beyond"):
        idx.read_idx(path)


def test_group4_export_and_verify_options_beyond_the_budget(design, tmp_path):
    one_line_error(run("export", SAMPLE, "--format", "stl", "--slicing-distance", "1e-15m",
                       "--out", tmp_path / "e1"), "slicing distance", "planes")
    assert not (tmp_path / "e1").exists()
    one_line_error(run("export", SAMPLE, "--format", "gwl", "--hatching-distance", "1e-12m",
                       "--out", tmp_path / "e2"), "lines")
    assert not (tmp_path / "e2").exists()
    out = tmp_path / "e"
    export_design(design, out, ExportOptions(formats=("gds",)))
    one_line_error(run("verify", SAMPLE, out, "--max-slice", "0.001nm", "--test-samples", "4"), "slices")
    one_line_error(run("verify", SAMPLE, out, "--oversample", "10000", "--test-samples", "4"), "--oversample 10000",
                   "available")
    one_line_error(run("tolerance", SAMPLE, "--oversample", "10000", "--samples", "4", "--trials", "1",
                       "--out", tmp_path / "t"), "--oversample 10000")
    one_line_error(run("tolerance", SAMPLE, "--seed=-1", "--samples", "4", "--trials", "1",
                       "--out", tmp_path / "t"), "seed")
    assert not (tmp_path / "t").exists()


# ------------------------------------------------------------------------ 3. fab sheets
@pytest.mark.parametrize("text, needle", [
    ('{"schema": NaN}', "NaN"), ("[" * 100_000, "nests deeper"), (b"{\"a\": \"\xff\"}", "UTF-8"),
    ("[1, 2]", "JSON object"),
])
def test_group3_malformed_fab_sheets_are_one_line(design, tmp_path, text, needle):
    out = tmp_path / "e"
    export_design(design, out, ExportOptions(formats=("gds",)))
    (out / "fab_sheet.json").write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(QuatonFabError, match=needle):
        read_fab_sheet(out)
    one_line_error(run("verify", SAMPLE, out, "--test-samples", "4"), needle)


# ------------------------------------------------------------------------ 5. verify reads what it passes
def _rehash(folder: Path) -> None:
    """What a careful forger does: recompute every file hash and the sheet's own hash."""
    path = folder / "fab_sheet.json"
    sheet = json.loads(path.read_text())
    for entry in sheet["files"]:
        entry["sha256"] = hashlib.sha256((folder / entry["name"]).read_bytes()).hexdigest()
        entry["bytes"] = (folder / entry["name"]).stat().st_size
    sheet["sheet_sha256"] = sheet_digest(sheet)
    path.write_text(json.dumps(sheet))


@pytest.fixture(scope="module")
def gwl_export(design, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gwl") / "e"
    export_design(design, out, ExportOptions(formats=("gwl", "png", "bmp")))
    return out


def _read_back_gwl(design, folder):
    sheet = read_fab_sheet(folder)
    table = LevelTable.from_dict(sheet["level_table"])
    listed = {f["name"] for f in sheet["files"] if f["name"].endswith(".gwl")}
    return read_back(design, folder, table, listed, sheet)


@pytest.mark.parametrize("edit, needle", [
    (lambda t: t.replace("GalvoScanMode\n", "GalvoScanMode\ninclude /etc/passwd\n"), "'include'"),
    (lambda t: t.replace("\nLaserPower ", "\nLaserPower 9"), "LaserPower"),
    (lambda t: t.replace("\nScanSpeed ", "\nScanSpeed 1"), "ScanSpeed"),
    (lambda t: t + "PowerScaling 5.0\n", "PowerScaling"),
    (lambda t: t + "500 1 0.05\n501 1 0.05\nWrite\n", "outside the part"),
    (lambda t: t + "1 1 -0.05\n2 1 -0.05\nWrite\n", "outside the part"),
    (lambda t: t + "1 1 100000.05\n2 1 100000.05\nWrite\n", "outside the part"),
])
def test_group5_gwl_jobs_are_read_completely(design, gwl_export, tmp_path, edit, needle):
    folder = tmp_path / "e"
    shutil.copytree(gwl_export, folder)
    job = folder / "mask_1.gwl"
    job.write_text(edit(job.read_text()))
    _rehash(folder)
    with pytest.raises(GwlError, match=needle) as info:
        _read_back_gwl(design, folder)
    assert "line " in str(info.value)
    if needle == "'include'":  # verify itself (CLI, slower): one line, exit 2, no verdict of "verified"
        text = one_line_error(run("verify", SAMPLE, folder, "--test-samples", "2"), "mask_1.gwl", "line")
        assert "verified" not in text


def test_group5_an_unchanged_gwl_export_still_reads_back(design, gwl_export):
    assert len(_read_back_gwl(design, gwl_export)) == 1


def test_group5_file_types_by_content_and_the_sheet_never_a_link(design, gwl_export, tmp_path):
    folder = tmp_path / "e"
    shutil.copytree(gwl_export, folder)
    shutil.copy(folder / "mask_1_height.png", folder / "mask_1_height.bmp")  # a PNG renamed .bmp
    _rehash(folder)
    with pytest.raises(QuatonFabError, match="BMP"):
        verify_export(design, folder, samples=2, device="cpu")
    shutil.copytree(gwl_export, tmp_path / "f")
    sheet = tmp_path / "f" / "fab_sheet.json"
    outside = tmp_path / "outside.json"
    shutil.move(sheet, outside)
    sheet.symlink_to(outside)
    with pytest.raises(QuatonFabError, match="symbolic link"):
        verify_export(design, tmp_path / "f", samples=2, device="cpu")


@pytest.mark.parametrize("value", ["inf", "2"])
def test_group5_tolerance_must_be_a_finite_fraction(gwl_export, value):
    one_line_error(run("verify", SAMPLE, gwl_export, "--tolerance", value, "--test-samples", "2"), "--tolerance")


def test_group5_a_read_only_export_still_gets_its_verdict(design, tmp_path, monkeypatch):
    import errno

    from quaton_fab.fab import sheet as sheet_module

    out = tmp_path / "e"
    export_design(design, out, ExportOptions(formats=("gds",)))
    before = (out / "fab_sheet.json").read_bytes()

    def read_only(path, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(sheet_module, "atomic_write_bytes", read_only)
    result = run("verify", SAMPLE, out, "--no-probe")
    assert result.exit_code in (0, 1), result.output
    assert "total gap" in result.output and "not recorded" in result.output
    assert "Traceback" not in result.output
    assert (out / "fab_sheet.json").read_bytes() == before


# ------------------------------------------------------------------------ 6. minor
def test_group6_materials_refuses_a_wavelength_that_is_not_optical():
    one_line_error(run("materials", "--wavelength", "780m"), "780 m", "not an optical wavelength")


def test_group6_tolerance_on_a_full_disk_leaves_no_partial_set(tmp_path, monkeypatch):
    import errno

    from quaton_fab.analysis import tolerance_figure

    def full(result, path, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(tolerance_figure, "plot_tolerance", full)
    out = tmp_path / "tol"
    args = ["tolerance", SAMPLE, "--trials", "1", "--samples", "4", "--errors", "shift", "--shift", "0.2um",
            "--combined", "1", "--fidelity", "design", "--out", out]
    one_line_error(run(*args), "No space left", f"{out / 'tolerance.png'}:")
    assert sorted(p.name for p in out.iterdir()) == []
