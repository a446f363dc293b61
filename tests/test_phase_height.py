"""The phase ↔ height formula has one home and gives the level table's numbers to the last bit."""

from __future__ import annotations

import math

import numpy as np

from quaton_fab.optics.phase_height import (
    height_2pi_m,
    height_of_phase,
    index_contrast,
    phase_of_height,
    slice_phase_rad,
)
from quaton_fab.printing.level_table import heights_to_phases, level_table


def test_height_and_phase_invert_each_other():
    dn = index_contrast(1.52, 1.0)
    phases = np.linspace(0.0, 2 * math.pi, 9)
    h = height_of_phase(phases, 780e-9, dn)
    np.testing.assert_allclose(phase_of_height(h, 780e-9, dn), phases, rtol=1e-14, atol=1e-15)
    assert math.isclose(float(height_of_phase(2 * math.pi, 780e-9, dn)), height_2pi_m(780e-9, dn), rel_tol=1e-15)
    assert math.isclose(height_2pi_m(780e-9, dn), 780e-9 / 0.52, rel_tol=1e-15)


def test_slice_phase_is_k0_dn_dz():
    dn = index_contrast(1.52, 1.33)
    assert math.isclose(slice_phase_rad(633e-9, dn, 50e-9), 2 * math.pi / 633e-9 * dn * 50e-9, rel_tol=1e-15)


def test_level_table_uses_the_same_floats():
    phases = np.array([0.0, 1.0, 2.5, 4.0])
    table = level_table(phases, "n=1.5", 780e-9, n_medium=1.0)
    dn = index_contrast(1.5, 1.0)
    assert np.array_equal(table.height_m, phases * 780e-9 / (2.0 * math.pi * dn))
    assert np.array_equal(table.height_m, height_of_phase(phases, 780e-9, dn))
    back = heights_to_phases(table.height_m, "n=1.5", 780e-9)
    assert np.array_equal(back, phase_of_height(table.height_m, 780e-9, dn))
    assert table.height_2pi_m == height_2pi_m(780e-9, dn)
