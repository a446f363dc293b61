"""Weld safety and slivers of the exported mask meshes: sample design mnist-psq-lt-4, every mask.

For each mask STL (default printer, 100 nm grid): triangles, triangles per pixel, faces narrower than 1 nm
(smallest altitude), and the non-manifold edges left after welding vertices at 1 nm with trimesh
(``merge_vertices(digits_vertex=3)``, coordinates in µm). Writes benchmarks/results/mesh_weld.txt.

Run: .venv/bin/python benchmarks/mesh_weld.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import trimesh

from quaton_fab.design import Design
from quaton_fab.fab.export import ExportOptions, export_level_table
from quaton_fab.fab.formats.stl import write_stl

ROOT = Path(__file__).resolve().parent.parent


def sliver_fraction(mesh: trimesh.Trimesh, width_um: float = 1e-3) -> float:
    """Fraction of faces whose smallest altitude (2·area / longest edge) is below ``width_um``."""
    tri = mesh.triangles
    edges = np.linalg.norm(tri - np.roll(tri, 1, axis=1), axis=2)
    altitude = 2 * mesh.area_faces / edges.max(axis=1)
    return float(np.mean(altitude < width_um))


def main() -> None:
    design = Design.load(ROOT / "sample_designs" / "mnist-psq-lt-4")
    table, _ = export_level_table(design, ExportOptions())
    heights = np.asarray(table.snapped_height_m)[design.level_indices]
    lines = ["mask  triangles  per_pixel  slivers<1nm  nonmanifold_edges_after_1nm_weld  watertight_after_weld"]
    with tempfile.TemporaryDirectory() as tmp:
        for l, h in enumerate(heights, start=1):
            path = Path(tmp) / f"mask_{l}.stl"
            stats = write_stl(path, h, design.geometry.pitch_m, table.base_m, z_grid_m=table.z_step_m)
            mesh = trimesh.load(str(path), process=False, force="mesh")
            slivers = sliver_fraction(mesh)
            mesh.merge_vertices(digits_vertex=3)
            _, uses = np.unique(mesh.edges_sorted, axis=0, return_counts=True)
            lines.append(f"{l:4d}  {stats['triangles']:9d}  {stats['triangles'] / h.size:9.2f}  {slivers:11.4f}  "
                         f"{int(np.sum(uses != 2)):32d}  {mesh.is_watertight}")
    out = ROOT / "benchmarks" / "results" / "mesh_weld.txt"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
