"""Each convention the fab sheet states is checked against the files (STL, GDS, PNG, BMP) and the relief model."""

import math

import gdstk
import numpy as np
import pytest
from PIL import Image
from stl import mesh as stl_mesh

from quaton_fab.fab.formats.gds import write_gds
from quaton_fab.fab.formats.heightmap import write_height_bmp, write_height_png
from quaton_fab.printing.level_table import level_table
from quaton_fab.fab.sheet import build_fab_sheet, conventions, pixel_square_um, render_fab_sheet_md
from quaton_fab.fab.formats.stl import write_stl
from quaton_fab.optics.relief import Relief

N, PITCH_M, BASE_M = 3, 1.5e-6, 2e-6
LEVELS = np.array([[1, 0, 0],
                   [0, 0, 0],
                   [0, 0, 2]])  # pixel (0, 0) is the only level-1 pixel, (2, 2) the only level-2 one


@pytest.fixture
def table():
    return level_table(2 * math.pi * np.arange(4) / 4, "IP-Dip", 780e-9, base_m=BASE_M)


def _sheet(table, orientation="base-first"):
    relief = {"orientation": orientation}
    return build_fab_sheet(table, pitch_m=PITCH_M, neurons=N, layers=1, spacing_m=30e-6, d_in_m=20e-6,
                           d_out_m=20e-6, extra={"simulation": {"relief": relief}})


def _square_text(sq):
    return f"x ∈ [{sq[0]:.4f}, {sq[2]:.4f}] µm, y ∈ [{sq[1]:.4f}, {sq[3]:.4f}] µm"


def test_pixel_00_is_where_the_sheet_says_in_stl_gds_png_and_bmp(table, tmp_path):
    sheet = _sheet(table)
    stated = conventions(sheet)["pixel (0, 0)"]
    sq = pixel_square_um(0, 0, N, PITCH_M)
    assert _square_text(sq) in stated and _square_text(sq) in render_fab_sheet_md(sheet)
    assert sheet["conventions"]["pixel (0, 0)"] == stated  # the JSON twin holds the same statements
    assert sq == pytest.approx([0.0, 3.0, 1.5, 4.5])
    heights = np.asarray(table.snapped_height_m)[LEVELS]
    # STL (numpy-stl): the only facets at the level-1 top cover exactly the stated square
    write_stl(tmp_path / "m.stl", heights, PITCH_M, BASE_M)
    tri = stl_mesh.Mesh.from_file(str(tmp_path / "m.stl")).vectors.astype(float)
    z1 = (BASE_M + table.snapped_height_m[1]) * 1e6
    top1 = tri[np.all(np.abs(tri[:, :, 2] - z1) < 1e-4, axis=1)]
    xy = top1[:, :, :2].reshape(-1, 2)
    np.testing.assert_allclose([*xy.min(0), *xy.max(0)], sq, atol=1e-4)
    # GDS (gdstk): the level-1 layer (layer 2) holds exactly that square
    write_gds(tmp_path / "m.gds", LEVELS[None], PITCH_M, table.snapped_height_m)
    cell = next(c for c in gdstk.read_gds(str(tmp_path / "m.gds")).cells if c.name == "MASK_1")
    (poly,) = [p for p in cell.get_polygons() if p.layer == 2]
    np.testing.assert_allclose(np.ravel(poly.bounding_box()), sq, atol=1e-9)
    # PNG and BMP (Pillow): image pixel (0, 0), top-left, is the level-1 grey; (2, 2) the level-2 one
    write_height_png(tmp_path / "m.png", heights)
    write_height_bmp(tmp_path / "m.bmp", heights, top_m=float(heights.max()))
    for name in ("m.png", "m.bmp"):
        with Image.open(tmp_path / name) as im:
            grey = np.asarray(im).astype(int)
        assert grey[0, 0] > 0 and np.count_nonzero(grey == grey[0, 0]) == 1
        assert grey[2, 2] > grey[0, 0]
        assert im.getpixel((0, 0)) == grey[0, 0]  # PIL (x=col, y=row) with y = 0 the top row


def test_stl_frame_is_right_handed_with_outward_winding(table, tmp_path):
    assert "right-handed" in conventions(_sheet(table))["handedness"]
    heights = np.asarray(table.snapped_height_m)[LEVELS]
    write_stl(tmp_path / "m.stl", heights, PITCH_M, BASE_M)
    solid = stl_mesh.Mesh.from_file(str(tmp_path / "m.stl"), calculate_normals=False)  # normals as stored
    v = solid.vectors.astype(float)
    cross = np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])  # right-hand rule
    cross /= np.linalg.norm(cross, axis=1)[:, None]
    np.testing.assert_allclose(cross, solid.normals, atol=1e-4)  # stored normals follow the winding
    zmax = v[:, :, 2].max()
    top = np.all(v[:, :, 2] == zmax, axis=1)
    assert np.all(cross[top, 2] > 0.999)  # the highest tops face +z (up, away from the substrate)
    bottom = np.all(v[:, :, 2] == 0, axis=1)
    assert bottom.any() and np.all(cross[bottom, 2] < -0.999)  # z = 0 is the substrate face
    assert solid.is_closed(exact=True)


@pytest.mark.parametrize("orientation, direction, first", [("base-first", "+z", "the bottom face of the base slab"),
                                                           ("relief-first", "−z", "the relief tops")])
def test_light_entry_face_follows_the_relief_model(table, orientation, direction, first):
    relief = Relief(n_material=table.n_material, level_phases_rad=tuple(table.phase_rad),
                    level_heights_m=tuple(table.snapped_height_m), base_m=BASE_M, orientation=orientation)
    order = relief.slice_order()
    # the relief model crosses slices bottom-up (increasing z above the base) for base-first, top-down otherwise
    assert (order == sorted(order)) == (direction == "+z")
    hops = relief.hop_layers_m([20e-6, 30e-6, 20e-6])
    assert (hops[0][1] == BASE_M) == (orientation == "base-first")  # base slab crossed before mask 1
    stated = conventions(_sheet(table, orientation))["light-entry face"]
    assert stated.startswith(first) and f"travels along {direction}" in stated


def test_view_direction_and_mirroring_are_stated(table):
    c = conventions(_sheet(table))
    assert "upright seen from +z" in c["view direction"]
    assert "mirrored left–right" in c["mirroring"] and "top-right" in c["mirroring"]
