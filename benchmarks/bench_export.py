"""Scale benchmark of the GDSII/OASIS and STL exporters.

Default workload: 5 masks x 1000 x 1000 pixels x 16 levels (uniform random levels, seeded), pitch
0.4 µm, heights k·h_2π/16 with h_2π = 1.436 µm (IP-Dip at 780 nm, illustrative), base 2 µm.

Reports wall and CPU time, file sizes, polygon / triangle counts against the naive export (one
rectangle per pixel; 12 triangles per pixel box), the read-back check, and the machine load
(``os.getloadavg``) before and after, because the machine may be shared. Writes JSON to
benchmarks/results/export.json (override with --out). The exported files go to a temporary folder
and are deleted after they have been measured.

Usage: PYTHONPATH=. python benchmarks/bench_export.py [--neurons 1000] [--masks 5] [--levels 16]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from quaton_fab.fab.formats.gds import read_gds_levels, write_gds
from quaton_fab.fab.formats.stl import read_stl_heights, write_stl

H_2PI_M = 1.436e-6
PITCH_M = 0.4e-6
BASE_M = 2e-6


def _timed(call):
    """Run ``call()``; return its result, wall seconds and CPU seconds of this process."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = call()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def run(neurons: int, masks: int, levels: int, seed: int) -> dict:
    """Run the benchmark and return the JSON-ready report."""
    rng = np.random.default_rng(seed)
    level_indices = rng.integers(0, levels, (masks, neurons, neurons))
    level_heights_m = np.arange(levels) * H_2PI_M / levels
    report: dict = {
        "workload": {
            "masks": masks,
            "neurons": neurons,
            "levels": levels,
            "seed": seed,
            "pitch_m": PITCH_M,
            "base_m": BASE_M,
            "level_step_m": H_2PI_M / levels,
        },
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "load_avg_1_5_15_before": _load(),
        },
    }
    pixels = masks * neurons * neurons
    with tempfile.TemporaryDirectory(prefix="bench_export_") as folder:
        out = Path(folder)
        for fmt in ("gds", "oas"):
            path = out / f"masks.{fmt}"
            stats, wall, cpu = _timed(
                lambda: write_gds(path, level_indices, PITCH_M, level_heights_m, fmt=fmt)  # noqa: B023
            )
            back, read_wall, _ = _timed(lambda: read_gds_levels(path, neurons, PITCH_M, levels))  # noqa: B023
            report[fmt] = {
                "write_wall_s": round(wall, 3),
                "write_cpu_s": round(cpu, 3),
                "file_bytes": stats["file_bytes"],
                "polygons": stats["polygons"],
                "naive_polygons": pixels,
                "polygons_vs_naive": round(stats["polygons"] / pixels, 4),
                "read_wall_s": round(read_wall, 3),
                "read_back_exact": bool(np.array_equal(back, level_indices)),
            }
            path.unlink()
        stl_rows = []
        max_error_m = None
        for index in range(masks):
            path = out / f"mask_{index + 1}.stl"
            heights_m = level_heights_m[level_indices[index]]
            stats, wall, cpu = _timed(lambda: write_stl(path, heights_m, PITCH_M, BASE_M))  # noqa: B023
            if index == 0:
                back = read_stl_heights(path, neurons, PITCH_M, BASE_M)
                max_error_m = float(np.max(np.abs(back - heights_m)))
            stl_rows.append(
                {
                    "wall_s": wall,
                    "cpu_s": cpu,
                    "triangles": stats["triangles"],
                    "bytes": stats["file_bytes"],
                    "watertight": stats["watertight"],
                }
            )
            path.unlink()
        triangles = sum(r["triangles"] for r in stl_rows)
        report["stl"] = {
            "write_wall_s": round(sum(r["wall_s"] for r in stl_rows), 3),
            "write_cpu_s": round(sum(r["cpu_s"] for r in stl_rows), 3),
            "per_mask_wall_s": [round(r["wall_s"], 3) for r in stl_rows],
            "file_bytes": sum(r["bytes"] for r in stl_rows),
            "triangles": triangles,
            "naive_triangles": 12 * pixels,
            "triangles_vs_naive": round(triangles / (12 * pixels), 4),
            "triangles_per_pixel": round(triangles / pixels, 3),
            "naive_file_bytes": 84 * masks + 50 * 12 * pixels,
            "read_back_max_error_m_mask1": max_error_m,
            "all_watertight": all(r["watertight"] for r in stl_rows),
        }
    report["machine"]["load_avg_1_5_15_after"] = _load()
    report["targets"] = {
        "gds_write_le_10s": report["gds"]["write_wall_s"] <= 10.0,
        "stl_write_le_20s": report["stl"]["write_wall_s"] <= 20.0,
        "stl_triangles_le_half_naive": report["stl"]["triangles_vs_naive"] <= 0.5,
        "note": "the 1/2 target is out of reach for any exact watertight mesh of a random 16-level mask: a "
        "closed genus-0 mesh has F = 2V - 4 triangles and every distinct height at a pixel corner is a surface "
        "corner (3.6 per pixel, minus rare straight-edge cases), so F is about 7 per pixel = about 0.6 of boxes; "
        "the extra up to 0.71 comes from separating diagonal-only contacts (see quaton_fab/fab/formats/stl_faces.py)",
    }
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--neurons", type=int, default=1000)
    parser.add_argument("--masks", type=int, default=5)
    parser.add_argument("--levels", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "export.json")
    args = parser.parse_args()
    report = run(args.neurons, args.masks, args.levels, args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    temp = args.out.with_suffix(".json.tmp")
    temp.write_text(json.dumps(report, indent=2) + "\n")
    os.replace(temp, args.out)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
