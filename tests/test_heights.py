"""Phase → height conversion checked against hand-computed values; snapping, refusals, inverses."""

import json
import math

import numpy as np
import pytest

from quaton_fab.printing.level_table import (
    HeightError,
    LevelTable,
    heights_to_levels,
    heights_to_phases,
    level_table,
    printable_phases,
)
from quaton_fab.printing.materials import Material, parse_medium

PI = math.pi


def uniform(n):
    return 2 * PI * np.arange(n) / n


def test_ip_dip_780nm_air_four_levels_by_hand():
    t = level_table(uniform(4), "IP-Dip", 780e-9)
    # h_1 = (π/2)·0.78 µm / (2π(1.5430 − 1)) = 0.78/(4·0.5430) µm
    h1_um = 0.78 / (4 * 0.5430)
    assert t.height_m[1] * 1e6 == pytest.approx(h1_um, rel=1e-4)
    assert t.height_m * 1e6 == pytest.approx(np.arange(4) * h1_um, rel=1e-4)
    assert t.height_2pi_m * 1e6 == pytest.approx(0.78 / 0.5430, rel=1e-4)  # 1.436 µm
    assert t.n_material == pytest.approx(1.5430, abs=1e-4) and t.n_medium == 1.0
    np.testing.assert_array_equal(t.snapped_height_m, t.height_m)
    np.testing.assert_array_equal(t.phase_error_rad, 0.0)
    assert t.z_steps is None and t.material == "IP-Dip"


def test_fused_silica_633nm_in_water_by_hand():
    # Two levels {0, π}; water taken as 1.333: h_1 = 0.633 µm / (2 (1.4570 − 1.333)) = 2.552 µm.
    t = level_table([0.0, PI], "fused silica", 633e-9, n_medium=1.333)
    assert t.height_m[1] * 1e6 == pytest.approx(0.633 / (2 * (1.4570 - 1.333)), rel=2e-4)
    # Dispersive water (Daimon 2007, n ≈ 1.3321 at 633 nm < 1.333) gives a larger Δn, so a shorter step.
    _, n_w = parse_medium("water", 633e-9)
    t2 = level_table([0.0, PI], "fused silica", 633e-9, n_medium=n_w)
    assert t2.height_m[1] * 1e6 == pytest.approx(0.633 / (2 * (1.4570 - n_w)), rel=2e-4)
    assert t2.height_m[1] < t.height_m[1]


def test_immersion_makes_steps_taller_than_in_air():
    air = level_table(uniform(8), "IP-Dip", 633e-9)
    oil = level_table(uniform(8), "IP-Dip", 633e-9, n_medium=1.518)
    ratio = (air.n_material - 1.0) / (oil.n_material - 1.518)
    assert oil.height_m[1:] / air.height_m[1:] == pytest.approx(ratio, rel=1e-12)


def _simple():
    # n = 1.5 in air at 1 µm: a 2π step is 2 µm, so four uniform levels are 0, 0.5, 1.0, 1.5 µm.
    return Material("n15", "constant", (1.5,), 0.0, 1.0, "test")


def test_snapping_and_phase_error_by_hand():
    t = level_table(uniform(4), _simple(), 1e-6, z_step_m=0.3e-6)
    np.testing.assert_allclose(t.height_m * 1e6, [0, 0.5, 1.0, 1.5], atol=1e-12)
    np.testing.assert_allclose(t.snapped_height_m * 1e6, [0, 0.6, 0.9, 1.5], atol=1e-12)
    # phase = 2π·0.5·h/1 µm: 0.6 µm → 0.6π (0.1π too much); 0.9 µm → 0.9π (0.1π too little).
    np.testing.assert_allclose(t.snapped_phase_rad, [0, 0.6 * PI, 0.9 * PI, 1.5 * PI], atol=1e-12)
    np.testing.assert_allclose(t.phase_error_rad, [0, 0.1 * PI, -0.1 * PI, 0], atol=1e-12)
    np.testing.assert_array_equal(t.z_steps, [0, 2, 3, 5])
    assert t.max_abs_phase_error_rad == pytest.approx(0.1 * PI)
    np.testing.assert_allclose(printable_phases(uniform(4), _simple(), 1e-6, z_step_m=0.3e-6),
                               t.snapped_phase_rad, atol=0)


def test_ip_dip_633nm_eight_levels_snapped_to_100nm():
    # h_2π = 0.633/0.5494 = 1.1522 µm, step 0.1440 µm → 0, .144, .288, .432, .576, .720, .864, 1.008 µm.
    t = level_table(uniform(8), "IP-Dip", 633e-9, z_step_m=0.1e-6)
    np.testing.assert_array_equal(t.z_steps, [0, 1, 3, 4, 6, 7, 9, 10])
    # level 1: 2π·0.5494·(0.100 − 0.1440)/0.633 ≈ −0.240 rad
    assert t.phase_error_rad[1] == pytest.approx(2 * PI * 0.5494 * (0.1 - 0.633 / 0.5494 / 8) / 0.633, abs=1e-3)


def test_base_is_added_to_printed_height_only():
    t = level_table(uniform(4), _simple(), 1e-6, base_m=2e-6)
    np.testing.assert_allclose(t.total_height_m * 1e6, [2.0, 2.5, 3.0, 3.5], atol=1e-12)
    np.testing.assert_allclose(t.height_m * 1e6, [0, 0.5, 1.0, 1.5], atol=1e-12)


@pytest.mark.parametrize("n_med", [1.518, 1.4570121246412515, 1.6])
def test_refuses_material_not_above_medium(n_med):
    with pytest.raises(HeightError, match="not above the medium"):
        level_table(uniform(4), "fused silica", 633e-9, n_medium=n_med)


@pytest.mark.parametrize("kwargs, match", [
    ({"z_step_m": -0.1e-6}, "z-step"), ({"z_step_m": 0.0}, "z-step"), ({"z_step_m": float("nan")}, "z-step"),
    ({"base_m": -1e-6}, "base"), ({"base_m": float("nan")}, "base"), ({"n_medium": 0.5}, "medium"),
])
def test_refuses_bad_lengths(kwargs, match):
    with pytest.raises(HeightError, match=match):
        level_table(uniform(4), "IP-Dip", 780e-9, **kwargs)


def test_refuses_snapping_that_merges_levels():
    # heights 0, 0.5, 1.0, 1.5 µm on a 0.8 µm grid: 0.5 → 0.8 and 1.0 → 0.8.
    with pytest.raises(HeightError, match="merges levels 1 and 2") as err:
        level_table(uniform(4), _simple(), 1e-6, z_step_m=0.8e-6)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("phases", [[0.0, PI, PI], [0.0, -0.1], [0.0, float("nan")], [], [[0.0, 1.0]]])
def test_refuses_bad_phases(phases):
    with pytest.raises(HeightError):
        level_table(phases, "IP-Dip", 780e-9)


def test_heights_to_phases_inverts_level_table():
    t = level_table(uniform(16), "PMMA", 1550e-9, n_medium=1.333)
    back = heights_to_phases(t.height_m, "PMMA", 1550e-9, 1.333)
    np.testing.assert_allclose(back, t.phase_rad, rtol=0, atol=1e-12)
    grid = np.broadcast_to(t.height_m, (3, 16))
    assert heights_to_phases(grid, "PMMA", 1550e-9, 1.333).shape == (3, 16)


def test_transmission_of_printed_levels_is_the_level_phase():
    # Optical path through the relief, h·n_mat, versus the same thickness of medium, h·n_med.
    t = level_table(uniform(8), "IP-Dip", 532e-9, n_medium=1.333)
    opd_m = t.height_m * t.n_material - t.height_m * 1.333
    np.testing.assert_allclose(np.exp(2j * PI * opd_m / 532e-9), np.exp(1j * t.phase_rad), atol=1e-12)


def test_heights_to_levels_round_trip_and_tolerance():
    t = level_table(uniform(8), "IP-Dip", 780e-9, base_m=1e-6, z_step_m=10e-9)
    rng = np.random.default_rng(0)
    idx = rng.integers(0, 8, size=(12, 12))
    noisy = t.snapped_height_m[idx] + rng.uniform(-0.4e-9, 0.4e-9, size=idx.shape)
    np.testing.assert_array_equal(heights_to_levels(noisy, t), idx)
    bad = t.snapped_height_m[idx].copy()
    bad[3, 5] += 5e-9
    with pytest.raises(HeightError, match=r"\(3, 5\)"):
        heights_to_levels(bad, t, tol_m=1e-9)
    assert heights_to_levels(bad, t, tol_m=6e-9)[3, 5] == idx[3, 5]
    with pytest.raises(HeightError):
        heights_to_levels([float("nan")], t)


def test_heights_to_levels_unsorted_levels():
    t = level_table([PI, 0.0, 0.5 * PI], _simple(), 1e-6)
    np.testing.assert_array_equal(heights_to_levels([1.0e-6, 0.0, 0.5e-6, 1.0e-6], t), [0, 1, 2, 0])


def test_to_dict_is_json_and_round_trips():
    t = level_table(uniform(4), "IP-Dip", 780e-9, base_m=2e-6, z_step_m=0.1e-6)
    d = json.loads(json.dumps(t.to_dict(), allow_nan=False))
    assert d["material"] == "IP-Dip" and d["z_steps"] == t.z_steps.tolist()
    assert d["height_2pi_m"] == pytest.approx(t.height_2pi_m)
    back = LevelTable.from_dict(d)
    for name in ("k", "phase_rad", "height_m", "snapped_height_m", "snapped_phase_rad", "phase_error_rad"):
        np.testing.assert_array_equal(getattr(back, name), getattr(t, name))
    assert (back.n_material, back.base_m, back.z_step_m) == (t.n_material, t.base_m, t.z_step_m)
    with pytest.raises(HeightError, match="n_material"):
        LevelTable.from_dict({k: v for k, v in d.items() if k != "n_material"})


def test_table_arrays_are_read_only():
    t = level_table(uniform(4), "IP-Dip", 780e-9)
    with pytest.raises(ValueError):
        t.height_m[0] = 1.0
