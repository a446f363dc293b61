"""All-optical quantitative phase imaging (QPI): the network turns the object's phase into intensity.

Following the QuATON lab code (paper_spec §4.1):
- target: the input phase normalised to [0, 1], ``clip(θ / φ_max, 0, 1)``, on the neuron grid;
- prediction: ``gain · I``, with ``I`` the detector intensity averaged over each neuron's ``s×s`` simulation
  pixels and ``gain`` one learnable scalar (initialised at 1, saved in ``state_dict`` and ``to_dict``);
- both are compared on a central ``crop×crop`` window of the neuron grid (rows and columns
  ``[(N−crop)//2, (N−crop)//2 + crop)``), the object's footprint;
- loss: reverse Huber (BerHu), mean-reduced, threshold ``c = 0.98 · std(target batch)`` (unbiased std over the
  whole cropped target batch, at least ``BERHU_MIN_THRESHOLD``): ``|d|`` for ``|d| ≤ c``, else
  ``(d² + c²) / (2c)``; or plain MSE;
- metrics: SSIM "RD" (k = 0.01, 0.03) and "RI" (k = 1e-6, 1e-6), 11×11 Gaussian window, σ = 1.5,
  data range 1, valid region, per image then averaged; and the MSE per image, averaged.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from .checks import TaskError, check_grid, check_input_phase, check_intensity, check_labels
from .metrics import SSIM
from .ssim import RD_CONSTANTS, RI_CONSTANTS, ssim

__all__ = ["QPITask", "QPIMetricsState", "berhu", "BERHU_MIN_THRESHOLD"]

logger = logging.getLogger(__name__)

LOSSES = ("berhu", "mse")
#: BerHu threshold factor (lab value): c = 0.98 · std(target batch).
BERHU_STD_FACTOR = 0.98
#: Lower bound on the BerHu threshold (target units, i.e. fraction of φ_max), for constant target batches.
BERHU_MIN_THRESHOLD = 1e-3
#: SSIM window (taps) and width (pixels) of the lab metric.
SSIM_WIN_SIZE = 11
SSIM_SIGMA = 1.5


def berhu(prediction: torch.Tensor, target: torch.Tensor, threshold: float | torch.Tensor) -> torch.Tensor:
    """Mean reverse-Huber loss, ``d = prediction − target``: ``|d|`` where ``|d| ≤ c``, else ``(d² + c²)/(2c)``.

    ``threshold`` c must be positive; the two branches meet with equal value and slope at ``|d| = c``.
    """
    diff = (prediction - target).abs()
    quadratic = (diff**2 + threshold**2) / (2 * threshold)
    return torch.where(diff <= threshold, diff, quadratic).mean()


def berhu_threshold(target: torch.Tensor) -> torch.Tensor:
    """The lab threshold ``max(0.98 · std(target), BERHU_MIN_THRESHOLD)`` over the whole batch (no gradient)."""
    if target.numel() < 2:
        return torch.tensor(BERHU_MIN_THRESHOLD, dtype=target.dtype, device=target.device)
    return (BERHU_STD_FACTOR * target.detach().std()).clamp_min(BERHU_MIN_THRESHOLD)


@dataclass
class QPIMetricsState:
    """Running sums of the per-image QPI metrics (no autograd)."""

    ssim_sum: float = 0.0
    ssim_ri_sum: float = 0.0
    mse_sum: float = 0.0
    samples: int = 0


class QPITask(nn.Module):
    """Phase-to-intensity imaging with a learnable scalar gain.

    Args:
        neurons: detector grid side N (neurons).
        oversample: simulation pixels per neuron side s.
        crop: side of the central comparison window, neurons; pass the object size
            (``Encoding.object_neurons``). ``None`` compares the whole N×N grid.
        phase_max_rad: φ_max, the phase that maps to target value 1 (radians, > 0).
        loss: ``"berhu"`` (lab) or ``"mse"``.
        gain_init: initial value of the learnable gain.
    """

    primary_metric = SSIM
    kind = "qpi"

    def __init__(
        self,
        neurons: int,
        oversample: int,
        crop: int | None = None,
        phase_max_rad: float = math.pi,
        loss: str = "berhu",
        gain_init: float = 1.0,
    ) -> None:
        super().__init__()
        check_grid(neurons, oversample)
        crop = neurons if crop is None else crop
        if isinstance(crop, bool) or not isinstance(crop, int) or not 1 <= crop <= neurons:
            raise TaskError(f"QPI crop must be an integer in [1, {neurons}] (neurons), got {crop!r}")
        if not (isinstance(phase_max_rad, (int, float)) and math.isfinite(phase_max_rad) and phase_max_rad > 0):
            raise TaskError(f"phase_max_rad must be a positive number of radians, got {phase_max_rad!r}")
        if loss not in LOSSES:
            raise TaskError(f"QPI loss must be one of {', '.join(LOSSES)}, got {loss!r}")
        if not (isinstance(gain_init, (int, float)) and math.isfinite(gain_init)):
            raise TaskError(f"gain_init must be a finite number, got {gain_init!r}")
        self.neurons = neurons
        self.oversample = oversample
        self.crop = crop
        self.phase_max_rad = float(phase_max_rad)
        self.loss_name = loss
        self.gain = nn.Parameter(torch.tensor(float(gain_init)))
        # Largest odd window that fits, 11 unless the crop is smaller (recorded in to_dict).
        self.ssim_win_size = min(SSIM_WIN_SIZE, crop if crop % 2 else crop - 1)
        if self.ssim_win_size < SSIM_WIN_SIZE:
            logger.warning("QPI crop %d is smaller than the 11-pixel SSIM window; using %d", crop, self.ssim_win_size)

    @property
    def crop_box(self) -> tuple[int, int, int, int]:
        """The comparison window on the neuron grid, half-open ``(row0, col0, row1, col1)``."""
        start = (self.neurons - self.crop) // 2
        return (start, start, start + self.crop, start + self.crop)

    def _cropped(self, grid: torch.Tensor) -> torch.Tensor:
        """``(B, N, N) -> (B, crop, crop)``."""
        row0, col0, row1, col1 = self.crop_box
        return grid[:, row0:row1, col0:col1]

    def target(self, input_phase: torch.Tensor) -> torch.Tensor:
        """Normalised phase on the crop, ``(B, N, N)`` radians ``-> (B, crop, crop)`` in [0, 1]."""
        return self._cropped((input_phase / self.phase_max_rad).clamp(0.0, 1.0))

    def prediction(self, intensity: torch.Tensor) -> torch.Tensor:
        """``gain ×`` per-neuron mean intensity on the crop, ``(B, N·s, N·s) -> (B, crop, crop)``."""
        check_intensity(intensity, self.neurons, self.oversample)
        per_neuron = F.avg_pool2d(intensity.unsqueeze(1), self.oversample).squeeze(1)
        return self.gain * self._cropped(per_neuron)

    def _checked(
        self, intensity: torch.Tensor, labels: torch.Tensor | None, input_phase: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Validate a batch; return (prediction, target), both ``(B, crop, crop)``."""
        batch = check_intensity(intensity, self.neurons, self.oversample)
        if labels is not None:
            check_labels(labels, batch)
        check_input_phase(input_phase, batch, self.neurons)
        return self.prediction(intensity), self.target(input_phase.to(intensity.device))

    # ------------------------------------------------------------------ interface
    def loss(
        self, intensity: torch.Tensor, labels: torch.Tensor | None, input_phase: torch.Tensor
    ) -> torch.Tensor:
        """Scalar training loss (BerHu or MSE, mean over batch and crop pixels); ``labels`` are not used."""
        prediction, target = self._checked(intensity, labels, input_phase)
        if self.loss_name == "mse":
            return F.mse_loss(prediction, target)
        return berhu(prediction, target, berhu_threshold(target))

    @torch.no_grad()
    def sample_values(
        self, intensity: torch.Tensor, labels: torch.Tensor | None, input_phase: torch.Tensor
    ) -> torch.Tensor:
        """The primary metric of each sample, ``(B,)`` float64: its SSIM (RD constants; their mean is ``ssim``)."""
        prediction, target = self._checked(intensity.detach().to(torch.float64), labels, input_phase)
        k1, k2 = RD_CONSTANTS
        return ssim(prediction, target.to(torch.float64), data_range=1.0, win_size=self.ssim_win_size,
                    sigma=SSIM_SIGMA, k1=k1, k2=k2)

    def sample_margins(self, intensity: torch.Tensor) -> None:
        """None: SSIM is continuous, every sample changes a little when the simulation changes (no decision to
        flip), so no sample is nearer a change than another."""
        return None

    @torch.no_grad()
    def update_metrics(
        self,
        state: QPIMetricsState | None,
        intensity: torch.Tensor,
        labels: torch.Tensor | None,
        input_phase: torch.Tensor,
    ) -> QPIMetricsState:
        """Add a batch's per-image SSIM (RD and RI) and MSE to the running sums (float64)."""
        prediction, target = self._checked(intensity.detach().to(torch.float64), labels, input_phase)
        target = target.to(torch.float64)
        state = QPIMetricsState() if state is None else state
        window = {"data_range": 1.0, "win_size": self.ssim_win_size, "sigma": SSIM_SIGMA}
        k1, k2 = RD_CONSTANTS
        state.ssim_sum += float(ssim(prediction, target, k1=k1, k2=k2, **window).sum())
        k1, k2 = RI_CONSTANTS
        state.ssim_ri_sum += float(ssim(prediction, target, k1=k1, k2=k2, **window).sum())
        state.mse_sum += float(((prediction - target) ** 2).mean(dim=(-2, -1)).sum())
        state.samples += prediction.shape[0]
        return state

    def finalize_metrics(self, state: QPIMetricsState | None) -> dict[str, Any]:
        """``{"ssim" (RD), "ssim_ri", "mse", "gain", "samples"}``, per-image values averaged."""
        if state is None or state.samples == 0:
            raise TaskError("no samples were evaluated: cannot compute QPI metrics")
        n = state.samples
        return {
            SSIM: state.ssim_sum / n,
            "ssim_ri": state.ssim_ri_sum / n,
            "mse": state.mse_sum / n,
            "gain": float(self.gain.detach()),
            "samples": n,
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON description with the trained gain value and every rule needed to recompute the metrics."""

        def ssim_settings(constants: tuple[float, float]) -> dict[str, Any]:
            return {
                "win_size": self.ssim_win_size,
                "window": "gaussian, separable, normalised",
                "sigma_px": SSIM_SIGMA,
                "k1": constants[0],
                "k2": constants[1],
                "data_range": 1.0,
                "region": "valid (no padding)",
                "average": "mean over valid positions per image, then over images",
            }

        return {
            "kind": self.kind,
            "neurons": self.neurons,
            "crop": self.crop,
            "crop_box": list(self.crop_box),
            "crop_units": "neurons, half-open [row0, row1) x [col0, col1)",
            "phase_max_rad": self.phase_max_rad,
            "gain": float(self.gain.detach()),
            "target": "clip(input_phase / phase_max_rad, 0, 1) on the crop",
            "prediction": "gain * mean of |U|^2 over each neuron's s x s simulation pixels, on the crop, not clipped",
            "loss": self.loss_name,
            "berhu_threshold": f"max({BERHU_STD_FACTOR} * std(target batch, unbiased), {BERHU_MIN_THRESHOLD})",
            "ssim": ssim_settings(RD_CONSTANTS),
            "ssim_ri": ssim_settings(RI_CONSTANTS),
            "primary_metric": self.primary_metric,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], neurons: int, oversample: int) -> QPITask:
        """Rebuild from :meth:`to_dict` output; the gain starts at the stored (trained) value."""
        return cls(
            neurons,
            oversample,
            crop=int(d["crop"]),
            phase_max_rad=float(d.get("phase_max_rad", math.pi)),
            loss=d.get("loss", "berhu"),
            gain_init=float(d.get("gain", 1.0)),
        )

    def extra_repr(self) -> str:
        return f"neurons={self.neurons}, oversample={self.oversample}, crop={self.crop}, loss={self.loss_name}"
