"""How the study's ranking moves when the printed object is sampled finer than the rule (a script, not a test).

The reference fidelity samples each pixel at the sampling rule (s = 2 for the study's geometries). A check
against RCWA (README, "Sampling of the relief") found s = 2 not yet converged for 0.78 µm pixels carrying
IP-Dip pillars, while s ≥ 3 is. This script re-simulates finished study cells at a finer s with the reference
relief slicing and writes both numbers per cell, so the effect on each method is measured rather than assumed.

Usage: ``python benchmarks/study_sampling_check.py SWEEP_DIR [--s 4] [--grid classify-mnist --levels 4 16]
[--samples 500] [--out benchmarks/results/study_sampling_s4.json]``
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from quaton_fab.design import Design
from quaton_fab.sweep.runner import load_records
from quaton_fab.simulate import simulate_design
from quaton_fab.simulate import reference_fidelity


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sweep_dir")
    parser.add_argument("--s", type=int, default=4, help="simulation pixels per neuron side for the re-simulation")
    parser.add_argument("--grid", nargs="+", default=["classify-mnist", "qpi-rbc"])
    parser.add_argument("--levels", nargs="+", type=int, default=[4, 16])
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results/study_sampling_s4.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    _, records = load_records(args.sweep_dir)
    rows = []
    t0 = time.time()
    for rec in records:
        p = rec["cell"]["params"]
        if rec.get("status") != "done" or rec["cell"]["grid"] not in args.grid or p.get("levels") not in args.levels:
            continue
        if p.get("method") == "fp":
            continue
        design = Design.load(Path(args.sweep_dir) / rec["cell"]["grid"] / rec["cell"]["name"])
        primary = rec["primary"]
        ref = reference_fidelity(design)
        fine = dataclasses.replace(ref, oversample=max(args.s, ref.oversample), label=f"s={args.s}")
        at_ref = simulate_design(design, samples=args.samples, fidelity=ref)[primary]
        at_fine = simulate_design(design, samples=args.samples, fidelity=fine)[primary]
        rows.append({"grid": rec["cell"]["grid"], **p, "reference": at_ref, f"s{args.s}": at_fine})
        print(rows[-1], flush=True)
    summary = defaultdict(list)
    for r in rows:
        summary[(r["grid"], r["method"], r["levels"])].append((r["reference"], r[f"s{args.s}"]))
    table = [{"grid": g, "method": m, "levels": lv, "seeds": len(v),
              "reference_mean": float(np.mean([a for a, _ in v])), f"s{args.s}_mean": float(np.mean([b for _, b in v]))}
             for (g, m, lv), v in sorted(summary.items())]
    settings = " ".join(f"{k}={v}" for k, v in vars(args).items())
    out = {"command": "python benchmarks/study_sampling_check.py " + settings,
           "samples": args.samples, "s": args.s, "rows": rows, "summary": table, "time_s": round(time.time() - t0, 1),
           "machine": platform.platform()}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    for t in table:
        print(t)


if __name__ == "__main__":
    main()
