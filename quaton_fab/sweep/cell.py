"""Run one cell of a sweep: train (or resume) an ordinary run directory, then evaluate it.

One idea: a cell's life on a worker. :func:`run_cell` is a plain function of picklable arguments, so the local
process pool and Ray call the very same code. A cell folder ends with ``cell.json`` (schema
``quaton-fab/sweep-cell``, version 1): the cell, the fingerprint of its configuration, its metrics at each
fidelity and timings. A folder whose ``cell.json`` says ``done`` is never run again; a folder with a checkpoint
is resumed; a folder with neither is started afresh.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import signal
import socket
import time
from pathlib import Path
from typing import Any

from quaton_fab.bounded import load_json_file
from quaton_fab.confine import ConfinementError, child
from quaton_fab.errors import QuatonFabError
from quaton_fab.sweep.spec import Cell
from quaton_fab.design import Design
from quaton_fab.simulate import Fidelity, design_fidelity, reference_fidelity, simulate_design
from quaton_fab.training import Trainer
from quaton_fab.training.run import RunHooks, RunInterrupted, RunSaveError, handling_sigint, run_training
from quaton_fab.tasks.metrics import primary_metric_name
import torch

logger = logging.getLogger(__name__)

CELL_FILE = "cell.json"
STATUS_FILE = "status.json"
CELL_SCHEMA = "quaton-fab/sweep-cell"
CELL_VERSION = 1
#: Files a cell leaves in its folder before its first checkpoint (its records and their temporary names, the
#: checkpoint's temporary name): the only entries a fresh start may delete.
_LEFTOVER = re.compile(r"(status\.json|cell\.json|\.(status|cell)\.json\.\d+\.tmp|\.checkpoint\..+\.pt)")


#: Set when this worker process received Ctrl-C (SIGINT) — also while it was starting or idle, when no
#: trainer was there to stop yet; a cell then stops at its next step (or does not start).
_interrupted = False


def note_sigint(signum: int = signal.SIGINT, frame: Any = None) -> None:
    """SIGINT handler of a sweep worker: remember the request (see ``_interrupted``)."""
    global _interrupted
    _interrupted = True


class CellError(QuatonFabError):
    """A cell folder that belongs to another configuration, or a cell that cannot run."""


def _atomic_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def cell_dir(sweep_dir: str | Path, grid: Any, name: Any) -> Path:
    """``<sweep_dir>/<grid>/<name>``, confined to the sweep folder (plain names, no symbolic link on the way).

    Raises:
        ConfinementError: a label or name that would leave the sweep folder, or a link.
    """
    return child(sweep_dir, grid, name, what="cell folder name")


def read_cell_record(run_dir: str | Path, *, strict: bool = False) -> dict[str, Any] | None:
    """The ``cell.json`` of a cell folder, or None when there is none.

    An unreadable or foreign record is None too, unless ``strict`` (then :class:`CellError` names the file).
    """
    path = Path(run_dir) / CELL_FILE
    if not path.exists() and not path.is_symlink():
        return None
    try:
        if path.is_symlink():
            raise CellError(f"{str(path)!r} is a symbolic link; a cell record must be a plain file")
        data = load_json_file(path, "cell record", CellError, max_bytes=16 * 1024 * 1024)
        if not isinstance(data, dict) or data.get("schema") != CELL_SCHEMA:
            raise CellError(f"cell record {str(path)!r} is not a quaton-fab sweep cell record")
    except (OSError, CellError):
        if strict:
            raise
        return None
    return data


def read_status(run_dir: str | Path) -> dict[str, Any] | None:
    """The live ``status.json`` a running cell writes (epoch, step, elapsed), or None."""
    try:
        data = load_json_file(Path(run_dir) / STATUS_FILE, "status file", CellError, max_bytes=1024 * 1024)
    except (OSError, CellError):
        return None
    return data if isinstance(data, dict) else None


class _StatusWriter:
    """Trainer callbacks that keep ``status.json`` up to date (at most every ``every_s`` seconds).

    They also pass on a Ctrl-C this worker received before the cell's training started (``_interrupted``):
    ``Trainer.fit`` clears earlier stop requests when it starts, so the request is repeated at every epoch start
    and step, where the trainer checks it.
    """

    def __init__(self, run_dir: Path, every_s: float = 2.0, stop: Any = None):
        self.stop = stop
        self.path = run_dir / STATUS_FILE
        self.every_s = every_s
        self.t0 = time.monotonic()
        self.last = 0.0
        self.state: dict[str, Any] = {"phase": "training", "epoch": 0, "epochs": 0, "step": 0, "steps": 0}

    def _write(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self.last >= self.every_s:
            self.last = now
            self.state["elapsed_s"] = round(now - self.t0, 1)
            try:
                _atomic_json(self.path, self.state)
            except OSError:  # status is a courtesy; never fail a run over it
                pass

    def _pass_on_interrupt(self) -> None:
        if _interrupted and self.stop is not None:
            self.stop()

    def on_epoch_start(self, epoch: int, epochs: int, steps: int, first_step: int) -> None:
        self._pass_on_interrupt()
        self.state.update(epoch=epoch + 1, epochs=epochs, steps=steps, step=first_step, phase="training")
        self._write(force=True)

    def on_step(self, epoch: int, step: int, loss: float, status: dict[str, float]) -> None:
        self._pass_on_interrupt()
        self.state.update(step=step + 1, loss=loss)
        self._write()

    def on_eval(self, name: str, done: int, total: int) -> None:
        self.state.update(phase=f"evaluating ({name})")
        self._write()

    def on_epoch_end(self, epoch: int, record: dict[str, Any]) -> None:
        self._write(force=True)

    def evaluating(self, label: str) -> None:
        self.state.update(phase=f"evaluating ({label})")
        self._write(force=True)


def _is_write_failure(text: str) -> bool:
    """True for PyTorch's own messages when a file write failed (it raises RuntimeError, not OSError)."""
    return "inline_container" in text or "file write failed" in text or "PytorchStreamWriter failed" in text


def _free_bytes(folder: Path) -> int | None:
    """Free bytes on the file system holding ``folder`` (None if unknown)."""
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def _scalars(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def run_cell(
    cell_data: dict[str, Any],
    sweep_dir: str,
    *,
    evaluate: tuple[str, ...] = ("reference",),
    eval_samples: int | None = None,
    figures: bool = False,
    threads: int | None = 1,
    device: str | None = None,
) -> dict[str, Any]:
    """Train and evaluate one cell in ``<sweep_dir>/<grid>/<name>``; return its ``cell.json`` record.

    Args:
        cell_data: ``Cell.to_dict()`` of the cell.
        sweep_dir: the sweep folder.
        evaluate: extra fidelities to simulate the finished design at (``reference``: the printed object;
            ``design``: its own training model, recomputed on ``eval_samples``).
        eval_samples: test samples for those evaluations (None: the configuration's test split).
        figures: also write the run's figures.
        threads: PyTorch CPU threads for this cell (None: leave PyTorch's default).
        device: where the cell trains and is evaluated (``cpu``, ``cuda``, ``cuda:N``, ``auto``); None: the
            configuration's own (``auto``). Not part of the cell's configuration: a finished cell is the same
            cell on any device.

    Returns:
        The record, with ``status`` ``done``, ``interrupted`` (a checkpoint was saved; run again to resume)
        or ``failed`` (``error`` holds one line).
    """
    cell = Cell(grid=cell_data["grid"], params=dict(cell_data["params"]), overrides=dict(cell_data["overrides"]),
                preset=cell_data["preset"])
    t_start = time.time()
    record: dict[str, Any] = {
        "schema": CELL_SCHEMA, "version": CELL_VERSION, "cell": cell.to_dict(), "key": cell.key,
        "host": socket.gethostname(), "pid": os.getpid(), "threads": threads,
    }
    if device is not None:
        record["device"] = device
    try:
        run_dir = cell_dir(sweep_dir, cell.grid, cell.name)
    except ConfinementError as exc:  # nothing is written for a cell that would leave the sweep folder
        record.update(status="failed", error=str(exc), wall_s=0.0)
        return record
    previous: dict[str, Any] | None = None
    try:
        fingerprint = cell.fingerprint()
        record["fingerprint"] = fingerprint
        previous = read_cell_record(run_dir)
        _check_fingerprint(previous, fingerprint, run_dir)
        if previous is not None and previous.get("status") == "done":
            return previous | {"skipped": True}
        if threads:
            torch.set_num_threads(int(threads))
        return _train_and_evaluate(cell, run_dir, record, t_start, evaluate=evaluate, eval_samples=eval_samples,
                                   figures=figures, device=device)
    except Exception as exc:  # a failed cell must not stop the sweep: record one line and go on
        return _failed(exc, cell, run_dir, record, previous, t_start)


def _check_fingerprint(previous: dict[str, Any] | None, fingerprint: str, run_dir: Path) -> None:
    """Refuse a cell folder whose record belongs to another configuration."""
    if previous is not None and previous.get("fingerprint") != fingerprint:
        raise CellError(
            f"{run_dir} holds a run of another configuration (fingerprint {previous.get('fingerprint')} ≠ "
            f"{fingerprint}); use a new sweep folder or remove that cell"
        )


class _CellHooks(RunHooks):
    """The run's hooks in a sweep worker: ``status.json`` as progress, Ctrl-C remembered for later cells."""

    def __init__(self, status: _StatusWriter, record: dict[str, Any]):
        self.status, self.record = status, record

    def training(self, trainer: Trainer, resumed: bool) -> contextlib.AbstractContextManager[Any]:
        self.record["resumed"] = resumed
        self.status.stop = trainer.request_stop
        return contextlib.nullcontext(self.status)

    def stopping(self) -> None:
        note_sigint()


def _train_and_evaluate(cell: Cell, run_dir: Path, record: dict[str, Any], t_start: float, *,
                        evaluate: tuple[str, ...], eval_samples: int | None, figures: bool,
                        device: str | None) -> dict[str, Any]:
    """Train (resume, or load the finished) run, evaluate it and write ``cell.json``; returns the record."""
    config = cell.config()
    status = _StatusWriter(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    try:  # Ctrl-C in the terminal reaches local workers too: stop cleanly with a checkpoint
        with handling_sigint(note_sigint):  # Ctrl-C is remembered (``_interrupted``)
            outcome = run_training(config, run_dir, resume="auto", device=device, figures=figures,
                                   hooks=_CellHooks(status, record), abort_on_second_interrupt=False,
                                   own_files=lambda name: bool(_LEFTOVER.fullmatch(name)))
    except RunInterrupted as stop:
        record.update(status="interrupted", error=str(stop), wall_s=round(time.time() - t_start, 2))
        return record
    design = outcome.design
    t_eval = time.time()
    metrics = _training_metrics(design)
    fidelities = {label: _fidelity(design, label) for label in evaluate}
    for label, fidelity in fidelities.items():
        status.evaluating(label)
        metrics[label] = _scalars(simulate_design(design, samples=eval_samples, fidelity=fidelity,
                                                  device=outcome.config.device))
    record.update(
        status="done",
        primary=primary_metric_name(design.metrics),
        metrics=metrics,
        fidelity={label: fid.describe(design.geometry) for label, fid in fidelities.items()},
        fidelity_ids={label: fid.identifier(design.geometry) for label, fid in fidelities.items()},
        train_time_s=design.metrics.get("train_time_s"),
        eval_time_s=round(time.time() - t_eval, 2),
        wall_s=round(time.time() - t_start, 2),
        eval_samples=eval_samples,
    )
    _atomic_json(run_dir / CELL_FILE, record)
    (run_dir / STATUS_FILE).unlink(missing_ok=True)
    return record


def _fidelity(design: Design, label: str) -> Fidelity:
    """``reference``: the printed object; anything else: the design's own training model."""
    return reference_fidelity(design) if label == "reference" else design_fidelity(design)


def _training_metrics(design: Design) -> dict[str, dict[str, float]]:
    """The design's own test metrics (and its unquantized ones when recorded), as plain floats."""
    metrics: dict[str, dict[str, float]] = {"training": _scalars(design.metrics.get("test", {}))}
    if "test_unquantized" in design.metrics:
        metrics["training_unquantized"] = _scalars(design.metrics["test_unquantized"])
    return metrics


def _failed(exc: Exception, cell: Cell, run_dir: Path, record: dict[str, Any], previous: dict[str, Any] | None,
            t_start: float) -> dict[str, Any]:
    """The record of a failed cell (one line); written into the folder only when the folder is the cell's own."""
    if isinstance(exc, RunSaveError):  # the cause, as before the run was saved by run_training
        exc = exc.error  # type: ignore[assignment]
    line = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, RuntimeError) and _is_write_failure(line):  # torch.save on a full disk
        free = _free_bytes(run_dir)
        reason = "No space left on device" if free == 0 else line[:120]
        line = f"{run_dir}: cannot write the checkpoint ({reason})"
        exc = OSError(line)
    if not isinstance(exc, (QuatonFabError, OSError)):
        logger.exception("cell %s failed", cell.key)
        line = f"{type(exc).__name__}: {line}"
    record.update(status="failed", error=line, wall_s=round(time.time() - t_start, 2))
    # a finished cell's record, or a record of another configuration, is never replaced by a refusal
    # nor is a folder holding files the cell did not write (or a cell.json not of a cell) written into
    ours = (previous is None and not (run_dir / CELL_FILE).exists()) or (
        previous is not None and previous.get("fingerprint") == record.get("fingerprint")
        and previous.get("status") != "done")
    if ours and not isinstance(exc, ConfinementError):
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
            _atomic_json(run_dir / CELL_FILE, record)
        except OSError:
            pass
    return record
