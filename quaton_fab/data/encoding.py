"""Image → input field on the neuron grid (the object plane of the diffractive network).

Steps, for a batch of images (B, H, W):

1. Resize to ``object_neurons``×``object_neurons`` with ``torch.nn.functional.interpolate(mode="bilinear",
   align_corners=False, antialias=True)`` (skipped when the images already have that size; non-square images
   are stretched to square).
2. Place the object in the N×N neuron grid with its top-left neuron at (offset, offset),
   offset = (N − object_neurons) // 2, i.e. centred (one neuron towards the top-left when N − object_neurons
   is odd).
3. Values → field:

   * ``mode="phase"``: amplitude 1 over the object, phase φ = ``phase_scale_rad``·pixel (default π·pixel, as in
     QuATON, for intensity datasets with pixels in [0, 1]); with ``input_is_phase=True`` (phase datasets such as
     ``rbc``) the values are already radians and are used as is.
   * ``mode="amplitude"``: amplitude = pixel value, phase 0.

   Outside the object square: ``background="plane"`` is amplitude 1, phase 0 (a plane wave, as the QuATON lab);
   ``"dark"`` is amplitude 0. ``"auto"`` (default) resolves to "plane" in phase mode, "dark" in amplitude mode.
4. ``field`` repeats every neuron s×s (s = oversample, nearest neighbour: a printed pixel is flat-topped) and
   returns amplitude·exp(+iφ) as complex64 (B, N·s, N·s).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from quaton_fab.errors import QuatonFabError
from quaton_fab.vocabulary import ENCODINGS

BACKGROUNDS: tuple[str, ...] = ("auto", "plane", "dark")
RESIZE_RULE = (
    "torch.nn.functional.interpolate(mode='bilinear', align_corners=False, antialias=True) to "
    "object_neurons x object_neurons; skipped if the images already have that size"
)
PLACEMENT_RULE = (
    "object occupies rows and columns [offset, offset + object_neurons) of the neurons x neurons grid, "
    "offset = (neurons - object_neurons) // 2"
)
OVERSAMPLING_RULE = "each neuron value repeated s x s simulation pixels (nearest neighbour)"


class EncodingError(QuatonFabError):
    """Bad encoding settings or input images (one-line message)."""


def _is_int(value: Any) -> bool:
    """True for Python or NumPy integers (bool excluded)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


@dataclass(frozen=True)
class Encoding:
    """How an image becomes the input field (see the module docstring for every rule).

    ``object_neurons``: object size in neurons per side; ``mode``: "phase" or "amplitude";
    ``phase_scale_rad``: φ = phase_scale_rad·pixel for intensity images; ``input_is_phase``: values are radians;
    ``background``: "auto" | "plane" | "dark" ("auto" is resolved at construction).
    """

    object_neurons: int
    mode: str = "phase"
    phase_scale_rad: float = math.pi
    input_is_phase: bool = False
    background: str = "auto"

    def __post_init__(self) -> None:
        if not _is_int(self.object_neurons) or self.object_neurons < 1:
            raise EncodingError(f"object_neurons must be a positive integer, got {self.object_neurons!r}")
        if self.mode not in ENCODINGS:
            raise EncodingError(f"encoding mode must be one of {', '.join(ENCODINGS)}, got {self.mode!r}")
        if self.background not in BACKGROUNDS:
            raise EncodingError(f"encoding background must be one of {', '.join(BACKGROUNDS)}, got {self.background!r}")
        if not isinstance(self.phase_scale_rad, numbers.Real) or not math.isfinite(self.phase_scale_rad):
            raise EncodingError(f"phase_scale_rad must be a finite number, got {self.phase_scale_rad!r}")
        if self.input_is_phase and self.mode == "amplitude":
            raise EncodingError("input_is_phase=True (values in radians) cannot be encoded in amplitude mode")
        if self.background == "auto":
            object.__setattr__(self, "background", "plane" if self.mode == "phase" else "dark")
        object.__setattr__(self, "object_neurons", int(self.object_neurons))
        object.__setattr__(self, "phase_scale_rad", float(self.phase_scale_rad))
        object.__setattr__(self, "input_is_phase", bool(self.input_is_phase))

    @classmethod
    def for_kind(cls, kind: str, object_neurons: int, **settings: Any) -> Encoding:
        """The encoding for a dataset of ``kind`` "intensity" or "phase" (sets ``input_is_phase``)."""
        if kind not in ("intensity", "phase"):
            raise EncodingError(f"dataset kind must be 'intensity' or 'phase', got {kind!r}")
        return cls(object_neurons, input_is_phase=(kind == "phase"), **settings)

    # ------------------------------------------------------------------------------------------ geometry
    @property
    def background_amplitude(self) -> float:
        """Field amplitude outside the object square (1 for "plane", 0 for "dark"); its phase is 0 rad."""
        return 1.0 if self.background == "plane" else 0.0

    def offset(self, neurons: int) -> int:
        """Row (= column) index of the object's top-left neuron in an N×N grid: (N − object_neurons) // 2."""
        if not _is_int(neurons) or neurons < self.object_neurons:
            raise EncodingError(f"neurons={neurons!r} must be an integer >= object_neurons={self.object_neurons}")
        return (int(neurons) - self.object_neurons) // 2

    # ------------------------------------------------------------------------------------------- values
    def resize(self, images: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Images (B, H, W) as float32 (B, n, n), n = object_neurons (bilinear, antialiased)."""
        x = _as_image_batch(images)
        n = self.object_neurons
        if x.shape[-2:] == (n, n):
            return x
        return F.interpolate(x[:, None], size=(n, n), mode="bilinear", align_corners=False, antialias=True)[:, 0]

    def _object_maps(self, images: torch.Tensor | np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """(amplitude, phase in rad) over the object square, each float32 (B, n, n)."""
        values = self.resize(images)
        if self.mode == "amplitude":
            return values, torch.zeros_like(values)
        phase = values if self.input_is_phase else self.phase_scale_rad * values
        return torch.ones_like(values), phase

    def _place(self, obj: torch.Tensor, neurons: int, fill: float) -> torch.Tensor:
        """Put the (B, n, n) object into a (B, N, N) grid filled with ``fill``."""
        start = self.offset(neurons)
        stop = start + self.object_neurons
        grid = torch.full((obj.shape[0], neurons, neurons), fill, dtype=obj.dtype, device=obj.device)
        grid[:, start:stop, start:stop] = obj
        return grid

    def maps(self, images: torch.Tensor | np.ndarray, neurons: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(amplitude, phase in rad) of the input field on the neuron grid, each float32 (B, N, N)."""
        self.offset(neurons)  # validates neurons before any work
        amplitude, phase = self._object_maps(images)
        return self._place(amplitude, neurons, self.background_amplitude), self._place(phase, neurons, 0.0)

    def phase_map(self, images: torch.Tensor | np.ndarray, neurons: int) -> torch.Tensor:
        """Phase (rad) of the input field on the neuron grid, float32 (B, N, N); zero in amplitude mode."""
        return self.maps(images, neurons)[1]

    def amplitude_map(self, images: torch.Tensor | np.ndarray, neurons: int) -> torch.Tensor:
        """Amplitude of the input field on the neuron grid, float32 (B, N, N)."""
        return self.maps(images, neurons)[0]

    def field(self, images: torch.Tensor | np.ndarray, neurons: int, oversample: int = 1) -> torch.Tensor:
        """Input field amplitude·exp(iφ), complex64 (B, N·s, N·s); every neuron repeated s×s (s = oversample)."""
        return self.field_and_phase(images, neurons, oversample)[0]

    def field_and_phase(
        self, images: torch.Tensor | np.ndarray, neurons: int, oversample: int = 1
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Both :meth:`field` (complex64, (B, N·s, N·s)) and :meth:`phase_map` (rad, (B, N, N)), resizing once."""
        if not _is_int(oversample) or oversample < 1:
            raise EncodingError(f"oversample must be a positive integer, got {oversample!r}")
        amplitude, phase = self.maps(images, neurons)
        u = torch.polar(amplitude, phase).to(torch.complex64)
        if oversample > 1:
            u = u.repeat_interleave(int(oversample), dim=-2).repeat_interleave(int(oversample), dim=-1)
        return u, phase

    # -------------------------------------------------------------------------------------- persistence
    def value_rule(self) -> str:
        """One line saying how a pixel value becomes the field inside the object square."""
        if self.mode == "amplitude":
            return "amplitude = pixel value, phase 0 rad"
        if self.input_is_phase:
            return "amplitude 1, phase_rad = pixel value (radians, used as is)"
        return f"amplitude 1, phase_rad = {self.phase_scale_rad!r} * pixel value"

    def to_dict(self) -> dict[str, Any]:
        """JSON description with every detail an independent simulator needs (settings + the rules as text)."""
        return {
            "object_neurons": self.object_neurons,
            "mode": self.mode,
            "phase_scale_rad": self.phase_scale_rad,
            "input_is_phase": self.input_is_phase,
            "background": self.background,
            "background_amplitude": self.background_amplitude,
            "background_phase_rad": 0.0,
            "resize": RESIZE_RULE,
            "placement": PLACEMENT_RULE,
            "value_rule": self.value_rule(),
            "oversampling": OVERSAMPLING_RULE,
            "field": "amplitude * exp(+1j * phase_rad), complex64",
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Encoding:
        """Rebuild from :meth:`to_dict` output (descriptive keys are ignored)."""
        if not isinstance(data, dict) or "object_neurons" not in data:
            raise EncodingError("encoding description must be a dict with at least 'object_neurons'")
        keys = ("object_neurons", "mode", "phase_scale_rad", "input_is_phase", "background")
        return cls(**{key: data[key] for key in keys if key in data})


def _as_image_batch(images: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Validate a batch of floating-point images (B, H, W) and return it as a float32 tensor."""
    x = torch.as_tensor(images)
    if x.ndim != 3:
        raise EncodingError(f"images must have shape (B, H, W), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise EncodingError(f"images must be floating point (pixels in [0, 1] or radians), got {x.dtype}")
    if x.shape[0] == 0 or x.shape[1] == 0 or x.shape[2] == 0:
        raise EncodingError(f"images must be non-empty, got shape {tuple(x.shape)}")
    return x.to(torch.float32)
