"""Rich progress rendering for training and evaluation (the library only calls these hooks)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

__all__ = ["SweepOverview", "TrainProgress", "eval_progress"]


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


class SweepOverview:
    """A live overview of a sweep: cells done / running / failed, ETA, and each running cell's epoch and step."""

    def __init__(self, console: Console, total: int):
        from rich.live import Live

        self.console = console
        self.total = total
        self.live = Live(console=console, refresh_per_second=2, transient=False)

    def __enter__(self) -> "SweepOverview":
        self.live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.stop()

    def __call__(self, progress: Any) -> None:
        self.live.update(self.render(progress))

    @staticmethod
    def render(progress: Any) -> Any:
        """A rich renderable of a :class:`~quaton_fab.sweep.runner.SweepProgress` snapshot."""
        import time

        from rich.console import Group
        from rich.markup import escape
        from rich.progress_bar import ProgressBar
        from rich.table import Table

        done, failed = progress.count("done"), progress.count("failed") + progress.count("interrupted")
        running, pending = progress.count("running"), progress.count("pending")
        eta = progress.eta_s()
        eta_text = "estimating…" if eta is None else time.strftime("%H:%M:%S", time.gmtime(eta))
        head = Table.grid(padding=(0, 2))
        head.add_row(
            ProgressBar(total=max(progress.total, 1), completed=done + failed, width=40),
            f"[green]{done} done[/]  [yellow]{running} running[/]  [red]{failed} failed[/]  {pending} pending"
            f"  of {progress.total}",
            f"ETA {eta_text}  ({progress.workers} workers)",
        )
        table = Table(show_header=True, header_style="bold", box=None)
        for col in ("running cell", "stage", "epoch", "step", "elapsed"):
            table.add_column(col)
        for st in progress.running():
            live = progress.live_status(st) or {}
            table.add_row(
                escape(st.cell.key), escape(str(live.get("phase", "starting"))),
                f"{live.get('epoch', '–')}/{live.get('epochs', '–')}",
                f"{live.get('step', '–')}/{live.get('steps', '–')}",
                f"{time.time() - st.started:.0f} s" if st.started else "",
            )
        return Group(head, table) if progress.running() else head
