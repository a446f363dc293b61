"""One fallback chain for material, medium, base and z-step, and one builder of the level table."""

from __future__ import annotations

import numpy as np
import pytest

from quaton_fab.printing.defaults import DEFAULT_BASE_M, DEFAULT_MATERIAL
from quaton_fab.printing.level_table import level_table
from quaton_fab.printing.materials import get_material, parse_medium
from quaton_fab.printing.print_notes import base_on_grid, choice_warnings, snapping_warnings, trained_base_warnings
from quaton_fab.printing.resolve import (
    PrintChoices,
    build_level_table,
    resolve_base_m,
    resolve_material,
    resolve_n_medium,
    resolve_print,
)


def test_material_falls_back_from_asked_to_trained_to_default():
    assert resolve_material("fused-silica", {"material": "ip-dip"}).name == get_material("fused-silica").name
    assert resolve_material(None, {"material": "fused-silica"}).name == get_material("fused-silica").name
    assert resolve_material(None, None).name == get_material(DEFAULT_MATERIAL).name
    assert resolve_material(None, {"material": None}).name == get_material(DEFAULT_MATERIAL).name


def test_base_falls_back_from_asked_to_trained_to_default():
    assert resolve_base_m(3e-6, {"base_m": 1e-6}) == 3e-6
    assert resolve_base_m(0.0, {"base_m": 1e-6}) == 0.0
    assert resolve_base_m(None, {"base_m": 1e-6}) == 1e-6
    assert resolve_base_m(None, {"base_m": None}) == DEFAULT_BASE_M
    assert resolve_base_m(None, None) == DEFAULT_BASE_M


def test_medium_is_asked_for_or_the_designs():
    assert resolve_n_medium(None, 780e-9, 1.0) == 1.0
    assert resolve_n_medium("water", 780e-9, 1.0) == parse_medium("water", 780e-9)[1]
    assert resolve_n_medium(1.33, 780e-9, 1.0) == 1.33


def test_build_level_table_equals_level_table():
    phases = np.linspace(0, 2 * np.pi, 4, endpoint=False)
    choices = resolve_print({"material": "ip-dip", "base_m": 1e-6}, wavelength_m=780e-9, n_medium=1.0,
                            z_step_m=100e-9)
    assert choices == PrintChoices(get_material("ip-dip"), 1.0, 1e-6, 100e-9)
    built = build_level_table(phases, 780e-9, choices)
    direct = level_table(phases, "ip-dip", 780e-9, 1.0, 1e-6, 100e-9)
    assert built.to_dict() == direct.to_dict()


def test_notes():
    assert choice_warnings({}, get_material("ip-dip"), None, 780e-9) == []
    warned = choice_warnings({"material": "fused-silica", "z_step_m": 30e-9}, get_material("ip-dip"), 100e-9, 780e-9)
    assert len(warned) == 2 and "30 nm z-step" in warned[0] and "fused-silica" in warned[1]
    assert base_on_grid(2e-6, 100e-9) == (2e-6, [])
    snapped, notes = base_on_grid(2.04e-6, 100e-9)
    assert snapped == pytest.approx(2e-6) and len(notes) == 1
    assert trained_base_warnings(None, 1e-6) == [] and trained_base_warnings(1e-6, 1e-6) == []
    assert len(trained_base_warnings(2e-6, 1e-6)) == 1
    table = level_table(np.array([0.0, 1.0, 2.0]), "ip-dip", 780e-9, 1.0, 1e-6, 100e-9)
    assert len(snapping_warnings(table)) == 1
    assert snapping_warnings(level_table(np.array([0.0, 1.0]), "ip-dip", 780e-9)) == []
