"""Copy a design with its isolated pixels majority-filtered (quaton_fab.printing.printability.clean_isolated).

Usage: python benchmarks/clean_isolated.py SRC_DESIGN DST_DESIGN [--passes P] [--min-votes V]
Then:  quaton-fab evaluate DST_DESIGN --fidelity reference   (and the same for SRC_DESIGN) to measure the cost.

The copy keeps everything but the masks; its test metrics are removed (they belong to the original masks) and
the post-filter is recorded under ``method.postfilter``. Prints the printability before and after as JSON and
writes it to benchmarks/results/clean_isolated.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from quaton_fab.design import Design
from quaton_fab.printing.printability import clean_isolated, printability_report


def summary(report: dict) -> dict:
    masks = report["masks"]
    return {
        "isolated": [m["isolated"] for m in masks],
        "isolated_fraction": [round(m["isolated_fraction"], 4) for m in masks],
        "diagonal_contacts": [m["diagonal_contacts"] for m in masks],
        "narrow_pixels": [m["narrow_pixels"] for m in masks],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src", type=Path)
    parser.add_argument("dst", type=Path)
    parser.add_argument("--passes", type=int, default=1)
    parser.add_argument("--min-votes", type=int, default=1, help="only pixels whose winning level has ≥ V of 4 votes")
    args = parser.parse_args()
    design = Design.load(args.src)
    cleaned, changed = clean_isolated(design.level_indices, args.passes, args.min_votes)
    method = dict(design.method)
    method["postfilter"] = {"name": "majority filter of isolated pixels (4-neighbours, red-black order)",
                            "passes": args.passes, "min_votes": args.min_votes, "pixels_changed": changed}
    primary = design.metrics.get("primary", "accuracy")
    copy = dataclasses.replace(design, level_indices=cleaned, method=method, metrics={"primary": primary})
    copy.save(args.dst)
    pitch = design.geometry.pitch_m
    result = {
        "source": str(args.src),
        "copy": str(args.dst),
        "passes": args.passes,
        "min_votes": args.min_votes,
        "pixels_changed": changed,
        "pixels": int(cleaned.size),
        "before": summary(printability_report(design.level_indices, pitch)),
        "after": summary(printability_report(cleaned, pitch)),
    }
    out = Path(__file__).parent / "results" / f"clean_isolated_v{args.min_votes}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
