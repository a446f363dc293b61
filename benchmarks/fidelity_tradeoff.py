"""Training model × sampling → accuracy in its own model and as the printed object (the README trade-off table).

Each row trains the quickstart geometry (or loads a saved design) and evaluates its exported levels twice: in
the model it was trained with, and at the printed-object reference (sampling rule, relief model sliced at most
λ0/8). Results are appended to ``benchmarks/results/fidelity_tradeoff.json``.

    python benchmarks/fidelity_tradeoff.py                       # every row below (about 20 minutes, 2 cores)
    python benchmarks/fidelity_tradeoff.py --row thin_s2         # one row
    python benchmarks/fidelity_tradeoff.py --design DIR --name X --test-samples 2000   # a saved design
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import torch

from quaton_fab.design import Design
from quaton_fab.training import Trainer, preset
from quaton_fab.simulate import reference_fidelity, simulate_design

RESULTS = Path(__file__).parent / "results" / "fidelity_tradeoff.json"

#: name → overrides of the quickstart preset
ROWS = {
    "thin_s1": {"model": "thin", "oversample": 1, "allow_undersampling": True, "lr": 0.05},
    "thin_s2": {"model": "thin", "lr": 0.05},
    "relief_level_slices_20k": {"max_slice_m": None, "train_samples": 20000, "lr": 0.05},
    "relief_180nm_lr005": {"lr": 0.05},
    "relief_180nm_default": {},
}


def measure(name: str, design: Design, test_samples: int | None) -> dict:
    """Own-model and reference accuracy of a design (reference on ``test_samples`` digits, default all)."""
    ref = reference_fidelity(design)
    t0 = time.perf_counter()
    at_ref = simulate_design(design, fidelity=ref, samples=test_samples, device="cpu")
    return {
        "name": name,
        "own_model": f"s={design.geometry.oversample}, {design.model}"
        + (f", max slice {design.relief.max_slice_m}" if design.relief is not None else ""),
        "own_accuracy": design.metrics["test"]["accuracy"],
        "own_samples": design.metrics["test"]["samples"],
        "train_time_s": design.metrics.get("train_time_s"),
        "train_samples": design.dataset.get("train_samples"),
        "epochs": design.training.get("epochs"),
        "reference": ref.describe(design.geometry),
        "reference_accuracy": at_ref["accuracy"],
        "reference_samples": at_ref["samples"],
        "reference_eval_s": round(time.perf_counter() - t0, 1),
        "torch_threads": torch.get_num_threads(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--row", choices=sorted(ROWS), action="append", help="rows to run (default: all)")
    parser.add_argument("--design", type=Path, help="evaluate a saved design instead of training")
    parser.add_argument("--name", default="design")
    parser.add_argument("--test-samples", type=int, default=None, help="reference test digits (default: all)")
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    rows = []
    if args.design is not None:
        rows.append(measure(args.name, Design.load(args.design), args.test_samples))
    else:
        for name in args.row or list(ROWS):
            overrides = ROWS[name]
            config = preset("quickstart", **overrides).replace(**{k: v for k, v in overrides.items() if v is None})
            design = Trainer(config, tempfile.mkdtemp()).fit().design
            rows.append(measure(name, design, args.test_samples))
            print(json.dumps(rows[-1]), flush=True)
    old = json.loads(RESULTS.read_text()) if RESULTS.is_file() else []
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(old + rows, indent=2) + "\n")
    for row in rows:
        print(json.dumps(row))


if __name__ == "__main__":
    main()
