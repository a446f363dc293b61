"""Training: configuration and presets, the trainer (progress, checkpoint/resume, seeding) and evaluation."""

from quaton_fab.training.config import PRESETS, ConfigError, TrainConfig, preset
from quaton_fab.simulate import DeviceError, evaluate_network, simulate_design
from quaton_fab.training.trainer import CheckpointError, Trainer, TrainingDiverged, TrainingInterrupted, TrainResult

__all__ = [
    "PRESETS",
    "ConfigError",
    "TrainConfig",
    "preset",
    "Trainer",
    "TrainResult",
    "TrainingInterrupted",
    "CheckpointError",
    "TrainingDiverged",
    "DeviceError",
    "evaluate_network",
    "simulate_design",
]
