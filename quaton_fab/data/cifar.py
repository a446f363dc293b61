"""CIFAR-10 from the files of its binary version (``cifar10:PATH``), converted to grayscale.

The binary version (https://www.cs.toronto.edu/~kriz/cifar.html, "CIFAR-10 binary version") holds
``data_batch_1.bin`` … ``data_batch_5.bin`` and ``test_batch.bin``; each is a sequence of 3073-byte records:
1 label byte (0–9), then 1024 red, 1024 green and 1024 blue bytes of a 32×32 image in row-major order.
PATH may be the folder holding them or its parent (the archive unpacks to ``cifar-10-batches-bin/``).

Grayscale: ITU-R BT.601 luma, Y = 0.299 R + 0.587 G + 0.114 B, then divided by 255 (values in [0, 1]).
Split: train = the first K − ⌊K/10⌋ training records (batches in order 1…5), val = the last ⌊K/10⌋
(i.e. data_batch_5 for the full set), test = test_batch.bin. Nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import DataError
from .splits import DatasetSplits, assemble

RECORD_BYTES = 3073
SIDE = 32
TRAIN_FILES: tuple[str, ...] = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
TEST_FILE = "test_batch.bin"
META_FILE = "batches.meta.txt"
BT601_WEIGHTS: tuple[float, float, float] = (0.299, 0.587, 0.114)
CIFAR10_CLASS_NAMES: tuple[str, ...] = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)
SPLIT_RULE = "train = first K - K//10 records of data_batch_1..5, val = the last K//10, test = test_batch.bin"


def find_cifar_folder(root: str | Path) -> Path:
    """The folder holding the six ``.bin`` files: ``root`` itself or ``root/cifar-10-batches-bin``."""
    root = Path(root).expanduser()
    for folder in (root, root / "cifar-10-batches-bin"):
        if all((folder / name).is_file() for name in (*TRAIN_FILES, TEST_FILE)):
            return folder
    raise DataError(
        "CIFAR-10 binary files (data_batch_1..5.bin, test_batch.bin) not found in "
        f"{root} or {root}/cifar-10-batches-bin"
    )


def read_cifar_batch(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read one binary batch: RGB images uint8 (K, 3, 32, 32) and labels uint8 (K,)."""
    path = Path(path)
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size == 0 or raw.size % RECORD_BYTES:
        raise DataError(f"malformed CIFAR-10 batch {path}: {raw.size} bytes is not a multiple of {RECORD_BYTES}")
    records = raw.reshape(-1, RECORD_BYTES)
    labels = records[:, 0].copy()
    if labels.max() > 9:
        raise DataError(f"malformed CIFAR-10 batch {path}: label {int(labels.max())} outside 0..9")
    return records[:, 1:].reshape(-1, 3, SIDE, SIDE), labels


def luma_bt601(rgb: np.ndarray) -> np.ndarray:
    """Grayscale of uint8 RGB images (K, 3, H, W) as float32 (K, H, W) in [0, 1] (ITU-R BT.601 weights)."""
    weights = np.asarray(BT601_WEIGHTS, dtype=np.float32).reshape(1, 3, 1, 1)
    luma = (rgb.astype(np.float32) * weights).sum(axis=1) / np.float32(255.0)
    return np.clip(luma, 0.0, 1.0)  # the float32 weights may sum to 1 + 1e-7


def _class_names(folder: Path) -> list[str]:
    """Class names from batches.meta.txt if present, else the standard CIFAR-10 names."""
    meta = folder / META_FILE
    if meta.is_file():
        names = [line.strip() for line in meta.read_text().splitlines() if line.strip()]
        if len(names) == 10:
            return names
    return list(CIFAR10_CLASS_NAMES)


def load_cifar10(path: str | Path, counts: dict[str, int | None], seed: int) -> DatasetSplits:
    """CIFAR-10 (binary version) in grayscale; see the module docstring for the split rule."""
    folder = find_cifar_folder(path)
    batches = [read_cifar_batch(folder / name) for name in TRAIN_FILES]
    train_rgb = np.concatenate([images for images, _ in batches])
    train_labels = np.concatenate([labels for _, labels in batches])
    test_rgb, test_labels = read_cifar_batch(folder / TEST_FILE)
    cut = train_rgb.shape[0] - train_rgb.shape[0] // 10
    train_gray = luma_bt601(train_rgb)
    parts = {
        "train": (train_gray[:cut], train_labels[:cut]),
        "val": (train_gray[cut:], train_labels[cut:]),
        "test": (luma_bt601(test_rgb), test_labels),
    }
    info = {
        "source": "cifar10", "spec": f"cifar10:{path}", "folder": str(folder),
        "grayscale": "ITU-R BT.601 luma Y = 0.299 R + 0.587 G + 0.114 B, divided by 255",
        "split_rule": SPLIT_RULE, "image_shape": [SIDE, SIDE], "class_names": _class_names(folder),
    }
    return assemble(name="cifar10", kind="intensity", num_classes=10, parts=parts, counts=counts, seed=seed, info=info)
