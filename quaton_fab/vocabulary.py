"""The names a user chooses among: methods, tasks, encodings, mask models, orientations, schedules, formats,
fidelities.

One home for each list, in the order the library documents them. This module imports nothing (no torch), so the
command-line app builds its option choices from it without loading the physics, and ``quaton-fab --version``
stays fast. The modules that act on a choice (``quant.quantizers``, ``training.config_checks``,
``optics.relief_geometry``) import their list from here and re-export it.
"""

from __future__ import annotations

__all__ = [
    "METHODS", "MASK_INITS", "TASKS", "ENCODINGS", "MODELS", "ORIENTATIONS", "LR_SCHEDULES", "RECOMPUTE", "FORMATS",
    "FIDELITIES", "CRITERIA",
]

#: Quantization methods: full precision, post-quantization, straight-through, Gumbel-softmax, progressive
#: sigmoid (scheduled temperature) and progressive sigmoid with a learnable temperature.
METHODS = ("fp", "pq", "ste", "gs", "psq", "psq-lt")
#: How the masks start: random phases drawn uniformly over the level range, or flat (every pixel at the lowest
#: level, so the untrained stack is free space plus flat plates).
MASK_INITS = ("uniform", "flat")
#: Tasks: all-optical classification (detector regions) and quantitative phase imaging.
TASKS = ("classify", "qpi")
#: How an image enters the network: as a phase object (amplitude 1) or an amplitude object (phase 0).
ENCODINGS = ("phase", "amplitude")
#: Mask models: "thin" (exp(iφ) in one plane) or "relief" (multislice through the printed relief).
MODELS = ("thin", "relief")
#: Which face of a plate the light meets first: its base slab or its relief.
ORIENTATIONS = ("base-first", "relief-first")
#: Learning-rate schedules: "constant" or "cosine" (lr·½(1 + cos(π·t/T)) over all T optimisation steps).
LR_SCHEDULES = ("constant", "cosine")
#: Activation recomputation in the relief model's backward pass (see ``TrainConfig.recompute``).
RECOMPUTE = ("auto", "on", "off")
#: Export formats, in the order export writes them (``fab.formats.REGISTRY`` holds one spec for each).
FORMATS = ("stl", "gds", "oas", "png", "tiff", "png8", "bmp", "gwl")
#: Fidelities a design is simulated at: its own training model, or the printed-object reference (converged).
FIDELITIES = ("design", "reference")
#: What a tolerance must keep within the allowed loss: the 5th percentile over prints, or their mean.
CRITERIA = ("p5", "mean")
