"""The validity map kept in the package and the warning `train` gives outside it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from quaton_fab.optics.network import Geometry, rule_oversample
from quaton_fab.optics.relief import Relief
from quaton_fab.optics.validity import MAX_COMPLEX_ERROR, PLATE_MAP, VALIDITY_MAP, model_error, validity_warnings

LAM = 780e-9
RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"


def geometry(pitch_m: float, oversample: int, n_medium: float = 1.0) -> Geometry:
    return Geometry(wavelength_m=LAM, neurons=8, pitch_m=pitch_m, layers=1, d_in_m=0.0, spacing_m=20e-6,
                    d_out_m=20e-6, n_medium=n_medium, oversample=oversample)


def relief(n: float = 1.543) -> Relief:
    return Relief(n_material=n, level_phases_rad=(0.0, 1.0, 2.0, 3.0), level_heights_m=(0.0, 0.4e-6, 0.7e-6, 1.1e-6),
                  base_m=2e-6)


def measured_points(names: tuple[str, ...]) -> dict[float, dict]:
    """pitch/λ0 (3 decimals) → result entry; a later file's entry replaces an earlier one's at the same pitch."""
    points = {}
    for name in names:
        for entry in json.loads((RESULTS / name).read_text())["results"]:
            points[round(entry["pitch_over_wavelength"], 3)] = entry  # the table keeps 3 decimals
    return points


@pytest.mark.parametrize("names, table", [
    (("validity_map_no_bottom_face.json", "validity_map_gpu.json"), VALIDITY_MAP),  # 4×4 patches replace 2×2
    (("validity_map.json", "validity_map_gpu_plate.json"), PLATE_MAP),
])
def test_tables_are_the_measured_benchmark(names, table):
    points = measured_points(names)
    assert sorted(points) == [ratio for ratio, _ in next(iter(table.values()))]
    for ratio, entry in points.items():
        for row in entry["rows"]:
            if row["polarisation"] == "mean":
                assert model_error(row["model"], ratio, table) == pytest.approx(row["complex_mean"], abs=6e-4)


@pytest.mark.parametrize("model", ["thin", "multislice design rule", "multislice in-material rule"])
def test_warns_exactly_where_the_measured_error_exceeds_the_limit(model):
    n_mat = 1.543
    for ratio, error in VALIDITY_MAP[model]:
        pitch = ratio * LAM
        s = rule_oversample(pitch, LAM, n_mat if model == "multislice in-material rule" else 1.0)
        warnings = validity_warnings(geometry(pitch, s), None if model == "thin" else relief(n_mat))
        assert bool(warnings) == (error > MAX_COMPLEX_ERROR + 1e-12), (ratio, error, warnings)
        if warnings:
            assert model in warnings[0] and "VALIDITY" in warnings[0]


def test_below_the_map_warns_and_unmapped_materials_are_not_judged():
    assert validity_warnings(geometry(0.3e-6, 1), relief())
    assert validity_warnings(geometry(0.78e-6, 2), relief(n=2.4)) == []
    assert validity_warnings(geometry(0.78e-6, 2, n_medium=1.33), relief()) == []
