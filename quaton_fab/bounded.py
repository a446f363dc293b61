"""Bounded readers: parse JSON, TOML, YAML, ``.npz`` archives and gzip streams without letting a file decide
how much memory or time the parse takes.

One idea: a file is data, and its size is checked before it is believed. Each reader refuses, with one line
naming the file and the limit (:class:`~quaton_fab.errors.ResourceError` or the caller's error class):

* text files larger than ``max_bytes`` (read no further than the limit), or not valid UTF-8;
* JSON/TOML/YAML nested deeper than :data:`MAX_DEPTH` (checked on the text before the parser recurses), and
  JSON ``NaN``/``Infinity`` (not JSON);
* YAML alias expansion beyond :data:`MAX_YAML_ALIASES` references, duplicate YAML keys, and non-plain YAML
  values (dates, binary): the loader is a :class:`yaml.SafeLoader` subclass;
* ``.npz`` members whose ``.npy`` header claims more than the memory budget (checked before any data is read),
  and archive members that inflate beyond their header's claim (capped while inflating);
* gzip streams inflating beyond ``max_bytes`` (capped while inflating).
"""

from __future__ import annotations

import io
import json
import math
import os
import tomllib
import zipfile
from collections.abc import Callable
from typing import Any, BinaryIO

import numpy as np

from quaton_fab.errors import QuatonFabError, ResourceError
from quaton_fab.resources import check_memory, format_bytes

__all__ = [
    "MAX_DEPTH",
    "MAX_TEXT_BYTES",
    "MAX_YAML_ALIASES",
    "check_depth",
    "read_capped",
    "read_text",
    "loads_json",
    "loads_toml",
    "loads_yaml",
    "load_json_file",
    "npz_arrays",
    "inflate_capped",
]

#: Deepest nesting of lists/objects accepted in a JSON, TOML or YAML file (our files nest fewer than 10 deep).
MAX_DEPTH = 64
#: Largest configuration or record file read (design.json, fab_sheet.json, cell.json, a sweep spec).
MAX_TEXT_BYTES = 64 * 1024 * 1024
#: Largest number of YAML alias references (``*name``) in one document (a sweep spec needs none; 16 aliases
#: can at most expand a document a few hundred times, while a "billion laughs" needs dozens).
MAX_YAML_ALIASES = 16

ErrorType = Callable[[str], Exception]


def read_capped(path: str | os.PathLike[str], max_bytes: int, what: str, error: ErrorType = ResourceError) -> bytes:
    """The bytes of ``path``, refusing a file larger than ``max_bytes`` (reads at most ``max_bytes + 1``)."""
    with open(path, "rb") as handle:
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise error(f"{what} {str(path)!r} is larger than {format_bytes(max_bytes)}; refusing to read it")
    return data


def read_text(path: str | os.PathLike[str], what: str, error: ErrorType = ResourceError,
              max_bytes: int = MAX_TEXT_BYTES) -> str:
    """A UTF-8 text file of at most ``max_bytes`` (``error`` names the file when it is larger or not UTF-8)."""
    data = read_capped(path, max_bytes, what, error)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{what} {str(path)!r} is not UTF-8 text (byte {exc.start}: {exc.reason})") from None


def check_depth(text: str, what: str, error: ErrorType, *, open_chars: str = "[{", close_chars: str = "]}",
                max_depth: int = MAX_DEPTH) -> None:
    """Refuse ``text`` whose bracket nesting exceeds ``max_depth`` (a linear scan; strings are skipped).

    A conservative bound for JSON, TOML and YAML flow collections: brackets inside quoted strings are skipped
    (a ``"`` or ``'`` opens a string that ends at the same quote, backslash escapes honoured in ``"``).
    """
    depth = 0
    quote = ""
    escaped = False
    for char in text:
        if quote:
            if escaped:
                escaped = False
            elif char == "\\" and quote == '"':
                escaped = True
            elif char == quote:
                quote = ""
            continue
        if char in "\"'":
            quote = char
        elif char in open_chars:
            depth += 1
            if depth > max_depth:
                raise error(f"{what} nests deeper than {max_depth} levels; refusing to parse it")
        elif char in close_chars:
            depth -= 1


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def loads_json(text: str, what: str, error: ErrorType) -> Any:
    """Parse JSON text with the depth limit; ``NaN``/``Infinity`` are refused (one line via ``error``)."""
    check_depth(text, what, error, open_chars="[{", close_chars="]}")
    try:
        return json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise error(f"{what} is not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except (ValueError, RecursionError) as exc:
        raise error(f"{what} is not valid JSON ({exc})") from None


def load_json_file(path: str | os.PathLike[str], what: str, error: ErrorType,
                   max_bytes: int = MAX_TEXT_BYTES) -> Any:
    """Read and parse a JSON file with :func:`read_text` and :func:`loads_json` (every problem via ``error``)."""
    return loads_json(read_text(path, what, error, max_bytes), f"{what} {str(path)!r}", error)


def loads_toml(text: str, what: str, error: ErrorType) -> dict[str, Any]:
    """Parse TOML text with the depth limit (TOML's ``[a.b.c]`` headers count too)."""
    check_depth(text, what, error, open_chars="[{", close_chars="]}")
    for line in text.splitlines():
        head = line.strip()
        if head.startswith("[") and head.count(".") > MAX_DEPTH:
            raise error(f"{what} nests deeper than {MAX_DEPTH} levels; refusing to parse it")
    try:
        return tomllib.loads(text)
    except (tomllib.TOMLDecodeError, RecursionError) as exc:
        raise error(f"{what} is not valid TOML: {exc}") from None


def _yaml_loader(what: str, error: ErrorType) -> type:
    """A SafeLoader that counts alias references, limits depth, refuses duplicate keys and non-plain values."""
    import yaml  # optional at import time: only sweep specs are YAML

    class BoundedLoader(yaml.SafeLoader):
        aliases = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                self.aliases += 1
                if self.aliases > MAX_YAML_ALIASES:
                    raise error(f"{what} uses more than {MAX_YAML_ALIASES} YAML aliases; refusing to expand it")
            depth = getattr(self, "_depth", 0) + 1
            if depth > MAX_DEPTH:
                raise error(f"{what} nests deeper than {MAX_DEPTH} levels; refusing to parse it")
            self._depth = depth
            try:
                return super().compose_node(parent, index)
            finally:
                self._depth = depth - 1

        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            seen: set[Any] = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                try:
                    duplicate = key in seen
                    seen.add(key)
                except TypeError:
                    raise error(f"{what} line {key_node.start_mark.line + 1}: a key must be plain text") from None
                if duplicate:
                    raise error(f"{what} line {key_node.start_mark.line + 1}: key {key!r} appears twice")
            return super().construct_mapping(node, deep=deep)

    for tag in ("tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:binary", "tag:yaml.org,2002:set",
                "tag:yaml.org,2002:omap", "tag:yaml.org,2002:pairs"):
        def refuse(loader: Any, node: Any, tag: str = tag) -> Any:
            raise error(f"{what} line {node.start_mark.line + 1}: {node.value!r} is a YAML "
                        f"{tag.rsplit(':', 1)[-1]}, not a plain value; quote it")

        BoundedLoader.add_constructor(tag, refuse)
    return BoundedLoader


def loads_yaml(text: str, what: str, error: ErrorType) -> Any:
    """Parse one YAML document with alias, depth and duplicate-key limits (safe tags only)."""
    import yaml  # optional at import time: only sweep specs are YAML

    check_depth(text, what, error, open_chars="[{", close_chars="]}")
    try:
        return yaml.load(text, Loader=_yaml_loader(what, error))  # noqa: S506 - a SafeLoader subclass
    except QuatonFabError:
        raise
    except (yaml.YAMLError, RecursionError, ValueError, TypeError) as exc:
        raise error(f"{what} is not valid YAML: {' '.join(str(exc).split())}") from None


# ---------------------------------------------------------------------------------------------------- archives
def inflate_capped(stream: BinaryIO, max_bytes: int, what: str, error: ErrorType = ResourceError,
                   chunk: int = 1 << 20) -> bytes:
    """Read a (decompressing) stream to its end, refusing more than ``max_bytes`` of output (checked per chunk)."""
    out = io.BytesIO()
    while True:
        block = stream.read(chunk)
        if not block:
            return out.getvalue()
        if out.tell() + len(block) > max_bytes:
            raise error(f"{what} inflates beyond {format_bytes(max_bytes)}; refusing to read it (a compression bomb?)")
        out.write(block)


def _npy_header(member: BinaryIO) -> tuple[tuple[int, ...], bool, np.dtype]:
    """(shape, fortran_order, dtype) from an ``.npy`` header; the data is not read."""
    version = np.lib.format.read_magic(member)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(member)
    else:
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(member)
    return tuple(int(s) for s in shape), bool(fortran), np.dtype(dtype)


def npz_arrays(path: str | os.PathLike[str], error: ErrorType, *, names: tuple[str, ...] | None = None,
               available_bytes: int | None = None,
               unreadable: str = "{path!r} cannot be read ({reason})") -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` archive (``names``: only these members), never pickles, always within memory.

    Every member's ``.npy`` header is read first and its claimed size (shape × item size) checked against the
    memory available (:func:`~quaton_fab.resources.check_memory`) before any data is read; the member is then
    inflated with a cap of its claimed size, so a member whose compressed data inflates beyond its header's
    claim is refused while inflating. ``unreadable`` is the message for a file that is no archive
    (``{path}`` and ``{reason}`` are filled in).
    """
    label = str(path)
    out: dict[str, np.ndarray] = {}
    try:
        with zipfile.ZipFile(path) as archive:
            members = {info.filename[:-4] if info.filename.endswith(".npy") else info.filename: info
                       for info in archive.infolist()}
            wanted = list(members) if names is None else [n for n in names if n in members]
            claims: dict[str, tuple[tuple[int, ...], bool, np.dtype, int]] = {}
            total = 0
            for name in wanted:
                with archive.open(members[name]) as member:
                    shape, fortran, dtype = _npy_header(member)
                if dtype.hasobject:
                    raise error(f"{label}: array {name!r} holds Python objects; only plain numeric arrays are read")
                count = math.prod(shape)
                nbytes = count * dtype.itemsize
                claims[name] = (shape, fortran, dtype, nbytes)
                total += nbytes
            check_memory(total, label, f"the arrays of {os.path.basename(label)} ({', '.join(wanted)})",
                         available_bytes=available_bytes)
            for name in wanted:
                shape, fortran, dtype, nbytes = claims[name]
                with archive.open(members[name]) as member:
                    _npy_header(member)
                    data = inflate_capped(member, nbytes, f"{label}: array {name!r}", error)
                if len(data) != nbytes:
                    raise error(f"{label}: array {name!r} holds {len(data)} bytes, its header claims {nbytes}")
                out[name] = np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran else "C").copy()
    except QuatonFabError:
        raise
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, SyntaxError, MemoryError) as exc:
        reason = "the file is empty" if isinstance(exc, EOFError) or (
            isinstance(exc, zipfile.BadZipFile) and os.path.getsize(path) == 0) else (
            f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}")
        raise error(unreadable.format(path=label, reason=reason)) from None
    return out

