"""Train the same preset with every QAT method and tabulate the hard-quantized test metric.

Run by hand (not a test); writes JSON to benchmarks/results/methods_<preset>.json:

    python benchmarks/compare_methods.py --preset quickstart --threads 2

Every method gets the same geometry, data, seed, epochs and optimiser; only the phase module differs. The
metric is measured with the exported level phases (for FP also without quantization, as the upper bound).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import torch

from quaton_fab import __version__
from quaton_fab.fileio import atomic_write_bytes
from quaton_fab.quant import METHODS
from quaton_fab.training import Trainer, preset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="quickstart")
    parser.add_argument("--methods", nargs="*", default=list(METHODS))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out = args.out or Path(__file__).parent / "results" / f"methods_{args.preset}.json"
    rows = []
    for method in args.methods:
        config = preset(args.preset, method=method, seed=args.seed)
        start = time.perf_counter()
        with tempfile.TemporaryDirectory() as run_dir:
            design = Trainer(config, run_dir).fit().design
        wall = time.perf_counter() - start
        primary = design.metrics["primary"]
        row = {
            "method": method,
            primary: design.metrics["test"][primary],
            "test_samples": design.metrics["test"]["samples"],
            "best_epoch": design.metrics["best_epoch"],
            "wall_s": round(wall, 1),
        }
        if "test_unquantized" in design.metrics:
            row[f"{primary}_unquantized"] = design.metrics["test_unquantized"][primary]
        rows.append(row)
        print(json.dumps(row), flush=True)
    result = {
        "benchmark": "compare_methods",
        "preset": args.preset,
        "config": preset(args.preset).to_dict(),
        "seed": args.seed,
        "rows": rows,
        "machine": {"cpus": os.cpu_count(), "threads": args.threads, "python": platform.python_version(),
                    "torch": torch.__version__, "quaton_fab": __version__, "loadavg": os.getloadavg()},
    }
    atomic_write_bytes(out, json.dumps(result, indent=2).encode("utf-8"))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
