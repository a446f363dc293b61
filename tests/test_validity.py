"""The validity map kept in the package and the warning `train` gives outside it."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from quaton_fab.optics.network import Geometry, acceptance_sin, rule_oversample
from quaton_fab.optics.relief import Relief
from quaton_fab.optics.validity import (
    CONE_MAP,
    CONES,
    MAX_COMPLEX_ERROR,
    PLATE_MAP,
    VALIDITY_MAP,
    model_error,
    validity_warnings,
)

LAM = 780e-9
RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"


def geometry(pitch_m: float, oversample: int, n_medium: float = 1.0, cone_sin: float = 1.0) -> Geometry:
    """One mask of 8 pixels whose hop to the detector gives the acceptance cone ``sin θ = cone_sin``."""
    hop = 0.0 if cone_sin >= 1.0 else 8 * pitch_m / math.tan(math.asin(cone_sin))
    return Geometry(wavelength_m=LAM, neurons=8, pitch_m=pitch_m, layers=1, d_in_m=0.0, spacing_m=20e-6,
                    d_out_m=hop, n_medium=n_medium, oversample=oversample)


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


def test_cone_map_is_the_measured_benchmark():
    points = measured_points(("validity_map_li.json",))
    assert sorted(points) == [ratio for ratio, _ in next(iter(CONE_MAP.values()))]
    seen = 0
    for ratio, entry in points.items():
        for row in entry["rows"]:
            if row["polarisation"] == "mean":
                assert row["max_sin"] in CONES
                got = model_error(row["model"], ratio, cone_sin=row["max_sin"])
                assert got == pytest.approx(row["complex_mean"], abs=6e-4)
                seen += 1
    assert seen == len(points) * len(CONES) * len(CONE_MAP)
    for model, rows in VALIDITY_MAP.items():  # the all-orders column
        assert rows == tuple((ratio, errors[-1]) for ratio, errors in CONE_MAP[model])


def test_plate_map_is_the_measured_benchmark():
    points = measured_points(("validity_map.json", "validity_map_gpu_plate.json"))  # 4×4 replaces 2×2 at 2 µm
    assert sorted(points) == [ratio for ratio, _ in next(iter(PLATE_MAP.values()))]
    for ratio, entry in points.items():
        for row in entry["rows"]:
            if row["polarisation"] == "mean":
                assert model_error(row["model"], ratio, PLATE_MAP) == pytest.approx(row["complex_mean"], abs=6e-4)


@pytest.mark.parametrize("model", ["thin", "multislice design rule", "multislice in-material rule"])
@pytest.mark.parametrize("cone", CONES)
def test_warns_exactly_where_the_measured_error_exceeds_the_limit(model, cone):
    n_mat = 1.543
    for ratio, errors in CONE_MAP[model]:
        error = errors[CONES.index(cone)]
        pitch = ratio * LAM
        s = rule_oversample(pitch, LAM, n_mat if model == "multislice in-material rule" else 1.0)
        g = geometry(pitch, s, cone_sin=cone)
        assert acceptance_sin(g) == pytest.approx(cone, abs=1e-9)
        warnings = validity_warnings(g, None if model == "thin" else relief(n_mat))
        assert bool(warnings) == (error > MAX_COMPLEX_ERROR + 1e-12), (ratio, cone, error, warnings)
        if warnings:
            assert model in warnings[0] and "VALIDITY" in warnings[0] and f"sin θ = {cone:.2f}" in warnings[0]


def test_a_narrow_cone_brings_2um_pixels_inside_and_0p78um_stays_outside():
    """The measured map: at 2 µm pixels only light the next plane cannot catch is modelled badly."""
    s = rule_oversample(2e-6, LAM, 1.543)
    assert validity_warnings(geometry(2e-6, s, cone_sin=0.3), relief()) == []
    assert validity_warnings(geometry(2e-6, s, cone_sin=1.0), relief())
    s = rule_oversample(0.78e-6, LAM, 1.543)
    assert validity_warnings(geometry(0.78e-6, s, cone_sin=0.3), relief())
    assert model_error("multislice in-material rule", 2e-6 / LAM, cone_sin=0.1) == pytest.approx(
        model_error("multislice in-material rule", 2e-6 / LAM, cone_sin=0.3))  # below the map: its first cone


def test_below_the_map_warns_and_unmapped_materials_are_not_judged():
    assert validity_warnings(geometry(0.3e-6, 1), relief())
    assert validity_warnings(geometry(0.78e-6, 2), relief(n=2.4)) == []
    assert validity_warnings(geometry(0.78e-6, 2, n_medium=1.33), relief()) == []
