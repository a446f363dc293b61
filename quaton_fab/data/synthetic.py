"""``synthetic``: a tiny, deterministic 10-class image set, so tests and demos need no data package.

Sample i of a split has class i mod 10. Its image (``side``×``side``, default 28) holds one bright Gaussian
blob whose centre lies on a ring of radius 0.28·side around the image centre at the angle 2π·class/10, with
per-sample jitter: centre ±0.04·side on each axis, width σ ∈ [0.05, 0.09]·side, peak ∈ [0.7, 1.0]; plus
uniform noise in [0, 0.1]; values clipped to [0, 1]. The class is therefore where the light is, which a
diffractive classifier with one detector region per class learns quickly.

Determinism: per split, parameters come from ``numpy.random.default_rng([seed, split_id, 0]).random((K, 5))``
and noise from ``default_rng([seed, split_id, 1]).random((K, side, side))`` (split_id: train 0, val 1,
test 2), so the first k samples do not depend on K. Default sizes: 1000 / 200 / 200.
"""

from __future__ import annotations

import numpy as np

from .errors import DataError
from .splits import SPLIT_IDS, SPLIT_NAMES, DatasetSplits, check_count, make_split

NUM_CLASSES = 10
DEFAULT_SIZES: dict[str, int] = {"train": 1000, "val": 200, "test": 200}
DEFAULT_SIDE = 28
RING_RADIUS = 0.28
CENTRE_JITTER = 0.04
SIGMA_RANGE = (0.05, 0.09)
PEAK_RANGE = (0.7, 1.0)
NOISE_MAX = 0.1


def synthetic_images(count: int, *, seed: int, split: str, side: int = DEFAULT_SIDE) -> tuple[np.ndarray, np.ndarray]:
    """``count`` images float32 (count, side, side) in [0, 1] and labels int64 (count,) of one split."""
    check_count(count, f"{split}_samples")
    if side < 8:
        raise DataError(f"synthetic image side must be at least 8 pixels, got {side}")
    labels = np.arange(count, dtype=np.int64) % NUM_CLASSES
    params = np.random.default_rng([seed, SPLIT_IDS[split], 0]).random((count, 5))
    noise = np.random.default_rng([seed, SPLIT_IDS[split], 1]).random((count, side, side))
    angle = 2.0 * np.pi * labels / NUM_CLASSES
    centre = (side - 1) / 2.0
    row0 = centre - RING_RADIUS * side * np.cos(angle) + CENTRE_JITTER * side * (2.0 * params[:, 0] - 1.0)
    col0 = centre + RING_RADIUS * side * np.sin(angle) + CENTRE_JITTER * side * (2.0 * params[:, 1] - 1.0)
    sigma = side * (SIGMA_RANGE[0] + (SIGMA_RANGE[1] - SIGMA_RANGE[0]) * params[:, 2])
    peak = PEAK_RANGE[0] + (PEAK_RANGE[1] - PEAK_RANGE[0]) * params[:, 3]
    grid = np.arange(side, dtype=np.float64)
    d2 = (grid[None, :, None] - row0[:, None, None]) ** 2 + (grid[None, None, :] - col0[:, None, None]) ** 2
    blob = peak[:, None, None] * np.exp(-d2 / (2.0 * sigma[:, None, None] ** 2))
    images = np.clip(blob + NOISE_MAX * noise, 0.0, 1.0).astype(np.float32)
    return images, labels


def load_synthetic(counts: dict[str, int | None], seed: int, side: int = DEFAULT_SIDE) -> DatasetSplits:
    """The synthetic 10-class set with the requested (or default) split sizes."""
    splits = {}
    sizes = {}
    for split in SPLIT_NAMES:
        requested = counts.get(split)
        count = DEFAULT_SIZES[split] if requested is None else requested
        images, labels = synthetic_images(count, seed=seed, split=split, side=side)
        splits[split] = make_split(images, labels)
        sizes[split] = count
    info = {
        "source": "synthetic", "spec": "synthetic", "seed": int(seed), "sizes": sizes, "image_shape": [side, side],
        "generator": "quaton_fab.data.synthetic: one Gaussian blob per image at class angle on a ring, plus noise",
        "split_rule": "generated per split: default_rng([seed, split_id, 0]) parameters, [seed, split_id, 1] noise",
        "class_names": [f"blob {c}" for c in range(NUM_CLASSES)],
    }
    return DatasetSplits(name="synthetic", kind="intensity", num_classes=NUM_CLASSES, info=info,
                         train=splits["train"], val=splits["val"], test=splits["test"])
