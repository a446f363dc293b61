"""The convergence probe's statistics: which samples it simulates, the stratified estimate and its verdict."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from quaton_fab.analysis.convergence import DEFAULT_PROBE_SAMPLES, ProbeEstimate, estimate_change, plan_probe
from quaton_fab.cli.app import app
from quaton_fab.design import Design
from quaton_fab.simulate import SampleRecord, design_fidelity, simulate_design

SAMPLE = Path(__file__).parent.parent / "sample_designs" / "mnist-psq-lt-4"
QPI_SAMPLE = Path(__file__).parent.parent / "sample_designs" / "rbc-qpi-psq-lt-8"


def _record(population: int, seed: int = 0, margins: bool = True) -> SampleRecord:
    rng = np.random.default_rng(seed)
    return SampleRecord(rng.integers(0, 2, population).astype(float), rng.random(population) if margins else None)


def test_plan_gives_half_the_budget_to_the_smallest_margins_and_draws_the_rest_reproducibly():
    record = _record(200)
    plan = plan_probe(record, 40, seed=3)
    assert plan.population == 200 and plan.census.size == 20 and plan.draw.size == 20
    assert set(plan.census) == set(np.argsort(record.margins)[:20])
    assert not set(plan.census) & set(plan.draw) and len(set(plan.draw)) == 20
    assert np.array_equal(plan.indices, np.concatenate([plan.census, plan.draw]))
    again = plan_probe(record, 40, seed=3)
    assert np.array_equal(again.draw, plan.draw)
    assert not np.array_equal(plan_probe(record, 40, seed=4).draw, plan.draw)


def test_plan_of_a_continuous_metric_draws_everything_and_a_large_budget_is_a_census():
    plan = plan_probe(_record(100, margins=False), 30, seed=0)
    assert plan.census.size == 0 and plan.draw.size == 30
    whole = plan_probe(_record(100), 100, seed=0)
    assert np.array_equal(whole.census, np.arange(100)) and whole.draw.size == 0
    assert plan_probe(_record(100), 5000, seed=0).indices.size == 100
    with pytest.raises(ValueError, match="at least 1 sample"):
        plan_probe(_record(10), 0, seed=0)


def test_a_census_is_exact_and_a_stratified_estimate_is_unbiased():
    record = _record(60)
    whole = plan_probe(record, 60, seed=0)
    change = np.zeros(60)
    change[[1, 5, 9]] = [-1, -1, 1]
    exact = estimate_change(whole, change[whole.indices], decision=True)
    assert exact.difference == pytest.approx(-1 / 60) and exact.standard_error == 0.0 and exact.changed == 3
    # population: flips among the 20 smallest margins (the census) and 4 down-flips among the other 40
    population = np.zeros(60)
    low = np.argsort(record.margins)[:20]
    population[low[:3]] = -1.0
    rest = np.setdiff1d(np.arange(60), low)
    population[rest[:4]] = -1.0
    estimates = []
    for seed in range(400):  # averaged over draws the estimate is the population's change
        plan = plan_probe(record, 40, seed=seed)
        estimates.append(estimate_change(plan, population[plan.indices], decision=True).difference)
    assert np.mean(estimates) == pytest.approx(population.mean(), abs=0.003)


def test_a_draw_without_changes_still_has_an_interval_for_a_decision_metric():
    plan = plan_probe(_record(1000), 200, seed=0)
    change = np.zeros(200)
    change[:2] = -1.0  # two census samples flip, no drawn one does
    est = estimate_change(plan, change, decision=True)
    rest, n = 900, 100
    assert est.difference == pytest.approx(-2 / 1000)
    assert est.standard_error == pytest.approx(rest / 1000 * np.sqrt(1 / n / n * (1 - n / rest)))
    assert estimate_change(plan, change, decision=False).standard_error == 0.0  # a continuous metric: as seen


def test_verdicts_follow_the_interval():
    tol = 0.005
    assert ProbeEstimate(-0.001, 0.001, 3).verdict(tol) == "converged"
    assert ProbeEstimate(-0.010, 0.001, 9).verdict(tol) == "not converged"
    assert ProbeEstimate(+0.010, 0.001, 9).verdict(tol) == "not converged"
    assert ProbeEstimate(-0.004, 0.001, 9).verdict(tol) == "undecided"
    assert ProbeEstimate(-0.008, 0.003, 9).verdict(tol) == "undecided"
    assert ProbeEstimate(0.0, 0.0, 0).verdict(0.0) == "converged"


@pytest.mark.parametrize("sample", [SAMPLE, QPI_SAMPLE], ids=["accuracy", "ssim"])
def test_per_sample_values_average_to_the_metric_and_follow_the_chosen_indices(sample):
    design = Design.load(sample)
    fid = design_fidelity(design)
    full = simulate_design(design, samples=12, fidelity=fid, device="cpu", per_sample=True)
    record = full["per_sample"]
    name = "accuracy" if design.task["kind"] == "classify" else "ssim"
    assert record.values.shape == (12,) and record.values.mean() == pytest.approx(full[name], abs=1e-9)
    if name == "accuracy":
        assert set(np.unique(record.values)) <= {0.0, 1.0} and np.all((record.margins >= 0) & (record.margins <= 1))
    else:
        assert record.margins is None
    pick = np.array([7, 2, 10])
    part = simulate_design(design, samples=12, fidelity=fid, device="cpu", indices=pick, per_sample=True)
    assert part["samples"] == 3
    assert part["per_sample"].values == pytest.approx(record.values[pick], abs=1e-6)


def test_verify_help_states_the_library_default_budget():
    result = CliRunner().invoke(app, ["verify", "--help"], terminal_width=400, env={"COLUMNS": "400"})
    assert result.exit_code == 0
    assert f"default {DEFAULT_PROBE_SAMPLES}" in " ".join(result.output.split())
