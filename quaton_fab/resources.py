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
from quaton_fab.optics.propagation import auto_padding
from quaton_fab.optics.relief import network_relief_grid
import torch

__all__ = [
    "MAX_EXPORT_LEVELS",
    "MAX_CLASSES",
    "available_memory_bytes",
    "check_memory",
    "check_level_count",
    "format_bytes",
    "simulation_grid_px",
    "training_memory_bytes",
    "training_memory_parts",
    "check_training_memory",
    "MAX_RELIEF_SLICES",
    "MAX_PRINT_SLICES",
    "MAX_PRINT_LINES",
    "relief_slice_count",
    "simulation_memory_bytes",
    "check_simulation",
    "check_print_grid",
    "fidelity_option",
    "resolve_recompute",
]

#: Largest level count a design can have: the GDSII/OASIS exporter puts level k on layer 1 + k, below the mark
#: layer 100 (see :mod:`quaton_fab.fab.formats.gds`), so levels 0..98 are the most it can write.
MAX_EXPORT_LEVELS = 99
#: Largest number of classes a classifier dataset may have (one detector region per class).
MAX_CLASSES = 1000
_COMPLEX64_BYTES = 8
_COMPLEX128_BYTES = 16
#: Most multislice slices one relief may be cut into (each is a phase screen and a propagation step per hop;
#: converged reference slicing needs a few hundred at most).
MAX_RELIEF_SLICES = 10_000
#: Most slicing planes one printed part may have (the writers loop over them; 2 mm of part at 100 nm).
MAX_PRINT_SLICES = 20_000
#: Most hatching lines a GWL job may hold (about 40 bytes each on disk, and as many read back).
MAX_PRINT_LINES = 50_000_000
#: Fields on the hop grid in flight besides those kept for the backward pass: a fixed part, and a part per mask
#: (gradients and spectra of the transforms; what the allocator holds back between them). Measured.
_WORKING_FIELDS = 4
_WORKING_FIELDS_PER_MASK = 2
#: Kept fields cost this much more than their bytes (autograd's bookkeeping, allocator fragmentation). Measured.
_KEPT_OVERHEAD = 1.5


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

    pixels = neurons * oversample
    if padding == "auto":
        pad = auto_padding(pixels, pitch_m=pitch_m / oversample, wavelength_m=wavelength_m, distance_m=distance_m,
                           n_medium=n_medium)
    else:
        pad = int(padding)
    return pixels + 2 * pad


def training_memory_parts(
    config: Any, oversample: int | None = None, *, relief: Any = None, recompute: bool = False
) -> tuple[dict[str, float], int]:
    """Bytes of a training run's fields, ``{"train", "evaluate", "transfer"}``, and the padded grid side.

    ``config`` is a TrainConfig.

    ``oversample``: the resolved s (``config.oversample`` may be ``"auto"``); default the config's own or 1.
    ``relief``: the run's :class:`~quaton_fab.optics.relief.Relief` (relief model), None for thin masks.
    ``recompute``: the relief model recomputes each mask's slices in the backward pass.

    The count, per sample of one forward + backward (a micro-batch of ``config.micro_batch`` samples, else the
    batch), in fields of the run's complex dtype (complex64):

    * kept for the backward pass: thin masks, one field on the padded hop grid per hop (``L + 1``); relief,
      stored: per mask one field on the relief's padded grid per slice (``S``); relief, recomputed: per mask
      its input on the aperture grid, plus one mask's slices while they are recomputed;
    * those kept fields × ``_KEPT_OVERHEAD``, plus fields in flight (spectra, gradients):
      ``_WORKING_FIELDS + _WORKING_FIELDS_PER_MASK·L`` on the hop grid;

    evaluation holds 3 fields per sample of an evaluation batch (no gradients); plus three complex128 transfer
    functions. The constants are measured (peak resident memory of one forward + backward, CPU); the estimate
    is checked against the measured peak in ``tests/test_memory_scale.py``.
    """
    distance = max(config.d_in, config.spacing_m, config.d_out)
    if oversample is None:
        oversample = config.oversample if isinstance(config.oversample, int) else 1
    side = simulation_grid_px(config.neurons, oversample, config.pitch_m, config.wavelength_m, distance,
                              config.n_medium, config.padding)
    hop = float(side) * side
    layers = config.layers
    if relief is None:
        kept = (layers + 1) * hop
    else:

        slices, relief_side = network_relief_grid(relief, config.neurons * oversample, config.pitch_m / oversample)
        mask = slices * float(relief_side) ** 2
        aperture = float(config.neurons * oversample) ** 2
        kept = layers * aperture + mask if recompute else layers * mask
    working = (_WORKING_FIELDS + _WORKING_FIELDS_PER_MASK * layers) * hop
    per_sample = (_KEPT_OVERHEAD * kept + working) * _COMPLEX64_BYTES
    samples = config.batch_size if getattr(config, "micro_batch", None) is None else min(
        config.batch_size, config.micro_batch
    )
    parts = {
        "train": samples * per_sample,
        "evaluate": config.eval_batch_size * 3 * hop * _COMPLEX64_BYTES,
        "transfer": 3.0 * hop * _COMPLEX128_BYTES,
    }
    return parts, side


def training_memory_bytes(
    config: Any, oversample: int | None = None, *, relief: Any = None, recompute: bool = False
) -> tuple[float, int]:
    """(bytes, padded grid side) a training run needs: the larger of a training step and an evaluation batch,
    plus the transfer functions (see :func:`training_memory_parts`)."""
    parts, side = training_memory_parts(config, oversample, relief=relief, recompute=recompute)
    return max(parts["train"], parts["evaluate"]) + parts["transfer"], side


def resolve_recompute(config: Any, device: Any = None, oversample: int | None = None, *, relief: Any = None) -> bool:
    """Whether the relief model recomputes its slices: ``config.recompute`` ``"on"``/``"off"``, or for ``"auto"``
    True when storing them would take more than half the memory available (thin masks: always False)."""
    mode = getattr(config, "recompute", "auto")
    if relief is None or mode == "off":
        return False
    if mode == "on":
        return True
    stored, _ = training_memory_bytes(config, oversample, relief=relief, recompute=False)
    budget = _budget_bytes(device)
    return budget is not None and stored > 0.5 * budget


def _budget_bytes(device: Any) -> int | None:
    """Memory available for a run on ``device``: the GPU's free memory, else this machine's available RAM."""
    if device is not None and getattr(device, "type", "cpu") == "cuda":

        return int(torch.cuda.mem_get_info(device)[0])
    return available_memory_bytes()


def check_training_memory(
    config: Any, device: Any = None, oversample: int | None = None, *, relief: Any = None, recompute: bool = False
) -> None:
    """Refuse a training run whose simulation fields cannot fit in memory (CPU RAM, or the GPU's free memory).

    ``relief``/``recompute`` as :func:`training_memory_bytes` (the message then names the options that help).
    """
    if oversample is None:
        oversample = config.oversample if isinstance(config.oversample, int) else 1
    estimate, side = training_memory_bytes(config, oversample, relief=relief, recompute=recompute)
    budget = None
    if device is not None and getattr(device, "type", "cpu") == "cuda":
        budget = _budget_bytes(device)
    option = f"--neurons {config.neurons}"
    if oversample > 1:
        option += f" with --oversample {oversample}"
    samples = config.batch_size if getattr(config, "micro_batch", None) is None else min(
        config.batch_size, config.micro_batch
    )
    what = (f"simulating {config.layers} masks on a {side}×{side}-pixel padded grid in batches of "
            f"{samples}")
    if relief is not None:
        what += " (slices recomputed)" if recompute else " (use --recompute on or a smaller --micro-batch)"
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
