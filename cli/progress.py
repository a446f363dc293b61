"""Rich progress rendering for training and evaluation (the library only calls these hooks)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

__all__ = ["TrainProgress", "eval_progress"]


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[info]}"),
        console=console,
        transient=False,
    )


class TrainProgress:
    """Trainer callbacks drawing one bar per epoch with live loss and quantizer state, and eval bars."""

    def __init__(self, console: Console, metric: str):
        self.console = console
        self.metric = metric
        self.progress = _progress(console)
        self._bar: Any = None
        self._eval: dict[str, Any] = {}

    def __enter__(self) -> "TrainProgress":
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def on_epoch_start(self, epoch: int, epochs: int, steps: int, first_step: int) -> None:
        self._bar = self.progress.add_task(f"epoch {epoch + 1}/{epochs}", total=steps, completed=first_step, info="")
        self._eval = {}

    def on_step(self, epoch: int, step: int, loss: float, status: dict[str, float]) -> None:
        extra = " ".join(f"{k}={v:.3g}" for k, v in status.items())
        self.progress.update(self._bar, completed=step + 1, info=f"loss={loss:.4f} {extra}")

    def on_eval(self, name: str, done: int, total: int) -> None:
        if name not in self._eval:
            self._eval[name] = self.progress.add_task(f"  {name}", total=total, info="hard-quantized masks")
        self.progress.update(self._eval[name], completed=done)

    def on_epoch_end(self, epoch: int, record: dict[str, Any]) -> None:
        value = record["val"].get(self.metric)
        self.progress.update(
            self._bar, info=f"loss={record['train_loss']:.4f}  val {self.metric}={value:.4f} (quantized)"
        )


def eval_progress(console: Console, description: str) -> tuple[Progress, Any]:
    """A started progress bar and a ``progress(done, total)`` callback for evaluations."""
    progress = _progress(console)
    task_id = progress.add_task(description, total=None, info="")

    def update(done: int, total: int) -> None:
        progress.update(task_id, completed=done, total=total)

    return progress, update
