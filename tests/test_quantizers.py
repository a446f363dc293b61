"""Quantizers: exact eval levels, soft→hard convergence, promised gradients, schedules, state, toy training.

Physics-style checks use independent references written here (hard nearest level via circular distance,
analytic sigmoid derivatives), not the implementation under test.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from quaton_fab.quant import METHODS, LevelSet, QuantizerError, make_quantizer
from quaton_fab.quant.transfer import gumbel_softmax_st, level_offsets, psq_transfer

TWO_PI = 2.0 * math.pi
SHAPE = (6, 6)
LEVEL_SETS = {
    "circle4": LevelSet.uniform(4),
    "range4": LevelSet.range(4, 0.0, 1.99 * math.pi),
    "list5": LevelSet.explicit([0.0, 0.534, 1.2, 3.267, 5.0]),
}
QUANTIZING = tuple(m for m in METHODS if m != "fp")


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def circular_error(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """|a − b| on the circle (rad)."""
    return torch.abs(torch.remainder(a - b + math.pi, TWO_PI) - math.pi)


def reference_hard(phi: torch.Tensor, levels: LevelSet) -> torch.Tensor:
    """Nearest level by brute force: circular distance for periodic sets, plain distance (clamp) for range."""
    p = torch.tensor(levels.phases, dtype=torch.float64)
    d = phi.unsqueeze(-1) - p
    dist = circular_error(d, torch.zeros_like(d)) if levels.periodic else d.abs()
    return p[torch.argmin(dist, dim=-1)]


def distance_to_thresholds(phi: torch.Tensor, levels: LevelSet) -> torch.Tensor:
    """Distance (rad) from each φ to the nearest decision threshold (mod 2π for periodic sets)."""
    d = phi.unsqueeze(-1) - torch.tensor(levels.thresholds, dtype=torch.float64)
    if levels.periodic:
        d = torch.remainder(d + math.pi, TWO_PI) - math.pi
    return d.abs().min(dim=-1).values


def set_latent(q, values: torch.Tensor) -> None:
    """Overwrite the trainable phase (or GS logits) of a quantizer."""
    with torch.no_grad():
        (q.logits if q.method == "gs" else q.latent).copy_(values)


# ================================================================================================ factory
def test_methods_tuple_and_factory_builds_each() -> None:
    assert METHODS == ("fp", "pq", "ste", "gs", "psq", "psq-lt")
    for m in METHODS:
        q = make_quantizer(m, LevelSet.uniform(4), SHAPE, generator=seeded())
        assert q.method == m and q().shape == SHAPE
    assert make_quantizer("PSQ_LT", LevelSet.uniform(4), 3).method == "psq-lt"


@pytest.mark.parametrize(
    ("call", "needle"),
    [
        (lambda L: make_quantizer("dsqx", L, SHAPE), "'dsqx'"),
        (lambda L: make_quantizer("psq", L, SHAPE, slope=3), "'slope'"),
        (lambda L: make_quantizer("ste", L, SHAPE, alpha=0.1), "'alpha'"),
        (lambda L: make_quantizer("psq", L, SHAPE, method="gs"), "'gs'"),
        (lambda L: make_quantizer("psq", L, SHAPE, k_delta_start=0.0), "0.0"),
        (lambda L: make_quantizer("psq", L, SHAPE, quant_after=-1), "-1"),
        (lambda L: make_quantizer("psq-lt", L, SHAPE, slope_units="degrees"), "'degrees'"),
        (lambda L: make_quantizer("gs", L, SHAPE, tau_end=float("nan")), "nan"),
        (lambda L: make_quantizer("fp", L, (4, 0)), "(4, 0)"),
        (lambda L: make_quantizer("fp", [0.0, 1.0], SHAPE), "list"),
    ],
)
def test_factory_rejects_bad_input_with_one_line_error(call, needle: str) -> None:
    with pytest.raises(QuantizerError) as info:
        call(LevelSet.uniform(4))
    assert isinstance(info.value, ValueError)
    assert needle in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("method", METHODS)
def test_settings_are_json_and_rebuild_the_same_method(method: str) -> None:
    custom = {"psq": {"k_delta_end": 50.0, "quant_after": 2}, "psq-lt": {"lambda0": 0.02, "slope_units": "relative"},
              "gs": {"tau_start": 3.0}}.get(method, {})
    q = make_quantizer(method, LevelSet.uniform(4), SHAPE, **custom)
    s = json.loads(json.dumps(q.settings()))
    assert s["method"] == method and all(s[k] == v for k, v in custom.items())
    rebuilt = make_quantizer(s["method"], LevelSet.uniform(4), SHAPE, **s)
    assert rebuilt.settings() == s and type(rebuilt) is type(q)


def test_start_epoch_validates() -> None:
    q = make_quantizer("psq", LevelSet.uniform(4), SHAPE)
    for epoch, total in ((-1, 5), (0, 0), (True, 5), (1.5, 5)):
        with pytest.raises(QuantizerError):
            q.start_epoch(epoch, total)


def test_seeded_init_repeats_and_is_uniform_over_the_level_range() -> None:
    for levels, lo, hi in ((LevelSet.uniform(4), 0.0, TWO_PI), (LevelSet.range(4, 0.5, 4.0), 0.5, 4.0)):
        a = make_quantizer("psq", levels, (64, 64), generator=seeded(3)).latent.detach()
        b = make_quantizer("psq", levels, (64, 64), generator=seeded(3)).latent.detach()
        c = make_quantizer("psq", levels, (64, 64), generator=seeded(4)).latent.detach()
        assert torch.equal(a, b) and not torch.equal(a, c)
        assert float(a.min()) >= lo and float(a.max()) <= hi
        # uniform: each quarter of the range holds ~1/4 of 4096 samples (binomial sd ≈ 28)
        counts = torch.histc(a.double(), bins=4, min=lo, max=hi)
        assert torch.all((counts - 1024).abs() < 150)


# ================================================================================================ eval exactness
@pytest.mark.parametrize("method", QUANTIZING)
@pytest.mark.parametrize("kind", sorted(LEVEL_SETS))
def test_eval_outputs_are_exact_level_phases_even_far_outside_the_range(method: str, kind: str) -> None:
    levels = LEVEL_SETS[kind]
    q = make_quantizer(method, levels, SHAPE, generator=seeded(1))
    g = seeded(2)
    if method == "gs":
        set_latent(q, 50.0 * torch.randn(*SHAPE, levels.n, generator=g))
    else:
        raw = torch.randn(SHAPE, generator=g) * 4.0
        raw[0, :3] = torch.tensor([1e3, -1e3, 1e6])
        set_latent(q, raw)
    q.start_epoch(2, 5)
    q.eval()
    out = q()
    assert out.dtype == torch.float32 and not out.requires_grad
    assert torch.equal(out, levels.index_to_phase(q.level_indices(), dtype=torch.float32))
    allowed = set(torch.tensor(levels.phases, dtype=torch.float32).tolist())
    assert set(out.flatten().tolist()) <= allowed
    assert torch.equal(q(), out)  # deterministic (GS: no noise in eval)


@pytest.mark.parametrize("method", QUANTIZING)
def test_eval_in_float64_returns_the_level_table_bit_exactly(method: str) -> None:
    levels = LEVEL_SETS["list5"]
    q = make_quantizer(method, levels, SHAPE, generator=seeded(5)).double().eval()
    out = q()
    assert out.dtype == torch.float64
    assert out.numpy().tobytes() == levels.phases[q.level_indices().numpy()].tobytes()


@pytest.mark.parametrize("method", ("psq", "psq-lt", "ste"))
def test_level_indices_match_the_reference_nearest_level(method: str) -> None:
    for levels in LEVEL_SETS.values():
        q = make_quantizer(method, levels, (32, 32), generator=seeded(6))
        raw = torch.randn(32, 32, generator=seeded(7), dtype=torch.float64) * 10.0
        set_latent(q, raw.float())
        phi = q.latent.detach().double()
        expected = reference_hard(phi, levels)
        ok = distance_to_thresholds(phi, levels) > 1e-5
        got = levels.index_to_phase(q.level_indices())
        assert torch.equal(got[ok], expected[ok])


def test_periodic_methods_give_the_same_level_for_phi_and_phi_plus_2pi() -> None:
    for levels in (LEVEL_SETS["circle4"], LEVEL_SETS["list5"]):
        for method in ("pq", "ste", "psq", "psq-lt", "fp"):
            q = make_quantizer(method, levels, SHAPE, generator=seeded(8)).double()
            base = q.level_indices().clone()
            for m in (-2, 1, 3):
                with torch.no_grad():
                    q.latent.add_(m * TWO_PI)
                assert torch.equal(q.level_indices(), base), (method, m)
                with torch.no_grad():
                    q.latent.sub_(m * TWO_PI)


def test_fp_is_unconstrained_and_pq_wraps_to_the_closest_level() -> None:
    levels = LevelSet.range(2, 0.0, math.pi)
    fp = make_quantizer("fp", levels, (1, 3))
    pq = make_quantizer("pq", levels, (1, 3))
    values = torch.tensor([[TWO_PI - 0.1, 7.0, -2.0]])
    set_latent(fp, values)
    set_latent(pq, values)
    fp.eval(), pq.eval()
    assert torch.equal(fp(), values)  # raw phase, also in eval
    assert "export_warning" in fp.settings()
    # 2π−0.1 ≡ −0.1 → level 0; 7 ≡ 0.717 → level 0; −2 ≡ 4.28 → closer to π than to 2π ≡ 0
    assert pq.level_indices().tolist() == [[0, 0, 1]] == fp.level_indices().tolist()
    pq.train()
    assert torch.equal(pq(), values)  # PQ trains the raw phase


# ================================================================================================ forward in training
def test_ste_training_forward_is_exact_levels_with_identity_gradient() -> None:
    levels = LEVEL_SETS["circle4"]
    q = make_quantizer("ste", levels, SHAPE, generator=seeded(9))
    set_latent(q, torch.randn(SHAPE, generator=seeded(10)) * 20)
    out = q()
    assert torch.equal(out, q.hard_phase())
    w = torch.randn(SHAPE, generator=seeded(11))
    (out * w).sum().backward()
    assert torch.equal(q.latent.grad, w)  # identity, including far outside [0, 2π)


def test_gs_training_forward_is_exact_levels_and_reaches_the_logits() -> None:
    levels = LEVEL_SETS["circle4"]
    q = make_quantizer("gs", levels, SHAPE, generator=seeded(12))
    out = q()
    allowed = set(torch.tensor(levels.phases, dtype=torch.float32).tolist())
    assert set(out.flatten().tolist()) <= allowed
    (out * torch.randn(SHAPE, generator=seeded(13))).sum().backward()
    assert q.logits.grad is not None and torch.count_nonzero(q.logits.grad) > 0.9 * q.logits.numel()


def test_gs_soft_phase_mixes_levels_the_short_way_round_the_circle() -> None:
    d = level_offsets(LevelSet.uniform(4))
    np.testing.assert_allclose(d[0], [0.0, math.pi / 2, -math.pi, -math.pi / 2], atol=1e-15)
    np.testing.assert_allclose(d[3], [math.pi / 2, -math.pi, -math.pi / 2, 0.0], atol=1e-15)
    r = LevelSet.range(3, 0.0, 4.0)
    np.testing.assert_allclose(level_offsets(r)[0], [0.0, 2.0, 4.0])  # range: plain differences (lab)


def test_psq_warmup_trains_the_raw_phase_then_quantizes() -> None:
    q = make_quantizer("psq", LEVEL_SETS["circle4"], SHAPE, generator=seeded(14), quant_after=2)
    for epoch in (0, 1):
        q.start_epoch(epoch, 6)
        assert q.status()["fp_warmup"] == 1.0 and torch.equal(q(), q.latent.detach())
    q.start_epoch(2, 6)
    assert q.status()["fp_warmup"] == 0.0 and not torch.equal(q(), q.latent.detach())
    q.eval()
    q.start_epoch(0, 6)
    assert torch.equal(q(), q.hard_phase())  # eval is hard even during the warm-up


# ================================================================================================ PSQ transfer
@pytest.mark.parametrize("kind", sorted(LEVEL_SETS))
def test_soft_psq_converges_to_hard_as_the_slope_grows(kind: str) -> None:
    levels = LEVEL_SETS[kind]
    if levels.periodic:
        phi = torch.linspace(-15.0, 15.0, 20001, dtype=torch.float64)
    else:  # inside [lo, hi]: outside, the α term deliberately keeps Q ≠ hard
        phi = torch.linspace(float(levels.phases[0]), float(levels.phases[-1]), 20001, dtype=torch.float64)
    hard = reference_hard(phi, levels)
    far = distance_to_thresholds(phi, levels) > 0.1 * levels.min_step
    errors_far, frac_bad = [], []
    for k_delta in (2.0, 5.0, 10.0, 30.0, 100.0, 400.0):
        err = circular_error(psq_transfer(phi, levels, k_delta / levels.min_step), hard)
        errors_far.append(float(err[far].max()))
        frac_bad.append(float((err > 0.01).double().mean()))
    assert all(a > b for a, b in zip(errors_far, errors_far[1:])), errors_far
    assert errors_far[-1] < 1e-9
    assert all(a >= b for a, b in zip(frac_bad, frac_bad[1:])) and frac_bad[-1] < 0.1 * frac_bad[0]


@pytest.mark.parametrize("kind", ("circle4", "list5"))
def test_periodic_psq_keeps_the_step_from_the_top_level_back_to_level_zero(kind: str) -> None:
    levels = LEVEL_SETS[kind]
    k = 2.0 / levels.min_step  # soft: wrap errors would show
    phi = torch.linspace(-7.0, 7.0, 2001, dtype=torch.float64)
    q = psq_transfer(phi, levels, k)
    q_shift = psq_transfer(phi + TWO_PI, levels, k)
    assert float(circular_error(q, q_shift).max()) < 1e-6  # Q(φ + 2π) ≡ Q(φ)
    # continuity across the wrap point φ_0 and derivative k·Δ/4 at the top→level-0 threshold
    p0 = float(levels.phases[0])
    eps = 1e-7
    assert float(circular_error(psq_transfer(torch.tensor([p0 - eps]), levels, k),
                                psq_transfer(torch.tensor([p0 + eps]), levels, k))) < 1e-5
    top_c = torch.tensor([float(levels.thresholds[-1])], dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(psq_transfer(top_c, levels, 40.0 / levels.min_step).sum(), top_c)
    expected = 40.0 / levels.min_step * float(levels.steps[-1]) / 4.0
    assert float(grad) == pytest.approx(expected, rel=1e-6)


def test_psq_gradient_is_large_at_thresholds_small_on_plateaus_and_alpha_outside_range() -> None:
    levels = LEVEL_SETS["range4"]
    k_delta, alpha = 30.0, 0.01
    q = make_quantizer("psq", levels, (1, 7), k_delta_start=k_delta, k_delta_end=k_delta, alpha=alpha).double()
    lo, hi, step = float(levels.phases[0]), float(levels.phases[-1]), levels.min_step
    points = list(levels.thresholds) + [float(levels.phases[1]), lo - 2.0, hi + 3.0, hi + 100.0]
    set_latent(q, torch.tensor([points], dtype=torch.float64))
    q.start_epoch(0, 1)
    q().sum().backward()
    g = q.latent.grad[0]
    k = k_delta / step
    for i in range(3):  # derivative of Δ·σ(k(φ − c)) at φ = c is kΔ/4 (other sigmoids negligible at kΔ = 30)
        assert float(g[i]) == pytest.approx(k * float(levels.steps[i]) / 4.0, rel=1e-6)
    assert 0.0 < float(g[3]) < 1e-4  # plateau centre: vanishing but non-zero
    for j in (4, 5, 6):  # out of range: the restoring slope α
        assert float(g[j]) == pytest.approx(alpha, rel=1e-6)


@pytest.mark.parametrize("method", QUANTIZING)
def test_eval_forward_carries_no_gradient(method: str) -> None:
    q = make_quantizer(method, LEVEL_SETS["circle4"], SHAPE, generator=seeded(15)).eval()
    out = q()
    assert not out.requires_grad
    q.train()
    assert q().requires_grad


# ================================================================================================ schedules
def test_psq_slope_schedule_is_geometric_from_start_to_end() -> None:
    levels = LEVEL_SETS["circle4"]
    q = make_quantizer("psq", levels, SHAPE, quant_after=1, k_delta_start=2.0, k_delta_end=32.0)
    values = []
    for e in range(6):
        q.start_epoch(e, 6)
        values.append(q.status()["k_delta"])
        assert q.status()["slope"] == pytest.approx(values[-1] / levels.min_step)
    assert values[0] == pytest.approx(2.0) and values[1] == pytest.approx(2.0) and values[-1] == pytest.approx(32.0)
    ratios = [b / a for a, b in zip(values[1:], values[2:])]
    assert ratios == pytest.approx([2.0] * 4)  # 2 → 32 in 4 equal factors


def test_gs_temperature_anneals_geometrically() -> None:
    q = make_quantizer("gs", LEVEL_SETS["circle4"], SHAPE, tau_start=1.0, tau_end=0.01)
    taus = []
    for e in range(3):
        q.start_epoch(e, 3)
        taus.append(q.status()["temperature"])
    assert taus == pytest.approx([1.0, 0.1, 0.01])


def test_psq_lt_kappa_gets_gradient_and_regulariser_raises_the_slope() -> None:
    levels = LEVEL_SETS["circle4"]
    q = make_quantizer("psq-lt", levels, (4, 4), generator=seeded(16), reg_schedule="epoch")
    assert q.status()["slope"] == pytest.approx(1.0 / (0.05 + 0.005), rel=1e-6)
    # κ gets a gradient through the task loss (latents near thresholds feel the slope)
    set_latent(q, torch.tensor(levels.thresholds, dtype=torch.float32).repeat(4, 1) + 0.01)
    (q() ** 2).sum().backward()
    assert q.kappa.grad is not None and float(q.kappa.grad.abs()) > 0
    # the lab's epoch form: λ_e = 0.01·2^⌊e/5⌋ and R = ½·λ_e·κ²
    for epoch, lam in ((0, 0.01), (4, 0.01), (5, 0.02), (12, 0.04)):
        q.start_epoch(epoch, 20)
        assert q.status()["reg_weight"] == pytest.approx(lam)
        kappa = float(q.kappa.detach())
        assert float(q.regularizer().detach()) == pytest.approx(0.5 * lam * kappa**2, rel=1e-6)

    def slope_after_steps(epoch: int) -> float:
        fresh = make_quantizer("psq-lt", levels, (4, 4), generator=seeded(16), reg_schedule="epoch")
        fresh.start_epoch(epoch, 20)
        opt = torch.optim.SGD([fresh.kappa], lr=5.0)
        for _ in range(20):
            opt.zero_grad()
            fresh.regularizer().backward()
            opt.step()
        return fresh.status()["slope"]

    k0 = 1.0 / 0.055
    assert k0 < slope_after_steps(0) < slope_after_steps(10)  # stronger pressure at later epochs


def test_psq_lt_relative_slope_units_scale_with_the_level_step() -> None:
    for n in (4, 16):
        levels = LevelSet.uniform(n)
        q = make_quantizer("psq-lt", levels, SHAPE, slope_units="relative")
        assert q.status()["k_delta"] == pytest.approx(1.0 / 0.055, rel=1e-6)
        a = make_quantizer("psq-lt", levels, SHAPE)
        assert a.status()["slope"] == pytest.approx(1.0 / 0.055, rel=1e-6)


# ================================================================================================ Gumbel-softmax
def test_gs_relaxation_tends_to_the_hard_sample_as_temperature_goes_to_zero() -> None:
    g = seeded(17)
    logits = torch.randn(500, 4, generator=g, dtype=torch.float64)
    noise = -torch.log(-torch.log(torch.rand(500, 4, generator=g, dtype=torch.float64)))
    top2 = torch.topk(logits + noise, 2, dim=-1).values
    clear = (top2[:, 0] - top2[:, 1]) > 0.05
    gaps = []
    for tau in (1.0, 0.3, 0.1, 0.03, 0.01, 0.001):
        index, soft = gumbel_softmax_st(logits, noise, tau)
        assert torch.equal(torch.argmax(soft, dim=-1), index)
        onehot = torch.nn.functional.one_hot(index, 4).double()
        gaps.append(float((soft - onehot)[clear].abs().max()))
    assert all(a > b for a, b in zip(gaps, gaps[1:])) and gaps[-1] < 1e-15


def test_gs_training_sample_equals_eval_argmax_when_logits_dominate_the_noise() -> None:
    q = make_quantizer("gs", LEVEL_SETS["list5"], (8, 8), generator=seeded(18))
    winners = torch.randint(0, 5, (8, 8), generator=seeded(19))
    set_latent(q, 1e3 * torch.nn.functional.one_hot(winners, 5).float())  # margin 1e3 ≫ Gumbel noise
    train_out = q()
    q.eval()
    assert torch.equal(q.level_indices(), winners)
    assert torch.equal(train_out, q()) and torch.equal(q.level_indices(), torch.argmax(q.logits, dim=-1))


def test_gs_noise_is_seeded_fresh_per_step_and_resumes_from_state_dict() -> None:
    levels = LEVEL_SETS["circle4"]
    a = make_quantizer("gs", levels, (16, 16), generator=seeded(20))
    b = make_quantizer("gs", levels, (16, 16), generator=seeded(20))
    samples_a = [a().detach() for _ in range(3)]
    assert all(torch.equal(x, b().detach()) for x in samples_a)  # same seed, same stream
    assert not torch.equal(samples_a[0], samples_a[1])  # fresh noise at every step
    c = make_quantizer("gs", levels, (16, 16), generator=seeded(99))
    c.load_state_dict(a.state_dict())
    assert torch.equal(c().detach(), a().detach())  # resumed noise stream


# ================================================================================================ state
@pytest.mark.parametrize("method", ("psq", "psq-lt", "gs"))
def test_state_dict_round_trip_restores_parameters_and_schedules(method: str) -> None:
    levels = LEVEL_SETS["circle4"]
    a = make_quantizer(method, levels, SHAPE, generator=seeded(21))
    opt = torch.optim.Adam(a.parameters(), lr=0.05)
    a.start_epoch(7, 20)
    for _ in range(3):
        opt.zero_grad()
        (a().sum() + a.regularizer()).backward()
        opt.step()
    b = make_quantizer(method, levels, SHAPE, generator=seeded(22))
    b.load_state_dict(a.state_dict())
    assert b.status() == a.status() and int(b.epoch) == 7
    assert torch.equal(b(), a())
    a.eval(), b.eval()
    assert torch.equal(b(), a()) and torch.equal(b.level_indices(), a.level_indices())


# ================================================================================================ toy training
def two_mask_toy(n: int, levels: LevelSet):
    """A 2-mask 'network': |FFT(t2·FFT(t1·u))|² with t = exp(iφ), and a target from a random quantized pair."""
    g = seeded(30)
    target_phases = levels.index_to_phase(torch.randint(0, levels.n, (2, n, n), generator=g), dtype=torch.float32)
    u = torch.exp(1j * TWO_PI * torch.rand(n, n, generator=g))

    def net(p1: torch.Tensor, p2: torch.Tensor) -> torch.Tensor:
        f = torch.fft.fft2(u * torch.exp(1j * p1), norm="ortho")
        return torch.fft.fft2(f * torch.exp(1j * p2), norm="ortho").abs() ** 2

    target = net(*target_phases)
    return lambda p1, p2: ((net(p1, p2) - target) ** 2).mean()


@pytest.mark.parametrize("method", METHODS)
def test_tiny_network_trained_with_each_method_improves_its_hard_loss(method: str) -> None:
    levels = LEVEL_SETS["circle4"]
    loss_fn = two_mask_toy(12, levels)
    gen = seeded(31)
    masks = torch.nn.ModuleList([make_quantizer(method, levels, (12, 12), generator=gen) for _ in range(2)])
    masks.eval()
    with torch.no_grad():
        before = float(loss_fn(masks[0](), masks[1]()))
    # GS logits are not radians: they need a larger step than phases to flip a level within 90 steps
    opt = torch.optim.Adam(masks.parameters(), lr=0.2 if method == "gs" else 0.05)
    epochs = 6
    for epoch in range(epochs):
        for m in masks:
            m.start_epoch(epoch, epochs)
        masks.train()
        for _ in range(15):
            opt.zero_grad()
            loss = loss_fn(masks[0](), masks[1]()) + sum(m.regularizer() for m in masks)
            loss.backward()
            opt.step()
    masks.eval()
    with torch.no_grad():
        after = float(loss_fn(masks[0](), masks[1]()))
    assert after < 0.8 * before, (before, after)


# ================================================================================================ figure
def test_transfer_figure_is_a_png_and_its_gradients_match_finite_differences(tmp_path) -> None:
    from PIL import Image

    from quaton_fab.quant.figure import plot_transfer_curves, transfer_curves

    levels = LEVEL_SETS["circle4"]  # smooth everywhere (a range set has α kinks at lo and hi)
    curves = transfer_curves(levels, slopes=(3.0,), num_points=4001)
    phi, q, dq = curves["phi"], curves["psq@3"], curves["dpsq@3"]
    np.testing.assert_allclose(np.gradient(q, phi)[5:-5], dq[5:-5], rtol=0, atol=2e-3)
    out = plot_transfer_curves(LEVEL_SETS["circle4"], tmp_path / "q.png", slopes=(2.0, 30.0))
    assert out == tmp_path / "q.png" and sorted(p.name for p in tmp_path.iterdir()) == ["q.png"]
    with Image.open(out) as img:
        assert img.format == "PNG" and img.size[0] > 300 and img.size[1] > 300
    with pytest.raises(QuantizerError):
        transfer_curves(levels, slopes=(0.0,))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("name", sorted(LEVEL_SETS))
def test_flat_init_starts_every_pixel_at_level_zero(method, name):
    levels = LEVEL_SETS[name]
    flat = make_quantizer(method, levels, SHAPE, generator=seeded(), init="flat")
    assert torch.equal(flat.level_indices(), torch.zeros(SHAPE, dtype=torch.int64))
    flat.eval()
    np.testing.assert_allclose(flat().detach().numpy(), levels.phases[0], atol=1e-6)
    # the default start is random phases over the level range: several levels present
    uniform = make_quantizer(method, levels, SHAPE, generator=seeded())
    assert len(torch.unique(uniform.level_indices())) > 1
    # and the flat mask still learns: its training phase has a gradient
    flat.train()
    flat.start_epoch(0, 2)
    phase = flat()
    (phase * torch.linspace(-1.0, 1.0, phase.numel()).reshape(SHAPE)).sum().backward()
    grads = [p.grad for p in flat.parameters() if p.grad is not None]
    assert grads and any(float(g.abs().sum()) > 0 for g in grads)


def test_an_unknown_init_is_refused():
    with pytest.raises(QuantizerError, match="mask init must be one of uniform, flat, got 'zeros'"):
        make_quantizer("psq-lt", LEVEL_SETS["circle4"], SHAPE, init="zeros")
