"""The run's result: the best-validation state packaged as a :class:`~quaton_fab.design.Design`, tested on the
held-out split with its exported (hard-quantized) phases, and the provenance a vaccinated run adds to it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from quaton_fab.design import Design, sampling_record
from quaton_fab.optics.perturbation import ERRORS, PERTURBATION_MODEL
from quaton_fab.simulate import evaluate_network
from quaton_fab.training.config import TrainConfig
from quaton_fab.training.setup import RunParts

__all__ = ["TrainResult", "make_design"]


@dataclass
class TrainResult:
    """What :meth:`~quaton_fab.training.trainer.Trainer.fit` returns."""

    design: Design
    history: list[dict[str, Any]] = field(default_factory=list)
    out_dir: Path | None = None


def make_design(
    config: TrainConfig,
    parts: RunParts,
    history: list[dict[str, Any]],
    best: dict[str, Any],
    train_time_s: float,
    on_eval: Callable[[str, int, int], None],
) -> Design:
    """Package the best state as a Design and test it on the held-out split with its exported phases.

    ``history`` is the per-epoch records, ``best`` the best-validation record (its ``epoch`` and ``val``),
    ``train_time_s`` the training time in seconds; ``on_eval(name, done, total)`` reports the test progress.
    The network and task already hold the best state.
    """
    cfg = config
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
        progress=lambda d, t: on_eval("test", d, t),
    )
    design.metrics = {
        "primary": task.primary_metric,
        "test": test,
        "best_epoch": best["epoch"],
        "val_best": best["val"],
        "train_time_s": round(train_time_s, 2),
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
