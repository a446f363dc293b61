"""Lateral sampling of the multislice relief model against RCWA, at the pixel size of the default design.

Random 8-pixel gratings of 0.78 µm IP-Dip pixels (λ0 = 780 nm, levels 0 / 0.4 / 0.7 / 1.1 µm: the quickstart's
heights on a 100 nm slicing grid, 90 nm slices), normal incidence, light through a 0.5 µm base. For each
grating: the L1 error of the multislice order efficiencies at s = 2, 3, 4, 8, 16 simulation pixels per relief
pixel against RCWA (grcwa, mean of the TE and TM efficiencies, each normalised to the transmitted power), the
thin model's error, and the TE-vs-TM difference (what no scalar model can represent). The pixel is detuned to
0.7795 µm: at exactly λ0 one diffraction order of the 8-pixel period is grazing and RCWA divides by zero.

Usage: ``python benchmarks/relief_sampling_rcwa.py [--gratings 6] [--out
benchmarks/results/relief_sampling_rcwa.json]`` (about a minute on 2 cores). Shares the helpers of
``tests/test_relief_rcwa.py`` (its docstring states the conventions).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import test_relief_rcwa as rcwa  # noqa: E402  (helpers shared with the test)

PIXEL_M = 0.7795e-6
LEVELS_M = (0.0, 0.4e-6, 0.7e-6, 1.1e-6)
SAMPLINGS = (2, 3, 4, 8, 16)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gratings", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "relief_sampling_rcwa.json"))
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    t0 = time.time()
    rows = []
    for _ in range(args.gratings):
        idx = rng.integers(0, len(LEVELS_M), size=8)
        heights = [LEVELS_M[i] for i in idx]
        te = rcwa.rcwa_efficiencies(heights, PIXEL_M, n_orders=81, pol="TE")[0]
        tm = rcwa.rcwa_efficiencies(heights, PIXEL_M, n_orders=161, pol="TM")[0]
        reference = 0.5 * (rcwa.normalised(te) + rcwa.normalised(tm))
        row = {"levels": idx.tolist(), "te_vs_tm_L1": rcwa.errors(te, tm)[0]}
        for s in SAMPLINGS:
            rcwa.SIM_SUB = s
            model = rcwa.multislice_efficiencies(heights, PIXEL_M, LEVELS_M, max_slice_m=90e-9)
            row[f"multislice_s{s}_L1"] = rcwa.errors(model, reference)[0]
        row["thin_L1"] = rcwa.errors(rcwa.thin_efficiencies(heights, PIXEL_M), reference)[0]
        rows.append(row)
        print(row, flush=True)
    keys = [k for k in rows[0] if k != "levels"]
    mean = {k: float(np.mean([r[k] for r in rows])) for k in keys}
    out = {"pixel_m": PIXEL_M, "levels_m": LEVELS_M, "gratings": rows, "mean": mean,
           "time_s": round(time.time() - t0, 1), "machine": platform.platform()}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print("mean:", {k: round(v, 4) for k, v in mean.items()})


if __name__ == "__main__":
    main()
