"""The trainer: Adam over the masks' latent parameters with quantization-aware training.

One epoch = the quantizers' schedules are advanced (``start_epoch``), the shuffled training split is run in
mini-batches (task loss + quantizer regularisers), then the validation split is evaluated with the
*hard-quantized* masks, i.e. exactly what will be printed. The best-validation state is kept; at the end it is
restored, tested on the held-out test split and returned as a :class:`~quaton_fab.design.Design`.

Reproducibility and resume: every random draw comes from generators seeded by ``config.seed`` (mask
initialisation, the per-epoch shuffle; the Gumbel noise comes from each GS quantizer's own seeded stream,
kept in its buffers), and torch's global generator state is checkpointed too. A checkpoint
(``checkpoint.pt`` in the run directory, tensors and plain containers only, loaded with ``weights_only=True``)
is written after every epoch and when a stop is requested (Ctrl-C in the CLI). It stores the position inside
the epoch, the optimizer state and the random state as of the start of the next step, so a resumed run ends in
exactly the same state as an uninterrupted one.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from quaton_fab import __version__
from quaton_fab.data import DatasetSplits, Encoding, load_dataset
from quaton_fab.design import Design, sampling_record
from quaton_fab.errors import QuatonFabError
from quaton_fab.fileio import atomic_path
from quaton_fab.optics.network import DiffractiveNetwork, Geometry, rule_oversample
from quaton_fab.optics.propagation import OpticsError
from quaton_fab.optics.relief import Relief
from quaton_fab.quant import LevelSet, make_quantizer
from quaton_fab.resources import check_training_memory, resolve_recompute
from quaton_fab.tasks import ClassificationTask, QPITask
from quaton_fab.training.config import ConfigError, TrainConfig
from quaton_fab.optics.perturbation import draw_perturbation, step_generator
from quaton_fab.training.distributed import SINGLE, Distributed
from quaton_fab.simulate import evaluate_network, resolve_device
from quaton_fab.training.param_groups import group_lr, optimizer_groups
from quaton_fab.training.step import LossModule, accumulate_gradients, split_share
from quaton_fab.optics.perturbation import ERRORS, PERTURBATION_MODEL
from quaton_fab.optics.perturbation import ErrorMagnitudes
from quaton_fab.printing.defaults import DEFAULT_BASE_M
from quaton_fab.printing.level_table import level_table, printable_phases
from quaton_fab.printing.materials import get_material, parse_medium

__all__ = [
    "Trainer",
    "TrainingInterrupted",
    "TrainingDiverged",
    "Callbacks",
    "build_level_set",
    "resolve_n_medium",
    "CHECKPOINT_NAME",
    "CheckpointError",
]

log = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.pt"
CHECKPOINT_FORMAT = "quaton-fab/checkpoint"
CHECKPOINT_VERSION = 1
_CHECKPOINT_KEYS = ("config", "epoch", "step", "network", "task", "optimizer", "rng", "history", "best")


class TrainingInterrupted(RuntimeError):
    """Raised by :meth:`Trainer.fit` after a requested stop; the checkpoint has been saved."""

    def __init__(self, checkpoint: Path, epoch: int, step: int):
        super().__init__(f"training stopped at epoch {epoch + 1}, step {step}; checkpoint saved to {checkpoint}")
        self.checkpoint, self.epoch, self.step = checkpoint, epoch, step


class CheckpointError(QuatonFabError):
    """A checkpoint that is missing, corrupted or from another version."""


class TrainingDiverged(QuatonFabError):
    """The loss became NaN or infinite (the learning rate is usually too high)."""


class Callbacks(Protocol):
    """Progress hooks the trainer calls (the CLI renders them with rich). All are optional no-ops by default."""

    def on_epoch_start(self, epoch: int, epochs: int, steps: int, first_step: int) -> None: ...
    def on_step(self, epoch: int, step: int, loss: float, status: dict[str, float]) -> None: ...
    def on_eval(self, name: str, done: int, total: int) -> None: ...
    def on_epoch_end(self, epoch: int, record: dict[str, Any]) -> None: ...


class _Silent:
    def on_epoch_start(self, epoch: int, epochs: int, steps: int, first_step: int) -> None:
        pass

    def on_step(self, epoch: int, step: int, loss: float, status: dict[str, float]) -> None:
        pass

    def on_eval(self, name: str, done: int, total: int) -> None:
        pass

    def on_epoch_end(self, epoch: int, record: dict[str, Any]) -> None:
        pass


def resolve_n_medium(config: TrainConfig) -> float:
    """Index of the medium around the masks: ``config.medium`` (name or number) if given, else ``n_medium``.

    Raises:
        ConfigError: both are given and disagree.
    """
    if config.medium is None:
        return config.n_medium

    n = parse_medium(config.medium, config.wavelength_m)[1]
    if config.n_medium != 1.0 and abs(config.n_medium - n) > 1e-9:
        raise ConfigError(f"medium {config.medium!r} (n = {n:.4f}) contradicts n_medium = {config.n_medium}")
    return n


def build_level_set(config: TrainConfig) -> tuple[LevelSet, dict[str, Any] | None]:
    """The level set the run trains on, and the fabrication assumptions it came from (if any).

    Default: ``levels`` phases uniform on the circle. ``level_range_rad`` gives the range form (both ends
    included), ``level_phases_rad`` an explicit list. With ``material`` (and optionally ``z_step_m``), the
    phases are replaced by those of the printable heights, so the design and the print agree by construction.
    """
    if config.level_phases_rad is not None:
        levels = LevelSet.explicit(list(config.level_phases_rad))
    elif config.level_range_rad is not None:
        lo, hi = config.level_range_rad
        levels = LevelSet.range(config.levels, lo, hi)
    else:
        levels = LevelSet.uniform(config.levels)
    if config.effective_material is None:
        return levels, None

    material = get_material(config.effective_material)
    n_medium = resolve_n_medium(config)  # the medium light propagates in is the one around the masks
    medium_name = parse_medium(config.medium, config.wavelength_m)[0] if config.medium else f"n={n_medium:g}"
    phases = np.asarray(levels.phases, dtype=np.float64)
    if config.z_step_m is not None:
        phases = np.asarray(
            printable_phases(phases, material, config.wavelength_m, n_medium, config.z_step_m), dtype=np.float64
        )
        levels = LevelSet.ladder(phases.tolist()) if config.model == "relief" else LevelSet.explicit(phases.tolist())
    if config.model == "relief" and levels.periodic:
        # A printed relief's levels are heights: nothing wraps from the top level back to level 0. A periodic
        # soft staircase would pass a pixel from the top level to level 0 through every intermediate height
        # (every other phase), so the relief model trains on the same levels as a ladder.
        levels = LevelSet.ladder(levels.phases.tolist())
    table = level_table(levels.phases, material, config.wavelength_m, n_medium, 0.0, config.z_step_m)
    fabrication = {
        "material": material.name,
        "n_material": float(material.index(config.wavelength_m)),
        "medium": medium_name,
        "n_medium": float(n_medium),
        "z_step_m": config.z_step_m,
        "base_m": resolve_base_m(config),
        "level_heights_m": [float(h) for h in table.snapped_height_m],
        "note": "level phases are those of the printable (snapped) heights" if config.z_step_m else
        "level phases are the nominal ones; heights follow from the material",
    }
    return levels, fabrication


def resolve_base_m(config: TrainConfig) -> float:
    """Base slab thickness (m) of the printed masks: ``base_m``, else the fabrication default (2 µm)."""

    return float(DEFAULT_BASE_M if config.base_m is None else config.base_m)


def resolve_oversample(config: TrainConfig, n_medium: float | None = None) -> tuple[int, int]:
    """``(s, rule)``: the run's oversampling and the sampling rule's minimum ``ceil(2·p·n_med/λ0)``.

    Raises:
        ConfigError: an explicit ``oversample`` below the rule without ``allow_undersampling``.
    """
    n = resolve_n_medium(config) if n_medium is None else n_medium
    rule = rule_oversample(config.pitch_m, config.wavelength_m, n)
    if config.oversample == "auto":
        return rule, rule
    s = int(config.oversample)
    if s < rule and not config.allow_undersampling:
        raise ConfigError(
            f"oversample {s} is below the sampling rule (s >= {rule} for pitch {config.pitch_m * 1e6:g} µm, "
            f"λ0 {config.wavelength_m * 1e9:g} nm, n_med {n:g}): light the printed pixels send into steep angles "
            "would be dropped; use --oversample auto, or --allow-undersampling to accept it"
        )
    if s < rule:
        log.warning(
            "oversample %d is below the sampling rule (s >= %d): the simulation drops propagating light; "
            "the printed part will not behave like this model",
            s,
            rule,
        )
    return s, rule


def build_relief(config: TrainConfig, levels: LevelSet, fabrication: dict[str, Any] | None) -> Relief | None:
    """The printed relief the run trains through (relief model), or None (thin model)."""
    if config.model != "relief":
        return None
    if fabrication is None:  # pragma: no cover - effective_material is never None for the relief model
        raise ConfigError("the relief model needs a material")
    return Relief(
        n_material=fabrication["n_material"],
        level_phases_rad=tuple(float(p) for p in levels.phases),
        level_heights_m=tuple(fabrication["level_heights_m"]),
        periodic=levels.periodic,
        base_m=fabrication["base_m"],
        max_slice_m=config.max_slice_m,
        orientation=config.orientation,
        continuous=config.method == "fp",
    )


@dataclass
class _Parts:
    network: DiffractiveNetwork
    task: torch.nn.Module
    encoding: Encoding
    levels: LevelSet
    fabrication: dict[str, Any] | None
    data: DatasetSplits
    device: torch.device


@dataclass
class TrainResult:
    """What :meth:`Trainer.fit` returns."""

    design: Design
    history: list[dict[str, Any]] = field(default_factory=list)
    out_dir: Path | None = None


class Trainer:
    """Train one design. ``fit()`` returns a :class:`TrainResult`; ``request_stop()`` asks for a clean stop.

    Args:
        config: the run's configuration.
        out_dir: run directory (checkpoint, design files, metrics, figures).
        callbacks: progress hooks (see :class:`Callbacks`).
        data: optional pre-loaded splits (tests); default: ``load_dataset(config.dataset, …)``.
        distributed: this process's place in a data-parallel run (default: a single process); only its main
            process validates and writes the run directory (see :mod:`quaton_fab.training.distributed`).
    """

    def __init__(
        self,
        config: TrainConfig,
        out_dir: str | Path,
        *,
        callbacks: Callbacks | None = None,
        data: DatasetSplits | None = None,
        distributed: Distributed = SINGLE,
    ):
        self.config = config
        self.distributed = distributed
        self.out_dir = Path(out_dir)
        self.callbacks = callbacks or _Silent()
        self._data = data
        self._stop_requested = False
        self.parts: _Parts | None = None

    # ------------------------------------------------------------------ control
    def request_stop(self) -> None:
        """Ask the loop to stop after the current step and save a checkpoint (safe from a signal handler)."""
        self._stop_requested = True

    @property
    def checkpoint_path(self) -> Path:
        """Where the checkpoint lives."""
        return self.out_dir / CHECKPOINT_NAME

    # ------------------------------------------------------------------ build
    def build(self) -> _Parts:
        """Load the data and build network, quantizers, task and encoding (seeded)."""
        cfg = self.config
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        device = resolve_device(cfg.device)
        n_medium = resolve_n_medium(cfg)
        oversample, rule = resolve_oversample(cfg, n_medium)
        levels, fabrication = build_level_set(cfg)
        relief = build_relief(cfg, levels, fabrication)
        recompute = resolve_recompute(cfg, device, oversample, relief=relief)
        check_training_memory(cfg, device, oversample, relief=relief, recompute=recompute)  # before allocating
        data = self._data or load_dataset(
            cfg.dataset,
            train_samples=cfg.train_samples,
            val_samples=cfg.val_samples,
            test_samples=cfg.test_samples,
            seed=cfg.seed,
        )
        if cfg.task == "qpi" and data.kind != "phase" and cfg.encoding_mode != "phase":
            raise ConfigError("the qpi task needs phase encoding (encoding_mode='phase')")
        geometry = Geometry(
            wavelength_m=cfg.wavelength_m,
            neurons=cfg.neurons,
            pitch_m=cfg.pitch_m,
            layers=cfg.layers,
            d_in_m=cfg.d_in,
            spacing_m=cfg.spacing_m,
            d_out_m=cfg.d_out,
            n_medium=n_medium,
            oversample=oversample,
            padding=cfg.padding,
        )
        generator = torch.Generator().manual_seed(cfg.seed)
        quantizers = [
            make_quantizer(
                cfg.method, levels, (cfg.neurons, cfg.neurons), generator=generator, **cfg.quantizer.get(cfg.method, {})
            )
            for _ in range(cfg.layers)
        ]
        try:
            network = DiffractiveNetwork(geometry, quantizers, relief=relief, recompute=recompute).to(device)
        except OpticsError as exc:
            raise ConfigError(str(exc)) from None
        encoding = Encoding(
            object_neurons=cfg.object_neurons,
            mode=cfg.encoding_mode,
            phase_scale_rad=cfg.phase_scale_rad,
            input_is_phase=data.kind == "phase",
        )
        if cfg.task == "classify":
            task: torch.nn.Module = ClassificationTask(
                cfg.neurons,
                oversample,
                num_classes=data.num_classes,
                detector_size=max(1, int(round(cfg.detector_fraction * cfg.neurons))),
                loss=cfg.loss or "ce",
                temperature=cfg.temperature,
            )
        else:
            task = QPITask(
                cfg.neurons,
                oversample,
                crop=cfg.qpi_crop or cfg.object_neurons,
                phase_max_rad=cfg.qpi_phase_max_rad,
                loss=cfg.loss or "berhu",
            )
        task = task.to(device)
        self.parts = _Parts(network, task, encoding, levels, fabrication, data, device)
        return self.parts

    def _optimizer(self, parts: _Parts) -> torch.optim.Optimizer:
        """Adam over the quantizers' parameter groups (see :mod:`quaton_fab.training.param_groups`)."""
        return torch.optim.Adam(optimizer_groups(parts.network.phase_modules, parts.task), lr=self.config.lr)

    # ------------------------------------------------------------------ checkpoint
    def _save_checkpoint(self, state: dict[str, Any]) -> None:
        if not self.distributed.is_main:
            return  # one writer: the main process
        payload = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "software": __version__, **state}
        with atomic_path(self.checkpoint_path) as tmp:
            torch.save(payload, tmp)

    def load_checkpoint(self) -> dict[str, Any]:
        """Read the run directory's checkpoint (tensors and containers only; no code is executed)."""
        path = self.checkpoint_path
        if not path.is_file():
            raise CheckpointError(f"no checkpoint to resume in {str(self.out_dir)!r} (expected {CHECKPOINT_NAME})")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - torch raises many types for a corrupted file
            raise CheckpointError(f"checkpoint {str(path)!r} cannot be read ({type(exc).__name__})") from None
        if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
            raise CheckpointError(f"{str(path)!r} is not a quaton-fab checkpoint")
        if state.get("version") != CHECKPOINT_VERSION:
            raise CheckpointError(f"{str(path)!r} has checkpoint version {state.get('version')!r}")
        missing = [key for key in _CHECKPOINT_KEYS if key not in state]
        if missing or not isinstance(state["config"], dict):
            what = f"has no {missing[0]!r} entry" if missing else "has a malformed 'config' entry"
            raise CheckpointError(f"checkpoint {str(path)!r} {what}; it cannot be resumed")
        return state

    def mark_complete(self) -> None:
        """Record in the checkpoint that the run's design has been saved (``--resume`` then has nothing to do).

        Called after the design files are written, so a failed save leaves a checkpoint that ``--resume``
        turns into the same design again.
        """
        if not self.distributed.is_main:
            return
        state = self.load_checkpoint()
        state["complete"] = True
        self._save_checkpoint({k: v for k, v in state.items() if k not in ("format", "version", "software")})

    @staticmethod
    def config_from_checkpoint(out_dir: str | Path) -> TrainConfig:
        """The configuration stored in a run directory's checkpoint (for ``--resume``)."""
        return TrainConfig.from_dict(Trainer(TrainConfig(), out_dir).load_checkpoint()["config"])

    # ------------------------------------------------------------------ loop
    def fit(self, *, resume: bool = False) -> TrainResult:
        """Train (or resume) and return the best-validation design, tested on the test split and saved."""
        cfg = self.config
        self.out_dir.mkdir(parents=True, exist_ok=True)
        parts = self.parts or self.build()
        network, task, encoding, data = parts.network, parts.task, parts.encoding, parts.data
        optimizer = self._optimizer(parts)
        torch.manual_seed(cfg.seed)

        start_epoch, start_step = 0, 0
        history: list[dict[str, Any]] = []
        best: dict[str, Any] | None = None
        elapsed_before = 0.0
        resumed_loss = (0.0, 0)  # (sum, count) of the interrupted epoch's training losses so far
        if resume:
            state = self.load_checkpoint()
            if state["config"] != cfg.to_dict():
                raise CheckpointError("the checkpoint was written with another configuration; resume with the same one")
            if state.get("complete"):
                raise CheckpointError(f"the run in {str(self.out_dir)!r} is already complete; nothing to resume")
            try:
                network.load_state_dict(state["network"])
                task.load_state_dict(state["task"])
                optimizer.load_state_dict(state["optimizer"])
                torch.set_rng_state(state["rng"])
                start_epoch, start_step = int(state["epoch"]), int(state["step"])
                history = list(state["history"])
                best = state["best"]
                elapsed_before = float(state.get("elapsed_s", 0.0))
                resumed_loss = (float(state["epoch_loss"][0]), int(state["epoch_loss"][1]))
            except (RuntimeError, KeyError, TypeError, ValueError, IndexError) as exc:
                raise CheckpointError(
                    f"checkpoint {str(self.checkpoint_path)!r} does not fit this run ({type(exc).__name__})"
                ) from None
            log.info("resuming at epoch %d, step %d", start_epoch + 1, start_step)

        primary = task.primary_metric
        vaccination = vaccination_of(cfg)
        train = data.train
        n_train = int(train.images.shape[0])
        steps = math.ceil(n_train / cfg.batch_size)
        t0 = time.perf_counter()
        self._stop_requested = False
        ranks = self.distributed
        model = ranks.wrap(LossModule(network, task))

        for epoch in range(start_epoch, cfg.epochs):
            for q in network.phase_modules:
                q.start_epoch(epoch, cfg.epochs)
            network.train()
            task.train()
            order = torch.randperm(n_train, generator=torch.Generator().manual_seed(_epoch_seed(cfg.seed, epoch)))
            first = start_step if epoch == start_epoch else 0
            self.callbacks.on_epoch_start(epoch, cfg.epochs, steps, first)
            running, count = resumed_loss if epoch == start_epoch else (0.0, 0)
            for step in range(first, steps):
                rng = torch.get_rng_state()
                if ranks.any(self._stop_requested, parts.device):
                    self._checkpoint(network, task, optimizer, rng, epoch, step, history, best, elapsed_before, t0,
                                     epoch_loss=(running, count))
                    raise TrainingInterrupted(self.checkpoint_path, epoch, step)
                for q in network.phase_modules:  # run-fraction schedules move every step
                    q.advance(epoch * steps + step, steps, cfg.epochs)
                idx = order[step * cfg.batch_size : (step + 1) * cfg.batch_size]
                share = split_share(len(idx), ranks.rank, ranks.world_size)
                idx = idx[share.start : share.stop]  # this process's share of the global batch
                images = train.images[idx].to(parts.device)
                labels = train.labels[idx].to(parts.device)
                field_in, input_phase = encoding.field_and_phase(images, cfg.neurons, network.geometry.oversample)
                draw = None
                if vaccination is not None:  # a fresh print drawn for this batch (seeded by its position: resume-safe)
                    print_rng = step_generator(cfg.seed, epoch, step)
                    draw = draw_perturbation(vaccination, cfg.layers, cfg.neurons, print_rng)

                def inputs(lo: int, hi: int, field_in=field_in, labels=labels, input_phase=input_phase, draw=draw):
                    phase = None if input_phase is None else input_phase[lo:hi]
                    return field_in[lo:hi], labels[lo:hi], phase, draw

                optimizer.zero_grad(set_to_none=True)
                value = accumulate_gradients(
                    model, inputs, share, cfg.micro_batch,
                    regularizer=lambda: sum(q.regularizer() for q in network.phase_modules),
                    no_sync=ranks.no_sync(model), state=network,
                )
                value = ranks.mean(value, parts.device)
                if not math.isfinite(value):  # checked before the step, so the parameters stay usable
                    raise TrainingDiverged(
                        f"the loss became {value} at epoch {epoch + 1}, step {step + 1}; lower the learning rate"
                    )
                _set_lr(optimizer, cfg, epoch * steps + step, cfg.epochs * steps)
                optimizer.step()
                running += value
                count += 1
                self.callbacks.on_step(epoch, step, value, _status(network))
            if not ranks.is_main:
                continue  # only the main process validates, keeps the best state and writes checkpoints

            val = evaluate_network(
                network, task, encoding, data.val.images, data.val.labels,
                batch_size=cfg.eval_batch_size,
                progress=lambda d, t: self.callbacks.on_eval("validation", d, t),
            )
            record = {
                "epoch": epoch + 1,
                "train_loss": running / max(count, 1),
                "val": _scalar_metrics(val),
                "quantizer": _status(network),
                "quantizer_per_mask": [q.status() for q in network.phase_modules],
                "time_s": elapsed_before + time.perf_counter() - t0,
            }
            history.append(record)
            if best is None or val[primary] > best["metric"]:
                best = {
                    "metric": float(val[primary]),
                    "epoch": epoch + 1,
                    "network": copy.deepcopy(network.state_dict()),
                    "task": copy.deepcopy(task.state_dict()),
                    "val": _scalar_metrics(val),
                }
            self.callbacks.on_epoch_end(epoch, record)
            self._checkpoint(
                network, task, optimizer, torch.get_rng_state(), epoch + 1, 0, history, best, elapsed_before, t0
            )

        train_time = elapsed_before + time.perf_counter() - t0
        if not ranks.is_main:
            return TrainResult(design=None, history=history, out_dir=self.out_dir)  # type: ignore[arg-type]
        assert best is not None
        network.load_state_dict(best["network"])
        task.load_state_dict(best["task"])
        design = self._make_design(parts, history, best, train_time)
        # Not marked complete here: the caller does that (mark_complete) once the design files are saved.
        self._checkpoint(
            network, task, optimizer, torch.get_rng_state(), cfg.epochs, 0, history, best, elapsed_before, t0,
        )
        return TrainResult(design=design, history=history, out_dir=self.out_dir)

    def _checkpoint(self, network, task, optimizer, rng, epoch, step, history, best, elapsed_before, t0,
                    complete=False, epoch_loss=(0.0, 0)):
        self._save_checkpoint(
            {
                "config": self.config.to_dict(),
                "epoch": epoch,
                "step": step,
                "network": network.state_dict(),
                "task": task.state_dict(),
                "optimizer": optimizer.state_dict(),
                "rng": rng,
                "history": history,
                "best": best,
                "elapsed_s": elapsed_before + time.perf_counter() - t0,
                "epoch_loss": [float(epoch_loss[0]), int(epoch_loss[1])],
                "complete": complete,
            }
        )

    # ------------------------------------------------------------------ artefact
    def _make_design(self, parts: _Parts, history, best, train_time: float) -> Design:
        """Package the best state as a Design and test it on the held-out split with its exported phases."""
        cfg = self.config
        network, task, data = parts.network, parts.task, parts.data
        network.eval()
        design = Design(
            geometry=network.geometry,
            levels=parts.levels,
            level_indices=torch.stack([q.level_indices() for q in network.phase_modules]).cpu().numpy(),
            encoding=parts.encoding.to_dict(),
            task=task.to_dict(),
            method={"name": cfg.method, "per_mask": [q.settings() for q in network.phase_modules]},
            dataset={
                "spec": cfg.dataset,
                "train_samples": cfg.train_samples,
                "val_samples": cfg.val_samples,
                "test_samples": cfg.test_samples,
                "seed": cfg.seed,
                **data.info,
            },
            training={**cfg.to_dict(), **_vaccination_record(cfg), "history": history, "torch": torch.__version__},
            seed=cfg.seed,
            fabrication=parts.fabrication,
            relief=network.relief,
            sampling=sampling_record(network.geometry, cfg.oversample),
        )
        exported = torch.as_tensor(design.phases_rad(), dtype=torch.float32, device=parts.device)
        test = evaluate_network(
            network, task, parts.encoding, data.test.images, data.test.labels,
            batch_size=cfg.eval_batch_size, phases=exported,
            progress=lambda d, t: self.callbacks.on_eval("test", d, t),
        )
        design.metrics = {
            "primary": task.primary_metric,
            "test": test,
            "best_epoch": best["epoch"],
            "val_best": best["val"],
            "train_time_s": round(train_time, 2),
            "evaluated_with": "exported level phases (hard quantization)",
        }
        if cfg.method == "fp":
            # FP is the unconstrained upper bound; its exported masks are its post-quantization (PQ).
            design.metrics["test_unquantized"] = evaluate_network(
                network, task, parts.encoding, data.test.images, data.test.labels, batch_size=cfg.eval_batch_size
            )
            design.fp_phases_rad = network.current_phases().detach().cpu().numpy().astype(np.float64)
            design.validate()
        return design


def vaccination_of(config: TrainConfig) -> Any:
    """The :class:`~quaton_fab.optics.perturbation.ErrorMagnitudes` a vaccinated run draws from, or None (plain run)."""
    if config.vaccinate is None:
        return None

    return ErrorMagnitudes.from_dict(config.vaccinate["magnitudes"])


def _vaccination_record(config: TrainConfig) -> dict[str, Any]:
    """Provenance of a vaccinated run for design.json (empty for a plain run, whose record is unchanged)."""
    if config.vaccinate is None:
        return {}

    mags = config.vaccinate["magnitudes"]
    return {"vaccination": {
        "model": PERTURBATION_MODEL,
        "set": config.vaccinate["set"],
        "magnitudes": {name: {"sigma": spec.display(mags.get(spec.field, 0.0)), "unit": spec.unit}
                       for name, spec in ERRORS.items()},
        "draws": "one print per training batch from numpy SeedSequence([seed, 0x7AC, epoch, step]); validation "
                 "and test use the nominal print",
    }}


def _set_lr(optimizer: torch.optim.Optimizer, config: TrainConfig, step: int, total: int) -> None:
    """Learning rate of global step ``step`` of ``total`` (a pure function of the position: resume-safe)."""
    lr = config.lr
    if config.lr_schedule == "cosine":
        lr = config.lr * 0.5 * (1.0 + math.cos(math.pi * step / max(total, 1)))
    for group in optimizer.param_groups:
        group["lr"] = group_lr(group, config.lr, lr)


def _epoch_seed(seed: int, epoch: int) -> int:
    """Seed of the shuffle of one epoch (independent of resume position)."""
    return (seed * 1_000_003 + epoch * 7919 + 17) % (2**63 - 1)


def _status(network: DiffractiveNetwork) -> dict[str, float]:
    """Mean of each quantizer status value over the masks (slope, temperature, …) for display."""
    merged: dict[str, list[float]] = {}
    for q in network.phase_modules:
        for key, value in q.status().items():
            merged.setdefault(key, []).append(float(value))
    return {key: float(np.mean(values)) for key, values in merged.items()}


def _scalar_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """Only the scalar entries (drop confusion matrices) for histories."""
    return {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
