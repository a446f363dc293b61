"""Scalar relief models against rigorous coupled-wave analysis (grcwa): a sweep (a script, not a test).

For printed gratings at normal incidence (λ0 = 780 nm; light enters through the base; one period with
periodic boundaries) it compares the transmitted order efficiencies of

* ``multislice``: quaton_fab.optics.relief.ReliefPropagator (``padding=0``), for several ``max_slice_m``;
* ``thin``: the phase screen ``exp(iφ)``, ``φ = 2π(n_mat − n_med)h/λ0``;

with grcwa (TE and TM, each at two truncations to show convergence; unpolarised = mean of the TE and TM
transmitted powers per order). Efficiencies are transmitted power per propagating order normalised to the
total transmitted power (the scalar models have no Fresnel reflection); errors are the L1 sum and the max abs
difference over the propagating orders. The helpers (geometry, conventions, normalisation) are those of
``tests/test_relief_rcwa.py``, whose docstring states them; this script adds a sweep over pixel size, number
of levels, index contrast (which sets the pillar heights), slicing, and one 2D-periodic case.

Usage: ``PYTHONPATH=. python benchmarks/relief_rcwa.py [--out PATH]``
(default ``--out benchmarks/results/relief_rcwa.json``). About 1–2 minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from pathlib import Path

import grcwa
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from test_relief_rcwa import (  # noqa: E402  (helpers shared with the test)
    N_AIR,
    N_IPDIP,
    RCWA_LOSS,
    SIM_SUB,
    WAVELENGTH_M,
    errors,
    level_heights,
    multislice_efficiencies,
    normalised,
    rcwa_efficiencies,
    thin_efficiencies,
)

from quaton_fab.optics.relief import RELIEF_MODEL, Relief, ReliefPropagator  # noqa: E402

SLICES = (None, 200e-9, 100e-9, 50e-9, 20e-9)
TE_ORDERS = (41, 81)
TM_ORDERS = (81, 161)
N_WATER = 1.333

# name: (pixel µm, levels, pattern of level indices over one period, n_mat, n_med)
CASES: dict[str, tuple[float, int, list[int], float, float]] = {
    "stair4_px0.4": (0.4, 4, [0, 1, 2, 3], N_IPDIP, N_AIR),
    "stair4_px0.5": (0.5, 4, [0, 1, 2, 3], N_IPDIP, N_AIR),
    "stair4_px0.8": (0.8, 4, [0, 1, 2, 3], N_IPDIP, N_AIR),
    "stair4_px1.0": (1.0, 4, [0, 1, 2, 3], N_IPDIP, N_AIR),
    "stair4_px1.5": (1.5, 4, [0, 1, 2, 3], N_IPDIP, N_AIR),
    "stair4_px2.0": (2.0, 4, [0, 1, 2, 3], N_IPDIP, N_AIR),
    "stair4_px3.0": (3.0, 4, [0, 1, 2, 3], N_IPDIP, N_AIR),
    "stair8_px1.0": (1.0, 8, list(range(8)), N_IPDIP, N_AIR),
    "rand4_px1.0": (1.0, 4, [0, 2, 1, 3, 3, 0, 2, 1], N_IPDIP, N_AIR),
    "bin_px0.4": (0.4, 2, [0, 1], N_IPDIP, N_AIR),
    "bin_px1.0": (1.0, 2, [0, 1], N_IPDIP, N_AIR),
    "bin_px2.0": (2.0, 2, [0, 1], N_IPDIP, N_AIR),
    # index contrast sets the pillar heights (top = ¾·λ0/(n_mat − n_med)): 0.39 µm, 1.08 µm, 2.80 µm
    "stair4_px1.0_n2.0": (1.0, 4, [0, 1, 2, 3], 2.0, N_AIR),
    "stair4_px1.0_water": (1.0, 4, [0, 1, 2, 3], N_IPDIP, N_WATER),
    "stair4_px2.0_water": (2.0, 4, [0, 1, 2, 3], N_IPDIP, N_WATER),
}


def r4(x: float) -> float:
    return round(float(x), 4)


def pair(e: tuple[float, float]) -> dict[str, float]:
    return {"l1": r4(e[0]), "max": r4(e[1])}


def run_case(name: str) -> dict:
    pixel_um, levels, pattern, n_mat, n_med = CASES[name]
    pixel = pixel_um * 1e-6
    lv = level_heights(levels, n_mat, n_med)
    heights = [lv[k] for k in pattern]
    kw = dict(n_mat=n_mat, n_med=n_med)
    t0 = time.perf_counter()
    te = {n: rcwa_efficiencies(heights, pixel, n_orders=n, pol="TE", **kw) for n in TE_ORDERS}
    tm = {n: rcwa_efficiencies(heights, pixel, n_orders=n, pol="TM", **kw) for n in TM_ORDERS}
    t_rcwa = time.perf_counter() - t0
    ref_te, r_te, t_te = te[TE_ORDERS[-1]]
    ref_tm, r_tm, _ = tm[TM_ORDERS[-1]]
    ref_un = 0.5 * (ref_te + ref_tm)
    refs = {"TE": ref_te, "TM": ref_tm, "unpolarised": ref_un}
    thin = thin_efficiencies(heights, pixel, **kw)
    ms = {}
    for sl in SLICES:
        eff = multislice_efficiencies(heights, pixel, lv, max_slice_m=sl, **kw)
        slices = len(Relief(n_material=n_mat, level_phases_rad=tuple(range(levels)), level_heights_m=tuple(lv),
                            max_slice_m=sl).slice_edges_m()) - 1
        key = "one_per_level_step" if sl is None else f"{sl * 1e9:.0f}nm"
        ms[key] = {"slices": slices, **{p: pair(errors(eff, ref)) for p, ref in refs.items()}}
    period = len(pattern) * pixel
    mmax = (len(ref_te) - 1) // 2
    return {
        "pixel_um": pixel_um, "levels": levels, "pattern": pattern, "period_um": r4(period * 1e6),
        "period_over_wavelength": r4(period / WAVELENGTH_M), "pixel_over_wavelength": r4(pixel / WAVELENGTH_M),
        "n_material": n_mat, "n_medium": n_med, "top_um": r4(max(lv) * 1e6), "orders": [-mmax, mmax],
        "rcwa": {
            "R_TE": r4(r_te), "R_TM": r4(r_tm), "R_plus_T_TE": round(r_te + t_te, 6),
            "convergence_TE_max_abs": float(f"{np.max(np.abs(te[TE_ORDERS[0]][0] - ref_te)):.2e}"),
            "convergence_TM_max_abs": float(f"{np.max(np.abs(tm[TM_ORDERS[0]][0] - ref_tm)):.2e}"),
            "TE_vs_TM": pair(errors(ref_te, ref_tm)),
            "efficiency_TE": [r4(v) for v in normalised(ref_te)],
            "seconds": round(t_rcwa, 2),
        },
        "multislice": ms,
        "thin": {p: pair(errors(thin, ref)) for p, ref in refs.items()},
    }


# ------------------------------------------------------------------------------------------------- 2D case
def rcwa_2d(hmap_m: np.ndarray, pixel_m: float, n_orders: int, pol: str) -> tuple[dict, float, float]:
    """grcwa on a square 2D period; ``hmap_m[ix, iy]``; returns {(m, n): T}, R, T (pol 'x' or 'y')."""
    um = 1e6
    h = np.asarray(hmap_m) * um
    period = h.shape[0] * pixel_m * um
    prof = np.kron(h, np.ones((256 // h.shape[0],) * 2))
    sim = grcwa.obj(n_orders, [period, 0.0], [0.0, period], 1.0 / (WAVELENGTH_M * um), 0.0, 0.0, verbose=0)
    sim.Add_LayerUniform(0.0, N_IPDIP**2)
    steps = [0.0, *sorted({float(v) for v in h.ravel() if v > 0})]
    grids = []
    for lo, hi in zip(steps[:-1], steps[1:]):
        sim.Add_LayerGrid(hi - lo, *prof.shape)
        grids.append((np.where(prof >= hi * (1 - 1e-12), N_IPDIP**2, N_AIR**2) + 1j * RCWA_LOSS).ravel())
    sim.Add_LayerUniform(0.0, N_AIR**2)
    sim.Init_Setup(Gmethod=0)
    sim.GridLayer_geteps(np.concatenate(grids))
    if pol == "x":
        sim.MakeExcitationPlanewave(1.0, 0.0, 0.0, 0.0, order=0)  # p at φ = 0: E ∥ x
    else:
        sim.MakeExcitationPlanewave(0.0, 0.0, 1.0, 0.0, order=0)  # s at φ = 0: E ∥ y
    refl, trans = sim.RT_Solve(normalize=1, byorder=1)
    return {(int(g[0]), int(g[1])): float(t) for g, t in zip(sim.G, trans)}, float(np.sum(refl)), float(np.sum(trans))


def run_2d() -> dict:
    """2×2 pixels of 1 µm, 4 levels [[0, 1], [3, 2]] (a discrete vortex), unpolarised (mean of x and y)."""
    pixel = 1e-6
    lv = level_heights(4)
    pattern = [[0, 1], [3, 2]]  # [ix][iy]
    hmap = np.array([[lv[k] for k in row] for row in pattern])
    period = 2 * pixel
    lam = WAVELENGTH_M
    mm = int(period / lam)
    keys = [(m, n) for m in range(-mm, mm + 1) for n in range(-mm, mm + 1) if (m * m + n * n) * (lam / period) ** 2 < 1]
    m_arr = np.array([k[0] for k in keys])
    n_arr = np.array([k[1] for k in keys])
    cos = np.sqrt(1 - (m_arr**2 + n_arr**2) * (lam / period) ** 2)
    t0 = time.perf_counter()
    refs = {}
    for n_orders in (101, 201):
        runs = [rcwa_2d(hmap, pixel, n_orders, pol) for pol in "xy"]
        refs[n_orders] = (np.array([0.5 * (runs[0][0].get(k, 0) + runs[1][0].get(k, 0)) for k in keys]), runs)
    t_rcwa = time.perf_counter() - t0
    ref, runs = refs[201]
    # multislice: grid rows = y, cols = x
    size = 2 * SIM_SUB
    relief = Relief(n_material=N_IPDIP, level_phases_rad=tuple(k * math.pi / 2 for k in range(4)),
                    level_heights_m=tuple(lv), base_m=0.5e-6)
    heights_yx = torch.from_numpy(np.kron(hmap.T, np.ones((SIM_SUB, SIM_SUB))))
    prop = ReliefPropagator(relief, (size, size), sim_pitch_m=period / size, wavelength_m=lam, n_medium=N_AIR,
                            dtype=torch.complex128, padding=0)
    coeff = np.fft.fft2(prop(torch.ones(size, size, dtype=torch.complex128), heights_yx).numpy()) / size**2
    ms = np.abs(coeff[n_arr % size, m_arr % size]) ** 2 * cos
    screen = np.exp(2j * math.pi * (N_IPDIP - N_AIR) * hmap / lam)  # [ix, iy]
    ix = np.arange(2)
    dft = np.array([np.sum(screen * np.exp(-2j * math.pi * (m * ix[:, None] + n * ix[None, :]) / 2)) / 4
                    for m, n in keys])
    box = np.sinc(m_arr / 2) * np.sinc(n_arr / 2)
    thin = np.abs(dft * box) ** 2 * cos
    return {
        "pixel_um": 1.0, "pattern_ix_iy": pattern, "period_um": 2.0, "levels": 4, "orders": len(keys),
        "polarisation": "unpolarised (mean of E ∥ x and E ∥ y)",
        "rcwa": {"R_x": r4(runs[0][1]), "R_y": r4(runs[1][1]), "R_plus_T_x": round(runs[0][1] + runs[0][2], 6),
                 "convergence_max_abs_101_vs_201": float(f"{np.max(np.abs(refs[101][0] - ref)):.2e}"),
                 "seconds": round(t_rcwa, 2)},
        "multislice_one_per_level_step": pair(errors(ms, ref)),
        "thin": pair(errors(thin, ref)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "relief_rcwa.json"))
    args = parser.parse_args()
    torch.set_num_threads(2)
    start = time.perf_counter()
    cases = {}
    for name in CASES:
        cases[name] = run_case(name)
        c = cases[name]
        ms = c["multislice"]
        print(f"{name:22s} P/λ={c['period_over_wavelength']:5.2f} TE: multislice L1 "
              f"{ms['one_per_level_step']['TE']['l1']:.3f} (50 nm slices {ms['50nm']['TE']['l1']:.3f})"
              f"  thin {c['thin']['TE']['l1']:.3f}   TE↔TM {c['rcwa']['TE_vs_TM']['l1']:.3f}", flush=True)
    two_d = run_2d()
    print(f"2D vortex 2×2 px 1 µm (unpolarised): multislice L1 {two_d['multislice_one_per_level_step']['l1']:.3f}"
          f"  thin {two_d['thin']['l1']:.3f}")
    result = {
        "benchmark": "relief_rcwa",
        "relief_model": RELIEF_MODEL,
        "oracle": f"grcwa {grcwa.__version__} (RCWA; Laurent rule; Im ε = {RCWA_LOSS:g} in patterned layers)",
        "wavelength_m": WAVELENGTH_M,
        "conventions": {
            "incidence": "normal, from a semi-infinite base of n_material (light enters through the base)",
            "polarisation": "TE = E along the grooves (grcwa s); TM; unpolarised = mean of TE and TM powers",
            "efficiency": "transmitted power per propagating order, normalised to the total transmitted power "
                          "(Fresnel reflection removed); scalar models: |c_m|^2 cos(theta_m)",
            "errors": "l1 = sum over propagating orders of |Δη|, max = max |Δη|",
            "rcwa_orders": {"TE": list(TE_ORDERS), "TM": list(TM_ORDERS), "reference": "the larger"},
            "multislice": f"ReliefPropagator padding=0, complex128, {SIM_SUB} sim px per relief px",
            "thin": "exact Fourier coefficients of the piecewise-constant exp(i phi) screen",
        },
        "cases": cases,
        "case_2d": two_d,
        "seconds": round(time.perf_counter() - start, 1),
        "platform": {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
                     "machine": platform.machine()},
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {out} ({result['seconds']} s)")


if __name__ == "__main__":
    main()
