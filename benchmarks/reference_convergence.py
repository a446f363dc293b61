"""Convergence of the printed-object reference: relief slicing and lateral sampling, measured on real designs.

For each design ``--samples`` test digits (its split drawn at that size, as ``--test-samples`` does) are
simulated as the printed relief (the design's own relief, i.e. its export with the default printer) at the
in-material sampling rule s_ref = ⌈2·p·n_mat/λ0⌉ with slices of at most λ0/d for d in ``--slice-divisors``
(default 4, 8, 16, 32), then at finer sampling (1.5·s_ref, 2·s_ref) with the finest tested slicing. Per pair
of neighbouring settings it records the accuracy change (points) and how many digits change their predicted
class (a paired count: 0 flips means no accuracy change at any test-set size drawn from those digits).
Results go to ``benchmarks/results/reference_convergence.json``.

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/reference_convergence.py \
        --design sample_designs/mnist-psq-lt-4 --samples 300 --slice-divisors 4,8,16 --no-finer
    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/reference_convergence.py \
        --design runs/ref-2um --samples 300 --slice-divisors 4,8,16 --no-finer
    python benchmarks/reference_convergence.py --design sample_designs/mnist-psq-lt-4 --samples 10000 \
        --slice-divisors 8,16 --device cuda         # on a GPU: all digits, and 1.5·s_ref, 2·s_ref

The 2 µm design is trained by (3 masks of 24² neurons, 250 µm hops ≥ full connectivity, 3,000 digits):

    quaton-fab train --preset quickstart --pitch 2um --neurons 24 --layers 3 --spacing 250um \
        --train-samples 3000 --val-samples 200 --test-samples 500 --epochs 2 --out runs/ref-2um
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import time
from pathlib import Path

import torch

from quaton_fab.data import Encoding
from quaton_fab.design import Design
from quaton_fab.optics.network import DiffractiveNetwork
from quaton_fab.tasks import task_from_dict
from quaton_fab.simulate import Fidelity, default_relief, load_design_split, reference_fidelity

RESULTS = Path(__file__).parent / "results" / "reference_convergence.json"
SLICE_FRACTIONS = (1 / 4, 1 / 8, 1 / 16, 1 / 32)  #: of λ0


@torch.no_grad()
def predictions(design: Design, fidelity: Fidelity, images: torch.Tensor, batch: int = 32,
                device: str = "cpu") -> torch.Tensor:
    """Predicted class of each image, ``(K,)`` on the CPU, with the design's levels simulated at ``fidelity``."""
    geometry = dataclasses.replace(design.geometry, oversample=fidelity.oversample)
    network = DiffractiveNetwork(geometry, relief=fidelity.relief).to(device).eval()
    task = task_from_dict(design.task, geometry.neurons, geometry.oversample).to(device).eval()
    encoding = Encoding.from_dict(design.encoding)
    phases = torch.as_tensor(design.phases_rad(), dtype=torch.float32, device=device)
    out = []
    for start in range(0, images.shape[0], batch):
        chunk = images[start : start + batch].to(device)
        field, _ = encoding.field_and_phase(chunk, geometry.neurons, geometry.oversample)
        out.append(task.predict(network(field, phases=phases)).cpu())
    return torch.cat(out)


def measure(path: Path, samples: int, fractions: tuple[float, ...] = SLICE_FRACTIONS, finer: bool = True,
            on_row=None, device: str = "cpu") -> dict:
    """Every setting of one design: accuracy, flips against the previous setting, wall time.

    ``on_row(entry)`` is called with the design's entry so far after every setting (results survive a stop).
    """
    design = Design.load(path)
    g = design.geometry
    images, labels = load_design_split(design, "test", samples=samples)
    relief = default_relief(design)
    s_ref = reference_fidelity(design).oversample
    settings = [(s_ref, f) for f in fractions]
    if finer:
        settings += [(math.ceil(1.5 * s_ref), fractions[-1]), (2 * s_ref, fractions[-1])]
    rows, previous = [], None
    entry = {
        "design": str(path),
        "pitch_um": g.pitch_m * 1e6,
        "wavelength_nm": g.wavelength_m * 1e9,
        "n_material": relief.n_material,
        "n_medium": g.n_medium,
        "design_oversample": g.oversample,
        "reference_oversample": s_ref,
        "samples": int(labels.shape[0]),
        "rows": rows,
    }
    for s, fraction in settings:
        fid = Fidelity(s, dataclasses.replace(relief, max_slice_m=g.wavelength_m * fraction), "probe")
        t0 = time.perf_counter()
        pred = predictions(design, fid, images, batch=256 if device != "cpu" else 32, device=device)
        row = {
            "oversample": s,
            "slice_fraction": fraction,
            "max_slice_nm": g.wavelength_m * fraction * 1e9,
            "slices": len(fid.relief.slice_edges_m()) - 1,
            "accuracy": float((pred == labels).double().mean()),
            "wall_s": round(time.perf_counter() - t0, 1),
        }
        if previous is not None:
            row["flips_vs_previous"] = int((pred != previous).sum())
            row["change_points_vs_previous"] = 100 * (row["accuracy"] - rows[-1]["accuracy"])
        rows.append(row)
        previous = pred
        print(json.dumps({"design": str(path), **row}), flush=True)
        if on_row is not None:
            on_row(entry)
    return entry


def save(entry: dict) -> None:
    """Merge one design's entry into the results file (replacing an older entry of the same design)."""
    old = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {"designs": []}
    kept = [e for e in old["designs"] if e["design"] != entry["design"]]
    results = {"note": "wall times on a shared CPU (inflated)", "designs": kept + [entry]}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--design", type=Path, action="append", required=True)
    parser.add_argument("--samples", type=int, default=300,
                        help="test digits simulated per setting (the split drawn at that size)")
    parser.add_argument("--slice-divisors", default="4,8,16,32", help="slices ≤ λ0/d for these d, in order")
    parser.add_argument("--no-finer", action="store_true", help="skip 1.5·s_ref and 2·s_ref")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    fractions = tuple(1.0 / float(d) for d in args.slice_divisors.split(","))
    for d in args.design:
        command = (f"python benchmarks/reference_convergence.py --design {d} --samples {args.samples} "
                   f"--slice-divisors {args.slice_divisors} --device {args.device}"
                   + (" --no-finer" if args.no_finer else ""))
        extra = {"command": command, "torch_threads": torch.get_num_threads()}
        measure(d, args.samples, fractions, not args.no_finer, on_row=lambda entry, extra=extra: save(entry | extra),
                device=args.device)


if __name__ == "__main__":
    main()
