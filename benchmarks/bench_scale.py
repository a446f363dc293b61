"""Scale table: peak memory and samples/s of one training step vs neurons × masks, relief model with and without
recompute (activation checkpointing per mask).

Geometry: the ``paper`` preset (λ0 = 632.8 nm, λ/2 neurons so s = 1, 3.373 µm hops, IP-Dip relief with one slice
per level step: 3 slices) with ``--neurons`` and ``--layers`` varied; generated data; one batch of ``--batch``.
On CPU every point runs in its own fresh process, so the peak (resident-memory high-water mark; see
quaton_fab/profiling.py) belongs to that point alone; on CUDA the allocator's peak statistics are reset per
point, so the points run in this process. Timing: best of ``--repeats`` steps after a warm-up step. The
results files are rewritten after every point (a timeout keeps what was measured).

    python benchmarks/bench_scale.py [--device cpu|cuda] [--preset paper] [--batch 4] [--repeats 1]
        [--neurons 64,128,256,512] [--layers 3,8] [--out benchmarks/results/scale_cpu.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

POINT = r"""
import json, sys, torch
from quaton_fab.training.config import preset
from quaton_fab.training.stepbench import measure_step
args = json.loads(sys.argv[1])
if args["threads"]:
    torch.set_num_threads(args["threads"])
cfg = preset(args["preset"], neurons=args["neurons"], layers=args["layers"], batch_size=args["batch"],
             recompute=args["recompute"], device=args["device"])
print(json.dumps(measure_step(cfg, args["device"], repeats=args["repeats"]).to_dict()))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--preset", default="paper", help="geometry to scale (default: the paper preset)")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--neurons", default="64,128,256,512")
    parser.add_argument("--layers", default="3,8")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds allowed per point (CPU)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "scale_cpu.json")
    args = parser.parse_args()
    rows = []
    start = time.perf_counter()
    in_process = args.device.startswith("cuda")
    for neurons in [int(v) for v in args.neurons.split(",")]:
        for layers in [int(v) for v in args.layers.split(",")]:
            for recompute in ("off", "on"):
                point = dict(preset=args.preset, neurons=neurons, layers=layers, batch=args.batch, recompute=recompute,
                             device=args.device, repeats=args.repeats, threads=args.threads)
                row = run_in_process(point) if in_process else run_in_subprocess(point, args.timeout)
                rows.append(row)
                if "error" not in row:
                    peak = row["peak_bytes"]
                    print(f"N={neurons:4d} L={layers} recompute={recompute:3s}: {row['samples_per_s']:8.2f} "
                          f"samples/s, peak {peak / 2**20 if peak is not None else float('nan'):9.1f} MiB, "
                          f"estimate {row['estimate_bytes'] / 2**20:9.1f} MiB", flush=True)
                write(args, rows, start)


def run_in_subprocess(point: dict, timeout: float) -> dict:
    """One point in a fresh process (an honest resident-memory peak)."""
    try:
        done = subprocess.run([sys.executable, "-c", POINT, json.dumps(point)], capture_output=True, text=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {**point, "error": f"timeout after {timeout:g} s"}
    if done.returncode != 0:
        return {**point, "error": (done.stderr.strip().splitlines() or ["failed"])[-1]}
    return {**point, **json.loads(done.stdout.strip().splitlines()[-1])}


def run_in_process(point: dict) -> dict:
    """One point in this process (CUDA: the allocator's peak is reset for it)."""
    from quaton_fab.errors import QuatonFabError
    from quaton_fab.training.config import preset
    from quaton_fab.training.stepbench import measure_step

    if point["threads"]:
        torch.set_num_threads(point["threads"])
    try:
        cfg = preset(point["preset"], neurons=point["neurons"], layers=point["layers"], batch_size=point["batch"],
                     recompute=point["recompute"], device=point["device"])
        cost = measure_step(cfg, point["device"], repeats=point["repeats"]).to_dict()
    except (RuntimeError, ValueError, QuatonFabError) as exc:  # out of memory, a refused size
        return {**point, "error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"}
    finally:
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    return {**point, **cost}


def write(args: argparse.Namespace, rows: list, start: float) -> None:
    """Rewrite the JSON and Markdown results with the rows so far."""
    result = {
        "what": f"one training step (forward + backward) of the {args.preset} geometry, relief model; peak memory "
                "above the memory held before the step; samples/s = batch / best step time",
        "command": "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "device": args.device,
        "cpu": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "threads": args.threads or torch.get_num_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "gpu": torch.cuda.get_device_name(0) if args.device.startswith("cuda") and torch.cuda.is_available() else None,
        "wall_s": round(time.perf_counter() - start, 1),
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=1))
    tmp.replace(args.out)
    md = args.out.with_suffix(".md")
    lines = [f"# Scale table ({args.device}, batch {args.batch})", "", f"`{result['command']}` — {result['what']}.",
             "", "| neurons | masks | recompute | samples/s | peak MiB | estimate MiB |", "|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['neurons']} | {r['layers']} | {r['recompute']} | – | – | {r['error']} |")
        else:
            peak = "n/a" if r["peak_bytes"] is None else f"{r['peak_bytes'] / 2**20:.1f}"
            lines.append(f"| {r['neurons']} | {r['layers']} | {r['recompute']} | {r['samples_per_s']:.2f} | {peak} | "
                         f"{r['estimate_bytes'] / 2**20:.1f} |")
    tmp = md.with_suffix(".mdtmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(md)


if __name__ == "__main__":
    main()
    print("done")
