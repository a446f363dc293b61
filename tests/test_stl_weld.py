"""Weld-safe meshes: closed and manifold after welding vertices at 1 nm (trimesh and numpy-stl), relief exact."""

import numpy as np
import pytest
import trimesh
from stl import mesh as stl_mesh

from quaton_fab.fab.formats.stl import WELD_TOLERANCE_UM, height_field_mesh, read_stl_heights, write_stl

PITCH_M = 0.78e-6
BASE_M = 2e-6
GRID_M = 0.1e-6


def _maps():
    rng = np.random.default_rng(11)
    checker = (np.indices((9, 9)).sum(axis=0) % 2) * 4 * GRID_M
    return {
        "checkerboard": checker,
        "random4": rng.integers(0, 4, (16, 16)) * 4 * GRID_M,
        "random16": rng.integers(0, 16, (12, 12)) * GRID_M,
        "diagonal_only": np.array([[0.0, 1e-6], [1e-6, 0.0]]),
    }


@pytest.mark.parametrize("name", list(_maps()))
def test_trimesh_weld_at_1nm_keeps_a_closed_manifold(tmp_path, name):
    heights = _maps()[name]
    path = tmp_path / "m.stl"
    write_stl(path, heights, PITCH_M, BASE_M, z_grid_m=GRID_M)
    mesh = trimesh.load(str(path), process=False, force="mesh")
    faces_before = len(mesh.faces)
    mesh.merge_vertices(digits_vertex=3)  # coordinates in µm: weld everything that rounds to the same 1 nm
    edges, uses = np.unique(mesh.edges_sorted, axis=0, return_counts=True)
    assert np.all(uses == 2), f"{int(np.sum(uses != 2))} non-manifold edges after a 1 nm weld"
    assert mesh.is_watertight and mesh.is_winding_consistent and mesh.is_volume
    assert len(mesh.faces) == faces_before  # no triangle collapsed
    back = read_stl_heights(path, heights.shape[0], PITCH_M, BASE_M)
    assert np.max(np.abs(back - heights)) < 1e-12  # the relief is exact at every pixel


@pytest.mark.parametrize("name", list(_maps()))
def test_numpy_stl_closed_after_rounding_to_1nm(tmp_path, name):
    path = tmp_path / "m.stl"
    write_stl(path, _maps()[name], PITCH_M, BASE_M, z_grid_m=GRID_M)
    solid = stl_mesh.Mesh.from_file(str(path))
    solid.vectors[:] = np.round(solid.vectors.astype(np.float64), 3).astype(np.float32)  # weld by rounding
    solid.update_normals()
    assert solid.is_closed(exact=True)


def test_no_sub_nanometre_slivers():
    mesh = height_field_mesh(_maps()["checkerboard"], PITCH_M, BASE_M, GRID_M)
    tri = mesh.vertices_um[mesh.faces].astype(np.float64)
    edges = np.linalg.norm(tri - np.roll(tri, 1, axis=1), axis=2)
    assert edges.min() > 4 * WELD_TOLERANCE_UM  # shortest edge: the 5 nm-wide separation at a diagonal contact
    used = np.unique(mesh.faces)
    points = mesh.vertices_um[used].astype(np.float64)
    # nearest distinct vertex: no two vertices within the weld tolerance of each other
    rounded = np.round(points / WELD_TOLERANCE_UM).astype(np.int64)
    assert np.unique(rounded, axis=0).shape[0] == points.shape[0]
