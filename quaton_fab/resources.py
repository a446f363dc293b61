"""Resource bounds: estimate the memory a request needs before allocating it, and refuse what cannot fit.

A request that cannot fit (a 100 000-neuron grid, two million generated samples, a hundred thousand levels)
is refused before anything is allocated, with one line naming the option, the estimate and what this machine
has available. The estimates are deliberately simple upper-bound-ish counts of the large arrays (documented
at each function); they only have to separate "fits" from "cannot possibly fit", not predict peak usage.
"""

from __future__ import annotations

import math
import os
from typing import Any

from quaton_fab.errors import ResourceError

__all__ = [
    "MAX_EXPORT_LEVELS",
    "MAX_CLASSES",
    "available_memory_bytes",
    "check_memory",
    "check_level_count",
    "format_bytes",
    "simulation_grid_px",
    "training_memory_bytes",
    "check_training_memory",
    "MAX_RELIEF_SLICES",
    "MAX_PRINT_SLICES",
    "MAX_PRINT_LINES",
    "relief_slice_count",
    "simulation_memory_bytes",
    "check_simulation",
    "check_print_grid",
    "fidelity_option",
]

#: Largest level count a design can have: the GDSII/OASIS exporter puts level k on layer 1 + k, below the mark
#: layer 100 (see :mod:`quaton_fab.fab.gds`), so levels 0..98 are the most it can write.
MAX_EXPORT_LEVELS = 99
#: Largest number of classes a classifier dataset may have (one detector region per class).
MAX_CLASSES = 1000
#: Complex64 activations autograd keeps per propagation hop and per sample (FFT, product, inverse FFT, mask).
_ACTIVATIONS_PER_HOP = 4
_COMPLEX64_BYTES = 8
_COMPLEX128_BYTES = 16
#: Most multislice slices one relief may be cut into (each is a phase screen and a propagation step per hop;
#: converged reference slicing needs a few hundred at most).
MAX_RELIEF_SLICES = 10_000
#: Most slicing planes one printed part may have (the writers loop over them; 2 mm of part at 100 nm).
MAX_PRINT_SLICES = 20_000
#: Most hatching lines a GWL job may hold (about 40 bytes each on disk, and as many read back).
MAX_PRINT_LINES = 50_000_000


def available_memory_bytes() -> int | None:
    """Memory this machine can still give (bytes): MemAvailable from /proc/meminfo, else sysconf; None if unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return None


def format_bytes(n_bytes: float) -> str:
    """``n_bytes`` in binary units, e.g. ``11.7 GiB``."""
    value = float(n_bytes)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(value) < 1024.0 or unit == "PiB":
            return f"{value:.1f} {unit}" if unit != "B" else f"{value:.0f} B"
        value /= 1024.0
    return f"{value:.1f} PiB"  # pragma: no cover


def check_memory(estimate_bytes: float, option: str, what: str, *, available_bytes: int | None = None) -> None:
    """Refuse (ResourceError) when ``estimate_bytes`` exceeds the memory available.

    Args:
        option: what the user set, e.g. ``"--neurons 20000"``.
        what: what the memory is for, e.g. ``"the simulation grid of 20000×20000 neurons"``.
        available_bytes: the budget (default: :func:`available_memory_bytes`; no check if that is unknown).
    """
    budget = available_memory_bytes() if available_bytes is None else available_bytes
    if budget is None or estimate_bytes <= budget:
        return
    raise ResourceError(
        f"{option}: {what} needs about {format_bytes(estimate_bytes)} of memory, but this machine has "
        f"{format_bytes(budget)} available; choose a smaller value"
    )


def check_level_count(levels: int, option: str = "--levels") -> None:
    """Refuse more levels than the exporter can write (each level is one GDS/OASIS layer)."""
    if levels > MAX_EXPORT_LEVELS:
        raise ResourceError(
            f"{option} {levels}: at most {MAX_EXPORT_LEVELS} levels can be exported (level k goes on GDS layer 1 + k, "
            f"below the mark layer {MAX_EXPORT_LEVELS + 1}); printers resolve far fewer height steps anyway"
        )


def simulation_grid_px(
    neurons: int, oversample: int, pitch_m: float, wavelength_m: float, distance_m: float, n_medium: float,
    padding: str | int = "auto",
) -> int:
    """Side (pixels) of the padded simulation grid of the longest hop (the propagator's padding rule)."""
    from quaton_fab.optics.propagation import auto_padding

    pixels = neurons * oversample
    if padding == "auto":
        pad = auto_padding(pixels, pitch_m=pitch_m / oversample, wavelength_m=wavelength_m, distance_m=distance_m,
                           n_medium=n_medium)
    else:
        pad = int(padding)
    return pixels + 2 * pad


def training_memory_bytes(config: Any, oversample: int | None = None) -> tuple[float, int]:
    """(bytes, padded grid side) a training run needs for its fields; ``config`` is a TrainConfig.

    ``oversample``: the resolved s (``config.oversample`` may be ``"auto"``); default the config's own or 1.

    Estimate: training keeps ``4`` complex64 fields per hop (L + 1 hops) per sample of a batch for the backward
    pass; evaluation holds 3 fields per sample of an evaluation batch; plus three complex128 transfer functions.
    """
    distance = max(config.d_in, config.spacing_m, config.d_out)
    if oversample is None:
        oversample = config.oversample if isinstance(config.oversample, int) else 1
    side = simulation_grid_px(config.neurons, oversample, config.pitch_m, config.wavelength_m, distance,
                              config.n_medium, config.padding)
    field = float(side) * side * _COMPLEX64_BYTES
    train = config.batch_size * (config.layers + 1) * _ACTIVATIONS_PER_HOP * field
    evaluate = config.eval_batch_size * 3 * field
    transfer = 3.0 * side * side * _COMPLEX128_BYTES
    return max(train, evaluate) + transfer, side


def check_training_memory(config: Any, device: Any = None, oversample: int | None = None) -> None:
    """Refuse a training run whose simulation fields cannot fit in memory (CPU RAM, or the GPU's free memory)."""
    if oversample is None:
        oversample = config.oversample if isinstance(config.oversample, int) else 1
    estimate, side = training_memory_bytes(config, oversample)
    budget = None
    if device is not None and getattr(device, "type", "cpu") == "cuda":
        import torch

        budget = int(torch.cuda.mem_get_info(device)[0])
    option = f"--neurons {config.neurons}"
    if oversample > 1:
        option += f" with --oversample {oversample}"
    what = (f"simulating {config.layers} masks on a {side}×{side}-pixel padded grid in batches of "
            f"{config.batch_size}")
    if not math.isfinite(estimate):
        estimate = float("inf")
    check_memory(estimate, option, what, available_bytes=budget)


def relief_slice_count(level_heights_m: Any, max_slice_m: float | None) -> float:
    """Number of multislice slices of a relief (counted, not built): every level step subdivided to ``max_slice_m``.

    Mirrors :meth:`quaton_fab.optics.relief.Relief.slice_edges_m` without allocating its edges (a float, so an
    absurd request is a large number rather than an overflow).
    """
    marks = sorted({0.0, *(float(h) for h in level_heights_m)})
    if max_slice_m is None:
        return float(len(marks) - 1)
    return float(sum(max(1.0, math.ceil((hi - lo) / max_slice_m - 1e-9)) for lo, hi in zip(marks[:-1], marks[1:])))


def simulation_memory_bytes(geometry: Any, relief: Any = None, *, batch: int = 1) -> tuple[float, int, float]:
    """(bytes, padded grid side, relief slices) to simulate ``geometry`` (a Geometry) with ``relief`` (or None).

    Estimate: ``batch`` samples × 4 complex64 fields of the padded grid, one complex64 transfer function per
    relief slice (+2 for the slab and the ends) and three complex128 free-space transfer functions.
    """
    distance = max(geometry.distances_m())
    side = simulation_grid_px(geometry.neurons, geometry.oversample, geometry.pitch_m, geometry.wavelength_m,
                              distance, geometry.n_medium, geometry.padding)
    slices = 0.0 if relief is None else relief_slice_count(relief.level_heights_m, relief.max_slice_m)
    area = float(side) * float(side)
    steps = 0.0 if relief is None else slices + 2
    total = area * (_COMPLEX64_BYTES * (4 * batch + steps) + 3 * _COMPLEX128_BYTES)
    return total, side, slices


def check_simulation(geometry: Any, relief: Any = None, *, batch: int = 1, option: str,
                     available_bytes: int | None = None) -> None:
    """Refuse a simulation whose relief slicing or padded grid cannot be served (before anything is allocated).

    Args:
        option: what the request came from, e.g. ``"design.json"`` or ``"--oversample 10000"``.
    """
    try:
        if relief is not None:
            slices = relief_slice_count(relief.level_heights_m, relief.max_slice_m)
            if slices > MAX_RELIEF_SLICES:
                raise ResourceError(
                    f"{option}: a largest slice of {relief.max_slice_m:.3g} m cuts the relief into {slices:.3g} "
                    f"slices; at most {MAX_RELIEF_SLICES} are simulated (choose a larger slice)"
                )
        estimate, side, _ = simulation_memory_bytes(geometry, relief, batch=batch)
    except OverflowError:
        raise ResourceError(f"{option}: the simulation grid is too large to count (a length or count out of range)"
                            ) from None
    what = (f"simulating {geometry.neurons} neurons at oversample {geometry.oversample} on a {side}×{side}-pixel "
            "padded grid")
    check_memory(estimate, option, what, available_bytes=available_bytes)


def check_print_grid(height_m: float, width_m: float, slicing_m: float | None, hatching_m: float | None,
                     option: str, *, parts: int = 1) -> None:
    """Refuse a print job whose slicing planes or hatching lines are beyond what can be written or read back.

    Args:
        height_m: tallest printed part (m, base included); width_m: its side (m).
        slicing_m, hatching_m: the printer grid (m; None: not used).
        parts: how many such parts (masks) the job set holds.
    """
    if slicing_m is None:
        return
    slices = height_m / slicing_m if slicing_m > 0 else math.inf
    if not math.isfinite(slices) or slices > MAX_PRINT_SLICES:
        raise ResourceError(
            f"{option}: a slicing distance of {slicing_m:.3g} m cuts {height_m * 1e6:.4g} µm of part into "
            f"{slices:.3g} planes; at most {MAX_PRINT_SLICES} (choose a larger distance)"
        )
    if hatching_m is None:
        return
    lines = parts * slices * (width_m / hatching_m if hatching_m > 0 else math.inf)
    if not math.isfinite(lines) or lines > MAX_PRINT_LINES:
        raise ResourceError(
            f"{option}: slicing {slicing_m:.3g} m and hatching {hatching_m:.3g} m write about {lines:.3g} lines; "
            f"at most {MAX_PRINT_LINES:.3g} (choose larger distances)"
        )


def fidelity_option(oversample: int, relief: Any = None) -> str:
    """The options a simulation's fidelity comes from, for refusal messages: ``--oversample S --max-slice X``."""
    text = f"--oversample {oversample}"
    if relief is not None and relief.max_slice_m is not None:
        text += f" --max-slice {relief.max_slice_m:.3g} m"
    return text
