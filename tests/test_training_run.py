"""run_training: one call trains, saves and measures a run; resume continues it; Ctrl-C leaves a checkpoint."""

from __future__ import annotations

import contextlib
import os
import signal

import numpy as np
import pytest

from quaton_fab.design import Design
from quaton_fab.training import CheckpointError, preset
from quaton_fab.training.run import RunDirError, RunHooks, RunInterrupted, check_run_dir, run_training


def tiny(**overrides):
    values = dict(train_samples=64, val_samples=16, test_samples=16, epochs=2, neurons=12, layers=2,
                  spacing_m=8e-6, batch_size=16, threads=None, device="cpu")
    values.update(overrides)
    return preset("tiny", **values)


class Recorder(RunHooks):
    """Hooks that note every report, and optionally stop training after ``stop_after`` steps."""

    def __init__(self, stop_after: int | None = None, signal_stop: bool = False):
        self.events: list[tuple] = []
        self.stop_after, self.signal_stop = stop_after, signal_stop

    def resuming(self, run_dir):
        self.events.append(("resuming", run_dir))

    def warning(self, kind, text):
        self.events.append(("warning", kind))

    @contextlib.contextmanager
    def stage(self, name):
        self.events.append(("stage", name))
        yield

    def built(self, config, network):
        self.events.append(("built", network.geometry.neurons))

    @contextlib.contextmanager
    def training(self, trainer, resumed):
        self.events.append(("training", resumed))
        yield _Steps(self, trainer)

    def stopping(self):
        self.events.append(("stopping",))

    def saved(self, design, figures):
        self.events.append(("saved", len(figures)))

    def fidelity(self, label, description):
        self.events.append(("fidelity", label))

    @contextlib.contextmanager
    def progress(self, label):
        self.events.append(("progress", label))
        yield lambda done, total: None

    def names(self):
        return [e[0] for e in self.events]


class _Steps:
    """Trainer callbacks counting steps; at ``stop_after`` a stop is requested (directly or by a real SIGINT)."""

    def __init__(self, hooks: Recorder, trainer):
        self.hooks, self.trainer, self.steps = hooks, trainer, 0

    def on_epoch_start(self, *args):
        pass

    def on_step(self, *args):
        self.steps += 1
        if self.steps == self.hooks.stop_after:
            if self.hooks.signal_stop:
                os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C does: the run's handler asks for a clean stop
            else:
                self.trainer.request_stop()

    def on_eval(self, *args):
        pass

    def on_epoch_end(self, *args):
        pass


def test_one_call_trains_saves_and_measures_the_reference_gap(tmp_path):
    hooks = Recorder()
    out = run_training(tiny(epochs=1), tmp_path / "run", reference_samples=8, hooks=hooks)
    assert out.resumed is False and out.world_size is None
    assert all((tmp_path / "run" / name).is_file() for name in ("design.json", "masks.npz", "metrics.json"))
    assert out.figures and all(p.is_file() for p in out.figures)
    loaded = Design.load(tmp_path / "run")
    np.testing.assert_array_equal(loaded.level_indices, out.design.level_indices)
    assert out.reference_gap is not None and out.reference_gap.samples == 8
    names = hooks.names()
    order = ["stage", "built", "training", "stage", "saved", "fidelity", "progress"]
    assert [n for n in names if n in order] == order
    assert ("stage", "build") in hooks.events and ("stage", "figures") in hooks.events
    assert ("progress", "design vs reference (8 test samples)") in hooks.events
    # the run is complete: resuming it has nothing to do
    with pytest.raises(CheckpointError, match="already complete"):
        run_training(None, tmp_path / "run", resume=True)


def test_resume_policy_refusals(tmp_path):
    with pytest.raises(RunDirError, match="nothing to resume"):
        run_training(None, tmp_path / "none", resume=True)
    full = tmp_path / "full"
    full.mkdir()
    (full / "notes.txt").write_text("mine")
    with pytest.raises(RunDirError, match="is not empty; use --resume, --force or another --out"):
        run_training(tiny(), full)
    check_run_dir(full, force=True)  # --force accepts it
    check_run_dir(tmp_path / "missing")  # a new folder is fine


def test_interrupt_leaves_a_checkpoint_and_resume_gives_the_uninterrupted_design(tmp_path):
    config = tiny(method="gs")  # GS draws noise every step: the random state must be restored too
    straight = run_training(config, tmp_path / "a", figures=False)

    with pytest.raises(RunInterrupted) as info:
        run_training(config, tmp_path / "b", figures=False, hooks=Recorder(stop_after=3))
    stop = info.value
    assert (tmp_path / "b" / "checkpoint.pt").is_file() and not (tmp_path / "b" / "design.json").exists()
    assert stop.run_dir == tmp_path / "b" and stop.world_size is None and stop.resumed is False
    assert str(stop).startswith("training stopped at epoch 1, step 3; checkpoint saved to")

    hooks = Recorder()
    resumed = run_training(None, tmp_path / "b", resume=True, figures=False, hooks=hooks)
    assert hooks.events[0] == ("resuming", tmp_path / "b") and ("training", True) in hooks.events
    assert resumed.resumed is True and resumed.config == config
    np.testing.assert_array_equal(resumed.design.level_indices, straight.design.level_indices)
    assert resumed.design.metrics["test"] == straight.design.metrics["test"]


def test_ctrl_c_stops_cleanly_and_restores_the_handler(tmp_path):
    before = signal.getsignal(signal.SIGINT)
    hooks = Recorder(stop_after=2, signal_stop=True)
    with pytest.raises(RunInterrupted):
        run_training(tiny(epochs=1), tmp_path / "run", figures=False, hooks=hooks)
    assert ("stopping",) in hooks.events
    assert signal.getsignal(signal.SIGINT) is before
    assert (tmp_path / "run" / "checkpoint.pt").is_file()


def test_auto_resume_loads_a_finished_run_and_continues_a_checkpoint(tmp_path):
    config = tiny(epochs=1)
    with pytest.raises(RunInterrupted):
        run_training(config, tmp_path / "run", figures=False, hooks=Recorder(stop_after=2))
    hooks = Recorder()
    first = run_training(config, tmp_path / "run", resume="auto", figures=False, hooks=hooks)
    assert first.resumed is True and ("training", True) in hooks.events
    again = run_training(config, tmp_path / "run", resume="auto", figures=False)
    assert again.resumed is None  # complete: loaded, not trained
    np.testing.assert_array_equal(again.design.level_indices, first.design.level_indices)
