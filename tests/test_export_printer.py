"""Export on the printer's slicing grid: every top (base included) a whole number of slices, stored unambiguously."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from stl import mesh as stl_mesh
from typer.testing import CliRunner

from quaton_fab.cli.app import app
from quaton_fab.design import Design
from quaton_fab.fab.export import ExportError, ExportOptions, export_design, export_level_table
from quaton_fab.printing.printer import SLICING_CONVENTION

# A design on exact heights (not on the 100 nm grid): what the printer grid has to snap.
SAMPLE = Path(__file__).parent / "data" / "mnist-exact-heights"
DZ_UM = 0.1


@pytest.fixture(scope="module")
def design() -> Design:
    return Design.load(SAMPLE)


def _stored_z_um(path: Path) -> np.ndarray:
    return np.unique(stl_mesh.Mesh.from_file(str(path)).vectors[:, :, 2])  # float32 as stored


def test_default_printer_puts_every_top_on_the_100nm_grid(design, tmp_path):
    result = export_design(design, tmp_path / "e", ExportOptions(formats=("stl",)))
    table = result.table
    assert table.z_step_m == pytest.approx(100e-9)
    np.testing.assert_array_equal(table.z_steps, [0, 4, 7, 11])  # 0.359/0.718/1.077 µm → 0.4/0.7/1.1 µm
    for l in range(1, design.geometry.layers + 1):
        z = _stored_z_um(tmp_path / "e" / f"mask_{l}.stl")
        k = np.round(z.astype(np.float64) / DZ_UM)
        # Each stored z is the float32 nearest to k·Δz (built from the integer slice count, converted once) ...
        np.testing.assert_array_equal(z, (k * 100 / 1000).astype(np.float32))
        # ... so every mid-slice plane (k + ½)·Δz lies half a slice from every stored z: slicing is unambiguous.
        mid = (np.arange(int(k.max()) + 1) + 0.5) * DZ_UM
        assert np.min(np.abs(z.astype(np.float64)[:, None] - mid[None, :])) > 0.499 * DZ_UM
    extra = result.sheet["extra"]
    assert extra["printer"]["name"] == "2pp-63x-ip-dip" and extra["printer"]["convention"] == SLICING_CONVENTION
    levels = extra["snapping"]["levels"]
    assert [r["slices"] for r in levels] == [0, 4, 7, 11]
    assert levels[1]["phase_error_rad"] == pytest.approx(table.phase_error_rad[1])
    assert any("snapping heights" in w for w in extra["warnings"])
    assert extra["warnings"] == result.warnings


def test_off_grid_base_is_snapped_with_a_warning(design, tmp_path):
    result = export_design(design, tmp_path / "e", ExportOptions(formats=("stl",), base_m=2.05e-6))
    assert result.table.base_m == pytest.approx(2.1e-6, abs=1e-15)
    assert any("base 2.05 µm is not a whole number of 100 nm slices" in w for w in result.warnings)
    z = _stored_z_um(tmp_path / "e" / "mask_1.stl").astype(np.float64)
    assert np.all(np.abs(z / DZ_UM - np.round(z / DZ_UM)) < 1e-5)


def test_grayscale_keeps_exact_heights(design):
    table, warnings = export_level_table(design, ExportOptions(printer="grayscale"))
    assert table.z_step_m is None
    np.testing.assert_array_equal(table.snapped_height_m, table.height_m)
    assert not any("snapping" in w for w in warnings)


def test_overrides_and_incompatible_training_step(design):
    table, _ = export_level_table(design, ExportOptions(printer="grayscale", slicing_distance_m=50e-9))
    assert table.z_step_m == pytest.approx(50e-9)
    trained = dataclasses.replace(design, fabrication={**design.fabrication, "z_step_m": 150e-9})
    _, warnings = export_level_table(trained, ExportOptions())
    assert any("150 nm z-step, which is not a whole number" in w for w in warnings)
    _, warnings = export_level_table(
        dataclasses.replace(design, fabrication={**design.fabrication, "z_step_m": 200e-9}), ExportOptions())
    assert not any("not a whole number of the printer" in w for w in warnings)
    with pytest.raises(ExportError, match="same printer step"):
        ExportOptions(z_step_m=100e-9, slicing_distance_m=50e-9)


def test_gwl_needs_a_slicing_grid(design, tmp_path):
    with pytest.raises(ExportError, match="needs a printer with a slicing and hatching grid"):
        export_design(design, tmp_path / "e", ExportOptions(formats=("gwl",), printer="grayscale"))
    assert not (tmp_path / "e").exists()


def test_cli_printer_options(tmp_path):
    out = tmp_path / "e"
    result = CliRunner().invoke(app, ["export", str(SAMPLE), "--format", "stl", "--printer", "2pp-63x-ip-dip",
                                      "--slicing-distance", "100nm", "--hatching-distance", "100nm",
                                      "--base", "2.05um", "--out", str(out)])
    assert result.exit_code == 0, result.output
    sheet = json.loads((out / "fab_sheet.json").read_text())
    assert sheet["extra"]["snapping"]["base_slices"] == 21
    bad = CliRunner().invoke(app, ["export", str(SAMPLE), "--printer", "nanoscribe-9000", "--out", str(out / "x")])
    text = bad.output + (bad.stderr or "")
    assert bad.exit_code == 2 and "unknown printer profile" in text and "Traceback" not in text
