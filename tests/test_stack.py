"""The printable stack is ONE closed manifold solid (manifold3d union), read back plate by plate."""

import os

import numpy as np
import pytest
import trimesh
from stl import mesh as stl_mesh

from quaton_fab.fab.formats.stack import SPAN_RATIO, read_stack_heights, stack_layout, write_stack_stl
from quaton_fab.fab.formats.stl import StlError

PITCH_M = 0.8e-6
BASE_M = 2e-6
GRID_M = 0.1e-6


def _maps(count: int, n: int = 8, levels: int = 4) -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    return [rng.integers(0, levels, (n, n)) * 3 * GRID_M for _ in range(count)]


def test_stack_is_one_closed_manifold_body_without_overlap(tmp_path):
    maps = _maps(3)
    path = tmp_path / "stack.stl"
    stats = write_stack_stl(path, maps, PITCH_M, BASE_M, 20e-6, z_grid_m=GRID_M)
    assert stats["bodies"] == 1 and stats["watertight"] is True
    mesh = trimesh.load(str(path), force="mesh")
    assert mesh.is_watertight and mesh.is_winding_consistent and mesh.is_volume
    assert mesh.body_count == 1
    # No self-overlap: the solid's volume is plates + pillars minus the parts of the pillars inside the slabs,
    # computed here independently of the mesh.
    pitch_um, base_um = PITCH_M * 1e6, BASE_M * 1e6
    frame_um, pillar_um = stats["frame_um"], stats["supports"]["size_um"][0]
    plate_area = (8 * pitch_um + 2 * frame_um) ** 2
    plates = sum(plate_area * base_um + pitch_um**2 * m.sum() * 1e6 for m in maps)
    pillars = stats["supports"]["count"] * pillar_um**2 * (20.0 - base_um)
    # Diagonal-only contacts are separated by a 10 nm chamfer (fab/formats/stl_faces.py): a bounded volume change.
    slack = stats["saddle_corners"] * 2 * pitch_um * stats["saddle_offset_um"] * max(m.max() for m in maps) * 1e6
    assert abs(mesh.volume - (plates + pillars)) <= slack + 1e-6 * (plates + pillars)
    assert mesh.volume == pytest.approx(stats["expected_volume_um3"], rel=1e-9)
    assert stl_mesh.Mesh.from_file(str(path)).is_closed(exact=True)


def test_stack_stays_manifold_after_a_1nm_weld(tmp_path):
    checker = (np.indices((6, 6)).sum(axis=0) % 2) * 5 * GRID_M  # every interior corner a diagonal contact
    path = tmp_path / "stack.stl"
    write_stack_stl(path, [checker, checker[::-1]], PITCH_M, BASE_M, 15e-6, z_grid_m=GRID_M)
    mesh = trimesh.load(str(path), process=False, force="mesh")
    mesh.merge_vertices(digits_vertex=3)  # µm: weld everything closer than 1 nm
    assert mesh.is_watertight and mesh.is_winding_consistent and mesh.is_volume and mesh.body_count == 1


def test_each_plate_reads_back_with_its_relief_and_spacing(tmp_path):
    maps = _maps(4, n=6)
    path = tmp_path / "stack.stl"
    write_stack_stl(path, maps, PITCH_M, BASE_M, 12e-6, z_grid_m=GRID_M)
    heights, floors = read_stack_heights(path, 4, 6, PITCH_M, BASE_M)
    assert np.max(np.abs(heights - np.stack(maps))) < 1e-12 * 1e3
    np.testing.assert_allclose(np.diff(floors), 12e-6, atol=1e-12)
    with pytest.raises(StlError, match="plate bottoms"):
        read_stack_heights(path, 3, 6, PITCH_M, BASE_M)


def test_supports_follow_the_span_rule():
    # A 200 µm aperture on a 2 µm plate: pillars every <= 25 × 2 µm along each side, corners included.
    layout = stack_layout(2, 250, 250, 0.8, 2.0, 20.0, 3.0)
    xs = np.unique(layout.pillar_xy_um[:, 0])
    assert np.max(np.diff(xs)) <= SPAN_RATIO * 2.0 + 1e-9
    assert xs[0] == pytest.approx(-layout.frame_um / 2) and xs[-1] == pytest.approx(200 + layout.frame_um / 2)
    assert layout.gap_um >= layout.pillar_um  # drainage: open sides between pillars
    small = stack_layout(2, 8, 8, 0.8, 2.0, 20.0, 3.0)
    assert small.pillar_xy_um.shape[0] == 4  # corners only when the side is shorter than the span


def test_stack_refuses_overlapping_plates_and_off_grid_pitch(tmp_path):
    with pytest.raises(StlError, match="plate pitch"):
        write_stack_stl(tmp_path / "s.stl", _maps(2), PITCH_M, BASE_M, 2e-6)
    with pytest.raises(StlError, match="slices"):
        write_stack_stl(tmp_path / "s.stl", _maps(2), PITCH_M, BASE_M, 20.05e-6, z_grid_m=GRID_M)
    assert os.listdir(tmp_path) == []
