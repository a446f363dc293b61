"""Validity map of the scalar mask models against a rigorous solver: pixel pitch × acceptance cone × model.

Random 4-level IP-Dip relief patches (heights on the 100 nm printer grid: 0, 0.4, 0.7, 1.1 µm, as the default
preset prints them) on the default 2 µm base, in air, λ0 = 780 nm, normal incidence, light through the base.
Each patch is one period of an endless plate; the transmitted orders of the scalar models (thin screen,
multislice at the design sampling rule ⌈2·p·n_med/λ0⌉, multislice and the wave propagation method at the
in-material rule ⌈2·p·n_mat/λ0⌉, all with the reference slicing) are compared with torcwa (RCWA; Li's
factorisation rules by default) for TE and TM, with the metrics of :mod:`quaton_fab.analysis.crosscheck` (L1 of
order efficiencies, flux-weighted complex order error, each model referenced to its own flat patch; TE/TM mean;
TE vs TM), over every propagating order and over the orders inside each cone ``sin θ <`` ``--cones`` (what a
network with that acceptance cone uses). Patch size and harmonics: ``GRID`` or ``--patch-pixels`` /
``--harmonics-per-pixel``; the conditions of each recorded map are in docs/VALIDITY.md.

Usage: ``OMP_NUM_THREADS=1 nice -n 10 python benchmarks/validity_map.py [--patches 3] [--seed 0]
[--pitches 0.78,1.0,...] [--out benchmarks/results/validity_map.json]`` (pitches run in parts merge into --out).
The measured table is kept in the package
(``quaton_fab/optics/validity.py``), from which ``train`` warns.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from quaton_fab.analysis.crosscheck import PatchSetup, in_material_rule, summarise
from quaton_fab.analysis.crosscheck_models import score_cones
from quaton_fab.printing.materials import get_material
from quaton_fab.optics.network import rule_oversample
from quaton_fab.optics.relief import Relief
from quaton_fab.optics.rigorous import FACTORIZATIONS, solver_name
from quaton_fab.simulate import reference_slicing

ROOT = Path(__file__).resolve().parents[1]
WAVELENGTH_M = 780e-9
LEVELS_M = (0.0, 0.4e-6, 0.7e-6, 1.1e-6)
BASE_M = 2e-6
N_MEDIUM = 1.0
# pitch (µm): (patch pixels, harmonics M)
GRID = {0.78: (2, 4), 1.0: (2, 4), 1.25: (2, 5), 1.5: (2, 5), 2.0: (2, 7), 3.0: (2, 8)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--patches", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pitches", default=",".join(str(p) for p in GRID),
                        help="comma-separated pitches (µm) of GRID to run; results for other pitches already in --out "
                             "are kept")
    parser.add_argument("--patch-pixels", type=int, default=None, help="P for every pitch (default: GRID)")
    parser.add_argument("--harmonics-per-pixel", type=float, default=None,
                        help="M = max(largest propagating order + 2, ceil(this × P)) (default: GRID)")
    parser.add_argument("--device", default="cpu", help="torch device of the rigorous solves (cpu, cuda)")
    parser.add_argument("--no-bottom-face", action="store_true",
                        help="rigorous solver lit from inside an endless base (no base/air entry face, so no slab "
                             "Fabry–Pérot or trapped light): isolates the scalar models' own error")
    parser.add_argument("--cones", default="1",
                        help="comma-separated sin θ limits: each scores only the orders with sin θ < limit (in the "
                             "medium), from the same solves; 1 = every propagating order")
    parser.add_argument("--factorization", default=FACTORIZATIONS[0], choices=FACTORIZATIONS,
                        help="permittivity rule of the rigorous solver's patterned layers")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "validity_map.json"))
    args = parser.parse_args()
    if args.device == "cpu":
        torch.set_num_threads(1)  # small eigen-solves: one thread is fastest on a shared CPU
    n_mat = get_material("IP-Dip").index(WAVELENGTH_M)
    relief = reference_slicing(Relief(n_material=n_mat, level_phases_rad=(0.0, 1.0, 2.0, 3.0),
                                      level_heights_m=LEVELS_M, periodic=False, base_m=BASE_M), WAVELENGTH_M)
    rng = np.random.default_rng(args.seed)
    start = time.time()
    out = Path(args.out)
    wanted = [float(p) for p in args.pitches.split(",")]
    previous = json.loads(out.read_text()).get("results", []) if out.is_file() else []
    results = [r for r in previous if r["pitch_um"] not in wanted]
    for pitch_um, (pixels, harmonics) in GRID.items():
        if pitch_um not in wanted:
            continue
        pitch = pitch_um * 1e-6
        if args.patch_pixels is not None:
            pixels = args.patch_pixels
        if args.harmonics_per_pixel is not None:
            top = int(math.floor(N_MEDIUM * pixels * pitch / WAVELENGTH_M))
            harmonics = max(top + 2, math.ceil(args.harmonics_per_pixel * pixels))
        s_med = rule_oversample(pitch, WAVELENGTH_M, N_MEDIUM)
        s_mat = in_material_rule(pitch, WAVELENGTH_M, n_mat)
        models = {"thin": ("thin", None, 1), "multislice design rule": ("multislice", relief, s_med),
                  "multislice in-material rule": ("multislice", relief, s_mat),
                  "wpm in-material rule": ("wpm", relief, s_mat)}
        setup = PatchSetup(pitch, WAVELENGTH_M, n_mat, N_MEDIUM, BASE_M, "base-first", max(LEVELS_M),
                           semi_infinite_base=args.no_bottom_face)
        patches = [np.asarray(LEVELS_M)[rng.integers(0, 4, (pixels, pixels))] for _ in range(args.patches)]
        t0 = time.time()
        cones = [float(c) for c in args.cones.split(",")]
        per = score_cones(setup, models, patches, harmonics=harmonics, cones=cones, device=args.device,
                          factorization=args.factorization)
        rows = [dict(r, max_sin=c) for c, per_cone in zip(cones, per) for r in summarise(per_cone)]
        results.append({"pitch_um": pitch_um, "patches": args.patches, "seed": args.seed,
                        "pitch_over_wavelength": round(pitch / WAVELENGTH_M, 4),
                        "patch_pixels": pixels, "harmonics": harmonics, "s_design_rule": s_med,
                        "s_in_material_rule": s_mat, "rows": rows, "seconds": round(time.time() - t0, 1)})
        for r in rows:
            if r["polarisation"] in ("mean", "TE vs TM"):
                print(f"{pitch_um:5.2f} µm sin<{r['max_sin']:.2f} {r['model']:30s} {r['polarisation']:8s} "
                      f"L1 {r['l1_mean']:.3f}/{r['l1_worst']:.3f} "
                      f"complex {r['complex_mean']:.3f}/{r['complex_worst']:.3f}", flush=True)
        record = {
            "benchmark": "validity_map", "solver": solver_name(args.factorization), "wavelength_m": WAVELENGTH_M,
            "material": "IP-Dip", "n_material": n_mat, "n_medium": N_MEDIUM, "levels_m": LEVELS_M,
            "base_m": BASE_M, "slicing_m": relief.max_slice_m,
            "stack": ("endless base | relief | air (no bottom face)" if args.no_bottom_face
                      else "air | 2 µm base | relief | air (free-standing plate)"),
            "results": sorted(results, key=lambda r: r["pitch_um"]),
            "command": "OMP_NUM_THREADS=1 nice -n 10 python benchmarks/validity_map.py --patches K --seed S "
                       "--pitches LIST (per pitch: its own patches and seed, seconds of that run)",
            "argv": " ".join(sys.argv[1:]),
            "machine": f"{platform.machine()}, {torch.get_num_threads()} torch thread(s), device {args.device}",
        }
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {out} ({round(time.time() - start)} s)")


if __name__ == "__main__":
    main()
