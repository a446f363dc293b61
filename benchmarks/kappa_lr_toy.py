"""PSQ-LT's κ learning rate on the seconds-long synthetic toy (the `tiny` preset): test accuracy per rate.

Rates 0.003, 0.01 (default), 0.05 and none (κ shares the phases' rate 0.2), each with the run-fraction and the
epoch regulariser schedule, seeds 0–2; 256 training samples × 3 epochs, 48 test samples (one sample is 2.1
points). Writes benchmarks/results/kappa_lr_toy.json (test accuracy and final k·Δ per mask, per run).

    OMP_NUM_THREADS=1 python benchmarks/kappa_lr_toy.py
"""

from __future__ import annotations

import itertools
import json
import tempfile
from pathlib import Path

import torch

from quaton_fab.training import Trainer, preset


def main() -> None:
    torch.set_num_threads(1)
    results: dict[str, list] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for kappa_lr, schedule, seed in itertools.product([None, 0.05, 0.01, 0.003], ["epoch", "run"], [0, 1, 2]):
            config = preset("tiny", train_samples=256, val_samples=32, test_samples=48, epochs=3, neurons=20,
                            layers=2, spacing_m=10e-6, batch_size=32, threads=None, seed=seed,
                            quantizer={"psq-lt": {"kappa_lr": kappa_lr, "reg_schedule": schedule}})
            design = Trainer(config, Path(tmp) / f"{kappa_lr}_{schedule}_{seed}").fit().design
            last = design.training["history"][-1]["quantizer_per_mask"]
            results.setdefault(f"{kappa_lr}/{schedule}", []).append(
                {"seed": seed, "accuracy": design.metrics["test"]["accuracy"],
                 "k_delta_per_mask": [m["k_delta"] for m in last]})
    out = Path(__file__).with_name("results") / "kappa_lr_toy.json"
    out.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
