"""Dataset splits and the seeded, class-balanced index rules that every source shares.

Rules (recorded in ``DatasetSplits.info`` so a design can state and rebuild its split):

* **Subsampling** (``train_samples`` etc.): :func:`stratified_order` with
  ``numpy.random.default_rng([seed, split_id])`` (split_id 0 = train, 1 = val, 2 = test) orders the split's
  indices so that classes alternate (every class's 1st pick, then every class's 2nd pick, ...; within a round
  in permutation order); the first ``k`` are kept and then sorted ascending. Class counts differ by at most
  one while every class still has samples.
* **Hold-out** (sources without their own validation/test files): the same stratified order with
  ``numpy.random.default_rng([seed, 3])``; the first ``n_test`` indices are the test split, the next ``n_val``
  the validation split, the rest (sorted ascending) the training split.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .errors import DataError

SPLIT_NAMES: tuple[str, str, str] = ("train", "val", "test")
SPLIT_IDS: dict[str, int] = {"train": 0, "val": 1, "test": 2}
HOLDOUT_STREAM = 3

SUBSAMPLE_RULE = (
    "k of K: numpy.random.default_rng([seed, split_id]) (train 0, val 1, test 2); perm = rng.permutation(K); "
    "order perm by (rank of the sample within its class along perm, position in perm); keep the first k; "
    "sort ascending"
)
HOLDOUT_RULE = (
    "numpy.random.default_rng([seed, 3]); the stratified order of the subsample rule over all K; first n_test "
    "-> test, next n_val -> val, rest -> train; each sorted ascending"
)


@dataclass(frozen=True)
class Split:
    """One split: ``images`` float32 tensor (K, H, W), ``labels`` int64 tensor (K,)."""

    images: torch.Tensor
    labels: torch.Tensor

    def __post_init__(self) -> None:
        if self.images.ndim != 3 or self.images.dtype != torch.float32:
            got = f"{self.images.dtype} {tuple(self.images.shape)}"
            raise DataError(f"split images must be float32 (K, H, W), got {got}")
        if self.labels.ndim != 1 or self.labels.dtype != torch.int64:
            raise DataError(f"split labels must be int64 (K,), got {self.labels.dtype} {tuple(self.labels.shape)}")
        if self.labels.shape[0] != self.images.shape[0]:
            raise DataError(f"{self.images.shape[0]} images but {self.labels.shape[0]} labels in one split")

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclass(frozen=True)
class DatasetSplits:
    """Train/val/test splits of one dataset.

    ``kind`` is ``"intensity"`` (pixel values in [0, 1]) or ``"phase"`` (values are radians);
    ``info`` is a JSON-serialisable description (source, file or package version, sizes, seed, index rules).
    """

    name: str
    kind: str
    num_classes: int
    train: Split
    val: Split
    test: Split
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def image_shape(self) -> tuple[int, int]:
        """(H, W) of every image, in pixels."""
        return (int(self.train.images.shape[1]), int(self.train.images.shape[2]))

    def split(self, name: str) -> Split:
        """Return the split called ``"train"``, ``"val"`` or ``"test"``."""
        if name not in SPLIT_NAMES:
            raise DataError(f"unknown split {name!r}; expected one of {', '.join(SPLIT_NAMES)}")
        return getattr(self, name)


def stratified_order(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Return a permutation of ``range(len(labels))`` in which classes alternate (see module docstring)."""
    labels = np.asarray(labels)
    perm = rng.permutation(labels.shape[0])
    permuted = labels[perm]
    rank = np.zeros(perm.shape[0], dtype=np.int64)
    for value in np.unique(permuted):
        where = np.flatnonzero(permuted == value)
        rank[where] = np.arange(where.shape[0])
    order = np.lexsort((np.arange(perm.shape[0]), rank))
    return perm[order]


def subsample_indices(labels: np.ndarray, k: int | None, *, seed: int, split: str) -> np.ndarray:
    """Indices (ascending, int64) of ``k`` class-balanced samples of one split; all of them if ``k`` is None."""
    total = int(np.asarray(labels).shape[0])
    if k is None:
        return np.arange(total, dtype=np.int64)
    check_count(k, f"{split}_samples")
    if k > total:
        raise DataError(f"{split}_samples={k} exceeds the {total} samples available in the {split} split")
    rng = np.random.default_rng([seed, SPLIT_IDS[split]])
    return np.sort(stratified_order(labels, rng)[:k]).astype(np.int64)


def holdout_indices(labels: np.ndarray, n_val: int, n_test: int, *, seed: int) -> dict[str, np.ndarray]:
    """Split ``range(len(labels))`` into class-balanced train/val/test index arrays (each ascending)."""
    total = int(np.asarray(labels).shape[0])
    if n_val + n_test >= total:
        raise DataError(f"cannot hold out {n_val} validation and {n_test} test samples from only {total}")
    order = stratified_order(labels, np.random.default_rng([seed, HOLDOUT_STREAM]))
    return {
        "test": np.sort(order[:n_test]),
        "val": np.sort(order[n_test:n_test + n_val]),
        "train": np.sort(order[n_test + n_val:]),
    }


def holdout_count(total: int, fraction: float) -> int:
    """Size of one held-out part of ``total`` samples: ``round(fraction * total)``, at least 1."""
    return max(1, int(round(fraction * total)))


def check_count(k: int, name: str) -> None:
    """Raise DataError unless ``k`` is a positive integer sample count."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise DataError(f"{name} must be a positive integer, got {k!r}")


def indices_digest(indices: np.ndarray) -> str:
    """First 16 hex digits of SHA-256 over the indices as little-endian int64 (to check a rebuilt split)."""
    return hashlib.sha256(np.asarray(indices, dtype="<i8").tobytes()).hexdigest()[:16]


def to_unit_float(images: np.ndarray, *, source: str) -> np.ndarray:
    """Convert stored pixel values to float32 in [0, 1].

    uint8 is divided by 255, uint16 by 65535; float arrays must already lie in [0, 1].
    """
    images = np.asarray(images)
    if images.dtype == np.uint8:
        return images.astype(np.float32) / np.float32(255.0)
    if images.dtype == np.uint16:
        return images.astype(np.float32) / np.float32(65535.0)
    if np.issubdtype(images.dtype, np.floating):
        out = images.astype(np.float32)
        if out.size and not np.isfinite(out).all():
            bad = int(np.count_nonzero(~np.isfinite(out)))
            raise DataError(f"float images in {source} contain {bad} NaN or infinite value(s)")
        if out.size and (out.min() < 0.0 or out.max() > 1.0):
            raise DataError(
                f"float images in {source} must lie in [0, 1] for an intensity dataset "
                f"(found [{np.nanmin(out):.4g}, {np.nanmax(out):.4g}])"
            )
        return out
    raise DataError(f"images in {source} have unsupported dtype {images.dtype} (expected uint8, uint16 or float)")


def make_split(images: np.ndarray, labels: np.ndarray) -> Split:
    """Build a :class:`Split` from a float image array (K, H, W) and an integer label array (K,)."""
    return Split(
        images=torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32)),
        labels=torch.from_numpy(np.ascontiguousarray(labels, dtype=np.int64)),
    )


def assemble(
    *,
    name: str,
    kind: str,
    num_classes: int,
    parts: dict[str, tuple[np.ndarray, np.ndarray]],
    counts: dict[str, int | None],
    seed: int,
    info: dict[str, Any],
) -> DatasetSplits:
    """Subsample the full ``parts`` (split -> (images, labels)), convert to float32 and describe the result.

    Intensity images are converted with :func:`to_unit_float`; phase images (radians) are kept as float32.
    ``info`` gains ``seed``, ``available`` (full split sizes), ``sizes``, ``subsample_rule`` and
    ``indices_sha256`` (per split, of the kept indices into the full split).
    """
    splits: dict[str, Split] = {}
    available: dict[str, int] = {}
    sizes: dict[str, int] = {}
    digests: dict[str, str] = {}
    for split in SPLIT_NAMES:
        images, labels = parts[split]
        labels = np.asarray(labels)
        available[split] = int(labels.shape[0])
        if available[split] == 0:
            raise DataError(f"the {split} split of {name} is empty")
        idx = subsample_indices(labels, counts.get(split), seed=seed, split=split)
        chosen = np.asarray(images)[idx]
        values = to_unit_float(chosen, source=name) if kind == "intensity" else chosen.astype(np.float32)
        splits[split] = make_split(values, labels[idx])
        sizes[split] = int(idx.shape[0])
        digests[split] = indices_digest(idx)
    full_info = dict(info)
    full_info.update(
        seed=int(seed),
        available=available,
        sizes=sizes,
        subsample_rule=SUBSAMPLE_RULE,
        indices_sha256=digests,
    )
    return DatasetSplits(
        name=name, kind=kind, num_classes=int(num_classes), info=full_info,
        train=splits["train"], val=splits["val"], test=splits["test"],
    )
