"""PSQ-LT's temperature dynamics, run-length-free schedules, shared sharpness units, the relief's restoring
gradient and the per-mask history (issue: PSQ-LT done right)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from quaton_fab.optics.relief import Relief
from quaton_fab.quant import LevelSet, QuantizerError, make_quantizer
from quaton_fab.quant.schedules import step_doubling
from quaton_fab.quant.transfer import psq_transfer
from quaton_fab.quant.schedules import kappa_for_k_delta, ramp_fraction, run_fraction, run_step_doubling
from quaton_fab.training import Trainer, preset
from quaton_fab.training.param_groups import group_lr, optimizer_groups
from quaton_fab.training.run import save_run
from quaton_fab.training.schedule_figure import schedule_series

SHAPE = (3, 3)


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def walk(q, epochs: int, steps_per_epoch: int, key: str) -> list[float]:
    """The status value ``key`` at every optimiser step of a run, as the trainer moves the schedules."""
    values = []
    for e in range(epochs):
        q.start_epoch(e, epochs)
        for s in range(steps_per_epoch):
            q.advance(e * steps_per_epoch + s, steps_per_epoch, epochs)
            values.append(q.status()[key])
    return values


# ================================================================================ 1. κ's own learning rate
def test_kappa_has_its_own_parameter_group_and_learning_rate() -> None:
    levels = LevelSet.uniform(4)
    masks = [make_quantizer("psq-lt", levels, SHAPE, generator=seeded(i)) for i in range(2)]
    task = torch.nn.Linear(1, 1)
    groups = optimizer_groups(masks, task)
    kappa_groups = [g for g in groups if any(p is q.kappa for q in masks for p in g["params"])]
    assert len(kappa_groups) == 2 and all(len(g["params"]) == 1 for g in kappa_groups)
    assert all(g["fixed_lr"] == 0.01 and not g["follow_schedule"] for g in kappa_groups)
    latent_groups = [g for g in groups if any(p is q.latent for q in masks for p in g["params"])]
    assert all("fixed_lr" not in g for g in latent_groups)
    # the phase schedule (cosine at its half-way point: lr/2) leaves κ alone unless asked
    assert group_lr(kappa_groups[0], 0.08, 0.04) == pytest.approx(0.01)
    assert group_lr(latent_groups[0], 0.08, 0.04) == pytest.approx(0.04)
    assert group_lr({"params": [], "fixed_lr": 0.01, "follow_schedule": True}, 0.08, 0.04) == pytest.approx(0.005)
    # the earlier behaviour stays selectable: κ shares the phase group
    shared = make_quantizer("psq-lt", levels, SHAPE, kappa_lr=None)
    assert len(shared.param_groups()) == 1 and len(shared.param_groups()[0]["params"]) == 2


def test_one_adam_step_moves_kappa_by_its_own_rate_not_the_phase_rate() -> None:
    levels = LevelSet.uniform(4)
    q = make_quantizer("psq-lt", levels, SHAPE, generator=seeded(3))
    q.train()
    q.start_epoch(0, 1)
    opt = torch.optim.Adam(optimizer_groups([q], torch.nn.Module()), lr=0.08)
    for g in opt.param_groups:
        g["lr"] = group_lr(g, 0.08, 0.08)
    kappa0, latent0 = float(q.kappa.detach()), q.latent.detach().clone()
    loss = (torch.polar(torch.ones(SHAPE), q()).real.sum()) + q.regularizer()
    loss.backward()
    opt.step()
    # Adam's first step is ±lr per parameter: κ moves 0.01 (20 % of κ0 = 0.05), the phases 0.08.
    assert abs(float(q.kappa.detach()) - kappa0) == pytest.approx(0.01, rel=1e-3)
    moved = (q.latent.detach() - latent0).abs()
    assert float(moved.max()) == pytest.approx(0.08, rel=1e-3)


def test_trainer_records_kappa_lr_in_the_design_and_keeps_it_constant_under_cosine(tmp_path) -> None:
    config = preset("tiny", train_samples=64, val_samples=16, test_samples=16, epochs=2, neurons=16, layers=2,
                    spacing_m=10e-6, batch_size=32, lr=0.2, lr_schedule="cosine", threads=None)
    trainer = Trainer(config, tmp_path / "run")
    result = trainer.fit()
    per_mask = result.design.method["per_mask"]
    assert all(m["kappa_lr"] == 0.01 and m["kappa_lr_schedule"] == "constant" for m in per_mask)
    assert all(m["reg_schedule"] == "run" and m["k_delta_at_start"] > 0 for m in per_mask)
    state = torch.load(trainer.checkpoint_path, weights_only=True)["optimizer"]
    lrs = sorted(g["lr"] for g in state["param_groups"])
    # at the last of 4 steps the phases' cosine rate is 0.2·½(1 + cos(3π/4)); κ's groups keep 0.01
    phase_lr = 0.2 * 0.5 * (1 + math.cos(math.pi * 3 / 4))
    assert lrs == pytest.approx([0.01, 0.01, phase_lr, phase_lr])


# ================================================================================ 2. run-fraction schedules
def test_psq_lt_regulariser_over_the_run_is_the_labs_50_epoch_schedule_for_any_length() -> None:
    levels = LevelSet.uniform(4)
    q = make_quantizer("psq-lt", levels, SHAPE)
    # one step per epoch, 50 epochs: exactly the lab's λ_e = 0.01·2^⌊e/5⌋
    lab = [step_doubling(e, 0.01, 5, 2.0) for e in range(50)]
    assert walk(q, 50, 1, "reg_weight") == pytest.approx(lab)
    # any other run length: the same curve over the fraction of the run
    for epochs, spe in ((3, 40), (10, 7), (1, 200)):
        values = walk(q, epochs, spe, "reg_weight")
        total = epochs * spe
        assert values == pytest.approx([run_step_doubling(i / total, 0.01, 0.1, 2.0) for i in range(total)])
        assert values[0] == pytest.approx(0.01) and values[-1] == pytest.approx(0.01 * 2**9)
    # the epoch form stays selectable: over 3 epochs it never doubles
    old = make_quantizer("psq-lt", levels, SHAPE, reg_schedule="epoch")
    assert walk(old, 3, 40, "reg_weight") == pytest.approx([0.01] * 120)


@pytest.mark.parametrize("epochs,spe", [(2, 31), (6, 31), (50, 3)])
def test_psq_and_gs_ramps_span_the_run_whatever_its_length(epochs: int, spe: int) -> None:
    levels = LevelSet.uniform(8)
    psq = make_quantizer("psq", levels, SHAPE)
    k = walk(psq, epochs, spe, "k_delta")
    assert k[0] == pytest.approx(2.0) and k[-1] == pytest.approx(30.0)
    assert all(b > a for a, b in zip(k, k[1:]))  # rises at every step, not once per epoch
    t = [ramp_fraction(i, epochs * spe) for i in range(epochs * spe)]
    assert k == pytest.approx([2.0 * 15.0**x for x in t])
    gs = make_quantizer("gs", levels, SHAPE)
    tau = walk(gs, epochs, spe, "temperature")
    assert tau[0] == pytest.approx(2.0) and tau[-1] == pytest.approx(0.5)
    # the earlier per-epoch form: constant within an epoch
    old = walk(make_quantizer("psq", levels, SHAPE, schedule="epoch"), epochs, spe, "k_delta")
    assert len(set(old)) == epochs and old[-1] == pytest.approx(30.0)


def test_psq_warmup_is_excluded_from_the_ramp() -> None:
    q = make_quantizer("psq", LevelSet.uniform(4), SHAPE, quant_after=1)
    k = walk(q, 3, 10, "k_delta")
    assert k[:11] == pytest.approx([2.0] * 11)  # warm-up epoch, then the first quantized step
    assert k[-1] == pytest.approx(30.0)
    assert run_fraction(5, 10) == 0.5 and ramp_fraction(3, 10, 5) == 0.0


# ================================================================================ 3. one sharpness unit
@pytest.mark.parametrize("n,lab_start", [(2, 57.1), (4, 28.6), (8, 14.3), (16, 7.14)])
def test_psq_and_psq_lt_start_values_in_k_delta(n: int, lab_start: float) -> None:
    levels = LevelSet.uniform(n)
    lt = make_quantizer("psq-lt", levels, SHAPE)
    assert lt.status()["k_delta"] == pytest.approx(lab_start, rel=2e-3)  # the lab's units: depends on n
    assert lt.settings()["k_delta_at_start"] == pytest.approx(lab_start, rel=2e-3)
    psq = make_quantizer("psq", levels, SHAPE)
    assert psq.settings()["k_delta_at_start"] == 2.0
    # PSQ-LT where PSQ starts, and PSQ where PSQ-LT starts
    matched = make_quantizer("psq-lt", levels, SHAPE, k_delta_start="psq")
    assert matched.status()["k_delta"] == pytest.approx(2.0)
    assert float(matched.kappa.detach()) == pytest.approx(kappa_for_k_delta(2.0, levels.min_step, 0.005, False))
    reverse = make_quantizer("psq", levels, SHAPE, k_delta_start="psq-lt")
    assert reverse.status()["k_delta"] == pytest.approx(lab_start, rel=2e-3)
    relative = make_quantizer("psq-lt", levels, SHAPE, k_delta_start=2.0, slope_units="relative")
    assert relative.status()["k_delta"] == pytest.approx(2.0)
    # a rebuilt quantizer from its settings starts at the same sharpness
    rebuilt = make_quantizer("psq-lt", levels, SHAPE, **matched.settings())
    assert rebuilt.status()["k_delta"] == pytest.approx(2.0)


def test_sharpness_beyond_the_cap_or_bad_schedule_names_are_one_line_errors() -> None:
    levels = LevelSet.uniform(4)
    with pytest.raises(QuantizerError, match="k_delta_start.*beyond"):
        make_quantizer("psq-lt", levels, SHAPE, k_delta_start=1000.0)  # cap Δ/ε = 314
    with pytest.raises(QuantizerError, match="reg_schedule"):
        make_quantizer("psq-lt", levels, SHAPE, reg_schedule="weekly")
    with pytest.raises(QuantizerError, match="kappa_lr"):
        make_quantizer("psq-lt", levels, SHAPE, kappa_lr=-1.0)
    with pytest.raises(QuantizerError, match="schedule"):
        make_quantizer("gs", levels, SHAPE, schedule="step")
    with pytest.raises(QuantizerError, match="k_delta_start"):
        make_quantizer("psq", levels, SHAPE, k_delta_start="ste")


# ================================================================================ 4. the relief's gradient
def _ladder_relief(levels: LevelSet) -> Relief:
    heights = tuple(float(p) / (2 * math.pi) * 1.4e-6 for p in levels.phases)
    return Relief(n_material=1.55, level_phases_rad=tuple(float(p) for p in levels.phases),
                  level_heights_m=heights, periodic=False, base_m=2e-6)


def test_relief_passes_the_restoring_gradient_to_out_of_range_phases() -> None:
    levels = LevelSet.ladder(LevelSet.uniform(4).phases.tolist())
    relief = _ladder_relief(levels)
    lo, hi = float(levels.phases[0]), float(levels.phases[-1])
    latent = torch.tensor([lo - 0.4, hi + 0.5, 0.5 * (lo + hi)], dtype=torch.float64, requires_grad=True)
    phase = psq_transfer(latent, levels, 30.0 / levels.min_step, alpha=0.01)
    heights = relief.heights_of_phases(phase, 780e-9, 1.0)
    # the forward is still the printable range: below → level 0's height, above → the top level's
    assert float(heights[0].detach()) == pytest.approx(0.0, abs=1e-15)
    assert float(heights[1].detach()) == pytest.approx(relief.level_heights_m[-1], rel=1e-12)
    # a loss that wants the middle height pulls both outliers back into the range
    target = 0.5 * relief.level_heights_m[-1]
    ((heights - target) ** 2).sum().backward()
    grad = latent.grad
    assert float(grad[0]) < 0 < float(grad[1])  # descent raises the low one and lowers the high one
    # the restoring slope is the thin model's α (times the end segment's dh/dφ)
    slope_top = (relief.level_heights_m[-1] - relief.level_heights_m[-2]) / (hi - float(levels.phases[-2]))
    expected = 0.01 * slope_top * 2 * (relief.level_heights_m[-1] - target)
    assert float(grad[1]) == pytest.approx(expected, rel=1e-3)


def test_relief_heights_inside_the_range_are_unchanged_by_the_straight_through_clamp() -> None:
    levels = LevelSet.ladder(LevelSet.uniform(8).phases.tolist())
    relief = _ladder_relief(levels)
    phases = torch.linspace(float(levels.phases[0]), float(levels.phases[-1]), 101, dtype=torch.float64)
    h = relief.heights_of_phases(phases, 780e-9, 1.0)
    ref = np.interp(phases.numpy(), relief.level_phases_rad, relief.level_heights_m)
    assert np.allclose(h.numpy(), ref, rtol=0, atol=1e-18)
    assert torch.equal(relief.heights_of_phases(torch.tensor(levels.phases.tolist(), dtype=torch.float64), 780e-9, 1.0),
                       torch.as_tensor(relief.level_heights_m, dtype=torch.float64))


# ================================================================================ 5. history per mask
def test_history_holds_kappa_and_sharpness_per_mask_and_a_figure(tmp_path) -> None:
    config = preset("tiny", train_samples=64, val_samples=16, test_samples=16, epochs=2, neurons=16, layers=2,
                    spacing_m=10e-6, batch_size=32, threads=None)
    trainer = Trainer(config, tmp_path / "run")
    result = trainer.fit()
    written = save_run(trainer, result.design, tmp_path / "run", figures=True)
    assert (tmp_path / "run" / "figures" / "quantizer.png") in written
    history = json.loads((tmp_path / "run" / "metrics.json").read_text())["history"]
    for record in history:
        per_mask = record["quantizer_per_mask"]
        assert len(per_mask) == 2
        for m in per_mask:
            assert m["kappa_abs"] >= 0 and m["k_delta"] > 0
        # the mean over masks is the mean of |κ|, not of signed κ
        assert record["quantizer"]["kappa_abs"] == pytest.approx(sum(m["kappa_abs"] for m in per_mask) / 2)
    series = schedule_series(history)
    assert set(series) >= {"k_delta", "kappa_abs", "reg_weight"} and len(series["k_delta"]) == 2
    assert len(series["k_delta"][0]) == 2
