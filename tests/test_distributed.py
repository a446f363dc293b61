"""Data-parallel training: 2 CPU processes (torchrun, gloo, DistributedDataParallel) train the same design as one
process with the same global batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from quaton_fab.training.distributed import SINGLE, launch_command

TINY = ["train", "--preset", "tiny", "--neurons", "16", "--spacing", "10um", "--epochs", "1", "--train-samples", "96",
        "--val-samples", "16", "--test-samples", "16", "--batch-size", "24", "--micro-batch", "7"]


def quaton(*args, nproc=None):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("WORLD_SIZE", None)
    command = [sys.executable, "-m", "quaton_fab.cli", *map(str, args)]
    if nproc:
        command += ["--nproc", str(nproc)]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, env=env, check=False)


def test_two_processes_train_the_design_of_one(tmp_path):
    one = quaton(*TINY, "--out", tmp_path / "one")
    assert one.returncode == 0, one.stderr[-2000:]
    two = quaton(*TINY, "--out", tmp_path / "two", nproc=2)
    assert two.returncode == 0, (two.stdout[-2000:], two.stderr[-2000:])
    a = torch.load(tmp_path / "one" / "checkpoint.pt", weights_only=True)
    b = torch.load(tmp_path / "two" / "checkpoint.pt", weights_only=True)
    assert a["step"] == b["step"] and a["epoch"] == b["epoch"] == 1
    for name, value in a["network"].items():
        other = b["network"][name]
        if value.is_floating_point():
            assert torch.allclose(value, other, rtol=0, atol=1e-4), (name, float((value - other).abs().max()))
        else:
            assert torch.equal(value, other), name
    # the exported designs agree level for level, and so do their test metrics
    levels_one = np.load(tmp_path / "one" / "masks.npz")["level_indices"]
    assert np.array_equal(levels_one, np.load(tmp_path / "two" / "masks.npz")["level_indices"])
    metrics_one = json.loads((tmp_path / "one" / "metrics.json").read_text())
    metrics_two = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert metrics_one["metrics"]["test"]["accuracy"] == metrics_two["metrics"]["test"]["accuracy"]
    # only rank 0 wrote the run directory: one design, one checkpoint, no stray files of rank 1
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == sorted(p.name for p in (tmp_path / "one").iterdir())


def test_launch_command_and_single_process_context():
    command = launch_command(3, ["train", "--preset", "tiny"])
    assert command[1:3] == ["-m", "torch.distributed.run"] and "--standalone" in command
    assert command[command.index("--nproc-per-node") + 1] == "3"
    assert command[-3:] == ["train", "--preset", "tiny"]
    assert SINGLE.is_main and not SINGLE.active
    module = torch.nn.Linear(2, 2)
    assert SINGLE.wrap(module) is module and SINGLE.no_sync(module) is None
    assert SINGLE.any(True, torch.device("cpu")) and SINGLE.mean(2.5, torch.device("cpu")) == 2.5


@pytest.mark.parametrize("bad", ["0", "-1"])
def test_nproc_must_be_positive(bad, tmp_path):
    result = quaton(*TINY, "--out", tmp_path / "x", "--nproc", bad)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert not (tmp_path / "x").exists()
