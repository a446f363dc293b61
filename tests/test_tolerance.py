"""Fabrication tolerance: each perturbation does what it says, zero errors are the nominal print, the Monte-Carlo
is deterministic, nonsense magnitudes are one-line errors, and the command writes its table, figure and sheet."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from quaton_fab.cli.app import app
from quaton_fab.optics.network import DiffractiveNetwork
from quaton_fab.optics.perturbation import (
    ERRORS,
    ErrorMagnitudes,
    PerturbationDraw,
    ToleranceError,
    blur_relief,
    draw_perturbation,
    gaussian_sample_kernel,
    parse_magnitude,
    perturb_heights,
    perturbed_forward,
    rotate_relief,
    shift_relief,
    trial_generator,
    vaccination_magnitudes,
)
from quaton_fab.analysis.tolerance import run_tolerance, tolerance_sheet_entry
from quaton_fab.training import Trainer, preset
from quaton_fab.simulate import design_fidelity, reference_fidelity, simulate_design

runner = CliRunner()
L, N = 3, 20


@pytest.fixture(scope="module")
def design(tmp_path_factory):
    config = preset("tiny", train_samples=96, val_samples=32, test_samples=40, epochs=1, neurons=N, layers=L,
                    spacing_m=10e-6, batch_size=32)
    out = tmp_path_factory.mktemp("tol") / "run"
    result = Trainer(config, out).fit()
    result.design.save(out)
    return result.design, out


def nominal_draw(**changes) -> PerturbationDraw:
    draw = draw_perturbation(ErrorMagnitudes(), L, N, trial_generator(0, 0))
    return dataclasses.replace(draw, **changes)


def network_of(design, **geometry_changes):
    g = dataclasses.replace(design.geometry, **geometry_changes)
    return DiffractiveNetwork(g, relief=design.relief)


def input_field(design, batch=3):
    g = design.geometry
    gen = torch.Generator().manual_seed(1)
    amp = torch.rand(batch, g.sim_pixels, g.sim_pixels, generator=gen)
    return torch.polar(torch.ones_like(amp), 2 * math.pi * amp)


def phases_of(design):
    return torch.as_tensor(design.phases_rad(), dtype=torch.float32)


def perturbed(design, draw):
    net = network_of(design)
    return perturbed_forward(net, input_field(design), draw, phases_of(design))


def plain_intensity(net, design, phases=None):
    return net(input_field(design), phases_of(design) if phases is None else phases)


# ---------------------------------------------------------------------------------------------------- zero = nominal
def test_zero_magnitudes_are_the_nominal_print_bit_for_bit(design):
    d, _ = design
    draw = nominal_draw()
    assert draw.is_nominal
    assert torch.equal(perturbed(d, draw), plain_intensity(network_of(d), d))


def test_zero_magnitude_monte_carlo_reproduces_the_nominal_metric_exactly(design):
    d, _ = design
    for fid in (design_fidelity(d), reference_fidelity(d)):
        sweeps = {name: [0.0] for name in ERRORS}
        run = run_tolerance(d, sweeps, trials=3, samples=40, fidelity=fid, combined_factors=(0.0,), device="cpu")
        nominal = simulate_design(d, samples=40, fidelity=fid, device="cpu")["accuracy"]
        assert run.nominal == nominal
        assert all(row["values"] == [nominal] and row["within"] for row in run.rows)


# ---------------------------------------------------------------------------------------------------- each error
def test_a_one_pixel_shift_equals_the_shifted_mask(design):
    d, _ = design
    g = d.geometry
    shifts = np.zeros((L, 2))
    shifts[:, 1] = g.pitch_m  # +x by one printed pixel (s simulation samples)
    shifts[1, 0] = -g.pitch_m  # mask 2 also −y by one pixel
    got = perturbed(d, nominal_draw(shifts_m=shifts))
    phases = phases_of(d)
    moved = torch.zeros_like(phases)  # level 0 (height 0, the bare base) moves in
    moved[:, :, 1:] = phases[:, :, :-1]
    moved[1] = torch.zeros_like(phases[1])
    moved[1, :-1, 1:] = phases[1, 1:, :-1]
    assert d.levels.phases[0] == 0.0
    expected = plain_intensity(network_of(d), d, moved)
    assert torch.equal(got, expected)


def test_a_fractional_shift_is_the_area_average_of_its_neighbours():
    h = torch.rand(2, 12, 12, dtype=torch.float64)
    quarter = shift_relief(h, 0.0, 1.25)
    assert torch.allclose(quarter, 0.75 * shift_relief(h, 0.0, 1.0) + 0.25 * shift_relief(h, 0.0, 2.0))
    assert torch.equal(shift_relief(h, 0.0, 0.0), h)
    assert torch.equal(shift_relief(h, 3.0, 0.0)[:, 3:], h[:, :-3]) and not shift_relief(h, 3.0, 0.0)[:, :3].any()
    assert not shift_relief(h, 0.0, 40.0).any()  # moved out of the grid: bare base


def test_a_height_scale_equals_scaled_level_heights(design):
    d, _ = design
    got = perturbed(d, nominal_draw(height_scale=1.07))
    scaled = dataclasses.replace(d.relief, level_heights_m=tuple(1.07 * h for h in d.relief.level_heights_m))
    expected = plain_intensity(DiffractiveNetwork(d.geometry, relief=scaled), d)
    assert torch.allclose(got, expected, rtol=1e-4, atol=1e-6 * float(expected.max()))
    assert not torch.allclose(got, plain_intensity(network_of(d), d), rtol=1e-3)


def test_an_index_error_equals_a_changed_material_index(design):
    d, _ = design
    got = perturbed(d, nominal_draw(delta_n=0.02))
    changed = dataclasses.replace(d.relief, n_material=d.relief.n_material + 0.02)
    expected = plain_intensity(DiffractiveNetwork(d.geometry, relief=changed), d)
    assert torch.allclose(got, expected, rtol=1e-5, atol=1e-7 * float(expected.max()))
    assert not torch.allclose(got, plain_intensity(network_of(d), d), rtol=1e-3)


def test_a_spacing_error_equals_a_changed_geometry_spacing(design):
    d, _ = design
    got = perturbed(d, nominal_draw(gap_factors=np.full(L - 1, 1.04)))
    expected = plain_intensity(network_of(d, spacing_m=d.geometry.spacing_m * 1.04), d)
    assert torch.allclose(got, expected, rtol=1e-5, atol=1e-7 * float(expected.max()))
    # one gap only: that gap, the others untouched
    factors = np.array([1.0, 1.1])
    net = DiffractiveNetwork(d.geometry, relief=d.relief,
                             distances_m=(d.geometry.d_in_m, d.geometry.spacing_m, d.geometry.spacing_m * 1.1,
                                          d.geometry.d_out_m))
    assert torch.allclose(perturbed(d, nominal_draw(gap_factors=factors)), plain_intensity(net, d))


def test_height_noise_is_per_printed_pixel_and_zero_mean(design):
    d, _ = design
    g = d.geometry
    mags = ErrorMagnitudes(height_noise_m=20e-9)
    draw = draw_perturbation(mags, L, N, trial_generator(3, 0))
    assert abs(draw.height_noise_m.std() - 20e-9) < 2e-9 and abs(draw.height_noise_m.mean()) < 3e-9
    h = torch.full((L, N, N), 0.5e-6, dtype=torch.float64)
    sim = perturb_heights(h, draw, oversample=g.oversample, sim_pitch_m=g.sim_pitch_m)
    s = g.oversample
    assert torch.allclose(sim[:, ::s, ::s] - 0.5e-6, torch.as_tensor(draw.height_noise_m))
    assert torch.equal(sim[:, 1::s, 1::s], sim[:, ::s, ::s])  # constant over each pixel's s×s samples
    assert float(perturb_heights(torch.zeros(L, N, N, dtype=torch.float64), draw, oversample=s,
                                 sim_pitch_m=g.sim_pitch_m).min()) == 0.0  # nothing prints below the base


def test_heights_above_the_relief_top_get_extra_slices(design):
    d, _ = design
    draw = nominal_draw(height_noise_m=np.full((L, N, N), 0.3e-6))
    from quaton_fab.optics.perturbation import perturbed_relief

    relief = perturbed_relief(d.relief, draw, d.relief.top_m + 0.3e-6)
    assert relief.top_m >= d.relief.top_m + 0.3e-6 - 1e-15
    assert set(np.round(d.relief.slice_edges_m(), 15)) <= set(np.round(relief.slice_edges_m(), 15))


def test_blur_zero_is_identity_keeps_the_mean_and_rounds_edges():
    h = torch.zeros(2, 16, 16, dtype=torch.float64)
    h[:, 4:12, 4:12] = 1e-6
    assert torch.equal(blur_relief(h, 0.0), h)
    blurred = blur_relief(h, 0.8)
    assert torch.allclose(blurred.mean(dim=(-2, -1)), h.mean(dim=(-2, -1)), rtol=1e-12)
    assert blurred[0, 8, 3] > 0 and blurred[0, 8, 4] < 1e-6  # the edge is rounded on both sides
    assert torch.allclose(blur_relief(torch.full((1, 8, 8), 2.0, dtype=torch.float64), 1.5),
                          torch.full((1, 8, 8), 2.0, dtype=torch.float64))
    kernel = gaussian_sample_kernel(2.0)
    assert math.isclose(kernel.sum(), 1.0) and np.allclose(kernel, kernel[::-1])
    # the sample-integrated kernel has the Gaussian's variance plus the sample's own 1/12
    k = np.arange(kernel.size) - (kernel.size - 1) // 2
    assert math.isclose(float((kernel * k**2).sum()), 2.0**2 + 1 / 12, rel_tol=1e-3)


def test_rotation_by_a_right_angle_turns_the_array():
    h = torch.rand(10, 10, dtype=torch.float64)
    assert torch.equal(rotate_relief(h, 0.0), h)
    turned = rotate_relief(h, 90.0)
    assert torch.allclose(turned, torch.rot90(h, 1, dims=(0, 1)), atol=1e-9) or torch.allclose(
        turned, torch.rot90(h, -1, dims=(0, 1)), atol=1e-9)
    assert torch.allclose(rotate_relief(rotate_relief(h, 90.0), -90.0), h, atol=1e-9)


def test_vaccinated_forward_is_differentiable(design):
    d, _ = design
    from quaton_fab.quant import make_quantizer

    quantizers = [make_quantizer("psq-lt", d.levels, (N, N), generator=torch.Generator().manual_seed(0))
                  for _ in range(L)]
    net = DiffractiveNetwork(d.geometry, quantizers, relief=d.relief)
    draw = draw_perturbation(ErrorMagnitudes.defaults(), L, N, trial_generator(0, 1))
    net.train()
    perturbed_forward(net, input_field(d), draw).sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0
               for p in net.parameters())


# ---------------------------------------------------------------------------------------------------- Monte-Carlo
def test_monte_carlo_is_deterministic_for_a_seed(design):
    d, _ = design
    sweeps = {"shift": [0.4e-6], "height-noise": [40e-9], "index": [0.02]}
    fid = design_fidelity(d)
    a = run_tolerance(d, sweeps, trials=2, seed=5, samples=24, fidelity=fid, device="cpu")
    b = run_tolerance(d, sweeps, trials=2, seed=5, samples=24, fidelity=fid, device="cpu")
    assert [r["values"] for r in a.rows] == [r["values"] for r in b.rows]
    d1 = draw_perturbation(ErrorMagnitudes.defaults(), L, N, trial_generator(5, 0))
    d2 = draw_perturbation(ErrorMagnitudes.defaults(), L, N, trial_generator(6, 0))
    assert not np.array_equal(d1.shifts_m, d2.shifts_m)
    # common random numbers: one trial's draws differ between magnitudes only by scale
    small = draw_perturbation(ErrorMagnitudes(shift_m=1e-7), L, N, trial_generator(5, 1))
    large = draw_perturbation(ErrorMagnitudes(shift_m=3e-7), L, N, trial_generator(5, 1))
    assert np.allclose(3 * small.shifts_m, large.shifts_m)


def test_limits_pick_the_largest_magnitude_before_the_first_failure():
    from quaton_fab.analysis.tolerance import ToleranceRun

    rows = [{"error": "shift", "magnitude": m, "within": ok} for m, ok in ((0.25, True), (0.5, True), (1.0, False))]
    rows += [{"error": "blur", "magnitude": m, "within": ok} for m, ok in ((85, False), (170, True))]
    run = ToleranceRun("accuracy", 0.01, "p5", 3, 10, 0, "reference", "", 0.9, rows)
    limits = {lim["error"]: lim["max_magnitude"] for lim in run.limits()}
    assert limits == {"shift": 0.5, "blur": None}
    entry = tolerance_sheet_entry(run)
    assert set(entry) == {"metric", "allowed_loss", "trials", "samples", "seed", "fidelity", "rows", "nominal",
                          "curves"}
    assert [(c["error"], c["magnitude"]) for c in entry["curves"]] == [
        ("blur", 85), ("blur", 170), ("shift", 0.25), ("shift", 0.5), ("shift", 1.0)]
    assert all(set(r) == {"error", "unit", "max_magnitude", "source"} for r in entry["rows"])


# ---------------------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("field,value,needle", [
    ("height_noise_m", -1e-9, "height-noise"),
    ("shift_m", float("nan"), "shift"),
    ("rotation_deg", 90.0, "sane bound"),
    ("spacing", 0.5, "sane bound"),
    ("index", float("inf"), "index"),
    ("blur_m", True, "blur"),
])
def test_nonsense_magnitudes_are_refused(field, value, needle):
    with pytest.raises(ToleranceError, match=needle) as info:
        ErrorMagnitudes(**{field: value})
    assert "\n" not in str(info.value)


def test_magnitude_parsing():
    assert parse_magnitude("height-scale", "3%") == pytest.approx(0.03)
    assert parse_magnitude("height-noise", "20nm") == pytest.approx(20e-9)
    assert parse_magnitude("shift", "2px", pitch_m=0.78e-6) == pytest.approx(1.56e-6)
    assert parse_magnitude("rotation", "0.5deg") == 0.5
    assert parse_magnitude("index", "0.005") == 0.005
    for name, text in (("shift", "1px"), ("height-noise", "-5nm"), ("index", "nan"), ("rotation", "abc"),
                       ("spacing", "-1%"), ("warp", "1")):
        with pytest.raises(ToleranceError):
            parse_magnitude(name, text)
    with pytest.raises(ToleranceError, match="unknown vaccination set"):
        vaccination_magnitudes("3d-printer")
    assert vaccination_magnitudes("2pp", {"height-noise": 5e-9}).height_noise_m == 5e-9


def assert_one_line_error(result, *needles):
    assert result.exit_code == 2, result.output
    text = result.output.strip()
    assert "Traceback" not in text and len(text.splitlines()) == 1, text
    for needle in needles:
        assert needle in text, text


def test_cli_refuses_nonsense_magnitudes(design, tmp_path):
    _, path = design
    for args, needle in ((["--height-noise", "-5nm"], "height-noise"), (["--rotation", "400"], "sane bound"),
                         (["--shift", "nan"], "shift"), (["--errors", "warp"], "warp"),
                         (["--combined", "x"], "--combined")):
        result = runner.invoke(app, ["tolerance", str(path), *args, "--out", str(tmp_path / "t")])
        assert_one_line_error(result, needle)
    result = runner.invoke(app, ["train", "--preset", "tiny", "--vaccinate", "nope", "--out", str(tmp_path / "v")])
    assert_one_line_error(result, "unknown vaccination set")


# ---------------------------------------------------------------------------------------------------- CLI end to end
def test_cli_writes_table_figure_and_fab_sheet(design, tmp_path):
    from quaton_fab.design import Design
    from quaton_fab.fab.sheet import read_fab_sheet
    from quaton_fab.analysis.sheet_check import check_sheet

    _, path = design
    export = tmp_path / "export"
    assert runner.invoke(app, ["export", str(path), "--format", "png", "--out", str(export)]).exit_code == 0
    out = tmp_path / "tol"
    args = ["tolerance", str(path), str(export), "--trials", "2", "--samples", "16", "--errors", "shift,blur",
            "--shift", "0.2um,1px", "--blur", "0,100nm", "--combined", "1", "--fidelity", "design", "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "acceptance tolerances" in result.output
    data = json.loads((out / "tolerance.json").read_text())
    assert data["trials"] == 2 and data["samples"] == 16 and data["fidelity"] == "design"
    assert [(r["error"], r["trials"]) for r in data["rows"]] == [
        ("shift", 2), ("shift", 2), ("blur", 1), ("blur", 1), ("all", 2)]
    assert (out / "tolerance.png").stat().st_size > 1000 and "| shift |" in (out / "tolerance.md").read_text()
    sheet = read_fab_sheet(export)
    tol = sheet["tolerance"]
    assert set(tol) == {"metric", "allowed_loss", "trials", "samples", "seed", "fidelity", "rows", "nominal", "curves"}
    assert [r["error"] for r in tol["rows"]] == ["shift", "blur", "all"]
    assert all(set(r) == {"error", "unit", "max_magnitude", "source"} for r in tol["rows"])
    assert tol["allowed_loss"] == 0.01 and tol["metric"] == "accuracy"
    check_sheet(sheet, Design.load(path), export)  # the sheet is still intact for verify
    assert "## Fabrication tolerances" in (export / "fab_sheet.md").read_text()
    # existing results are not overwritten without --force
    again = runner.invoke(app, args)
    assert_one_line_error(again, "--force")
