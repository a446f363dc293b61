"""The progress hooks the trainer calls: epoch start, optimiser step, evaluation progress, epoch end."""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["Callbacks", "Silent"]


class Callbacks(Protocol):
    """Progress hooks the trainer calls (the CLI renders them with rich). All are optional no-ops by default."""

    def on_epoch_start(self, epoch: int, epochs: int, steps: int, first_step: int) -> None: ...
    def on_step(self, epoch: int, step: int, loss: float, status: dict[str, float]) -> None: ...
    def on_eval(self, name: str, done: int, total: int) -> None: ...
    def on_epoch_end(self, epoch: int, record: dict[str, Any]) -> None: ...


class Silent:
    """Callbacks that do nothing (the trainer's default)."""

    def on_epoch_start(self, epoch: int, epochs: int, steps: int, first_step: int) -> None:
        pass

    def on_step(self, epoch: int, step: int, loss: float, status: dict[str, float]) -> None:
        pass

    def on_eval(self, name: str, done: int, total: int) -> None:
        pass

    def on_epoch_end(self, epoch: int, record: dict[str, Any]) -> None:
        pass
