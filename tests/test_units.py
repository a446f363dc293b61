"""Length parsing: accepted spellings give metres; anything else is one clear UnitError."""

import math

import pytest

from quaton_fab.units import UnitError, format_length, parse_length


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


@pytest.mark.parametrize("text", ["5 parsecs", "-3um", "nan", "", "   ", "inf", "um", "3..2um", "0um", "1e400", "12 u m"])
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
