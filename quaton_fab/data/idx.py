"""Reader and writer for the IDX file format of MNIST-style datasets (plain or gzip-compressed).

Layout (LeCun & Cortes, http://yann.lecun.com/exdb/mnist/): a 4-byte magic ``00 00 TT DD`` where ``TT`` is the
element type code and ``DD`` the number of dimensions, then ``DD`` big-endian uint32 sizes, then the data in
C order, big-endian. A file is accepted only if the magic is valid and the payload length matches the sizes
exactly; anything else raises :class:`~quaton_fab.data.errors.DataError` naming the file.
"""

from __future__ import annotations

import gzip
import zlib
import struct
from pathlib import Path

import numpy as np

from quaton_fab.bounded import inflate_capped
from quaton_fab.resources import available_memory_bytes

from .errors import DataError

#: IDX element type code -> big-endian numpy dtype.
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

_MAX_DIMS = 8
#: Largest decompressed IDX file read (the largest public IDX sets are a few hundred MB).
MAX_IDX_BYTES = 2 * 1024**3


def _max_idx_bytes() -> int:
    """The inflation cap: :data:`MAX_IDX_BYTES`, or half the memory available if that is less."""
    available = available_memory_bytes()
    return MAX_IDX_BYTES if available is None else min(MAX_IDX_BYTES, available // 2)


def _read_bytes(path: Path) -> bytes:
    """Return the (decompressed) content of ``path``; ``.gz`` files are gunzipped."""
    try:
        if path.suffix == ".gz":  # inflated with a cap: a small .gz cannot claim the machine's memory
            with gzip.open(path, "rb") as handle:
                return inflate_capped(handle, _max_idx_bytes(), f"IDX file {path}", DataError)
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise DataError(f"IDX file not found: {path}") from exc
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"cannot read IDX file {path}: {exc}") from exc


def parse_idx(raw: bytes, *, source: str = "<bytes>") -> np.ndarray:
    """Parse IDX bytes into an array of the stored shape, in native byte order.

    ``source`` only names the origin in error messages.
    """
    if len(raw) < 4:
        raise DataError(f"malformed IDX file {source}: {len(raw)} bytes, shorter than the 4-byte magic")
    zero0, zero1, type_code, ndim = raw[0], raw[1], raw[2], raw[3]
    if zero0 != 0 or zero1 != 0 or type_code not in IDX_DTYPES or not 1 <= ndim <= _MAX_DIMS:
        raise DataError(f"malformed IDX file {source}: bad magic number 0x{raw[:4].hex()}")
    header_len = 4 + 4 * ndim
    if len(raw) < header_len:
        raise DataError(f"malformed IDX file {source}: truncated header ({len(raw)} bytes)")
    shape = struct.unpack(f">{ndim}I", raw[4:header_len])
    dtype = IDX_DTYPES[type_code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    payload = len(raw) - header_len
    if payload != expected:
        raise DataError(
            f"malformed IDX file {source}: header says shape {tuple(shape)} ({expected} bytes) "
            f"but {payload} data bytes follow"
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header_len).reshape(shape)
    return data.astype(dtype.newbyteorder("="), copy=True)


def read_idx(path: str | Path) -> np.ndarray:
    """Read one IDX file (``.gz`` or raw) and return its array in native byte order."""
    path = Path(path)
    return parse_idx(_read_bytes(path), source=str(path))


def _type_code(dtype: np.dtype) -> int:
    """Return the IDX element type code of ``dtype`` (byte order ignored)."""
    for code, idx_dtype in IDX_DTYPES.items():
        if dtype.kind == idx_dtype.kind and dtype.itemsize == idx_dtype.itemsize:
            return code
    raise DataError(f"dtype {dtype} cannot be stored in an IDX file")


def encode_idx(array: np.ndarray) -> bytes:
    """Return the IDX bytes of ``array`` (dtype one of uint8, int8, int16, int32, float32, float64)."""
    array = np.asarray(array)
    code = _type_code(array.dtype)
    if not 1 <= array.ndim <= _MAX_DIMS:
        raise DataError(f"an IDX file holds 1 to {_MAX_DIMS} dimensions, got shape {array.shape}")
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array, dtype=IDX_DTYPES[code]).tobytes()


def write_idx(path: str | Path, array: np.ndarray) -> Path:
    """Write ``array`` as an IDX file; gzip-compressed if ``path`` ends in ``.gz``. Returns the path."""
    path = Path(path)
    raw = encode_idx(array)
    if path.suffix == ".gz":
        with gzip.open(path, "wb") as handle:
            handle.write(raw)
    else:
        path.write_bytes(raw)
    return path
