"""The export transaction: a hidden staging folder next to the export directory, swapped in in one step.

The export builds the whole new directory as ``.<name>.staging-<pid>-<random>`` next to it, carries over the
files of the old directory that are not part of an earlier export (hard links), writes the fab sheet last, then
swaps the staging folder in for the old directory (Linux ``renameat2(RENAME_EXCHANGE)``; elsewhere two renames)
and deletes the old one. Staging folders of killed exports are removed by the next export next to them.
"""

from __future__ import annotations

import ctypes
import errno
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from quaton_fab.fab.sheet import JSON_NAME as JSON_SHEET
from quaton_fab.fab.sheet import MD_NAME as MD_SHEET

__all__ = ["STAGING", "clean_stale_staging", "carry_over", "swap_in", "os_error_message", "previous_export_files",
           "umask"]

log = logging.getLogger(__name__)

STAGING = ".staging-"
#: Staging folders of an older quaton-fab (``.<name>.<random>.staging``) older than this are removed.
_LEGACY_STAGING_AGE_S = 3600.0


def umask() -> int:
    """The process umask (read without changing it)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return pid > 0
    return True


def clean_stale_staging(target: Path) -> list[Path]:
    """Remove staging folders next to ``target`` left by killed exports; return what was removed.

    A folder ``.<name>.staging-<pid>-…`` is stale when process ``pid`` no longer runs. If ``target`` itself is
    missing (a kill between the two renames of the non-Linux swap), the previous export set aside as
    ``…-old-…`` is put back instead of being deleted.
    """
    parent, name = target.parent, target.name
    removed: list[Path] = []
    try:
        entries = sorted(parent.iterdir())
    except OSError:
        return removed
    for entry in entries:
        entry_name = entry.name
        prefix = f".{name}{STAGING}"
        if entry_name.startswith(prefix):
            pid_text = entry_name[len(prefix):].split("-", 1)[0]
            if not pid_text.isdigit() or _pid_alive(int(pid_text)):
                continue
            if "-old-" in entry_name and not os.path.lexists(target):
                os.rename(entry, target)
                log.warning("restored the previous export %s from %s", target, entry)
                continue
        elif entry_name.startswith(f".{name}.") and entry_name.endswith(".staging"):
            try:
                if time.time() - entry.stat().st_mtime < _LEGACY_STAGING_AGE_S:
                    continue
            except OSError:
                continue
        else:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
            log.info("removed stale export staging folder %s", entry)
    return removed


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst, follow_symlinks=False)
    except OSError:
        shutil.copy2(src, dst, follow_symlinks=False)


def carry_over(old: Path, new: Path, *, skip: set[str]) -> None:
    """Hard-link (else copy) every entry of ``old`` not named in ``skip`` into ``new`` (user files kept)."""
    for entry in os.scandir(old):
        if entry.name in skip or entry.name in (JSON_SHEET, MD_SHEET):
            continue
        dst = new / entry.name
        if entry.is_symlink():
            os.symlink(os.readlink(entry.path), dst)
        elif entry.is_dir():
            shutil.copytree(entry.path, dst, symlinks=True, copy_function=_link_or_copy)
        else:
            _link_or_copy(entry.path, str(dst))


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two directories (Linux renameat2 with RENAME_EXCHANGE); False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    renameat2.restype = ctypes.c_int
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def swap_in(staging: Path, target: Path) -> None:
    """Make ``staging`` the directory ``target``; afterwards ``staging`` holds the previous one (if any)."""
    if not os.path.lexists(target):
        os.rename(staging, target)
        return
    if _exchange(staging, target):
        return
    aside = Path(tempfile.mkdtemp(prefix=f".{target.name}{STAGING}{os.getpid()}-old-", dir=target.parent))
    os.rmdir(aside)
    os.rename(target, aside)
    try:
        os.rename(staging, target)
    except OSError:
        os.rename(aside, target)
        raise
    os.rename(aside, staging)


def os_error_message(exc: OSError, staging: Path, out: Path) -> str:
    """One line for an OS error during export, naming the export directory (never the staging folder)."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    name = exc.filename
    if name is not None:
        path = Path(os.fsdecode(name))
        try:
            relative = path.relative_to(staging)
        except ValueError:
            return f"cannot write the export into {str(out)!r}: {path}: {reason}"
        visible = [p for p in relative.parts if not p.startswith(".")]
        if visible:
            return f"cannot write {str(out / Path(*visible))!r}: {reason}"
    return f"cannot write the export into {str(out)!r}: {reason}"


def previous_export_files(out: Path) -> list[str]:
    """File names listed by an earlier export's fab sheet in ``out`` (plain names only), else none."""
    sheet = out / JSON_SHEET
    if not sheet.is_file():
        return []
    try:
        files = json.loads(sheet.read_text(encoding="utf-8")).get("files", [])
        return [f["name"] for f in files if isinstance(f.get("name"), str) and "/" not in f["name"]]
    except (ValueError, AttributeError, TypeError, KeyError, RecursionError):
        return []


