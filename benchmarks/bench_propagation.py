"""Speed and accuracy of the diffraction engine on the standard D2NN configuration (a script, not a test).

Configuration (as research/peers.md §3): 5 phase masks of 200×200 neurons, 2 µm pitch, λ = 532 nm, 300 µm
hops (d_in = spacing = d_out), batch 32, complex64, ``torch.set_num_threads(2)``; the input carries random
amplitude in the central 100×100; the masks are uniform random phases (fixed seed); the loss is the summed
intensity in the central 40×40 detector window. One step = forward + backward.

Reported (JSON, ``--out``): samples/s from the median of ``--steps`` steps after warm-up, the relative L2
error of the output intensity against a complex128 run with twice the padding, and, for context, the
deviation from a textbook band-limited ASM with very large padding and the self-consistency of that textbook
method at our padded size (the plain FFT method is not a linear convolution there).

Usage: ``PYTHONPATH=. python benchmarks/bench_propagation.py [--steps 20] [--out PATH]``
(default ``--out benchmarks/results/propagation.json``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from quaton_fab.optics import DiffractiveNetwork, Geometry, auto_padding
from quaton_fab.optics.propagation import PROPAGATION_MODEL, get_angular_spectrum

NEURONS = 200
BATCH = 32
OBJECT = 100
DETECTOR = 40
GEOMETRY = Geometry(wavelength_m=532e-9, neurons=NEURONS, pitch_m=2e-6, layers=5, d_in_m=300e-6,
                    spacing_m=300e-6, d_out_m=300e-6)


def make_input(batch: int, seed: int) -> torch.Tensor:
    """Complex64 ``(batch, 200, 200)``: random amplitude in [0, 1) on the central 100×100, zero elsewhere."""
    gen = torch.Generator().manual_seed(seed)
    field = torch.zeros(batch, NEURONS, NEURONS, dtype=torch.complex64)
    lo = (NEURONS - OBJECT) // 2
    field[:, lo : lo + OBJECT, lo : lo + OBJECT] = torch.rand(batch, OBJECT, OBJECT, generator=gen)
    return field


def detector_loss(intensity: torch.Tensor) -> torch.Tensor:
    """Summed intensity in the central 40×40 window."""
    lo = (NEURONS - DETECTOR) // 2
    return intensity[..., lo : lo + DETECTOR, lo : lo + DETECTOR].sum()


def time_steps(
    models: list[torch.nn.Module], field: torch.Tensor, steps: int, warmup: int
) -> list[list[float]]:
    """Seconds per forward+backward pass of each model, interleaved step by step (so load drifts hit all alike).

    ``warmup`` untimed rounds first; returns one list of ``steps`` timings per model.
    """
    times: list[list[float]] = [[] for _ in models]
    for step in range(warmup + steps):
        for model, record in zip(models, times):
            model.zero_grad(set_to_none=True)
            start = time.perf_counter()
            detector_loss(model(field)).backward()
            if step >= warmup:
                record.append(time.perf_counter() - start)
    return times


class UnpaddedReference(torch.nn.Module):
    """Peers' speed baseline (research/peers.md §3): plain ASM, no padding (circular, wrong), H cached, complex64."""

    def __init__(self, phases: torch.Tensor) -> None:
        super().__init__()
        self.phases = torch.nn.Parameter(phases.clone())
        g = GEOMETRY
        f = torch.fft.fftfreq(NEURONS, d=g.pitch_m, dtype=torch.float64)
        arg = 1.0 / g.wavelength_m**2 - f[:, None] ** 2 - f[None, :] ** 2
        transfer = torch.polar(torch.ones_like(arg), 2 * math.pi * g.spacing_m * arg.sqrt())
        self.register_buffer("transfer", transfer.to(torch.complex64))

    def forward(self, field: torch.Tensor) -> torch.Tensor:
        masks = torch.polar(torch.ones_like(self.phases), self.phases)
        for hop in range(GEOMETRY.layers + 1):
            field = torch.fft.ifft2(torch.fft.fft2(field) * self.transfer)
            if hop < GEOMETRY.layers:
                field = field * masks[hop]
        return field.real.square() + field.imag.square()


def textbook_intensity(field: torch.Tensor, phases: torch.Tensor, padded: int) -> torch.Tensor:
    """Independent reference: plain band-limited ASM (H on the padded fftfreq grid, float64) through the stack."""
    g = GEOMETRY
    f = torch.fft.fftfreq(padded, d=g.pitch_m, dtype=torch.float64)
    fy, fx = f[:, None], f[None, :]
    arg = 1.0 / g.wavelength_m**2 - fx**2 - fy**2
    limit = 1.0 / (g.wavelength_m * math.hypot(2.0 * g.spacing_m / (padded * g.pitch_m), 1.0))
    keep = (arg > 0) & (fx.abs() <= limit) & (fy.abs() <= limit)
    phase = 2 * math.pi * g.spacing_m * arg.clamp(min=0).sqrt()
    transfer = torch.where(keep, torch.polar(torch.ones_like(arg), phase), 0)
    u = field.to(torch.complex128)
    masks = torch.polar(torch.ones_like(phases, dtype=torch.float64), phases.double())
    for hop in range(g.layers + 1):
        u = torch.fft.ifft2(torch.fft.fft2(u, s=(padded, padded)) * transfer)[..., :NEURONS, :NEURONS]
        if hop < g.layers:
            u = u * masks[hop]
    return u.real.square() + u.imag.square()


def rel_l2(a: torch.Tensor, b: torch.Tensor) -> float:
    """Relative L2 distance ||a − b|| / ||b|| (computed in float64)."""
    a, b = a.double(), b.double()
    return float((a - b).norm() / b.norm())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="timed steps (median reported), default 20")
    parser.add_argument("--warmup", type=int, default=3, help="untimed warm-up steps, default 3")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads, default 2")
    parser.add_argument("--accuracy-batch", type=int, default=4, help="samples used for the accuracy checks")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/propagation.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    network = DiffractiveNetwork(GEOMETRY, generator=torch.Generator().manual_seed(0))
    field = make_input(BATCH, seed=1)
    baseline = UnpaddedReference(network.current_phases().detach())
    load_before = os.getloadavg()
    times, baseline_times = time_steps([network, baseline], field, args.steps, args.warmup)
    load_after = os.getloadavg()
    median_s = statistics.median(times)
    baseline_s = statistics.median(baseline_times)

    # accuracy: default (complex64) against complex128 with twice the padding, same masks
    phases = network.current_phases().detach()
    sample = field[: args.accuracy_batch]
    with torch.no_grad():
        ours = network(sample)
        pad = auto_padding(NEURONS, pitch_m=GEOMETRY.pitch_m, wavelength_m=GEOMETRY.wavelength_m,
                           distance_m=GEOMETRY.spacing_m)
        doubled = DiffractiveNetwork(Geometry.from_dict({**GEOMETRY.to_dict(), "padding": 2 * pad}))
        reference = doubled(sample.to(torch.complex128), phases=phases.double())
        padded = get_angular_spectrum((NEURONS, NEURONS), GEOMETRY.pitch_m, GEOMETRY.wavelength_m,
                                      GEOMETRY.spacing_m, 1.0, "auto", torch.complex64,
                                      torch.device("cpu")).padded_shape[0]
        textbook_truth = textbook_intensity(sample, phases, NEURONS + 2 * 400)
        textbook_same = textbook_intensity(sample, phases, padded)
        textbook_doubled = textbook_intensity(sample, phases, NEURONS + 4 * pad)
        unpadded = baseline(sample)

    result = {
        "benchmark": "bench_propagation",
        "configuration": {
            "geometry": GEOMETRY.to_dict(),
            "batch": BATCH,
            "object_px": OBJECT,
            "detector_px": DETECTOR,
            "dtype": "complex64",
            "threads": args.threads,
            "propagation_model": PROPAGATION_MODEL,
            "padding_per_side_px": pad,
            "padded_grid_px": padded,
        },
        "steps": args.steps,
        "warmup": args.warmup,
        "step_s_median": median_s,
        "step_s_min": min(times),
        "step_s_max": max(times),
        "samples_per_s": BATCH / median_s,
        "rel_l2_intensity_vs_complex128_2x_padding": rel_l2(ours, reference),
        "context": {
            "unpadded_reference_samples_per_s": BATCH / baseline_s,
            "time_ratio_vs_unpadded_reference": median_s / baseline_s,
            "accuracy_samples": int(sample.shape[0]),
            "unpadded_reference_rel_l2_vs_textbook_bl_asm_padded_1000px": rel_l2(unpadded, textbook_truth),
            "rel_l2_vs_textbook_bl_asm_padded_1000px": rel_l2(ours, textbook_truth),
            "textbook_bl_asm_at_same_grid_vs_its_2x_padding": rel_l2(textbook_same, textbook_doubled),
            "textbook_bl_asm_at_same_grid_vs_padded_1000px": rel_l2(textbook_same, textbook_truth),
        },
        "machine": {
            "loadavg_before": load_before,
            "loadavg_after": load_after,
            "cpu_count": os.cpu_count(),
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("samples_per_s", "rel_l2_intensity_vs_complex128_2x_padding")}))


if __name__ == "__main__":
    main()
