"""Materials: dispersion formulas against tabulated indices, lookup, media, the table for the CLI."""

import json
import logging
import math

import pytest

from quaton_fab.printing.materials import (
    MATERIALS,
    Material,
    MaterialError,
    get_material,
    material_table,
    medium_table,
    parse_medium,
)

NM = 1e-9


@pytest.mark.parametrize(
    "name, table",
    [
        # Schmid et al. 2019 Sellmeier values as tabulated in research/fab_spec.md §1.3.
        ("IP-Dip", {532: 1.5575, 633: 1.5494, 780: 1.5430, 1550: 1.5322}),
        # Malitson 1965 (refractiveindex.info main/SiO2/Malitson), plus the textbook n_D = 1.4585.
        ("fused silica", {532: 1.4607, 589.3: 1.4585, 633: 1.4570, 780: 1.4537, 1550: 1.4440}),
        # Beadie et al. 2015 tabulated values.
        ("PMMA", {532: 1.4953, 633: 1.4908, 780: 1.4871, 1550: 1.4809}),
    ],
)
def test_dispersion_reproduces_tabulated_indices(name, table):
    mat = get_material(name)
    for lam_nm, n_expected in table.items():
        assert mat.index(lam_nm * NM) == pytest.approx(n_expected, abs=1e-4), (name, lam_nm)
        assert mat.in_range(lam_nm * NM)


def test_dispersion_is_normal_in_the_visible():
    for name in ("IP-Dip", "fused silica", "PMMA"):
        mat = get_material(name)
        assert mat.index(450 * NM) > mat.index(633 * NM) > mat.index(1000 * NM)


def test_sellmeier_matches_hand_evaluation():
    # Malitson's formula written out independently at 1.0 µm.
    l2 = 1.0
    n2 = 1 + 0.6961663 * l2 / (l2 - 0.0684043**2) + 0.4079426 * l2 / (l2 - 0.1162414**2) \
        + 0.8974794 * l2 / (l2 - 9.896161**2)
    assert get_material("fused silica").index(1e-6) == pytest.approx(math.sqrt(n2), rel=1e-14)


def test_cauchy_model_by_hand():
    mat = Material("test", "cauchy", (1.5, 0.01, 0.001), 0.3e-6, 2e-6, "test")
    # n = A + B/λ² + C/λ⁴ at λ = 0.5 µm: 1.5 + 0.04 + 0.016
    assert mat.index(0.5e-6) == pytest.approx(1.556, rel=1e-12)


@pytest.mark.parametrize("spec", ["IP-Dip", "ip-dip", "IPDIP", "Ip_Dip", " ip dip "])
def test_lookup_is_case_and_dash_insensitive(spec):
    assert get_material(spec).name == "IP-Dip"


@pytest.mark.parametrize("spec, name", [("fused-silica", "fused silica"), ("SiO2", "fused silica"),
                                        ("pmma", "PMMA"), ("ip-n162", "IP-n162"), ("sz-2080", "SZ2080"),
                                        ("Ormocomp", "OrmoComp"), ("ip-s", "IP-S"), ("IP-L", "IP-L")])
def test_aliases(spec, name):
    assert get_material(spec).name == name


def test_nominal_entries():
    nominal = {m.name: m.index(633 * NM) for m in MATERIALS if m.nominal}
    assert nominal == {"IP-S": 1.515, "IP-L": 1.52, "IP-n162": 1.62, "OrmoComp": 1.52, "SZ2080": 1.50}
    for name in ("IP-Dip", "fused silica", "PMMA"):
        assert not get_material(name).nominal
        assert get_material(name).source


def test_unknown_material_lists_known_names():
    with pytest.raises(MaterialError) as err:
        get_material("unobtainium")
    msg = str(err.value)
    assert "unobtainium" in msg and "IP-Dip" in msg and "PMMA" in msg and "\n" not in msg
    assert isinstance(err.value, ValueError)


def test_custom_index():
    mat = get_material("n=1.52")
    assert mat.model == "constant" and mat.index(633 * NM) == 1.52 and mat.index(1e-3) == 1.52
    assert mat.in_range(10e-6)
    for bad in ("n=0.9", "n=abc", "n=nan"):
        with pytest.raises(MaterialError):
            get_material(bad)


def test_out_of_range_is_logged_and_reported(caplog):
    mat = get_material("IP-Dip")
    assert not mat.in_range(10e-6)
    with caplog.at_level(logging.INFO, logger="quaton_fab.printing.materials"):
        n = mat.index(10e-6)
    assert math.isfinite(n)
    assert any("outside the validity range" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("bad", [0.0, -633e-9, float("nan"), float("inf"), "x"])
def test_bad_wavelength(bad):
    with pytest.raises(MaterialError):
        get_material("PMMA").index(bad)


def test_bad_material_definitions():
    with pytest.raises(MaterialError):
        Material("x", "lorentz", (1.0,), 0.0, 1.0, "s")
    with pytest.raises(MaterialError):
        Material("x", "sellmeier", (1.0, 0.01, 0.5), 0.0, 1.0, "s")
    with pytest.raises(MaterialError):
        Material("x", "constant", (1.5,), 2e-6, 1e-6, "s")


def test_media():
    assert parse_medium("air") == ("air", 1.0)
    assert parse_medium("Water") == ("water", 1.333)
    assert parse_medium("oil") == ("immersion oil", 1.518)
    assert parse_medium("immersion-oil") == ("immersion oil", 1.518)
    assert parse_medium("1.47")[1] == 1.47
    assert parse_medium(1.47)[1] == 1.47
    assert parse_medium("n=1.33")[1] == 1.33
    # Daimon & Masumura 2007 water: n ≈ 1.3330 near the D line, lower in the red than in the blue.
    _, n_d = parse_medium("water", wavelength_m=589.3 * NM)
    assert n_d == pytest.approx(1.3330, abs=5e-4)
    assert parse_medium("water", 450 * NM)[1] > parse_medium("water", 633 * NM)[1] > 1.33
    assert parse_medium("air", 633 * NM) == ("air", 1.0)
    for bad in ("0.5", "honey", "", -1.0):
        with pytest.raises(MaterialError):
            parse_medium(bad)


def test_material_table_rows():
    rows = material_table(633 * NM)
    assert [r["name"] for r in rows] == [m.name for m in MATERIALS]
    for r in rows:
        assert r["n"] == get_material(r["name"]).index(633 * NM)
        assert set(r) >= {"name", "model", "n", "lambda_min_m", "lambda_max_m", "source", "nominal", "in_range"}
        assert r["in_range"]
    assert rows[0]["range"] == "400–1600 nm"
    assert [r["range"] for r in medium_table()][0] == "any"
    json.dumps(rows, allow_nan=False)
    default = material_table()
    assert default[0]["wavelength_m"] == pytest.approx(589.3 * NM)
    json.dumps(medium_table(), allow_nan=False)


def test_material_table_survives_a_formula_without_a_real_index():
    rows = {row["name"]: row for row in material_table(10e-6)}
    assert rows["PMMA"]["n"] is None and not rows["PMMA"]["in_range"]
    assert rows["IP-Dip"]["n"] is not None
