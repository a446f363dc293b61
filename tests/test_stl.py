"""Watertight STL exporter: checked with trimesh, numpy-stl (exact) and physics (volume, heights)."""

import os

import numpy as np
import pytest
import trimesh
from stl import mesh as stl_mesh

from quaton_fab.fab.formats import stl as stl_module
from quaton_fab.fab.formats.stl import StlError, height_field_mesh, read_stl_heights, write_stl

PITCH_M = 0.4e-6
BASE_M = 2e-6
STEP_M = 0.0718e-6  # a 16-level IP-Dip-like step


def _random(n: int, levels: int = 16, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, levels, (n, n)) * STEP_M


def _checker(n: int) -> np.ndarray:
    return (np.indices((n, n)).sum(axis=0) % 2) * 0.5e-6


CASES = {
    "random16": _random(12),
    "checkerboard": _checker(8),
    "diagonal_only": np.array([[0.0, 1e-6], [1e-6, 0.0]]),
    "one_level": np.full((5, 5), 0.3e-6),
    "zero_heights": np.zeros((4, 4)),
    "single_pixel": np.array([[0.7e-6]]),
    "blocks": np.kron(np.random.default_rng(2).integers(0, 4, (3, 3)), np.ones((4, 4))) * 0.2e-6,
}


def _load(path) -> trimesh.Trimesh:
    return trimesh.load(str(path), force="mesh")


@pytest.mark.parametrize("name", list(CASES))
def test_written_mesh_is_watertight_for_trimesh_and_numpy_stl(tmp_path, name):
    heights = CASES[name]
    path = tmp_path / f"{name}.stl"
    stats = write_stl(path, heights, PITCH_M, BASE_M)
    assert stats["watertight"] is True
    with open(path, "rb") as stream:
        stream.seek(80)
        assert int.from_bytes(stream.read(4), "little") == stats["triangles"]  # binary STL
    assert path.stat().st_size == 84 + 50 * stats["triangles"]
    mesh = _load(path)
    assert mesh.is_watertight and mesh.is_winding_consistent and mesh.is_volume
    assert stl_mesh.Mesh.from_file(str(path)).is_closed(exact=True)


@pytest.mark.parametrize("name", list(CASES))
def test_volume_is_base_plus_pixel_columns(tmp_path, name):
    heights = CASES[name]
    stats = write_stl(tmp_path / "m.stl", heights, PITCH_M, BASE_M)
    volume = _load(tmp_path / "m.stl").volume  # µm³
    pitch_um, base_um = PITCH_M * 1e6, BASE_M * 1e6
    expected = pitch_um**2 * (heights.size * base_um + heights.sum() * 1e6)
    # Diagonal-only contacts are separated by a tiny offset (module docstring): bounded volume change.
    slack = stats["saddle_corners"] * 2 * pitch_um * stats["saddle_offset_um"] * heights.max() * 1e6
    assert abs(volume - expected) <= slack + 1e-6 * expected


@pytest.mark.parametrize("seed", range(12))
def test_random_few_level_maps_are_closed_manifolds(seed):
    """Few levels give many diagonal contacts next to merged flat regions: the hardest case."""
    rng = np.random.default_rng(100 + seed)
    rows, cols = rng.integers(1, 11, 2)
    base = rng.integers(0, 2 + seed % 3, (int(rows), int(cols)))
    heights = np.kron(base, np.ones((1 + seed % 2, 1 + seed % 3))) * 0.25e-6
    mesh = height_field_mesh(heights, PITCH_M, BASE_M)
    exact = trimesh.Trimesh(mesh.vertices_um.astype(np.float64), mesh.faces, process=False)
    merged = trimesh.Trimesh(mesh.vertices_um.astype(np.float64), mesh.faces, process=True)
    for candidate in (exact, merged):
        assert candidate.is_watertight and candidate.is_winding_consistent and candidate.is_volume
    assert len(merged.vertices) == np.unique(mesh.faces).size  # no two vertices share a position
    expected = (PITCH_M * 1e6) ** 2 * (heights.size * BASE_M * 1e6 + heights.sum() * 1e6)
    slack = mesh.saddle_corners * 2 * PITCH_M * 1e6 * mesh.offset_um * heights.max() * 1e6
    assert abs(merged.volume - expected) <= slack + 1e-6 * expected


def test_saddle_free_map_has_exact_volume(tmp_path):
    i, j = np.indices((9, 7))
    heights = ((i % 3) + 2 * (j % 4)) * STEP_M  # additive in row and column: no diagonal-only contact
    stats = write_stl(tmp_path / "m.stl", heights, PITCH_M, BASE_M)
    assert stats["saddle_corners"] == 0
    expected = (PITCH_M * 1e6) ** 2 * (heights.size * 2.0 + heights.sum() * 1e6)
    assert _load(tmp_path / "m.stl").volume == pytest.approx(expected, rel=2e-7)


@pytest.mark.parametrize("name", list(CASES))
def test_heights_read_back_within_1nm(tmp_path, name):
    heights = CASES[name]
    path = tmp_path / "m.stl"
    write_stl(path, heights, PITCH_M, BASE_M)
    back = read_stl_heights(path, heights.shape[0], PITCH_M, BASE_M)
    assert back.shape == heights.shape
    assert np.max(np.abs(back - heights)) < 1e-9


def test_layout_is_upright_with_origin_at_lower_left(tmp_path):
    heights = np.zeros((3, 3))
    heights[0, 2] = 1e-6  # row 0 (top of the image), col 2 (right)
    mesh = height_field_mesh(heights, 1e-6, BASE_M)
    top = mesh.triangles[np.all(mesh.triangles[:, :, 2] == np.float32(3.0), axis=1)]
    assert np.allclose(top[:, :, 0].min(), 2.0) and np.allclose(top[:, :, 0].max(), 3.0)
    assert np.allclose(top[:, :, 1].min(), 2.0) and np.allclose(top[:, :, 1].max(), 3.0)
    corners = mesh.triangles.reshape(-1, 3)
    assert np.allclose(corners.min(axis=0), [0, 0, 0]) and np.allclose(corners.max(axis=0), [3, 3, 3])


def test_stored_normals_point_outward(tmp_path):
    path = tmp_path / "m.stl"
    write_stl(path, _checker(6) + _random(6, 4, seed=5), PITCH_M, BASE_M)
    data = stl_mesh.Mesh.from_file(str(path), calculate_normals=False)
    stored = data.normals / np.linalg.norm(data.normals, axis=1, keepdims=True)
    loaded = trimesh.Trimesh(data.vectors.reshape(-1, 3), np.arange(len(data.vectors) * 3).reshape(-1, 3))
    assert np.min(np.sum(stored * loaded.face_normals, axis=1)) > 0.999


def test_triangle_count_is_euler_minimal_and_well_below_boxes():
    n = 24
    mesh = height_field_mesh(_random(n, seed=4), PITCH_M, BASE_M)
    used = np.unique(mesh.faces).size
    assert mesh.faces.shape[0] == 2 * used - 4  # closed genus-0 surface without redundant triangles
    assert mesh.faces.shape[0] < 0.75 * 12 * n * n
    flat = height_field_mesh(np.kron(_random(4, seed=1), np.ones((6, 6))), PITCH_M, BASE_M)
    assert flat.faces.shape[0] < 0.2 * 12 * n * n


def test_watertight_check_detects_flipped_and_missing_faces():
    mesh = height_field_mesh(_random(5, seed=8), PITCH_M, BASE_M)
    assert mesh.is_watertight()
    flipped = mesh.faces.copy()
    flipped[7] = flipped[7, ::-1]
    replace = stl_module.HeightFieldMesh
    assert not replace(mesh.vertices_um, flipped, mesh.normals, 0, mesh.offset_um).is_watertight()
    assert not replace(mesh.vertices_um, mesh.faces[1:], mesh.normals[1:], 0, mesh.offset_um).is_watertight()


def test_diagonal_contacts_are_separated_and_counted():
    mesh = height_field_mesh(_checker(5), PITCH_M, BASE_M)
    assert mesh.saddle_corners == 16  # every interior corner of a 5x5 checkerboard
    edges = np.sort(np.concatenate([mesh.faces[:, [0, 1]], mesh.faces[:, [1, 2]], mesh.faces[:, [2, 0]]]), axis=1)
    _, uses = np.unique(edges, axis=0, return_counts=True)
    assert np.all(uses == 2)


@pytest.mark.parametrize(
    "heights, pitch, base, message",
    [
        (np.zeros((2, 2)), PITCH_M, 0.0, "base_m"),
        (np.zeros((2, 2)), PITCH_M, -1e-6, "base_m"),
        (np.zeros((2, 2)), 0.0, BASE_M, "pitch_m"),
        (np.zeros((2, 2)), -1e-6, BASE_M, "pitch_m"),
        (np.full((2, 2), np.nan), PITCH_M, BASE_M, "NaN"),
        (np.full((2, 2), -1e-7), PITCH_M, BASE_M, ">= 0"),
        (np.zeros(4), PITCH_M, BASE_M, "2-D"),
        (np.zeros((2, 2), dtype=complex), PITCH_M, BASE_M, "real"),
    ],
)
def test_bad_input_raises_one_line_error_and_leaves_no_file(tmp_path, heights, pitch, base, message):
    with pytest.raises(StlError, match=message) as info:
        write_stl(tmp_path / "x.stl", heights, pitch, base)
    assert isinstance(info.value, ValueError)
    assert "\n" not in str(info.value)
    assert os.listdir(tmp_path) == []


def test_failed_write_leaves_no_partial_file(tmp_path, monkeypatch):
    def broken_replace(source, target):
        raise OSError("disk full")

    monkeypatch.setattr(stl_module.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        write_stl(tmp_path / "x.stl", _random(4), PITCH_M, BASE_M)
    assert os.listdir(tmp_path) == []


def test_reader_rejects_wrong_geometry(tmp_path):
    path = tmp_path / "m.stl"
    write_stl(path, _random(5), PITCH_M, BASE_M)
    with pytest.raises(StlError, match="neurons"):
        read_stl_heights(path, 6, PITCH_M, BASE_M)
    with pytest.raises(StlError, match="cannot read"):
        read_stl_heights(tmp_path / "missing.stl", 5, PITCH_M, BASE_M)
