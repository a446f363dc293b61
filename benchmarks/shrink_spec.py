"""Write a drastically reduced copy of a sweep spec (same grids, labels, methods and settings; tiny sizes).

Used to check a long sweep end to end in a minute on a CPU before it is run for real (benchmarks/gpu_study.sh
with QF_TINY=1): every grid keeps its label, preset, methods and quantizer settings, but trains a few samples of
a small grid for at most two epochs, with one seed and at most two level counts.

    python benchmarks/shrink_spec.py benchmarks/quaton_study.toml OUT.yaml
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from quaton_fab.sweep.spec import load_spec_text, read_spec

#: Options every grid of the reduced spec sets (sizes only: nothing that changes a method).
TINY = {"train_samples": 48, "val_samples": 16, "test_samples": 16, "neurons": 14}


def shrink(data: dict) -> dict:
    """The reduced spec mapping (see module docstring); ``data`` is the parsed spec."""
    out = dict(data, name=f"{data.get('name', 'sweep')} (tiny check)", eval_samples=16)
    grids = []
    for grid in data["grid"]:
        g = {k: v for k, v in grid.items() if k not in ("set", "vary")}
        fixed = dict(grid.get("set") or {})
        fixed.update(TINY)
        fixed["epochs"] = min(2, int(fixed.get("epochs", 2)))
        if "layers" in fixed:
            fixed["layers"] = min(2, int(fixed["layers"]))
        vary = {}
        for key, values in (grid.get("vary") or {}).items():
            if key == "seed":
                values = values[:1]
            elif key == "levels":
                values = values[:2]
            elif key == "quantizer":
                values = values[:2]
            vary[key] = values
        g["set"], g["vary"] = fixed, vary
        grids.append(g)
    out["grid"] = grids
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec", type=Path)
    parser.add_argument("out", type=Path, help="the reduced spec (.yaml)")
    args = parser.parse_args()
    _, data = load_spec_text(args.spec)
    args.out.write_text(yaml.safe_dump(shrink(data), sort_keys=False, allow_unicode=True), encoding="utf-8")
    read_spec(args.out)  # every cell of the reduced spec validates


if __name__ == "__main__":
    main()
