"""The export formats live in one registry (issue 18): every spec writes exactly its planned files and reads them
back; export and verify loop over it, so a format added to the registry is exported and read back without
touching either; the orders of earlier versions (``--format all``, the fab sheet's files, verify's rows) hold."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from quaton_fab.design import Design
from quaton_fab.analysis import verify as verify_module
from quaton_fab.analysis.verify import read_back
from quaton_fab.fab import export as export_module
from quaton_fab.fab import sheet as sheet_module
from quaton_fab.fab.export import ExportOptions, export_design, export_level_table, export_printer, planned_files
from quaton_fab.fab.formats import heightmap as heightmap_module
from quaton_fab.fab.formats.registry import (
    FORMATS, REGISTRY, grid_free, needs_grid, planned_names, read_formats, sheet_sections,
)
from quaton_fab.fab.formats.spec import FormatSpec, ReadBack, Reader, ReadJob, WriteJob
from quaton_fab.fab.sheet import JSON_NAME, read_fab_sheet
from quaton_fab.printing.level_table import HEIGHT_TOLERANCE_M

SAMPLE = Path(__file__).resolve().parent.parent / "sample_designs" / "rbc-qpi-psq-lt-8"
LEGACY_FORMATS = ("stl", "gds", "oas", "png", "tiff", "png8", "bmp", "gwl")


@pytest.fixture(scope="module")
def design() -> Design:
    return Design.load(SAMPLE)


@pytest.fixture(scope="module")
def export(design, tmp_path_factory):
    out = tmp_path_factory.mktemp("all") / "export"
    result = export_design(design, out, ExportOptions(stack=True))
    return out, result


def test_formats_are_the_registry_in_the_order_of_earlier_versions():
    assert FORMATS == tuple(REGISTRY) == LEGACY_FORMATS
    assert export_module.FORMATS == FORMATS
    assert ExportOptions().formats == FORMATS
    for name, spec in REGISTRY.items():
        assert spec.name == name
        assert spec.readers and spec.tolerance and (spec.sheet_keys or spec.other_keys)


def test_grid_needs_and_sheet_sections_come_from_the_specs():
    assert needs_grid(FORMATS) == ["gwl"]
    assert grid_free(FORMATS) == tuple(f for f in FORMATS if f != "gwl")  # what a grayscale printer takes
    sections = sheet_sections()
    assert {"gds", "oas", "layer_map", "stack", "png", "tiff", "png8", "bmp", "grayscale", "gwl"} == set(sections)
    assert set(sections) <= set(sheet_module._RENDERED)  # the fab sheet renders these in sections of their own
    others = {key for spec in REGISTRY.values() for key in spec.other_keys}
    assert others == {"stl"} and not others & set(sheet_module._RENDERED)  # listed under "Other"


def test_every_format_means_what_the_printer_can_take():
    assert ExportOptions(formats=None).formats == FORMATS  # the default two-photon profile has a slicing grid
    assert ExportOptions(formats=None, printer="grayscale").formats == grid_free(FORMATS)
    assert ExportOptions(formats=None, printer="grayscale", slicing_distance_m=100e-9,
                         hatching_distance_m=100e-9).formats == FORMATS


@pytest.mark.parametrize("name", LEGACY_FORMATS)
def test_each_writer_writes_exactly_its_planned_files(design, tmp_path, name):
    options = ExportOptions(formats=(name,), stack=True)
    table, _ = export_level_table(design, options)
    job = WriteJob(design, table, export_printer(options), tmp_path, stack=True)
    spec = REGISTRY[name]
    spec.write(job)
    planned = spec.files(design.num_masks, True)
    assert [p.name for p in job.written] == planned
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(planned)
    assert job.checks and all(ok is True for ok in job.checks.values())
    assert set(job.extra) <= set(spec.sheet_keys) | set(spec.other_keys)


def test_the_export_lists_the_specs_files_in_the_orders_of_earlier_versions(design, export):
    out, result = export
    masks = design.num_masks
    by_rank = sorted(REGISTRY.values(), key=lambda s: s.write_rank)
    sheet = read_fab_sheet(out)
    written = [f["name"] for f in sheet["files"]]
    assert written == [n for spec in by_rank for n in spec.files(masks, True)] + ["report.html"]
    assert [p.name for p in result.files] == planned_files(design, ExportOptions(stack=True))
    assert planned_names(FORMATS, masks, True)[:3] == ["design.gds", "design.oas", "mask_1.stl"]
    assert planned_names(FORMATS, masks, True)[-1] == "stack.gwl"


def test_every_spec_reads_its_files_back_with_the_sheet_read_once(design, export, monkeypatch):
    out, result = export
    sheet = read_fab_sheet(out)

    def no_second_read(*args, **kwargs):
        raise AssertionError("the fab sheet was read again")

    monkeypatch.setattr(heightmap_module, "load_json_file", no_second_read)
    masks = design.num_masks
    for name, spec in REGISTRY.items():
        listed = frozenset(spec.files(masks, True))
        items = read_formats(ReadJob(design, out, result.table, listed, sheet))
        assert len(items) == len(spec.readers), name
        labels = {item.label.replace("*", str(l)) for item in items for l in range(1, masks + 1)}
        assert listed <= labels, name
        for item in items:
            assert item.levels.shape == design.level_indices.shape
            np.testing.assert_array_equal(item.levels, design.level_indices)
    rows = read_back(design, out, result.table, {f["name"] for f in sheet["files"]}, sheet)
    assert [r.label for r in rows] == [
        "design.gds", "design.oas", "mask_*.stl", "mask_*_height.png", "mask_*_height.tif", "mask_*_height8.png",
        "mask_*_height.bmp", "stack.stl", "mask_*.gwl", "stack.gwl", "report.html",
    ]
    assert [r.label for r in rows if r.exact_levels] == ["design.gds", "design.oas", "report.html"]


def test_a_partial_set_of_mask_files_is_a_verify_error(design, export):
    out, result = export
    sheet = read_fab_sheet(out)
    with pytest.raises(verify_module.VerifyError, match="lists mask_1.stl but not mask_2.stl"):
        read_back(design, out, result.table, {"mask_1.stl"}, sheet)


def _fake_spec() -> FormatSpec:
    """A format known only to this test: one text file per mask holding the level map."""

    def files(masks: int, stack: bool) -> list[str]:
        return [f"mask_{l}.fake" for l in range(1, masks + 1)]

    def write(job: WriteJob) -> None:
        for l, levels in enumerate(job.design.level_indices, start=1):
            path = job.folder / f"mask_{l}.fake"
            np.savetxt(path, levels, fmt="%d")
            job.checks[f"fake mask {l}: read back"] = bool(np.array_equal(np.loadtxt(path, dtype=int), levels))
            job.written.append(path)
        job.extra["fake"] = {"masks": len(job.design.level_indices)}

    def read(job: ReadJob) -> ReadBack | None:
        names = files(job.design.geometry.layers, False)
        if not all(n in job.listed for n in names):
            return None
        levels = np.stack([np.loadtxt(job.folder / n, dtype=int) for n in names])
        return ReadBack("mask_*.fake", "numpy.loadtxt", levels, job.snapped[levels], HEIGHT_TOLERANCE_M,
                        exact_levels=True)

    return FormatSpec(name="fake", files=files, write=write, readers=(Reader(99, read),),
                      tolerance="the level map exactly", needs_grid=False, sheet_keys=("fake",),
                      plan_rank=99, write_rank=99)


def test_a_format_added_to_the_registry_is_exported_and_read_back(design, tmp_path, monkeypatch):
    monkeypatch.setitem(REGISTRY, "fake", _fake_spec())
    out = tmp_path / "export"
    result = export_design(design, out, ExportOptions(formats=("fake", "gds"), report=False))
    masks = design.num_masks
    assert [p.name for p in result.files] == ["design.gds", *[f"mask_{l}.fake" for l in range(1, masks + 1)],
                                              JSON_NAME, "fab_sheet.md"]
    sheet = read_fab_sheet(out)
    assert [f["name"] for f in sheet["files"]][1:] == [f"mask_{l}.fake" for l in range(1, masks + 1)]
    assert sheet["extra"]["fake"] == {"masks": masks}
    assert all(sheet["checks"][f"fake mask {l}: read back"] for l in range(1, masks + 1))
    rows = read_back(design, out, result.table, {f["name"] for f in sheet["files"]}, sheet)
    assert [r.label for r in rows] == ["design.gds", "mask_*.fake"]
    np.testing.assert_array_equal(rows[1].levels, design.level_indices)


def test_an_unknown_format_is_refused_with_the_registry_listed():
    with pytest.raises(export_module.ExportError, match="unknown export format 'nope'; use stl, gds, oas"):
        ExportOptions(formats=("nope",))
