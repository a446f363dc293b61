"""GWL jobs from the height field: read back by our parser into heights; per-slice areas match the STL's sections."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import trimesh
from trimesh.intersections import mesh_plane

from quaton_fab.design import Design
from quaton_fab.fab.export import ExportOptions, export_design
from quaton_fab.fab.formats.gwl_spec import read_gwl_stack
from quaton_fab.fab.formats.gwl import GwlError, mask_columns, rasterise_tops, read_gwl, stack_columns, write_gwl
from quaton_fab.printing.printer import get_profile
from quaton_fab.fab.formats.stack import plan_stack
from quaton_fab.fab.formats.stl import SADDLE_OFFSET_UM, write_stl

PITCH_M = 0.78e-6
BASE_M = 2e-6
DZ_M = 0.1e-6
PRINTER = get_profile("2pp-63x-ip-dip")
SAMPLE = Path(__file__).parent.parent / "sample_designs" / "rbc-qpi-psq-lt-8"


def _heights(n: int = 10, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 4, (n, n)) * 3 * DZ_M


def section_area_um2(mesh: trimesh.Trimesh, z_um: float) -> float:
    """Area of the mesh's cross-section at height z (µm²), from trimesh's plane section of every face.

    Each section segment is oriented with the solid on its left (its face's outward normal on the right), so
    the shoelace sum over all segments is the enclosed area with holes subtracted.
    """
    seg, faces = mesh_plane(mesh, [0, 0, 1], [0, 0, z_um], return_faces=True)
    d = seg[:, 1, :2] - seg[:, 0, :2]
    n = mesh.face_normals[faces][:, :2]
    flip = (n[:, 0] * d[:, 1] - n[:, 1] * d[:, 0]) < 0
    a = np.where(flip[:, None], seg[:, 1, :2], seg[:, 0, :2])
    b = np.where(flip[:, None], seg[:, 0, :2], seg[:, 1, :2])
    return float(0.5 * np.sum(a[:, 0] * b[:, 1] - b[:, 0] * a[:, 1]))


def test_gwl_reads_back_to_the_height_map_and_has_the_commands(tmp_path):
    heights = _heights()
    path = tmp_path / "m.gwl"
    stats = write_gwl(path, mask_columns(heights, PITCH_M, BASE_M, DZ_M), PRINTER, provenance=["unit test"])
    text = path.read_text()
    for command in ("InvertZAxis 1", "PowerScaling 1.0", "LaserPower 40", "ScanSpeed 10000", "GalvoScanMode",
                    "\nWrite\n", "% unit test", "% printer profile: 2pp-63x-ip-dip"):
        assert command in text
    job = read_gwl(path)
    assert job.segments.shape[0] == stats["lines"] == text.count("\nWrite\n")
    tops = rasterise_tops(job, 10, 10, PITCH_M, DZ_M)
    np.testing.assert_allclose(tops - BASE_M, heights, atol=1e-15)
    # every line lies on a mid-slice plane, spaced at most the hatching distance
    assert np.all(np.abs(job.segments[:, 3] / 0.1 - 0.5 - np.round(job.segments[:, 3] / 0.1 - 0.5)) < 1e-6)
    assert stats["line_spacing_um"] <= 0.1


def test_gwl_slice_areas_match_the_stl_sections_and_the_level_map(tmp_path):
    heights = _heights(12, seed=3)
    write_stl(tmp_path / "m.stl", heights, PITCH_M, BASE_M, z_grid_m=DZ_M)
    stats = write_gwl(tmp_path / "m.gwl", mask_columns(heights, PITCH_M, BASE_M, DZ_M), PRINTER)
    job = read_gwl(tmp_path / "m.gwl")
    gwl_area = job.hatched_area_um2(DZ_M, stats["line_spacing_um"])
    mesh = trimesh.load(str(tmp_path / "m.stl"), force="mesh")
    z_mid = (np.arange(stats["slices"]) + 0.5) * 0.1
    stl_area = np.array([section_area_um2(mesh, z) for z in z_mid])
    tops = np.round((BASE_M + heights) / DZ_M)
    pixel_um2 = (PITCH_M * 1e6) ** 2
    level_area = np.array([np.count_nonzero(tops > k) * pixel_um2 for k in range(stats["slices"])])
    np.testing.assert_allclose(gwl_area, level_area, rtol=1e-12)  # the GWL hatches exactly the pixels
    # The STL loses a 2·pitch·2.5 nm wedge per diagonal-only contact (fab/formats/stl_faces); far inside one hatch line.
    tolerance = 0.1 * PITCH_M * 1e6 * 4
    assert np.max(np.abs(stl_area - gwl_area)) <= tolerance
    assert np.max(np.abs(stl_area - level_area) / level_area) < 0.01


def test_stack_gwl_reads_back_plate_by_plate(tmp_path):
    maps = [_heights(6, seed=s) for s in range(3)]
    kept, layout = plan_stack(maps, PITCH_M, BASE_M, 12e-6, z_grid_m=DZ_M)
    path = tmp_path / "stack.gwl"
    write_gwl(path, stack_columns(kept, PITCH_M, BASE_M, DZ_M, layout), PRINTER)
    back = read_gwl_stack(path, 3, 6, PITCH_M, BASE_M, DZ_M, layout.plate_floors_um * 1e-6)
    np.testing.assert_allclose(back, np.stack(maps), atol=1e-15)
    job = read_gwl(path)
    # supports: lines written between the plates, outside the aperture
    between = job.segments[(job.segments[:, 3] > 3.0) & (job.segments[:, 3] < 12)]
    assert between.shape[0] > 0
    assert np.all((between[:, 1] <= 0) | (between[:, 0] >= 6 * 0.78))


def test_reader_rejects_broken_jobs(tmp_path):
    path = tmp_path / "bad.gwl"
    path.write_text("ScanSpeed 10000\n0 0 0.05\n1 0 0.05\n")
    with pytest.raises(GwlError, match="no Write"):
        read_gwl(path)
    path.write_text("0 0 0.05\n1 zero 0.05\nWrite\n")
    with pytest.raises(GwlError, match="cannot read"):
        read_gwl(path)
    path.write_text("0 0 0.07\n1 0 0.07\nWrite\n")
    with pytest.raises(GwlError, match="mid-slice"):
        rasterise_tops(read_gwl(path), 1, 1, 1e-6, DZ_M)


def test_mid_slice_sections_of_an_exported_design_reproduce_every_level(tmp_path):
    """Sample design, exported: trimesh sections of mask_1.stl at (k + ½)·Δz against the level map, every slice."""
    design = Design.load(SAMPLE)
    result = export_design(design, tmp_path / "e", ExportOptions(formats=("stl", "gwl")))
    table = result.table
    tops = np.round((table.base_m + np.asarray(table.snapped_height_m)[design.level_indices[0]]) / DZ_M)
    mesh = trimesh.load(str(tmp_path / "e" / "mask_1.stl"), force="mesh")
    pitch_um = design.geometry.pitch_m * 1e6
    stl_area = np.array([section_area_um2(mesh, (k + 0.5) * 0.1) for k in range(int(tops.max()))])
    level_area = np.array([np.count_nonzero(tops > k) for k in range(int(tops.max()))]) * pitch_um**2
    # Diagonal-only contacts (two pixels on one diagonal above both of the other) are separated by moving the
    # corner 2.5 nm diagonally into each raised pixel over its whole height (fab/formats/stl_faces): each raised
    # pixel that reaches the slice loses a wedge ½·pitch·offset along each of its two sides at that corner where
    # the pixel across is empty. Predicted exactly here from the level map alone.
    padded = np.pad(tops, 1)
    nw, ne, sw, se = padded[:-1, :-1], padded[:-1, 1:], padded[1:, :-1], padded[1:, 1:]
    saddle_a = np.minimum(nw, se) > np.maximum(ne, sw)  # nw and se raised
    saddle_b = np.minimum(ne, sw) > np.maximum(nw, se)  # ne and sw raised
    half_wedge_um2 = 0.5 * pitch_um * min(SADDLE_OFFSET_UM, 0.02 * pitch_um)
    for k in range(int(tops.max())):
        up = {name: (q > k).astype(int) for name, q in (("nw", nw), ("ne", ne), ("sw", sw), ("se", se))}
        wedges = np.sum(saddle_a * (up["nw"] + up["se"]) * (2 - up["ne"] - up["sw"])
                        + saddle_b * (up["ne"] + up["sw"]) * (2 - up["nw"] - up["se"]))
        # float32 coordinates and corners shared by two separations: agreement to 1 % (at least a tenth of a wedge)
        predicted = wedges * half_wedge_um2
        assert level_area[k] - stl_area[k] == pytest.approx(predicted, abs=max(0.1 * half_wedge_um2, 0.01 * predicted))
    assert np.max(np.abs(stl_area - level_area) / level_area) < 0.005
    assert result.sheet["all_checks_passed"]
