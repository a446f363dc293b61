"""Length parsing: accepted spellings give metres; anything else is one clear UnitError."""

import math

import pytest

from quaton_fab.units import UnitError, format_length, parse_length, parse_phase, parse_phase_list


@pytest.mark.parametrize(
    "text, metres",
    [
        ("780nm", 780e-9),
        ("0.8um", 0.8e-6),
        ("0.8µm", 0.8e-6),
        ("0.8μm", 0.8e-6),
        ("40um", 40e-6),
        ("40 um", 40e-6),
        ("1.5mm", 1.5e-3),
        ("2e-6", 2e-6),
        ("1E-3m", 1e-3),
        (".5mm", 0.5e-3),
        ("3cm", 0.03),
        ("532NM", 532e-9),
    ],
)
def test_accepted_lengths(text, metres):
    assert math.isclose(parse_length(text), metres, rel_tol=1e-12)


@pytest.mark.parametrize(
    "text", ["5 parsecs", "-3um", "nan", "", "   ", "inf", "um", "3..2um", "0um", "1e400", "12 u m"]
)
def test_rejected_lengths(text):
    with pytest.raises(UnitError) as info:
        parse_length(text, name="--pitch")
    message = str(info.value)
    assert "\n" not in message and "--pitch" in message


def test_zero_allowed_only_when_asked():
    assert parse_length("0um", allow_zero=True) == 0.0
    with pytest.raises(UnitError):
        parse_length("0")


def test_numbers_are_metres():
    assert parse_length(2e-6) == 2e-6
    with pytest.raises(UnitError):
        parse_length(float("nan"))
    with pytest.raises(UnitError):
        parse_length(True)


def test_format_length_picks_readable_units():
    assert format_length(780e-9) == "780 nm"
    assert format_length(30.2e-6) == "30.2 µm"
    assert format_length(1.5e-3) == "1.5 mm"


@pytest.mark.parametrize(
    "text, radians",
    [("1.99pi", 1.99 * math.pi), ("pi", math.pi), ("π", math.pi), ("0.5π", 0.5 * math.pi), ("3.1rad", 3.1),
     ("90deg", math.pi / 2), ("1.57", 1.57), ("0", 0.0)],
)
def test_accepted_phases(text, radians):
    assert math.isclose(parse_phase(text), radians, rel_tol=1e-12)


@pytest.mark.parametrize("text", ["", "rad", "-1pi", "nan", "2 turns", "1e999pi"])
def test_rejected_phases(text):
    with pytest.raises(UnitError, match="--level-range"):
        parse_phase(text, name="--level-range")


def test_phase_lists():
    assert parse_phase_list("0,1.99pi") == [0.0, 1.99 * math.pi]
    with pytest.raises(UnitError):
        parse_phase_list("0,,pi")
