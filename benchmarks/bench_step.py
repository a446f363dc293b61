"""The training step against its FFT bound: one forward + backward vs the time of exactly the FFTs it does.

For each preset (default: ``quickstart`` and ``paper``; generated data of the preset's geometry, the preset's
batch size) the script

1. records every FFT the library's training step runs, forward and backward (``aten::_fft_c2c`` through a
   dispatch mode: sizes, axes, dtype, count),
2. times the step (best of ``--repeats``) and, on fresh tensors of the same sizes and dtype with the same thread
   count, exactly those FFTs: the bound. ratio = bound / step (1.0: nothing but FFTs),
3. does the same for a textbook implementation of the same relief model: every propagation zero-padded to
   2N, the base slab, each half step and each free hop its own FFT pair (no merged half steps, per-slice
   occupancy and ``polar``), and reports its agreement with the library's detector intensity.

    python benchmarks/bench_step.py [--device cpu|cuda] [--presets quickstart,paper] [--repeats 3]
        [--threads T] [--batch B] [--out benchmarks/results/step_cpu.json]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from quaton_fab.optics.propagation import AngularSpectrum
from quaton_fab.optics.relief import _transfer
from quaton_fab.profiling import time_best_s
from quaton_fab.training.config import preset
from quaton_fab.training.stepbench import StepRunner

_FFT = torch.ops.aten._fft_c2c.default


class FFTRecorder(TorchDispatchMode):
    """Records (shape, dtype, axes, normalisation, forward) of every c2c FFT run while active."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is _FFT:
            x, dims, norm, forward = args[:4]
            self.calls.append((tuple(x.shape), x.dtype, tuple(dims), int(norm), bool(forward)))
        return func(*args, **(kwargs or {}))


def fft_bound_s(calls: list[tuple], device: torch.device, repeats: int) -> tuple[float, dict]:
    """Time (s) of exactly ``calls`` run on fresh contiguous tensors; and a summary {size: count}."""
    counts = collections.Counter(calls)
    total = 0.0
    for (shape, dtype, dims, norm, forward), n in counts.items():
        x = torch.randn(shape, dtype=dtype, device=device)
        run = lambda x=x, d=list(dims), k=norm, f=forward: _FFT(x, d, k, f)  # noqa: E731
        total += n * time_best_s(run, repeats=repeats, device=device)
    sizes = collections.Counter()
    for (shape, *_), n in counts.items():
        sizes[f"{shape[-2]}x{shape[-1]}"] += n
    return total, dict(sizes)


def record_ffts(work) -> list[tuple]:
    recorder = FFTRecorder()
    with recorder:
        work()
    return recorder.calls


class Textbook:
    """The same relief network as the library's, propagated the textbook way (see the module docstring)."""

    def __init__(self, runner: StepRunner) -> None:
        net = runner.parts.network
        g, relief = net.geometry, net.relief
        self.net, self.task = net, runner.parts.task
        m = g.sim_pixels
        self.m, self.pad = m, m // 2  # 2N grid
        dtype, device = runner.field.dtype, runner.device
        big = (2 * m, 2 * m)

        def hop(distance_m: float, slab_m: float = 0.0) -> AngularSpectrum:
            return AngularSpectrum((m, m), pitch_m=g.sim_pitch_m, wavelength_m=g.wavelength_m, distance_m=distance_m,
                                   n_medium=g.n_medium, padding=self.pad, dtype=dtype, device=device, slab_m=slab_m,
                                   slab_index=relief.n_material)

        self.free = [hop(d) for d in relief.free_distances_m(g.distances_m())]
        slab = [(relief.base_m, relief.n_material)]
        self.slab = torch.from_numpy(_transfer(big, g.sim_pitch_m, g.wavelength_m, slab)).to(dtype=dtype, device=device)
        edges = relief.slice_edges_m()
        self.slices = []
        for j in relief.slice_order():
            lo, dz = float(edges[j]), float(edges[j + 1] - edges[j])
            half = torch.from_numpy(_transfer(big, g.sim_pitch_m, g.wavelength_m, [(dz / 2, g.n_medium)]))
            phase = 2 * torch.pi / g.wavelength_m * (relief.n_material - g.n_medium) * dz
            self.slices.append((lo, dz, phase, half.to(dtype=dtype, device=device)))
        self.relief, self.g = relief, g

    @staticmethod
    def _step(field: torch.Tensor, transfer: torch.Tensor) -> torch.Tensor:
        return torch.fft.ifft2(torch.fft.fft2(field) * transfer)

    def intensity(self, field: torch.Tensor) -> torch.Tensor:
        from quaton_fab.optics.network import upsample_neurons

        g = self.g
        heights = upsample_neurons(self.relief.heights_of_phases(self.net.current_phases(), g.wavelength_m,
                                                                 g.n_medium), g.oversample)
        p, m = self.pad, self.m
        heights = torch.nn.functional.pad(heights, (p, p, p, p))
        base_first = self.relief.orientation == "base-first"
        field = self.free[0](field)
        for layer in range(g.layers):
            field = torch.nn.functional.pad(field, (p, p, p, p))  # the mask crossed on the 2N grid
            if base_first:
                field = self._step(field, self.slab)
            for lo, dz, phase, half in self.slices:
                field = self._step(field, half)
                occ = torch.clamp((heights[layer] - lo) / dz, 0.0, 1.0)
                field = field * torch.polar(torch.ones_like(occ), occ * phase)
                field = self._step(field, half)
            if not base_first:
                field = self._step(field, self.slab)
            field = self.free[layer + 1](field[..., p : p + m, p : p + m])  # opaque outside the aperture
        return field.real.square() + field.imag.square()


def bench(name: str, device: str, repeats: int, batch: int | None) -> dict:
    overrides = {} if batch is None else {"batch_size": batch}
    runner = StepRunner(preset(name, recompute="off", device=device, **overrides), device)
    dev = runner.device
    calls = record_ffts(runner.step)
    step_s = time_best_s(runner.step, repeats=repeats, device=dev)
    bound_s, sizes = fft_bound_s(calls, dev, repeats)
    out = {
        "preset": name, "batch": runner.config.batch_size, "layers": runner.config.layers,
        "grid": runner.parts.network.geometry.sim_pixels,
        "slices": len(runner.parts.network.relief.slice_edges_m()) - 1,
        "library": {"step_s": step_s, "fft_bound_s": bound_s, "ratio": bound_s / step_s, "ffts": len(calls),
                    "fft_sizes": sizes},
    }
    textbook = Textbook(runner)
    with torch.no_grad():
        ref = runner.parts.network(runner.field)
        alt = textbook.intensity(runner.field)
        out["textbook_vs_library_rel_l2"] = float((alt - ref).norm() / ref.norm())

    def textbook_step() -> None:
        for p in runner.model.parameters():
            p.grad = None
        runner.parts.task.loss(textbook.intensity(runner.field), runner.labels, runner.input_phase).backward()

    tcalls = record_ffts(textbook_step)
    t_step = time_best_s(textbook_step, repeats=repeats, device=dev)
    t_bound, t_sizes = fft_bound_s(tcalls, dev, repeats)
    out["textbook"] = {"step_s": t_step, "fft_bound_s": t_bound, "ratio": t_bound / t_step, "ffts": len(tcalls),
                       "fft_sizes": t_sizes}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--presets", default="quickstart,paper")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--batch", type=int, default=None, help="override the presets' batch size")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "step_cpu.json")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    start = time.perf_counter()
    rows = []
    for name in args.presets.split(","):
        row = bench(name, args.device, args.repeats, args.batch)
        rows.append(row)
        lib, tb = row["library"], row["textbook"]
        print(f"{name}: step {lib['step_s'] * 1e3:.0f} ms, FFT bound {lib['fft_bound_s'] * 1e3:.0f} ms "
              f"({lib['ffts']} FFTs), ratio {lib['ratio']:.2f}; textbook step {tb['step_s'] * 1e3:.0f} ms, bound "
              f"{tb['fft_bound_s'] * 1e3:.0f} ms ({tb['ffts']} FFTs), ratio {tb['ratio']:.2f}; textbook vs library "
              f"{row['textbook_vs_library_rel_l2']:.2e}", flush=True)
    result = {
        "what": "one training step (forward + backward, batch of the preset, relief model, recompute off) vs the "
                "time of exactly its FFTs on fresh tensors (same sizes, dtype, threads); ratio = bound / step",
        "command": "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "device": args.device, "torch": torch.__version__, "threads": torch.get_num_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "cpu": platform.machine(),
        "gpu": torch.cuda.get_device_name(0) if args.device.startswith("cuda") and torch.cuda.is_available() else None,
        "wall_s": round(time.perf_counter() - start, 1), "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=1))
    tmp.replace(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
