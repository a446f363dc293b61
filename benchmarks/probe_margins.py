"""Where the convergence probe's changes happen: decision margins of the digits whose prediction changes.

``verify``'s probe (quaton_fab.analysis.convergence) simulates a budget of test samples at twice the reference
sampling with half its slices, half of them the samples nearest a changed decision (smallest margin between the
two brightest detectors, from the reference run of all judged samples) and half drawn at random from the rest.
This benchmark runs that plan on one design and records, per margin band, how many samples were simulated and
how many changed their correctness (down: right → wrong, up: wrong → right), separately for the census and the
draw, together with the probe's estimate, its 95 % interval and verdict. It shows how far up in margin the
changes reach, which is what the census has to cover for the draw to see few of them.

    OMP_NUM_THREADS=2 python benchmarks/probe_margins.py --design sample_designs/mnist-psq-lt-4 \
        --probe-samples 600

Results go to ``benchmarks/results/probe_margins.json`` (one entry per design and budget, replaced on re-run).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from quaton_fab.analysis.convergence import estimate_change, plan_probe, probe_fidelity
from quaton_fab.design import Design
from quaton_fab.simulate import reference_fidelity, simulate_design
from quaton_fab.tasks.metrics import primary_metric_name
from quaton_fab.analysis.verify import DEFAULT_TOLERANCE

RESULTS = Path(__file__).parent / "results" / "probe_margins.json"
BANDS = (0.0, 0.005, 0.01, 0.02, 0.03, 0.05, 1.0)  #: margin band edges (fraction of the detector power)


def bands(margins: np.ndarray, change: np.ndarray) -> list[dict[str, float | int]]:
    """Per margin band: samples, changes down (−1) and up (+1)."""
    rows = []
    for low, high in zip(BANDS[:-1], BANDS[1:]):
        inside = (margins >= low) & (margins < high)
        rows.append({"margin_from": low, "margin_to": high, "samples": int(inside.sum()),
                     "down": int((change[inside] < 0).sum()), "up": int((change[inside] > 0).sum())})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--design", default="sample_designs/mnist-psq-lt-4")
    parser.add_argument("--samples", type=int, default=None, help="judged samples (default: the design's split)")
    parser.add_argument("--probe-samples", type=int, default=600)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    design = Design.load(args.design)
    name = primary_metric_name(design.metrics)
    reference = reference_fidelity(design)
    started = time.perf_counter()
    ref = simulate_design(design, samples=args.samples, fidelity=reference, device=args.device, per_sample=True)
    record = ref["per_sample"]
    if record.margins is None:
        raise SystemExit(f"{args.design}: a continuous metric has no decision margins")
    plan = plan_probe(record, args.probe_samples, int(design.seed))
    finer = simulate_design(design, samples=args.samples, fidelity=probe_fidelity(reference), device=args.device,
                            indices=plan.indices, per_sample=True)
    change = finer["per_sample"].values - record.values[plan.indices]
    estimate = estimate_change(plan, change, decision=True)
    tolerance = DEFAULT_TOLERANCE[name]
    census = plan.census.size
    margins = record.margins[plan.indices]
    entry = {
        "design": args.design, "metric": name, "population": plan.population, "probe_samples": int(plan.indices.size),
        "census": int(census), "census_largest_margin": float(margins[:census].max(initial=0.0)),
        "reference_metric": float(ref[name]), "difference": estimate.difference,
        "standard_error": estimate.standard_error, "tolerance": tolerance, "verdict": estimate.verdict(tolerance),
        "population_margin_share": {f"< {b}": float((record.margins < b).mean()) for b in BANDS[1:-1]},
        "census_bands": bands(margins[:census], change[:census]),
        "draw_bands": bands(margins[census:], change[census:]),
        "seconds": round(time.perf_counter() - started, 1),
        "command": f"python benchmarks/probe_margins.py --design {args.design} --probe-samples {args.probe_samples}",
    }
    results = json.loads(RESULTS.read_text()) if RESULTS.is_file() else []
    results = [r for r in results if (r["design"], r["probe_samples"]) != (args.design, entry["probe_samples"])]
    RESULTS.write_text(json.dumps(results + [entry], indent=2) + "\n")
    print(json.dumps(entry, indent=2))


if __name__ == "__main__":
    main()
