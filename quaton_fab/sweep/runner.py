"""Run a sweep's cells: locally in a process pool (default) or on a Ray cluster; resumable.

One idea: scheduling cells and reporting their state. The sweep folder holds ``sweep.json`` (the spec's text and
the list of cells) and one ordinary run directory per cell. Running a sweep again skips cells whose
``cell.json`` says ``done`` and resumes interrupted ones from their checkpoints, so the same command continues
an interrupted sweep.

At most ``workers`` cells run at once; each cell uses ``threads`` PyTorch CPU threads (default 1: one worker
per core). With Ray (``ray_address``), cells are Ray tasks of ``threads`` CPUs each; ``"local"`` starts a Ray
instance on this machine (what the tests use). The sweep folder must be on a file system every Ray node can
write (cells write their run directories there). The same cell function runs either way, so the cells and
their results are the same.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from quaton_fab.bounded import load_json_file
from quaton_fab.confine import ConfinementError
from quaton_fab.errors import QuatonFabError
from quaton_fab.sweep.cell import CellError, cell_dir, note_sigint, read_cell_record, read_status, run_cell
from quaton_fab.sweep.spec import Cell, SweepSpec
from quaton_fab.simulate import resolve_device

logger = logging.getLogger(__name__)

SWEEP_FILE = "sweep.json"
SWEEP_SCHEMA = "quaton-fab/sweep"
SWEEP_VERSION = 1

STATES = ("pending", "running", "done", "failed", "interrupted")


class SweepError(QuatonFabError):
    """A sweep that cannot run (bad folder, bad worker count, Ray missing or unreachable)."""


@dataclass
class CellState:
    """Where one cell stands during a sweep."""

    cell: Cell
    state: str = "pending"
    started: float | None = None
    finished: float | None = None
    record: dict[str, Any] | None = None
    skipped: bool = False

    @property
    def error(self) -> str | None:
        return None if self.record is None else self.record.get("error")


@dataclass
class SweepProgress:
    """A snapshot of a sweep for a live overview (counts, running cells, ETA)."""

    states: list[CellState]
    workers: int
    sweep_dir: Path
    started: float = field(default_factory=time.time)

    def count(self, state: str) -> int:
        return sum(1 for s in self.states if s.state == state)

    @property
    def total(self) -> int:
        return len(self.states)

    def running(self) -> list[CellState]:
        return [s for s in self.states if s.state == "running"]

    def live_status(self, state: CellState) -> dict[str, Any] | None:
        """The running cell's ``status.json`` (epoch/step) if it has written one."""
        try:
            return read_status(cell_dir(self.sweep_dir, state.cell.grid, state.cell.name))
        except ConfinementError:
            return None

    def eta_s(self) -> float | None:
        """Seconds left: mean wall time of the cells run in this session × cells left / workers (None if unknown)."""
        times = [s.finished - s.started for s in self.states
                 if s.state == "done" and not s.skipped and s.started and s.finished]
        left = self.count("pending") + self.count("running")
        if not left:
            return 0.0
        if not times:
            return None
        per = sum(times) / len(times)
        running_elapsed = sum(min(time.time() - s.started, per) for s in self.running() if s.started)
        return max(0.0, (left * per - running_elapsed) / max(1, self.workers))


def resolve_workers(workers: int | str | None, threads: int) -> int:
    """Worker count: ``auto``/None → one per ``threads`` CPU cores available to this process."""
    if workers in (None, "auto"):
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        return max(1, cores // max(1, threads))
    try:
        n = int(workers)
    except (TypeError, ValueError):
        raise SweepError(f"workers must be a positive integer or auto, got {workers!r}") from None
    if n < 1:
        raise SweepError(f"workers must be a positive integer or auto, got {workers!r}")
    return n


def prepare_sweep_dir(spec: SweepSpec, sweep_dir: str | Path) -> Path:
    """Create the sweep folder and write ``sweep.json`` (spec text + cells); refuse a folder of another kind."""
    out = Path(sweep_dir)
    if out.exists() and not out.is_dir():
        raise SweepError(f"sweep folder {str(out)!r} exists and is not a directory")
    meta = out / SWEEP_FILE
    if out.is_dir() and any(out.iterdir()) and not meta.is_file():
        raise SweepError(f"{str(out)!r} is not empty and holds no {SWEEP_FILE}; use a new sweep folder")
    out.mkdir(parents=True, exist_ok=True)
    data = {
        "schema": SWEEP_SCHEMA,
        "version": SWEEP_VERSION,
        "name": spec.name,
        "spec_text": spec.source_text,
        "evaluate": list(spec.evaluate),
        "eval_samples": spec.eval_samples,
        "cells": [c.to_dict() for c in spec.cells],
    }
    tmp = out / f".{SWEEP_FILE}.tmp"
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, meta)
    return out


def initial_states(spec: SweepSpec, sweep_dir: Path) -> list[CellState]:
    """One state per cell: ``done`` where the folder already holds a finished cell of the same configuration."""
    states = []
    for cell in spec.cells:
        try:
            record = read_cell_record(cell_dir(sweep_dir, cell.grid, cell.name))
        except ConfinementError:
            record = None  # the cell itself reports the refusal when it runs
        st = CellState(cell)
        if record is not None and record.get("status") == "done" and record.get("fingerprint") == cell.fingerprint():
            st.state, st.record, st.skipped = "done", record, True
        states.append(st)
    return states


def _worker_init() -> None:
    """Worker initializer: Ctrl-C is remembered, not raised (a training cell then stops with a checkpoint)."""
    signal.signal(signal.SIGINT, note_sigint)


class _LocalPool:
    """Cells in a process pool (spawned workers, so each starts clean)."""

    def __init__(self, workers: int):
        self.pool = ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"),
                                        initializer=_worker_init)

    def submit(self, fn: Callable[..., dict], *args: Any, **kwargs: Any) -> Future:
        # A worker is spawned here; it inherits "ignore Ctrl-C" until its initializer installs the handler, so
        # a Ctrl-C while it imports is not a traceback (the parent forwards the request: see ``interrupt``).
        try:
            previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        except ValueError:  # not the main thread: leave the disposition alone
            return self.pool.submit(fn, *args, **kwargs)
        try:
            return self.pool.submit(fn, *args, **kwargs)
        finally:
            signal.signal(signal.SIGINT, previous)

    def interrupt(self) -> None:
        """Pass Ctrl-C on to every worker (one that was still starting ignored the terminal's)."""
        for process in list((getattr(self.pool, "_processes", None) or {}).values()):
            try:
                os.kill(process.pid, signal.SIGINT)
            except (OSError, TypeError):
                pass

    def wait(self, pending: set[Any], timeout: float) -> tuple[set[Any], set[Any]]:
        done, rest = wait(pending, timeout=timeout, return_when=FIRST_COMPLETED)
        return set(done), set(rest)

    @staticmethod
    def result(handle: Future) -> dict[str, Any]:
        return handle.result()

    def close(self, cancel: bool = False) -> None:
        self.pool.shutdown(wait=True, cancel_futures=cancel)


class _RayPool:
    """Cells as Ray tasks of ``threads`` CPUs each (``address`` "local": a Ray instance on this machine)."""

    def __init__(self, address: str, threads: int, local_cpus: int):
        try:
            import ray
        except ImportError:
            raise SweepError("--ray needs Ray: pip install 'quaton-fab[ray]'") from None
        self.ray = ray
        self.owns = not ray.is_initialized()
        if self.owns:
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                      "configure_logging": False}
            try:
                if address == "local":
                    ray.init(num_cpus=local_cpus, **kwargs)
                else:
                    ray.init(address=address, **kwargs)
            except Exception as exc:  # ConnectionError and Ray's own errors: one line for the user
                raise SweepError(f"cannot connect to Ray at {address!r}: {' '.join(str(exc).split())}") from None
        self.remote = ray.remote(num_cpus=threads, max_retries=0)(run_cell)

    def cluster_cpus(self) -> int:
        return int(self.ray.cluster_resources().get("CPU", 1))

    def submit(self, fn: Callable[..., dict], *args: Any, **kwargs: Any) -> Any:
        return self.remote.remote(*args, **kwargs)

    def wait(self, pending: set[Any], timeout: float) -> tuple[set[Any], set[Any]]:
        done, rest = self.ray.wait(list(pending), num_returns=1, timeout=timeout)
        return set(done), set(rest)

    def result(self, handle: Any) -> dict[str, Any]:
        return self.ray.get(handle)

    def close(self, cancel: bool = False) -> None:
        if self.owns:
            self.ray.shutdown()


def run_sweep(
    spec: SweepSpec,
    sweep_dir: str | Path,
    *,
    workers: int | str | None = "auto",
    threads: int = 1,
    ray_address: str | None = None,
    on_update: Callable[[SweepProgress], None] | None = None,
    poll_s: float = 1.0,
    device: str | None = None,
) -> SweepProgress:
    """Run every cell of ``spec`` not yet done; return the final progress snapshot.

    Args:
        spec: the parsed spec (see :mod:`quaton_fab.sweep.spec`).
        sweep_dir: the sweep folder (created; reused to resume).
        workers: cells at once (``auto``: cores // threads locally, cluster CPUs // threads with Ray).
        threads: PyTorch threads per cell (and Ray CPUs per task).
        ray_address: None to run locally; a Ray address (``auto``, ``ray://host:10001``) or ``local``.
        on_update: called with a :class:`SweepProgress` at least every ``poll_s`` seconds.
        device: where every cell trains and is evaluated (``cpu``, ``cuda``, ``cuda:N``, ``auto``; checked
            here); None: each configuration's own (``auto``). Local workers share one GPU; with Ray only CPU
            devices are accepted (Ray hides GPUs from tasks that do not reserve one).

    KeyboardInterrupt is re-raised after running cells saved their checkpoints (local pool) or were cancelled
    (Ray); the next run resumes them.
    """
    pool, n_workers = _open_pool(workers, threads, ray_address, device)
    try:
        out = prepare_sweep_dir(spec, sweep_dir)
    except BaseException:
        pool.close()
        raise
    states = initial_states(spec, out)
    progress = SweepProgress(states, n_workers, out)
    kwargs = dict(evaluate=spec.evaluate, eval_samples=spec.eval_samples, figures=spec.figures, threads=threads,
                  device=device)
    _run_cells(pool, progress, kwargs, on_update, poll_s)
    if on_update:
        on_update(progress)
    return progress


def _open_pool(workers: int | str | None, threads: int, ray_address: str | None,
               device: str | None) -> tuple[_LocalPool | _RayPool, int]:
    """Check threads, device and workers, then start the pool; returns it and the number of cells at once."""
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise SweepError(f"threads must be a positive integer, got {threads!r}")
    if device is not None:
        resolved = resolve_device(device)  # DeviceError (one line) for an unknown or absent device
        if ray_address is not None and resolved.type != "cpu":
            raise SweepError(f"--device {device} with --ray is not supported: Ray tasks see no GPU unless they "
                             "reserve one; run the sweep locally (without --ray) to share a GPU")
    if ray_address is None:  # device, workers and Ray are checked before the sweep folder is created
        n_workers = resolve_workers(workers, threads)
        return _LocalPool(n_workers), n_workers
    if workers not in (None, "auto"):
        resolve_workers(workers, threads)
    pool = _RayPool(ray_address, threads, resolve_workers("auto", 1))
    n_workers = (max(1, pool.cluster_cpus() // threads) if workers in (None, "auto")
                 else resolve_workers(workers, threads))
    return pool, n_workers


def _run_cells(pool: _LocalPool | _RayPool, progress: SweepProgress, kwargs: dict[str, Any],
               on_update: Callable[[SweepProgress], None] | None, poll_s: float) -> None:
    """Keep ``progress.workers`` cells running until none is left; Ctrl-C: :func:`_stop_running`, re-raised."""
    queue: Iterator[CellState] = iter([s for s in progress.states if s.state != "done"])
    handles: dict[Any, CellState] = {}
    interrupted = False
    try:
        _fill(pool, queue, handles, progress, kwargs)
        while handles:
            if on_update:
                on_update(progress)
            done, _ = pool.wait(set(handles), timeout=poll_s)
            for h in done:
                _finish(pool, h, handles.pop(h))
            _fill(pool, queue, handles, progress, kwargs)
    except KeyboardInterrupt:
        interrupted = True
        _stop_running(pool, handles)
        if on_update:
            on_update(progress)
        raise
    finally:
        if not interrupted:
            pool.close()
        for st in progress.states:
            if st.state == "running":
                st.state = "interrupted"


def _fill(pool: _LocalPool | _RayPool, queue: Iterator[CellState], handles: dict[Any, CellState],
          progress: SweepProgress, kwargs: dict[str, Any]) -> None:
    """Submit queued cells until ``progress.workers`` run."""
    while len(handles) < progress.workers:
        st = next(queue, None)
        if st is None:
            return
        st.state, st.started = "running", time.time()
        handles[pool.submit(run_cell, st.cell.to_dict(), str(progress.sweep_dir), **kwargs)] = st


def _finish(pool: _LocalPool | _RayPool, handle: Any, st: CellState) -> None:
    """Take a finished cell's record into its state."""
    st.finished = time.time()
    try:
        record = pool.result(handle)
    except Exception as exc:  # a worker that died (killed, out of memory): the cell resumes next time
        record = {"status": "failed", "error": f"worker lost: {' '.join(str(exc).split())[:200]}"}
    st.record = record
    st.state = record["status"] if record.get("status") in STATES else "failed"
    st.skipped = bool(record.get("skipped"))


def _stop_running(pool: _LocalPool | _RayPool, handles: dict[Any, CellState]) -> None:
    """Ctrl-C: local workers stop at their next step with a checkpoint (waited for); Ray tasks are cancelled."""
    if local := isinstance(pool, _LocalPool):  # they got the same SIGINT; pass it on to one still starting
        pool.interrupt()
    pool.close(cancel=True)
    for h, st in handles.items():
        st.finished = time.time()
        try:
            st.record = pool.result(h) if local else None
        except Exception:  # cancelled or lost: the cell resumes next time
            st.record = None
        st.state = (st.record or {}).get("status", "interrupted")


def load_records(sweep_dir: str | Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """``sweep.json`` and the ``cell.json`` records of a sweep folder (finished or failed cells only)."""
    out = Path(sweep_dir)
    path = out / SWEEP_FILE
    if not path.is_file():
        raise SweepError(f"{str(out)!r} is not a sweep folder (no {SWEEP_FILE})")
    meta = load_json_file(path, "sweep file", SweepError)
    if not isinstance(meta, dict) or not isinstance(meta.get("cells", []), list):
        raise SweepError(f"{str(path)!r} is not a sweep file (an object with a list of cells)")
    if not isinstance(meta.get("name", ""), str) or not isinstance(meta.get("spec_text", ""), str):
        raise SweepError(f"{str(path)!r}: 'name' and 'spec_text' must be text")
    records = []
    for i, cell in enumerate(meta.get("cells", []), 1):
        if not isinstance(cell, dict):
            raise SweepError(f"{str(path)!r}: cell {i} is not an object")
        try:
            folder = cell_dir(out, cell.get("grid"), cell.get("name"))
        except ConfinementError as exc:
            raise SweepError(f"{str(path)!r}: cell {i}: {exc}") from None
        try:
            rec = read_cell_record(folder, strict=True)
        except (CellError, OSError) as exc:
            reason = str(exc) if isinstance(exc, CellError) else f"{exc.strerror or exc}"
            records.append({"status": "unreadable", "key": f"{cell['grid']}/{cell['name']}", "error": reason})
            continue
        if rec is not None:
            records.append(rec)
    return meta, records
