"""Speed and accuracy of the diffraction engine on the standard D2NN configuration (a script, not a test).

Configuration (as research/peers.md §3): 5 phase masks of 200×200 neurons, 2 µm pitch, λ = 532 nm, 300 µm
hops (d_in = spacing = d_out), batch 32, complex64, ``torch.set_num_threads(2)``; the input carries random
amplitude in the central 100×100; the masks are uniform random phases (fixed seed); the loss is the summed
intensity in the central 40×40 detector window. One step = forward + backward.

Reported (JSON, ``--out``): samples/s from the median of ``--steps`` steps after warm-up, the relative L2
error of the output intensity against a complex128 run with twice the padding, and, for context, the
deviation from a textbook band-limited ASM with very large padding and the self-consistency of that textbook
method at our padded size (the plain FFT method is not a linear convolution there).

Part 2, ``--part default``: the default geometry, built at run time from ``preset("quickstart")`` (so it
follows preset changes): the preset's geometry at the resolved oversampling (sampling rule), both mask models,
thin (``relief=None``) and relief (``build_relief(cfg, *build_level_set(cfg))``). Masks: uniform random
choices among the preset's 4 levels (fixed seed); input: the preset's dataset (MNIST test images, encoded with
the preset's encoding; the synthetic set if MNIST cannot be loaded, recorded in the JSON). For each model:

* speed: forward + backward samples/s at the preset's batch size (median of ``--default-steps`` steps);
* accuracy: the detector-plane field of our propagator (complex64, default padding) against (a) a plain
  textbook band-limited ASM (transfer function sampled on the padded grid, Matsushima–Shimobaba limit,
  evanescent cut) with 2N zero padding (N = simulation pixels per side) and (b) the same textbook method in
  complex128 padded until one doubling of the grid changes the result by < 1e-4 (or at most 16N; recorded).
  For the relief model the reference is an independent multislice written here from the physics of
  ``quaton_fab/optics/relief.py``'s docstring (base slab as one homogeneous step in the material, one thin
  phase screen per slice between two unmerged half steps, complex square root, zero padding around the
  aperture while crossing the part, aperture at the part's entry and exit faces); textbook hops in between.

Usage: ``PYTHONPATH=. python benchmarks/bench_propagation.py [--part {all,standard,default}] [--steps 20]
[--out PATH] [--default-out PATH]`` (defaults ``benchmarks/results/propagation.json`` and
``benchmarks/results/propagation_default.json``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from quaton_fab.optics import DiffractiveNetwork, Geometry, auto_padding
from quaton_fab.optics.propagation import (
    PROPAGATION_MODEL,
    SYNTHESIS_OVERSIZE,
    get_angular_spectrum,
    next_fast_length,
)
from quaton_fab.optics.relief import RELIEF_MODEL, Relief

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
    """Relative L2 distance ||a − b|| / ||b|| (computed in float64, complex128 for complex fields)."""
    if a.is_complex() or b.is_complex():
        a, b = a.to(torch.complex128), b.to(torch.complex128)
    else:
        a, b = a.double(), b.double()
    return float((a - b).norm() / b.norm())


def run_standard(args: argparse.Namespace) -> None:
    """Part 1: the standard D2NN configuration (GEOMETRY above); writes ``args.out``."""
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



# ============================================================================ part 2: the default geometry
DEFAULT_PRESET = "quickstart"
#: A doubling of the converged reference's grid must change its detector field by less than this.
CONVERGED_TOL = 1e-4


def default_setup(preset_name: str) -> dict[str, Any]:
    """Config, geometry (resolved oversampling, medium), level set and relief of a preset, built as the trainer does."""
    from quaton_fab.training.config import preset
    from quaton_fab.training.trainer import build_level_set, build_relief, resolve_n_medium, resolve_oversample

    cfg = preset(preset_name)
    n_medium = resolve_n_medium(cfg)
    oversample, rule = resolve_oversample(cfg, n_medium)
    geometry = Geometry(
        wavelength_m=cfg.wavelength_m, neurons=cfg.neurons, pitch_m=cfg.pitch_m, layers=cfg.layers,
        d_in_m=cfg.d_in, spacing_m=cfg.spacing_m, d_out_m=cfg.d_out, n_medium=n_medium, oversample=oversample,
        padding=cfg.padding,
    )
    # the relief model needs a material: a preset that trains thin masks is measured with its relief counterpart
    relief_cfg = cfg if cfg.model == "relief" else cfg.replace(model="relief")
    levels, fabrication = build_level_set(relief_cfg)
    relief = build_relief(relief_cfg, levels, fabrication)
    return dict(cfg=cfg, geometry=geometry, rule=rule, levels=levels, fabrication=fabrication, relief=relief)


def default_inputs(cfg: Any, batch: int, oversample: int) -> tuple[torch.Tensor, str]:
    """``batch`` input fields (complex64, (B, N·s, N·s)) from the preset's dataset and encoding, and what they are."""
    from quaton_fab.data import Encoding, load_dataset

    try:
        data = load_dataset(cfg.dataset, train_samples=1, val_samples=1, test_samples=batch, seed=cfg.seed)
        source = f"{cfg.dataset} test split, first {batch} of a seeded selection"
    except Exception as exc:  # noqa: BLE001 - any data problem: fall back to the generated set
        data = load_dataset("synthetic", train_samples=1, val_samples=1, test_samples=batch, seed=cfg.seed)
        source = f"synthetic (MNIST-like) images; {cfg.dataset} unavailable: {exc}"
    encoding = Encoding(
        object_neurons=cfg.object_neurons, mode=cfg.encoding_mode, phase_scale_rad=cfg.phase_scale_rad,
        input_is_phase=data.kind == "phase",
    )
    images = data.test.images[:batch]
    if images.shape[0] < batch:  # tile if the split is smaller than the batch
        images = images.repeat((batch + images.shape[0] - 1) // images.shape[0], 1, 1)[:batch]
    field = encoding.field(images, cfg.neurons, oversample)
    return field, f"{source}; encoding {encoding.to_dict()['value_rule']}, background {encoding.background}"


class FixedPhase(torch.nn.Module):
    """A trainable phase mask initialised to given values (the benchmark's random level masks)."""

    def __init__(self, phase: torch.Tensor) -> None:
        super().__init__()
        self.phase = torch.nn.Parameter(phase.clone())

    def forward(self) -> torch.Tensor:
        return self.phase


# ---------------------------------------------------------------- independent textbook reference (float64)
def textbook_transfer(
    size: int, pitch_m: float, wavelength_medium_m: float, distance_m: float, limit_distance_m: float | None = None
) -> torch.Tensor:
    """Plain band-limited ASM transfer function on the ``size``² fftfreq grid (complex128).

    ``exp(i2πz·sqrt(1/λm² − f²))``, evanescent waves cut, Matsushima–Shimobaba limit of this window
    (``f_lim = 1/(λm·sqrt((2z/(size·pitch))² + 1))`` per axis; ``limit_distance_m`` replaces z there).
    """
    z_limit = distance_m if limit_distance_m is None else limit_distance_m
    f = torch.fft.fftfreq(size, d=pitch_m, dtype=torch.float64)
    fy, fx = f[:, None], f[None, :]
    arg = 1.0 / wavelength_medium_m**2 - fx**2 - fy**2
    limit = 1.0 / (wavelength_medium_m * math.hypot(2.0 * z_limit / (size * pitch_m), 1.0))
    keep = (arg > 0) & (fx.abs() <= limit) & (fy.abs() <= limit)
    phase = 2 * math.pi * distance_m * arg.clamp(min=0).sqrt()
    return torch.where(keep, torch.polar(torch.ones_like(arg), phase), 0)


def layer_transfer(size: int, pitch_m: float, wavelength_m: float, thickness_m: float, index: float) -> torch.Tensor:
    """Angular-spectrum step through a homogeneous layer (complex128): ``exp(i2πt·sqrt((n/λ0)² − f²))``.

    Complex square root (principal branch): waves evanescent in the layer decay. No band limit (a thin layer).
    """
    f = torch.fft.fftfreq(size, d=pitch_m, dtype=torch.float64)
    arg = ((index / wavelength_m) ** 2 - f[:, None] ** 2 - f[None, :] ** 2).to(torch.complex128)
    return torch.exp(2j * math.pi * thickness_m * arg.sqrt())


def _pad_to(u: torch.Tensor, size: int) -> torch.Tensor:
    """Zero-pad the last two axes to ``size`` (the aperture at the top-left; the grid is periodic anyway)."""
    rows, cols = u.shape[-2:]
    return torch.nn.functional.pad(u, (0, size - cols, 0, size - rows))


def relief_operations(relief: Relief, wavelength_m: float, n_medium: float) -> list[tuple]:
    """The part's steps in the order light crosses them, from relief.py's docstring (not from its code).

    ``("layer", thickness, index)``: a homogeneous step; ``("screen", z_a, dz, phase)``: the thin phase
    ``exp(i·phase·occ)`` of slice ``[z_a, z_a + dz]``, ``occ = clamp((h − z_a)/dz, 0, 1)``,
    ``phase = k0·(n_mat − n_med)·dz``. Slices: cut at 0 and every level height, each split into equal parts no
    thicker than ``max_slice_m``; every screen sits between two half steps ``dz/2`` of medium (unmerged here).
    """
    marks = sorted(set([0.0, *[float(h) for h in relief.level_heights_m]]))
    slices = []
    for lo, hi in zip(marks[:-1], marks[1:]):
        parts = 1 if relief.max_slice_m is None else max(1, math.ceil((hi - lo) / relief.max_slice_m - 1e-9))
        for k in range(parts):
            slices.append((lo + (hi - lo) * k / parts, (hi - lo) / parts))
    k0 = 2 * math.pi / wavelength_m
    relief_ops: list[tuple] = []
    order = slices if relief.orientation == "base-first" else slices[::-1]  # relief-first: pillar tips first
    for z_a, dz in order:
        relief_ops += [("layer", dz / 2, n_medium), ("screen", z_a, dz, k0 * (relief.n_material - n_medium) * dz),
                       ("layer", dz / 2, n_medium)]
    slab = [("layer", relief.base_m, relief.n_material)] if relief.base_m > 0 else []
    return slab + relief_ops if relief.orientation == "base-first" else relief_ops + slab


def textbook_detector_field(
    field: torch.Tensor,
    geometry: Geometry,
    level_index: torch.Tensor,
    level_phases: torch.Tensor,
    hop_grid: int,
    *,
    relief: Relief | None = None,
    relief_grid: int | None = None,
    crop: str = "faces",
) -> torch.Tensor:
    """Detector field (complex128) with textbook BL-ASM hops on a ``hop_grid``² grid; thin or multislice masks.

    ``level_index``: ``(L, N, N)`` level of every neuron; the thin mask is ``exp(i·φ_level)``, the relief's height
    is the level's printed height. The grid is the aperture: the field is cropped to it at the end of every
    stage. ``crop="faces"`` (the physics as stated in relief.py): stages are the free hops (on the
    ``hop_grid``) and the parts (on the zero-padded ``relief_grid``), so the aperture sits at each part's entry
    and exit faces. ``crop="screens"``: the aperture where our merged hops put it, right before the first and
    right after the last phase screen; the steps outside the screens then run on the hop grid with the hop.
    ``crop="merged"``: as "screens", and the hop's band limit taken for the hop plus the Strang half steps of
    medium merged into it (as our merged hops do).
    """
    g = geometry
    m, s, dx = g.sim_pixels, g.oversample, g.sim_pitch_m
    lam_m = g.wavelength_m / g.n_medium
    layers = g.layers
    u = field.to(torch.complex128)

    def up(x: torch.Tensor) -> torch.Tensor:
        return x.repeat_interleave(s, dim=-2).repeat_interleave(s, dim=-1)

    hops = list(g.distances_m())
    if relief is None:
        masks = up(torch.polar(torch.ones(level_index.shape, dtype=torch.float64), level_phases[level_index]))
        for hop, distance in enumerate(hops):
            if distance > 0:
                transfer = textbook_transfer(hop_grid, dx, lam_m, distance)
                u = torch.fft.ifft2(torch.fft.fft2(u, s=(hop_grid, hop_grid)) * transfer)[..., :m, :m]
            if hop < layers:
                u = u * masks[hop]
        return u

    top = max(relief.level_heights_m)
    before, after = (relief.base_m, top) if relief.orientation == "base-first" else (0.0, top + relief.base_m)
    free = [d - (after if i > 0 else 0.0) - (before if i < layers else 0.0) for i, d in enumerate(hops)]
    if min(free) < -1e-15:
        raise ValueError(f"a gap is too small for the part: free distances {free}")
    heights = up(torch.as_tensor(relief.level_heights_m, dtype=torch.float64)[level_index])
    ops = relief_operations(relief, g.wavelength_m, g.n_medium)
    screens = [i for i, op in enumerate(ops) if op[0] == "screen"]
    # stages: (ops, mask index for the screens or None); each runs on one zero-padded grid and ends in a crop
    stages: list[tuple[list[tuple], int | None]] = []
    for hop, distance in enumerate(free):
        pre = ops[screens[-1] + 1 :] if hop > 0 else []
        post = ops[: screens[0]] if hop < layers else []
        limit = max(distance, 0.0)
        if crop == "merged":
            limit += sum(op[1] for op in pre + post if op[0] == "layer" and op[2] == g.n_medium)
        hop_op = [("hop", max(distance, 0.0), limit)]
        if crop == "faces":
            stages.append((hop_op, None))
            if hop < layers:
                stages.append((ops, hop))
        elif crop in ("screens", "merged"):
            stages.append((pre + hop_op + post, None))
            if hop < layers:
                stages.append((ops[screens[0] : screens[-1] + 1], hop))
        else:
            raise ValueError(f"crop must be 'faces', 'screens' or 'merged', got {crop!r}")
    cache: dict[tuple, torch.Tensor] = {}
    for stage, mask in stages:
        size = hop_grid if any(op[0] == "hop" for op in stage) else int(relief_grid)
        v = _pad_to(u, size)
        h = None if mask is None else _pad_to(heights[mask], size)
        for op in stage:
            if op[0] == "screen":
                _, z_a, dz, phase = op
                occupancy = ((h - z_a) / dz).clamp(0.0, 1.0)
                v = v * torch.polar(torch.ones_like(occupancy), phase * occupancy)
                continue
            if op[1] <= 0:
                continue
            key = (size, *op)
            if key not in cache:
                cache[key] = (textbook_transfer(size, dx, lam_m, op[1], op[2]) if op[0] == "hop"
                              else layer_transfer(size, dx, g.wavelength_m, op[1], op[2]))
            v = torch.fft.ifft2(torch.fft.fft2(v) * cache[key])
        u = v[..., :m, :m]
    return u


def converged_reference(
    compute: Any, m: int, start_factor: int, max_factor: int
) -> tuple[torch.Tensor, dict[str, Any]]:
    """Double the hop grid from ``start_factor·m`` until a doubling changes the field by < CONVERGED_TOL."""
    factor = start_factor
    previous = compute(factor * m)
    changes = {}
    while factor < max_factor:
        factor *= 2
        current = compute(factor * m)
        changes[f"{factor // 2}N->{factor}N"] = rel_l2(previous, current)
        previous = current
        if changes[f"{factor // 2}N->{factor}N"] < CONVERGED_TOL:
            break
    last = list(changes.values())[-1] if changes else math.nan
    info = {
        "hop_grid_px": factor * m,
        "hop_grid_over_N": factor,
        "doubling_changes_rel_l2": changes,
        "converged": bool(last < CONVERGED_TOL),
        "criterion": f"last doubling changed the detector field by < {CONVERGED_TOL:g}"
        if last < CONVERGED_TOL else f"stopped at the largest grid allowed ({max_factor}N); see doubling_changes",
    }
    return previous, info


def run_default(args: argparse.Namespace) -> dict[str, Any]:
    """Part 2: the default geometry of ``args.preset`` (both mask models); writes ``args.default_out``."""
    start = time.perf_counter()
    setup = default_setup(args.preset)
    cfg, geometry, relief, levels = setup["cfg"], setup["geometry"], setup["relief"], setup["levels"]
    g = geometry
    m = g.sim_pixels
    level_phases = torch.tensor([float(p) for p in levels.phases], dtype=torch.float64)
    gen = torch.Generator().manual_seed(3)
    level_index = torch.randint(len(levels.phases), (g.layers, g.neurons, g.neurons), generator=gen)
    phases = level_phases[level_index]
    batch = cfg.batch_size
    field, input_text = default_inputs(cfg, batch, g.oversample)
    window = slice(m // 4, m - m // 4)
    spectrum_radius = get_angular_spectrum((m, m), float(g.sim_pitch_m), float(g.wavelength_m), float(g.spacing_m),
                                           float(g.n_medium), g.padding, torch.complex64,
                                           torch.device("cpu")).kernel_radius
    records = []
    for model, model_relief in (("thin", None), ("relief", relief)):
        network = DiffractiveNetwork(
            geometry, [FixedPhase(p.float()) for p in phases], relief=model_relief
        )
        # ---- speed: forward + backward at the preset's batch size
        times = []
        for step in range(args.default_warmup + args.default_steps):
            network.zero_grad(set_to_none=True)
            t0 = time.perf_counter()
            intensity = network(field)
            intensity[..., window, window].sum().backward()
            if step >= args.default_warmup:
                times.append(time.perf_counter() - t0)
        median_s = statistics.median(times)
        # ---- accuracy on a few samples
        sample = field[: args.default_accuracy_batch]
        with torch.no_grad():
            ours = network.detector_field(sample, phases=phases.float())

            def reference(
                hop_grid: int,
                crop: str = "faces",
                sample: torch.Tensor = sample,
                model_relief: Relief | None = model_relief,
            ) -> torch.Tensor:
                return textbook_detector_field(
                    sample, geometry, level_index, level_phases, hop_grid, relief=model_relief,
                    relief_grid=min(hop_grid, 4 * m), crop=crop,
                )

            textbook_2n = reference(2 * m)
            converged, conv_info = converged_reference(reference, m, 4, args.max_pad_factor)
            accuracy = {
                "samples": int(sample.shape[0]),
                "ours_dtype": "complex64",
                "ours_padding": g.padding,
                "rel_l2_field_ours_vs_converged": rel_l2(ours, converged),
                "rel_l2_field_textbook_2N_vs_converged": rel_l2(textbook_2n, converged),
                "rel_l2_field_ours_vs_textbook_2N": rel_l2(ours, textbook_2n),
                "rel_l2_intensity_ours_vs_converged": rel_l2(ours.abs().square(), converged.abs().square()),
                "rel_l2_intensity_textbook_2N_vs_converged": rel_l2(
                    textbook_2n.abs().square(), converged.abs().square()
                ),
                "textbook_2N_grid_px": 2 * m,
                "converged_reference": conv_info,
            }
            # our kernel is synthesised on a window of this size: the textbook method padded to it, our aperture
            # and band-limit conventions, should be ours up to rounding (and the kernel cut, if any)
            synth = next_fast_length(SYNTHESIS_OVERSIZE * (2 * max(spectrum_radius) + 1))
            same = reference(synth, crop="faces" if model_relief is None else "merged")
            accuracy["textbook_at_our_synthesis_window"] = {
                "grid_px": synth,
                "conventions": "thin masks" if model_relief is None else "aperture at the screens, band limit of "
                "the merged hop distances (crop='merged')",
                "rel_l2_field_ours_vs_it": rel_l2(ours, same),
            }
            if model_relief is not None:
                # the same converged reference with the aperture where our merged hops put it
                screens = reference(conv_info["hop_grid_px"], crop="screens")
                accuracy["aperture_at_screens"] = {
                    "what": "converged reference with the aperture cropped right before the first and after the "
                    "last phase screen (where our merged hops crop) instead of at the part's faces",
                    "rel_l2_field_ours_vs_it": rel_l2(ours, screens),
                    "rel_l2_field_it_vs_converged_faces": rel_l2(screens, converged),
                }
                accuracy["relief_grid_px"] = {"textbook_2N": min(2 * m, 4 * m), "converged": min(
                    conv_info["hop_grid_px"], 4 * m)}
        records.append({
            "model": model,
            "batch": batch,
            "steps": args.default_steps,
            "warmup": args.default_warmup,
            "step_s_median": median_s,
            "step_s_min": min(times),
            "step_s_max": max(times),
            "samples_per_s": batch / median_s,
            "accuracy": accuracy,
        })
    spectrum = get_angular_spectrum((m, m), float(g.sim_pitch_m), float(g.wavelength_m), float(g.spacing_m),
                                    float(g.n_medium), g.padding, torch.complex64, torch.device("cpu"))
    result = {
        "benchmark": "bench_propagation/default",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "preset": args.preset,
        "preset_config": cfg.to_dict(),
        "geometry": g.to_dict(),
        "oversample": g.oversample,
        "sampling_rule_oversample": setup["rule"],
        "sim_pixels": m,
        "sim_pitch_m": g.sim_pitch_m,
        "padded_grid_px_spacing_hop": list(spectrum.padded_shape),
        "relief": relief.to_dict(),
        "propagation_model": PROPAGATION_MODEL,
        "relief_model": RELIEF_MODEL,
        "masks": f"uniform random choice among the {len(levels.phases)} levels {list(levels.phases)} rad per "
        "neuron (seed 3), the same for both models",
        "input": input_text,
        "loss_for_timing": "summed detector intensity over the central half of the grid",
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "loadavg_after": os.getloadavg(),
        "runtime_s": time.perf_counter() - start,
        "models": records,
    }
    args.default_out.parent.mkdir(parents=True, exist_ok=True)
    args.default_out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"default geometry ({args.preset}): N={g.neurons}, s={g.oversample}, {m}² sim px, pitch "
          f"{g.sim_pitch_m * 1e6:.4g} µm, λ={g.wavelength_m * 1e9:g} nm, hops {g.d_in_m * 1e6:g}/"
          f"{g.spacing_m * 1e6:g}/{g.d_out_m * 1e6:g} µm, {torch.get_num_threads()} threads")
    print(f"{'model':<7} {'batch':>5} {'samples/s':>10} {'ours vs conv':>13} {'2N vs conv':>11} {'conv grid':>10}")
    for r in records:
        a = r["accuracy"]
        print(f"{r['model']:<7} {r['batch']:>5} {r['samples_per_s']:>10.1f} "
              f"{a['rel_l2_field_ours_vs_converged']:>13.3e} {a['rel_l2_field_textbook_2N_vs_converged']:>11.3e} "
              f"{a['converged_reference']['hop_grid_over_N']:>9}N")
    print(f"wrote {args.default_out} in {result['runtime_s']:.0f} s")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("all", "standard", "default"), default="all",
                        help="standard: the 200² D2NN; default: the preset's default geometry; all (default): both")
    parser.add_argument("--steps", type=int, default=20, help="timed steps (median reported), default 20")
    parser.add_argument("--warmup", type=int, default=3, help="untimed warm-up steps, default 3")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads, default 2")
    parser.add_argument("--accuracy-batch", type=int, default=4, help="samples used for the accuracy checks")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/propagation.json"))
    parser.add_argument("--preset", default=DEFAULT_PRESET, help="default part: preset to measure (quickstart)")
    parser.add_argument("--default-steps", type=int, default=5, help="default part: timed steps, default 5")
    parser.add_argument("--default-warmup", type=int, default=1, help="default part: warm-up steps, default 1")
    parser.add_argument("--default-accuracy-batch", type=int, default=2, help="default part: accuracy samples")
    parser.add_argument("--max-pad-factor", type=int, default=16,
                        help="default part: largest converged-reference grid, in units of N (default 16)")
    parser.add_argument("--default-out", type=Path, default=Path("benchmarks/results/propagation_default.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.part in ("all", "standard"):
        run_standard(args)
    if args.part in ("all", "default"):
        run_default(args)


if __name__ == "__main__":
    main()
