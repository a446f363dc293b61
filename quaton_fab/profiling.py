"""Measure what one piece of work costs: its peak memory above the memory held before it, and its time.

Peak memory is measured, not estimated:

* CUDA: the caching allocator's statistics (``torch.cuda.max_memory_allocated`` after
  ``reset_peak_memory_stats``), minus what was allocated before the work started.
* CPU (Linux): the kernel's high-water mark of this process's resident memory. The mark is reset
  (``/proc/self/clear_refs`` ← ``5``) after Python's garbage collector ran and glibc returned its free memory
  (``malloc_trim``); the result is ``VmHWM − VmRSS`` read from ``/proc/self/status`` before and after. This
  counts every page torch, numpy or the FFT library touched, so it is an honest peak for work that allocates
  more than a few MiB; it reads 0 for work served from memory the allocator already holds.

Where neither is available (no CUDA device, no writable ``/proc``) the functions return None.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import time
from collections.abc import Callable
from typing import Any

import torch

__all__ = ["measure_peak_bytes", "peak_method", "time_best_s"]

_STATUS = "/proc/self/status"
_CLEAR_REFS = "/proc/self/clear_refs"


def _status_kib(key: str) -> int:
    """A ``kB`` entry of /proc/self/status (e.g. ``VmRSS``), in KiB."""
    with open(_STATUS, encoding="ascii") as handle:
        for line in handle:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise OSError(f"{_STATUS} has no {key} entry")


def _trim_heap() -> None:
    """Return glibc's free heap memory to the system (no-op without glibc)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return
    try:
        ctypes.CDLL(name).malloc_trim(0)
    except (OSError, AttributeError):
        pass


def peak_method(device: torch.device | str) -> str | None:
    """How :func:`measure_peak_bytes` measures on ``device``: ``"cuda-allocator"``, ``"rss-high-water"`` or None."""
    device = torch.device(device)
    if device.type == "cuda":
        return "cuda-allocator" if torch.cuda.is_available() else None
    try:
        with open(_CLEAR_REFS, "w", encoding="ascii") as handle:
            handle.write("5")
        _status_kib("VmHWM")
    except OSError:
        return None
    return "rss-high-water"


def measure_peak_bytes(work: Callable[[], Any], device: torch.device | str) -> tuple[int | None, Any]:
    """``(peak bytes above the memory held before, work's return value)``; peak None when it cannot be measured.

    See the module docstring for the two methods. ``work`` runs exactly once.
    """
    device = torch.device(device)
    method = peak_method(device)
    gc.collect()
    if method == "cuda-allocator":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        result = work()
        torch.cuda.synchronize(device)
        return int(torch.cuda.max_memory_allocated(device) - before), result
    if method == "rss-high-water":
        _trim_heap()
        with open(_CLEAR_REFS, "w", encoding="ascii") as handle:
            handle.write("5")  # reset the resident-memory high-water mark to the current resident size
        before = _status_kib("VmRSS")
        result = work()
        return max(0, _status_kib("VmHWM") - before) * 1024, result
    return None, work()


def time_best_s(work: Callable[[], Any], *, repeats: int = 3, device: torch.device | str = "cpu") -> float:
    """Shortest wall time (s) of ``repeats`` runs of ``work`` (after one warm-up run), synchronising CUDA.

    The minimum is the least disturbed by other processes sharing the machine.
    """
    device = torch.device(device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda *_: None)
    work()
    sync(device)
    best = float("inf")
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        work()
        sync(device)
        best = min(best, time.perf_counter() - start)
    return best
