"""The training checkpoint file: ``checkpoint.pt`` in the run directory, tensors and plain containers only.

Written with :func:`torch.save` through an atomic rename, read with ``weights_only=True`` (no code is
executed). The payload is ``{"format", "version", "software", **state}``; the state keys a resume needs are
:data:`CHECKPOINT_KEYS` (see :class:`~quaton_fab.training.trainer.Trainer`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from quaton_fab import __version__
from quaton_fab.errors import QuatonFabError
from quaton_fab.fileio import atomic_path

__all__ = ["CHECKPOINT_NAME", "CHECKPOINT_FORMAT", "CHECKPOINT_VERSION", "CheckpointError", "write_checkpoint",
           "read_checkpoint"]

CHECKPOINT_NAME = "checkpoint.pt"
CHECKPOINT_FORMAT = "quaton-fab/checkpoint"
CHECKPOINT_VERSION = 1
CHECKPOINT_KEYS = ("config", "epoch", "step", "network", "task", "optimizer", "rng", "history", "best")


class CheckpointError(QuatonFabError):
    """A checkpoint that is missing, corrupted or from another version."""


def write_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Save ``state`` to ``path`` atomically, stamped with the format, its version and the software version."""
    payload = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "software": __version__, **state}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def read_checkpoint(path: Path, out_dir: Path) -> dict[str, Any]:
    """Read the checkpoint at ``path`` (in run directory ``out_dir``) and check its format and keys.

    Raises:
        CheckpointError: missing, unreadable, not a quaton-fab checkpoint, another version, or incomplete.
    """
    if not path.is_file():
        raise CheckpointError(f"no checkpoint to resume in {str(out_dir)!r} (expected {CHECKPOINT_NAME})")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a corrupted file
        raise CheckpointError(f"checkpoint {str(path)!r} cannot be read ({type(exc).__name__})") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{str(path)!r} is not a quaton-fab checkpoint")
    if state.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(f"{str(path)!r} has checkpoint version {state.get('version')!r}")
    missing = [key for key in CHECKPOINT_KEYS if key not in state]
    if missing or not isinstance(state["config"], dict):
        what = f"has no {missing[0]!r} entry" if missing else "has a malformed 'config' entry"
        raise CheckpointError(f"checkpoint {str(path)!r} {what}; it cannot be resumed")
    return state
