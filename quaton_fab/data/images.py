"""User data: a folder of images (``folder:PATH``) or a NumPy archive (``npz:PATH``).

``folder:PATH``
    Class = name of the sub-folder holding the image, classes sorted by name (label = position in that list).
    Layout: if PATH has ``train/`` and ``test/`` sub-folders (each holding class sub-folders) they are the
    train and test splits, ``val/`` the validation split if present, otherwise the validation split is a
    seeded, class-balanced 10 % of ``train/``. Without ``train/`` + ``test/``, PATH's class sub-folders are
    split seeded and class-balanced 80/10/10 (rule in :mod:`quaton_fab.data.splits`).
    Files with the suffixes in :data:`IMAGE_SUFFIXES` are read with Pillow and made grayscale with
    ``Image.convert("L")`` (ITU-R 601-2 luma, L = 0.299 R + 0.587 G + 0.114 B); 16-bit grayscale is kept at
    16 bits. Values are divided by the type's maximum (255 or 65535). All images are brought to one common
    size: the most common H×W among the files (ties: the larger area, then the larger H); files of another
    size are resized to it with Pillow's bilinear filter (antialiased when shrinking). Encoding later resizes
    to the object size anyway, so the native resolution of a uniform folder is kept.

``npz:PATH`` (loaded with ``allow_pickle=False``)
    ``images`` (or ``x_train``): (K, H, W) or (K, H, W, 3); ``labels`` (or ``y_train``): (K,) integers ≥ 0.
    Optional: ``val_images``/``val_labels`` (or ``x_val``/``y_val``), ``test_images``/``test_labels``
    (or ``x_test``/``y_test``), ``kind`` ("intensity", default, or "phase": values in radians, used as is),
    ``class_names`` (strings). Intensity values: uint8 (/255), uint16 (/65535) or float in [0, 1]; RGB is
    converted with ITU-R BT.601 luma. Missing test split: seeded class-balanced 80/10/10 of the images;
    missing validation split only: a seeded class-balanced 10 % of the training images.
"""

from __future__ import annotations

import logging
import zipfile
import zlib
from collections import Counter
from pathlib import Path
from typing import Any, cast

import numpy as np
from PIL import Image, UnidentifiedImageError

from quaton_fab.bounded import npz_arrays
from quaton_fab.resources import MAX_CLASSES

from .cifar import BT601_WEIGHTS
from .errors import DataError
from .splits import HOLDOUT_RULE, DatasetSplits, assemble, holdout_count, holdout_indices, to_unit_float

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES: frozenset[str] = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pbm"}
)
HOLDOUT_FRACTION = 0.1
#: Largest image accepted in a folder dataset (pixels): far above any D2NN input, far below a decompression bomb.
MAX_IMAGE_PIXELS = 1 << 24

NPZ_KEYS: dict[str, tuple[str, str]] = {
    "train_images": ("images", "x_train"),
    "train_labels": ("labels", "y_train"),
    "val_images": ("val_images", "x_val"),
    "val_labels": ("val_labels", "y_val"),
    "test_images": ("test_images", "x_test"),
    "test_labels": ("test_labels", "y_test"),
}

Parts = dict[str, tuple[np.ndarray, np.ndarray]]


# ---------------------------------------------------------------------------------------------- shared
def _split_parts(
    train: tuple[np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray] | None,
    test: tuple[np.ndarray, np.ndarray] | None,
    *,
    seed: int,
    source: str,
) -> tuple[Parts, str]:
    """Fill in missing val/test splits by a seeded class-balanced hold-out; returns (parts, rule text)."""
    images, labels = train
    if test is None:
        if labels.shape[0] < 3:
            raise DataError(f"{source} has {labels.shape[0]} images; an 80/10/10 split needs at least 3")
        if val is not None:
            raise DataError(f"{source} has a validation split but no test split; provide both or neither")
        n_held = holdout_count(labels.shape[0], HOLDOUT_FRACTION)
        idx = holdout_indices(labels, n_held, n_held, seed=seed)
        rule = f"80/10/10 of all {labels.shape[0]}: {HOLDOUT_RULE}"
        return {key: (images[i], labels[i]) for key, i in idx.items()}, rule
    if val is None:
        if labels.shape[0] < 2:
            raise DataError(f"{source} has {labels.shape[0]} training image(s); holding out a validation split needs 2")
        idx = holdout_indices(labels, holdout_count(labels.shape[0], HOLDOUT_FRACTION), 0, seed=seed)
        rule = f"test given; val = 10% of train: {HOLDOUT_RULE} (n_test = 0)"
        return {"train": (images[idx["train"]], labels[idx["train"]]),
                "val": (images[idx["val"]], labels[idx["val"]]), "test": test}, rule
    return {"train": train, "val": val, "test": test}, "train/val/test given"


def _check_labels(labels: np.ndarray, source: str) -> np.ndarray:
    """Labels as int64 (K,), non-negative integers."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or not (np.issubdtype(labels.dtype, np.integer) or labels.dtype == np.bool_):
        raise DataError(f"labels in {source} must be a 1-D integer array, got {labels.dtype}{labels.shape}")
    labels = labels.astype(np.int64)
    if labels.size and labels.min() < 0:
        raise DataError(f"labels in {source} must be >= 0, found {int(labels.min())}")
    return labels


# ---------------------------------------------------------------------------------------------- folder
def read_gray(path: Path) -> np.ndarray:
    """One image file as float32 (H, W) in [0, 1] (Pillow; 8-bit via convert("L"), 16-bit kept at 16 bits)."""
    try:
        with Image.open(path) as img:
            if img.width * img.height > MAX_IMAGE_PIXELS:  # checked on the header, before decoding
                raise DataError(
                    f"image {path} is {img.width}×{img.height} pixels, more than the {MAX_IMAGE_PIXELS} accepted "
                    "(a decompression bomb, or far larger than any diffractive-network input)"
                )
            if img.mode in ("I;16", "I;16B", "I;16L"):
                return np.asarray(img, dtype=np.float32) / np.float32(65535.0)
            return np.asarray(img.convert("L"), dtype=np.float32) / np.float32(255.0)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, zlib.error, Image.DecompressionBombError) as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(f"cannot read image {path}: {exc}") from None


def _resize(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a float32 (H, W) image to ``shape`` (Pillow, mode "F")."""
    img = Image.fromarray(np.ascontiguousarray(image, dtype=np.float32))
    resized = img.resize((shape[1], shape[0]), Image.Resampling.BILINEAR)
    return np.clip(np.asarray(resized, dtype=np.float32), 0.0, 1.0)


def common_shape(shapes: list[tuple[int, int]]) -> tuple[int, int]:
    """The most common (H, W); ties go to the larger area, then the larger H."""
    counts = Counter(shapes)
    return max(counts, key=lambda s: (counts[s], s[0] * s[1], s[0]))


def _class_files(folder: Path) -> dict[str, list[Path]]:
    """Sorted class name -> sorted image files, for the visible sub-folders of ``folder`` holding images."""
    classes: dict[str, list[Path]] = {}
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = sorted(f for f in sub.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
        if files:
            classes[sub.name] = files
    return classes


def load_folder(path: str | Path, counts: dict[str, int | None], seed: int) -> DatasetSplits:
    """A labelled image folder (see the module docstring for the layout, grayscale and size rules)."""
    root = Path(path).expanduser()
    if not root.is_dir():
        raise DataError(f"image folder not found: {root}")
    layout_dirs = {name: root / name for name in ("train", "val", "test") if (root / name).is_dir()}
    if "train" in layout_dirs and "test" in layout_dirs:
        per_split = {name: _class_files(folder) for name, folder in layout_dirs.items()}
        layout = "train/ + test/" + (" + val/" if "val" in layout_dirs else "")
    else:
        per_split = {"train": _class_files(root)}
        layout = "class sub-folders"
    class_names = sorted(per_split["train"])
    if not class_names:
        raise DataError(f"no class sub-folders with images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {root}")
    for split, classes in per_split.items():
        unknown = sorted(set(classes) - set(class_names))
        if unknown:
            raise DataError(f"class folder(s) {', '.join(unknown)} in {root / split} are missing from {root / 'train'}")

    raw: dict[str, list[tuple[np.ndarray, int]]] = {}
    for split, classes in per_split.items():
        raw[split] = [(read_gray(f), class_names.index(name)) for name, files in classes.items() for f in files]
        if not raw[split]:
            raise DataError(f"no images in {layout_dirs.get(split, root)}")
    shape = common_shape([img.shape for items in raw.values() for img, _ in items])
    resized = sum(img.shape != shape for items in raw.values() for img, _ in items)
    if resized:
        logger.info("folder %s: resizing %d image(s) to the common size %dx%d", root, resized, *shape)
    arrays = {
        split: (np.stack([img if img.shape == shape else _resize(img, shape) for img, _ in items]),
                np.asarray([label for _, label in items], dtype=np.int64))
        for split, items in raw.items()
    }
    parts, rule = _split_parts(arrays["train"], arrays.get("val"), arrays.get("test"), seed=seed, source=str(root))
    info: dict[str, Any] = {
        "source": "folder", "spec": f"folder:{path}", "folder": str(root), "layout": layout,
        "class_names": class_names, "grayscale": "Pillow convert('L'), ITU-R 601-2 luma; /255 (16-bit: /65535)",
        "image_shape": list(shape), "resize": f"Pillow bilinear to the most common size ({resized} image(s) resized)",
        "split_rule": rule,
    }
    return assemble(name="folder", kind="intensity", num_classes=len(class_names), parts=parts,
                    counts=counts, seed=seed, info=info)


# ------------------------------------------------------------------------------------------------- npz
def _npz_get(archive: Any, key: str, source: str) -> np.ndarray | None:
    """The array stored under either accepted name of ``key``, or None; both names present is an error."""
    names = [name for name in NPZ_KEYS[key] if name in archive]
    if len(names) > 1:
        raise DataError(f"{source} holds both {names[0]!r} and {names[1]!r}; keep one")
    return archive[names[0]] if names else None


def _npz_images(images: np.ndarray, kind: str, source: str) -> np.ndarray:
    """Validate images (K, H, W) or (K, H, W, 3); RGB intensity -> BT.601 luma in [0, 1]."""
    if images.ndim == 4 and images.shape[-1] == 3:
        if kind == "phase":
            raise DataError(f"phase images in {source} must be (K, H, W) radians, got RGB {images.shape}")
        unit = to_unit_float(images, source=source)
        return np.clip(unit @ np.asarray(BT601_WEIGHTS, dtype=np.float32), 0.0, 1.0)
    if images.ndim != 3:
        raise DataError(f"images in {source} must be (K, H, W) or (K, H, W, 3), got shape {images.shape}")
    if kind == "phase":
        if not np.issubdtype(images.dtype, np.floating) or not np.isfinite(images).all():
            raise DataError(f"phase images in {source} must be finite floats (radians), got {images.dtype}")
        return images.astype(np.float32)
    return images


def load_npz(path: str | Path, counts: dict[str, int | None], seed: int) -> DatasetSplits:
    """Images and labels from an ``.npz`` archive (keys in the module docstring)."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise DataError(f"npz file not found: {file}")
    source = str(file)
    try:  # array headers checked against memory before any data is read; members inflate with a cap
        archive = npz_arrays(file, DataError, unreadable="cannot read npz file {path}: {reason}")
        arrays = {key: _npz_get(archive, key, source) for key in NPZ_KEYS}
        kind = str(archive["kind"]) if "kind" in archive else "intensity"
        class_names = [str(n) for n in archive["class_names"]] if "class_names" in archive else None
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as exc:
        if isinstance(exc, DataError):
            raise
        reason = "the file is empty" if isinstance(exc, EOFError) else str(exc) or type(exc).__name__
        raise DataError(f"cannot read npz file {file}: {reason}") from None
    if kind not in ("intensity", "phase"):
        raise DataError(f"'kind' in {source} must be 'intensity' or 'phase', got {kind!r}")
    if arrays["train_images"] is None or arrays["train_labels"] is None:
        raise DataError(f"{source} must hold arrays 'images' and 'labels' (or 'x_train' and 'y_train')")
    given: dict[str, tuple[np.ndarray, np.ndarray] | None] = {}
    for split in ("train", "val", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if (images is None) != (labels is None):
            raise DataError(f"{source} has {split} images without labels or labels without images")
        if images is None:
            given[split] = None
            continue
        images = _npz_images(images, kind, source)
        labels = _check_labels(labels, source)
        if images.shape[0] != labels.shape[0]:
            raise DataError(f"{source}: {images.shape[0]} {split} images but {labels.shape[0]} labels")
        given[split] = (images, labels)
    shapes = {v[0].shape[1:] for v in given.values() if v is not None}
    if len(shapes) > 1:
        raise DataError(f"image sizes differ between splits in {source}: {sorted(shapes)}")
    train = cast(tuple[np.ndarray, np.ndarray], given["train"])  # present: checked above
    parts, rule = _split_parts(train, given["val"], given["test"], seed=seed, source=source)
    top_label = int(max(int(p[1].max()) for p in parts.values() if p[1].size))
    if top_label >= MAX_CLASSES:
        raise DataError(
            f"labels in {source} go up to {top_label}, i.e. {top_label + 1} classes; at most {MAX_CLASSES} are "
            "supported (one detector region each)"
        )
    num_classes = top_label + 1
    if class_names is not None and len(class_names) < num_classes:
        raise DataError(f"{source} names {len(class_names)} classes but its labels go up to {num_classes - 1}")
    info: dict[str, Any] = {
        "source": "npz", "spec": f"npz:{path}", "file": source, "kind": kind, "split_rule": rule,
        "image_shape": list(train[0].shape[1:]),
        "class_names": class_names or [str(i) for i in range(num_classes)],
    }
    return assemble(name="npz", kind=kind, num_classes=num_classes, parts=parts, counts=counts, seed=seed, info=info)
