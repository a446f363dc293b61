"""The rigorous cross-check: torcwa against the Airy formula and grcwa, convergence, the scalar models, the CLI.

Small harmonics keep each solve well under a second; the grcwa oracle and its conventions are those of
``tests/test_relief_rcwa.py`` (incidence from a semi-infinite base, TE = E along the grooves).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import test_relief_rcwa as oracle
from quaton_fab.cli.app import app
from quaton_fab.analysis.crosscheck import (
    PatchSetup,
    crosscheck_export,
    cut_patches,
    in_material_rule,
    multislice_orders,
    order_errors,
    score_models,
    summarise,
    thin_orders,
)
from quaton_fab.design import Design
from quaton_fab.fab.sheet import read_fab_sheet
from quaton_fab.analysis.sheet_check import check_sheet
from quaton_fab.optics.relief import Relief
from quaton_fab.analysis.verify import verify_export
from quaton_fab.optics.rigorous import RigorousError, propagating_orders, solve_patch, solver_wavelength_m

LAM = 780e-9
N_MAT = 1.543
runner = CliRunner()


def airy(d_m: float, n1: float = 1.0, n2: float = N_MAT, n3: float = 1.0, lam: float = LAM) -> complex:
    """Amplitude transmission of a slab (entry face to exit face), exp(−iωt) convention."""
    r12, t12 = (n1 - n2) / (n1 + n2), 2 * n1 / (n1 + n2)
    r23, t23 = (n2 - n3) / (n2 + n3), 2 * n2 / (n2 + n3)
    b = 2 * math.pi * n2 * d_m / lam
    return t12 * t23 * np.exp(1j * b) / (1 + r12 * r23 * np.exp(2j * b))


def zero(orders) -> int:
    return int(np.flatnonzero((orders.orders == 0).all(axis=1))[0])


@pytest.mark.parametrize("base_m", [0.5e-6, 2.0e-6, 2.37e-6])
def test_flat_slab_matches_airy_amplitude_and_phase(base_m):
    out = solve_patch(np.zeros((1, 1)), pitch_m=0.6e-6, wavelength_m=LAM, n_material=N_MAT, n_medium=1.0,
                      base_m=base_m, harmonics=2)
    expected = airy(base_m)
    for amp in (out.te, out.tm):
        assert abs(amp[zero(out), 0]) == pytest.approx(abs(expected), abs=1e-7)
        assert np.angle(amp[zero(out), 0] / expected) == pytest.approx(0.0, abs=1e-7)
        assert abs(amp[zero(out), 1]) < 1e-9  # no cross-polarisation from a slab
    assert out.transmitted("TE") == pytest.approx(abs(expected) ** 2, abs=1e-7)


def test_uniform_patch_equals_the_slab():
    h = 0.7e-6
    out = solve_patch(np.full((2, 2), h), pitch_m=0.9e-6, wavelength_m=LAM, n_material=N_MAT, n_medium=1.0,
                      base_m=2e-6, harmonics=4)
    amp = out.te[:, 0]
    assert abs(amp[zero(out)] - airy(2e-6 + h)) < 1e-6
    assert np.max(np.abs(np.delete(amp, zero(out)))) < 1e-6  # no diffraction
    # the multislice model of the same uniform patch: only the zero order, phase k0·n_mat·(base + h)
    relief = Relief(n_material=N_MAT, level_phases_rad=(0.0, 1.0), level_heights_m=(0.0, h), base_m=2e-6)
    z = int(np.flatnonzero((propagating_orders(1.8e-6, LAM, 1.0) == 0).all(axis=1))[0])
    for wpm in (False, True):  # the multislice and the wave propagation method
        ms = multislice_orders(np.full((2, 2), h), relief, pitch_m=0.9e-6, wavelength_m=LAM, n_medium=1.0,
                               oversample=3, wpm=wpm)
        assert abs(ms[z] - np.exp(2j * math.pi * N_MAT * (2e-6 + h) / LAM)) < 1e-9
        assert np.max(np.abs(np.delete(ms, z))) < 1e-9


def binary_grating(pixel_m: float, h_m: float) -> np.ndarray:
    """A 2×2 patch invariant along y: columns x = 0 (level 0) and x = 1 (height h) — a 1D binary grating."""
    return np.array([[0.0, h_m], [0.0, h_m]])


def test_binary_grating_matches_grcwa_te():
    pixel, h = 1.0e-6, LAM / (2 * (N_MAT - 1.0))
    out = solve_patch(binary_grating(pixel, h), pitch_m=pixel, wavelength_m=LAM, n_material=N_MAT, n_medium=1.0,
                      base_m=0.0, harmonics=6, semi_infinite_base=True)
    ref, _, _ = oracle.rcwa_efficiencies([0.0, h], pixel, n_orders=41, pol="TE")
    mmax = (len(ref) - 1) // 2
    ours = np.array([np.sum(np.abs(out.te[(out.orders == (m, 0)).all(axis=1)]) ** 2) for m in range(-mmax, mmax + 1)])
    assert np.max(np.abs(ours - ref)) < 5e-3, (ours, ref)
    assert np.sum(np.abs(out.te[out.orders[:, 1] != 0]) ** 2) < 1e-8  # invariant along y: no (m, n≠0) orders


def test_rigorous_converges_in_harmonics():
    pixel, h = 1.0e-6, LAM / (2 * (N_MAT - 1.0))
    runs = {m: solve_patch(binary_grating(pixel, h), pitch_m=pixel, wavelength_m=LAM, n_material=N_MAT,
                           n_medium=1.0, base_m=1e-6, harmonics=m) for m in (3, 5, 7)}
    err = {m: order_errors(runs[m].te, 1.0, runs[7].te, 1.0)[1] for m in (3, 5)}
    assert err[5] < err[3]
    assert err[5] < 0.7 * err[3] and err[5] < 0.06


def test_scalar_models_agree_with_rigorous_for_a_shallow_wide_relief():
    """Wide pixels (3 µm) and a shallow step: every model is close; the thin model is the worst."""
    lv = (0.0, 0.1e-6)
    relief = Relief(n_material=N_MAT, level_phases_rad=(0.0, 1.0), level_heights_m=lv, base_m=1e-6)
    setup = PatchSetup(3e-6, LAM, N_MAT, 1.0, 1e-6, "base-first", max(lv))
    patch = np.array([[0.0, 0.1e-6], [0.1e-6, 0.0]])
    s = in_material_rule(3e-6, LAM, N_MAT)
    models = {"thin": ("thin", None, 1), "ms": ("multislice", relief, s), "wpm": ("wpm", relief, s)}
    rows = {(r["model"], r["polarisation"]): r for r in summarise(score_models(setup, models, [patch], harmonics=9))}
    assert rows[("ms", "mean")]["complex_mean"] < 0.10
    assert rows[("wpm", "mean")]["complex_mean"] < 0.10
    assert rows[("thin", "mean")]["complex_mean"] < 0.25
    assert rows[("rigorous", "TE vs TM")]["complex_mean"] < 0.10


def test_thin_orders_of_a_flat_screen_and_metrics():
    amp = thin_orders(np.zeros((3, 3)), n_material=N_MAT, pitch_m=1e-6, wavelength_m=LAM, n_medium=1.0)
    orders = propagating_orders(3e-6, LAM, 1.0)
    assert np.allclose(amp[(orders == 0).all(axis=1)], 1.0)
    assert np.allclose(np.delete(amp, np.flatnonzero((orders == 0).all(axis=1))), 0.0, atol=1e-12)
    a = np.array([1.0, 0.5j, 0.2])
    assert order_errors(a, 1.0, a * 2, 2.0) == pytest.approx((0.0, 0.0), abs=1e-12)  # own-flat referencing
    assert order_errors(-a, 1.0, a, 1.0)[1] == pytest.approx(2.0)


def test_bad_inputs_raise_one_line_errors():
    with pytest.raises(RigorousError, match="harmonics"):
        solve_patch(np.zeros((2, 2)), pitch_m=1e-6, wavelength_m=LAM, n_material=N_MAT, n_medium=1.0, base_m=0.0,
                    harmonics=1)
    with pytest.raises(RigorousError, match="square"):
        solve_patch(np.zeros((2, 3)), pitch_m=1e-6, wavelength_m=LAM, n_material=N_MAT, n_medium=1.0, base_m=0.0,
                    harmonics=4)
    assert solver_wavelength_m(4 * 0.78e-6, LAM, (1.0,)) > LAM  # an exactly grazing order is detuned
    assert solver_wavelength_m(3e-6, LAM, (1.0,)) == LAM


def test_cut_patches_seeded():
    heights = np.arange(2 * 6 * 6, dtype=float).reshape(2, 6, 6)
    a, b = cut_patches(heights, 3, 4, seed=5), cut_patches(heights, 3, 4, seed=5)
    assert all(np.array_equal(x[3], y[3]) and x[:3] == y[:3] for x, y in zip(a, b))
    m, r, c, block = a[0]
    assert np.array_equal(block, heights[m, r:r + 3, c:c + 3])


# ------------------------------------------------------------------------------------------------------- CLI
def run(*args: str):
    return runner.invoke(app, list(args))


def one_line_error(result, needle: str) -> None:
    assert result.exit_code == 2, result.output
    text = result.stderr.strip() if result.stderr else result.output.strip()
    assert "Traceback" not in result.output and len(text.splitlines()) == 1, text
    assert needle in text, text


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    base = tmp_path_factory.mktemp("cc")
    design_dir, export_dir = base / "tiny", base / "export"
    result = run("train", "--preset", "tiny", "--neurons", "12", "--spacing", "10um", "--epochs", "1",
                 "--train-samples", "64", "--val-samples", "16", "--test-samples", "16", "--out", str(design_dir))
    assert result.exit_code == 0, result.output
    # 0.78 µm pixels at 780 nm lie outside the measured validity map: train says so (optics/validity.py)
    assert "outside its validated region" in result.output and "VALIDITY.md" in result.output
    # exact heights (grayscale profile: no slicing grid), so verify must pass
    result = run("export", str(design_dir), "--format", "gds", "--material", "ip-dip", "--printer", "grayscale",
                 "--out", str(export_dir))
    assert result.exit_code == 0, result.output
    return design_dir, export_dir


def test_cli_crosscheck_end_to_end(exported):
    design_dir, export_dir = exported
    torch.manual_seed(0)
    result = run("crosscheck", str(design_dir), str(export_dir), "--patches", "2", "--patch-pixels", "2",
                 "--harmonics", "3", "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert "Reflections" in result.output
    sheet = read_fab_sheet(export_dir)
    cc = sheet["crosscheck"]
    assert set(cc) == {"command", "solver", "patches", "patch_pixels", "harmonics", "acceptance_sin", "endless_base",
                       "rows", "note", "figure"}
    assert cc["endless_base"] is False and "as the free-standing plate that is printed" in cc["note"]
    assert cc["patches"] == 2 and cc["patch_pixels"] == 2 and cc["harmonics"] == 3 and "torcwa" in cc["solver"]
    assert "Li's factorisation" in cc["solver"]
    # 12 neurons of 0.78 µm, 10 µm hops: the next plane is reached up to tan θ = 9.36/10
    assert cc["acceptance_sin"] == pytest.approx(math.sin(math.atan(12 * 0.78 / 10)), abs=1e-4)
    pols = {(r["model"].split(" ")[0], r["polarisation"]) for r in cc["rows"]}
    assert {("thin", "TE"), ("thin", "TM"), ("thin", "mean"), ("rigorous", "TE vs TM")} <= pols
    cone = [r for r in cc["rows"] if r["model"].endswith(f"(sin θ < {cc['acceptance_sin']:.2f})")]
    assert {r["model"].split(" ")[0] for r in cone} >= {"thin", "rigorous"}  # every row again, inside the cone
    for r in cc["rows"]:
        assert set(r) == {"model", "polarisation", "l1_mean", "l1_worst", "complex_mean", "complex_worst"}
        assert 0 <= r["l1_mean"] <= r["l1_worst"] and 0 <= r["complex_mean"] <= r["complex_worst"]
    assert (export_dir / "crosscheck.png").read_bytes()[:4] == b"\x89PNG"
    md = (export_dir / "fab_sheet.md").read_text()
    assert "## Model error vs rigorous solver" in md and "Fabry–Pérot" in md
    check_sheet(json.loads((export_dir / "fab_sheet.json").read_text()), Design.load(design_dir), export_dir)
    assert not [p.name for p in export_dir.iterdir() if p.name.startswith(".")]
    # the sheet's hashes and every file still hold after the cross-check was recorded (the metric gap of this
    # 16-sample toy design at the converged reference is not what this test is about)
    report = verify_export(Design.load(design_dir), export_dir, device="cpu", probe_samples=None)
    assert report.files_ok and report.gap_files == 0, report.failures()
    result = run("verify", str(design_dir), str(export_dir), "--device", "cpu", "--no-probe")
    assert result.exit_code in (0, 1) and "Traceback" not in result.output, result.output
    assert "crosscheck" in read_fab_sheet(export_dir)  # verify keeps the cross-check


def test_endless_base_scores_the_models_own_error_and_sizes_the_same_reflections(exported):
    design_dir, export_dir = exported
    design = Design.load(design_dir)
    kwargs = dict(patches=1, patch_pixels=2, harmonics=3, device="cpu")
    plate = crosscheck_export(design, export_dir, **kwargs)
    endless = crosscheck_export(design, export_dir, endless_base=True, **kwargs)
    assert endless.endless_base and not plate.endless_base and "endless base" in endless.note()
    # the same pair of rigorous solves (endless base vs plate) sizes the reflections in both modes
    assert endless.reflection_complex == pytest.approx(plate.reflection_complex, rel=1e-9, abs=1e-12)
    # the rigorous reference changed, so the models' errors against it changed; TE vs TM is measured again
    row = lambda rows, m, p: next(x for x in rows if x["model"] == m and x["polarisation"] == p)  # noqa: E731
    assert row(plate.rows, "thin", "mean")["complex_mean"] != row(endless.rows, "thin", "mean")["complex_mean"]
    assert row(endless.rows, "rigorous", "TE vs TM")["complex_mean"] >= 0
    result = run("crosscheck", str(design_dir), str(export_dir), "--patches", "1", "--patch-pixels", "2",
                 "--harmonics", "3", "--device", "cpu", "--endless-base")
    assert result.exit_code == 0, result.output
    assert read_fab_sheet(export_dir)["crosscheck"]["endless_base"] is True


def test_cli_crosscheck_bad_input(exported, tmp_path):
    design_dir, export_dir = exported
    one_line_error(run("crosscheck", str(design_dir), str(export_dir), "--patch-pixels", "0"), "--patch-pixels")
    one_line_error(run("crosscheck", str(design_dir), str(export_dir), "--patch-pixels", "2", "--harmonics", "1"),
                   "--harmonics")
    one_line_error(run("crosscheck", str(design_dir), str(export_dir), "--patch-pixels", "99"), "99")
    one_line_error(run("crosscheck", str(design_dir), str(tmp_path)), "fab_sheet.json")
