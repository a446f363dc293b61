"""Path confinement: a folder quaton-fab writes into or deletes from must lie inside the folder the user named.

One idea: names that come from a file (a sweep spec's grid label, a ``cell.json``'s ``grid`` field) or from a
user's option are joined to a root only as plain names. :func:`child` refuses empty names, ``.``/``..``,
absolute paths, separators, and any existing component that is a symbolic link; the resolved result must
still lie inside the resolved root. :func:`remove_own_files` deletes only the files a caller says it wrote,
and refuses (naming the path) when the folder holds anything else.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

from quaton_fab.errors import QuatonFabError

__all__ = ["ConfinementError", "PLAIN_NAME", "plain_name", "child", "remove_own_files"]

#: A plain folder or file name: starts with a letter, digit or ``_``; then letters, digits and ``.,+=_-``.
PLAIN_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9.,+=_-]*")


class ConfinementError(QuatonFabError):
    """A path that would leave the folder the user named, or a folder holding files quaton-fab did not write."""


def plain_name(name: object, what: str) -> str:
    """``name`` if it is a plain name (see :data:`PLAIN_NAME`, at most 200 characters); else refuse."""
    if not isinstance(name, str) or not PLAIN_NAME.fullmatch(name) or len(name) > 200:
        raise ConfinementError(
            f"{what} {name!r} is not a plain folder name (letters, digits and . , + = _ -, not starting with '.')"
        )
    return name


def child(root: str | os.PathLike[str], *names: str, what: str = "name") -> Path:
    """``root / names…`` after checking each name is plain and no existing component below ``root`` is a link.

    Raises:
        ConfinementError: a name that is not plain, a symbolic link on the way, or a result outside ``root``.
    """
    base = Path(root)
    path = base
    for name in names:
        path = path / plain_name(name, what)
        if path.is_symlink():
            raise ConfinementError(f"{str(path)!r} is a symbolic link; quaton-fab does not write through links")
    real_root = Path(os.path.realpath(base))
    if not Path(os.path.realpath(path)).is_relative_to(real_root):
        raise ConfinementError(f"{str(path)!r} lies outside {str(base)!r}")
    return path


def remove_own_files(folder: str | os.PathLike[str], own: Callable[[str], bool]) -> list[Path]:
    """Delete the entries of ``folder`` for which ``own(name)`` is true; refuse first if any other entry exists.

    Nothing is deleted when the folder holds an entry that is not ours (or a symbolic link): the error names it.
    Returns the removed paths.
    """
    root = Path(folder)
    entries = sorted(root.iterdir())
    foreign = [p for p in entries if p.is_symlink() or not own(p.name)]
    if foreign:
        raise ConfinementError(
            f"{str(foreign[0])!r} was not written by quaton-fab; refusing to delete anything in {str(root)!r} "
            "(move it away, or use another folder)"
        )
    for p in entries:
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    return entries


def first_foreign(entries: Iterable[Path], own: Callable[[str], bool]) -> Path | None:
    """The first entry that is a link or not ours (None when all are ours)."""
    return next((p for p in entries if p.is_symlink() or not own(p.name)), None)
