"""The fab sheet's identity: schema name and version, file names, its own hash and the file entries it lists.

``sheet_digest`` is the SHA-256 of the canonical JSON of every entry but ``sheet_sha256``; ``file_entry``
gives an exported file's name, size and SHA-256.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from quaton_fab.errors import FabError


SHEET_SCHEMA = "quaton-fab/fab-sheet"
SHEET_VERSION = 1
#: The sheet's own hash entry: SHA-256 of the canonical JSON of every other entry (see :func:`sheet_digest`).
SHEET_HASH_KEY = "sheet_sha256"


class SheetError(FabError):
    """A geometry value, file or check that cannot go on the fab sheet."""


def _sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_entry(path: str | os.PathLike, root: str | os.PathLike | None = None) -> dict:
    """Name (relative to ``root``, else the base name), size in bytes and SHA-256 of an exported file."""
    p = Path(path)
    if not p.is_file():
        raise SheetError(f"exported file {str(p)!r} does not exist")
    if root is None:
        name = p.name
    else:
        try:
            name = p.resolve().relative_to(Path(root).resolve()).as_posix()
        except ValueError:
            name = p.name
    return {"name": name, "bytes": p.stat().st_size, "sha256": _sha256(p)}


def _json_default(obj: object) -> object:
    """JSON fallback for numpy scalars/arrays and paths found in ``extra``."""
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"value of type {type(obj).__name__} is not JSON-serialisable")


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode()


def sheet_digest(sheet: dict[str, Any]) -> str:
    """SHA-256 (hex) of the sheet's canonical JSON without its ``sheet_sha256`` entry.

    The sheet is first passed through a JSON round trip, so a dict holding numpy scalars and the same sheet read
    back from ``fab_sheet.json`` give the same digest.
    """
    plain = json.loads(json.dumps({k: v for k, v in sheet.items() if k != SHEET_HASH_KEY}, default=_json_default))
    return hashlib.sha256(_canonical(plain)).hexdigest()
