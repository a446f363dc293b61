"""Bounded memory: recomputed slices and micro-batches give the plain path's gradients; the memory estimate
accounts for both and stays close to the measured peak."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from quaton_fab.resources import check_training_memory, resolve_recompute, training_memory_parts
from quaton_fab.training import ConfigError, preset
from quaton_fab.training.step import micro_batches, split_share
from quaton_fab.training.stepbench import StepRunner


def tiny_relief(**overrides):
    values = dict(train_samples=32, val_samples=8, test_samples=8, neurons=16, layers=3, spacing_m=10e-6,
                  batch_size=10, max_slice_m=150e-9, device="cpu")
    values.update(overrides)
    return preset("tiny", **values)


def gradients(runner: StepRunner) -> dict[str, torch.Tensor]:
    loss = runner.step()
    assert loss == loss
    return {name: p.grad.detach().clone() for name, p in runner.model.named_parameters() if p.grad is not None}


def assert_same_gradients(a, b, rtol=2e-4):
    assert a.keys() == b.keys() and a
    for name in a:
        scale = float(a[name].abs().max())
        assert scale > 0, name  # the gradient is not trivially zero
        gap = float((a[name] - b[name]).abs().max())
        assert gap <= rtol * scale, (name, gap, scale)


def test_recompute_gives_the_plain_gradients():
    plain = StepRunner(tiny_relief(recompute="off"))
    again = StepRunner(tiny_relief(recompute="on"))
    assert not plain.parts.network.recompute and again.parts.network.recompute
    assert len(plain.parts.network.relief.slice_edges_m()) - 1 >= 6  # several slices per mask to recompute
    assert_same_gradients(gradients(plain), gradients(again))


@pytest.mark.parametrize("method", ["psq-lt", "gs"])
def test_micro_batches_give_the_whole_batch_gradients(method):
    # 10 samples in micro-batches of 3 (3+3+3+1: unequal chunks are weighted by their size); GS draws its Gumbel
    # noise once per step whatever the micro-batching
    whole = StepRunner(tiny_relief(method=method))
    parts = StepRunner(tiny_relief(method=method, micro_batch=3, recompute="on"))
    assert_same_gradients(gradients(whole), gradients(parts))
    buffers = dict(whole.parts.network.named_buffers())
    for name, value in parts.parts.network.named_buffers():
        assert torch.equal(value, buffers[name]), name  # the same module state after the step


def test_a_wrong_micro_batch_would_change_the_gradients():
    # the equality above is not vacuous: dropping the per-chunk weights changes the gradient
    whole = StepRunner(tiny_relief())
    reference = gradients(whole)
    runner = StepRunner(tiny_relief(micro_batch=5))
    for p in runner.model.parameters():
        p.grad = None
    for lo, hi in micro_batches(10, 5):
        phase = None if runner.input_phase is None else runner.input_phase[lo:hi]
        runner.model(runner.field[lo:hi], runner.labels[lo:hi], phase).backward()  # unweighted: 2× the gradient
    grads = {n: p.grad for n, p in runner.model.named_parameters() if p.grad is not None}
    name = next(iter(reference))
    assert not torch.allclose(grads[name], reference[name], atol=1e-3 * float(reference[name].abs().max()))


def test_shares_and_micro_batches_cover_the_batch():
    assert micro_batches(10, 3) == [(0, 3), (3, 6), (6, 9), (9, 10)]
    assert micro_batches(4, None) == [(0, 4)]
    shares = [split_share(11, r, 3) for r in range(3)]
    assert [(s.start, s.stop) for s in shares] == [(0, 4), (4, 8), (8, 11)]
    assert all(s.total == 11 and s.processes == 3 for s in shares)


def test_config_rejects_bad_memory_settings():
    with pytest.raises(ConfigError, match="recompute must be one of auto, on, off, got 'maybe'"):
        tiny_relief(recompute="maybe")
    with pytest.raises(ConfigError, match="micro_batch must be a positive integer, got 0"):
        tiny_relief(micro_batch=0)
    assert "recompute" not in tiny_relief().to_dict()  # defaults leave design.json as it was
    assert tiny_relief(micro_batch=4).to_dict()["micro_batch"] == 4


def test_the_estimate_accounts_for_recompute_and_micro_batches():
    runner = StepRunner(tiny_relief())
    relief = runner.parts.network.relief
    config = runner.config
    stored, _ = training_memory_parts(config, 2, relief=relief, recompute=False)
    recomputed, _ = training_memory_parts(config, 2, relief=relief, recompute=True)
    micro, _ = training_memory_parts(config.replace(micro_batch=2), 2, relief=relief, recompute=False)
    assert recomputed["train"] < 0.7 * stored["train"]
    assert micro["train"] == pytest.approx(stored["train"] * 2 / 10)
    # auto recomputes exactly when storing the slices would take over half of the memory available
    assert not resolve_recompute(config.replace(recompute="auto"), None, 2, relief=relief)
    assert resolve_recompute(config.replace(recompute="on"), None, 2, relief=relief)
    assert not resolve_recompute(config.replace(recompute="on"), None, 2, relief=None)  # thin masks


def test_the_refusal_names_the_memory_options(monkeypatch):
    from types import SimpleNamespace

    from quaton_fab.errors import ResourceError

    runner = StepRunner(tiny_relief())
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (1 << 20, 1 << 30))
    hint = r"\(use --recompute on or a smaller --micro-batch\) needs about .* 1\.0 MiB available"
    with pytest.raises(ResourceError, match=hint):
        check_training_memory(runner.config.replace(eval_batch_size=1), SimpleNamespace(type="cuda"), 2,
                              relief=runner.parts.network.relief)


MEASURE = r"""
import json, sys, torch
torch.set_num_threads(1)
from quaton_fab.training import preset
from quaton_fab.training.stepbench import measure_step
name, overrides = json.loads(sys.argv[1])
cost = measure_step(preset(name, device="cpu", **overrides), "cpu", repeats=0)
print(json.dumps([cost.peak_bytes, cost.estimate_bytes, cost.method]))
"""


@pytest.mark.parametrize(
    "name, overrides",
    [
        ("quickstart", dict(batch_size=12, recompute="off")),
        ("quickstart", dict(batch_size=12, recompute="on")),
        ("paper", dict(neurons=96, layers=3, batch_size=8, recompute="off")),
        ("paper", dict(neurons=96, layers=6, batch_size=8, model="thin")),
    ],
)
def test_the_estimate_is_close_to_the_measured_peak(name, overrides):
    # each size in a fresh process: the peak resident memory of one forward + backward (quaton_fab/profiling.py)
    done = subprocess.run([sys.executable, "-c", MEASURE, json.dumps([name, overrides])], capture_output=True,
                          text=True, timeout=300, check=True)
    peak, estimate, method = json.loads(done.stdout.strip().splitlines()[-1])
    if peak is None:
        pytest.skip("no way to measure the peak memory on this system")
    assert method == "rss-high-water"
    assert peak > 8 * 2**20  # large enough to be measured well
    assert 0.75 * peak <= estimate <= 2.5 * peak, (peak / 2**20, estimate / 2**20)
