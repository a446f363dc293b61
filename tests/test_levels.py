"""LevelSet: construction, validation, wrap-aware nearest level, index↔phase, (de)serialisation.

Nearest-level results are checked against brute-force numpy references written independently here.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from quaton_fab.quant.levels import LevelSet, LevelSetError

TWO_PI = 2.0 * math.pi


def brute_circular_nearest(phi: np.ndarray, phases: np.ndarray) -> np.ndarray:
    """Index of the level with the smallest |exp(iφ) − exp(iφ_k)| (i.e. smallest circular distance)."""
    dist = np.abs(np.exp(1j * phi[..., None]) - np.exp(1j * phases))
    return np.argmin(dist, axis=-1)


def brute_clamped_nearest(phi: np.ndarray, phases: np.ndarray) -> np.ndarray:
    """Index of the level with the smallest |φ − φ_k| (values outside the range go to the end levels)."""
    return np.argmin(np.abs(phi[..., None] - phases), axis=-1)


def away_from_thresholds(phi: np.ndarray, levels: LevelSet, margin_rad: float = 1e-6) -> np.ndarray:
    """Mask of samples farther than margin from every decision threshold (mod 2π for periodic sets)."""
    c = levels.thresholds
    d = phi[..., None] - c
    if levels.periodic:
        d = np.mod(d + math.pi, TWO_PI) - math.pi
    return np.all(np.abs(d) > margin_rad, axis=-1)


# ------------------------------------------------------------------------------------------------ construction
def test_uniform_phases_are_2pi_k_over_n() -> None:
    for n in (2, 3, 4, 8, 16):
        levels = LevelSet.uniform(n)
        assert levels.kind == "circle" and levels.n == n
        np.testing.assert_allclose(levels.phases, [TWO_PI * k / n for k in range(n)], rtol=0, atol=1e-15)
        np.testing.assert_allclose(levels.steps.sum(), TWO_PI, rtol=1e-15)


def test_range_includes_both_ends_exactly() -> None:
    levels = LevelSet.range(4, 0.0, 1.99 * math.pi)
    assert levels.kind == "range"
    assert levels.phases[0] == 0.0 and levels.phases[-1] == 1.99 * math.pi
    np.testing.assert_allclose(np.diff(levels.phases), 1.99 * math.pi / 3, rtol=1e-14)
    assert levels.steps.shape == (3,) and levels.thresholds.shape == (3,)


def test_explicit_wraps_sorts_and_keeps_values() -> None:
    levels = LevelSet.explicit([TWO_PI + 0.5, 3.0, -1.0, 0.0])
    assert levels.kind == "list"
    np.testing.assert_allclose(levels.phases, [0.0, 0.5, 3.0, TWO_PI - 1.0], atol=1e-14)
    # periodic steps include the wrap step back to level 0 + 2π
    np.testing.assert_allclose(levels.steps, [0.5, 2.5, TWO_PI - 4.0, 1.0], atol=1e-14)
    np.testing.assert_allclose(levels.thresholds, [0.25, 1.75, (3.0 + TWO_PI - 1.0) / 2, TWO_PI - 0.5], atol=1e-14)


def test_phases_are_read_only() -> None:
    levels = LevelSet.uniform(4)
    with pytest.raises(ValueError):
        levels.phases[0] = 1.0


@pytest.mark.parametrize(
    ("build", "needle"),
    [
        (lambda: LevelSet.uniform(1), "1"),
        (lambda: LevelSet.uniform(2.5), "2.5"),
        (lambda: LevelSet.uniform(True), "True"),
        (lambda: LevelSet.range(4, 1.0, 1.0), "lo=1.0"),
        (lambda: LevelSet.range(4, 2.0, 1.0), "lo=2.0"),
        (lambda: LevelSet.range(4, 0.0, float("nan")), "nan"),
        (lambda: LevelSet.range(4, -1.0, 1.0), "-1.0"),
        (lambda: LevelSet.range(2, 0.0, TWO_PI), "coincide"),
        (lambda: LevelSet.range(5, 0.0, 2 * TWO_PI), "coincide"),
        (lambda: LevelSet.explicit([0.0, TWO_PI]), "coincide"),
        (lambda: LevelSet.explicit([1.0]), "1"),
        (lambda: LevelSet.explicit([0.0, float("inf")]), "inf"),
        (lambda: LevelSet.explicit([[0.0, 1.0]]), "(1, 2)"),
        (lambda: LevelSet.explicit(["a", "b"]), "'a'"),
    ],
)
def test_invalid_level_sets_raise_one_line_error_naming_the_value(build, needle: str) -> None:
    with pytest.raises(LevelSetError) as info:
        build()
    message = str(info.value)
    assert isinstance(info.value, ValueError)
    assert "\n" not in message and needle in message


# ------------------------------------------------------------------------------------------------ mapping
@pytest.mark.parametrize(
    "levels", [LevelSet.uniform(2), LevelSet.uniform(4), LevelSet.uniform(7), LevelSet.explicit([0.3, 1.0, 2.9, 5.5])]
)
def test_periodic_nearest_matches_brute_force_and_is_2pi_invariant(levels: LevelSet) -> None:
    rng = np.random.default_rng(0)
    phi = rng.uniform(-60.0, 60.0, size=4000)
    phi = phi[away_from_thresholds(phi, levels)]
    got = levels.nearest_index(torch.tensor(phi)).numpy()
    np.testing.assert_array_equal(got, brute_circular_nearest(phi, levels.phases))
    for m in (-3, 1, 5):
        shifted = levels.nearest_index(torch.tensor(phi + m * TWO_PI)).numpy()
        np.testing.assert_array_equal(shifted, got)


def test_circle_top_of_circle_maps_to_level_zero() -> None:
    levels = LevelSet.uniform(4)
    idx = levels.nearest_index(torch.tensor([TWO_PI - 0.1, TWO_PI, TWO_PI + 0.1, -0.1, 3 * math.pi / 2 + 0.1]))
    assert idx.tolist() == [0, 0, 0, 0, 3]


def test_range_nearest_clamps_and_matches_brute_force() -> None:
    levels = LevelSet.range(5, 0.2, 1.99 * math.pi)
    rng = np.random.default_rng(1)
    phi = rng.uniform(-30.0, 30.0, size=4000)
    phi = phi[away_from_thresholds(phi, levels)]
    got = levels.nearest_index(torch.tensor(phi)).numpy()
    np.testing.assert_array_equal(got, brute_clamped_nearest(phi, levels.phases))
    assert levels.nearest_index(torch.tensor([-1e6, 1e6, TWO_PI - 0.01])).tolist() == [0, 4, 4]


def test_circular_nearest_index_on_range_set_uses_the_circle() -> None:
    levels = LevelSet.range(2, 0.0, math.pi)
    # 2π − 0.1 is 0.1 rad from level 0 on the circle; clamping would pick π
    assert levels.circular_nearest_index(torch.tensor([TWO_PI - 0.1])).tolist() == [0]
    assert levels.nearest_index(torch.tensor([TWO_PI - 0.1])).tolist() == [1]


def test_nearest_index_keeps_shape_and_dtype_int64() -> None:
    levels = LevelSet.uniform(4)
    phi = torch.rand(3, 5, 7, dtype=torch.float32) * 10
    idx = levels.nearest_index(phi)
    assert idx.shape == (3, 5, 7) and idx.dtype == torch.int64
    assert int(idx.min()) >= 0 and int(idx.max()) <= 3


def test_index_to_phase_is_exact_and_validates() -> None:
    levels = LevelSet.explicit([0.1, 1.234567890123, 4.0])
    idx = torch.tensor([[2, 0], [1, 1]])
    out = levels.index_to_phase(idx)
    assert out.dtype == torch.float64
    assert out.numpy().tolist() == [[levels.phases[2], levels.phases[0]], [levels.phases[1], levels.phases[1]]]
    out32 = levels.index_to_phase(idx, dtype=torch.float32)
    assert torch.equal(out32, out.to(torch.float32))
    with pytest.raises(LevelSetError, match="3"):
        levels.index_to_phase(torch.tensor([3]))
    with pytest.raises(LevelSetError, match="-1"):
        levels.index_to_phase(torch.tensor([-1]))
    with pytest.raises(LevelSetError, match="float"):
        levels.index_to_phase(torch.tensor([0.0]))


def test_nearest_then_index_to_phase_is_idempotent_on_levels() -> None:
    for levels in (LevelSet.uniform(8), LevelSet.range(3, 0.5, 4.0), LevelSet.explicit([0.2, 2.0, 2.5])):
        phases = torch.tensor(levels.phases)
        idx = levels.nearest_index(phases)
        assert idx.tolist() == list(range(levels.n))
        assert torch.equal(levels.index_to_phase(idx), phases)


# ------------------------------------------------------------------------------------------------ serialisation
@pytest.mark.parametrize(
    "levels",
    [LevelSet.uniform(4), LevelSet.range(8, 0.0, 1.99 * math.pi), LevelSet.explicit([0.534, 3.267, 1.2, 6.0])],
)
def test_json_round_trip_is_bit_exact(levels: LevelSet) -> None:
    text = json.dumps(levels.to_dict())
    back = LevelSet.from_dict(json.loads(text))
    assert back == levels and back.kind == levels.kind
    assert back.phases.tobytes() == levels.phases.tobytes()
    assert json.loads(text)["phases_rad"] == levels.phases.tolist()


@pytest.mark.parametrize(
    ("d", "needle"),
    [
        ({"kind": "circle", "n": 4, "phases_rad": [0.0, 1.0, 2.0, 3.0]}, "do not match"),
        ({"kind": "spiral", "n": 4}, "spiral"),
        ({"kind": "range", "n": 4}, "lo_rad"),
        ({"kind": "list"}, "phases_rad"),
        ({"kind": "circle", "n": 4, "colour": "red"}, "colour"),
        ({"kind": "circle", "n": 5, "phases_rad": [0.0, 1.0]}, "do not match"),
        ({"kind": "range", "n": 3, "lo_rad": 0.0, "hi_rad": 1.0, "phases_rad": [0.0, 0.5, 1.0]}, None),
        ([0.0, 1.0], "list"),
    ],
)
def test_from_dict_rejects_bad_descriptions(d, needle: str | None) -> None:
    if needle is None:  # a valid hand-written description is accepted
        assert LevelSet.from_dict(d) == LevelSet.range(3, 0.0, 1.0)
        return
    with pytest.raises(LevelSetError) as info:
        LevelSet.from_dict(d)
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_equality_and_hash_are_by_value() -> None:
    assert LevelSet.uniform(4) == LevelSet.uniform(4)
    assert hash(LevelSet.uniform(4)) == hash(LevelSet.uniform(4))
    assert LevelSet.uniform(4) != LevelSet.explicit(LevelSet.uniform(4).phases)  # different kind
    assert LevelSet.uniform(4) != LevelSet.uniform(5)


def test_ladder_is_a_non_wrapping_level_set_that_round_trips():
    """The relief model's level set: the same phases, no wrap, nearest level on the line, exact file form."""
    ladder = LevelSet.ladder([0.0, math.pi / 2, math.pi, 3 * math.pi / 2])
    assert ladder.kind == "ladder" and not ladder.periodic
    np.testing.assert_array_equal(ladder.phases, LevelSet.uniform(4).phases)
    assert ladder.steps.shape == (3,)  # no step from the top level back to level 0
    phi = torch.tensor([-1.0, 0.7, 0.8, 5.4, 6.2, 7.0], dtype=torch.float64)
    assert ladder.nearest_index(phi).tolist() == [0, 0, 1, 3, 3, 3]  # 6.2 rad is level 3 here, level 0 on the circle
    assert LevelSet.from_dict(ladder.to_dict()) == ladder
    uneven = LevelSet.ladder([0.0, 1.1, 2.9, 4.0])  # e.g. z-step snapped heights
    assert LevelSet.from_dict(uneven.to_dict()) == uneven
    with pytest.raises(LevelSetError, match="flat list"):
        LevelSet.ladder([[0.0, 1.0]])
