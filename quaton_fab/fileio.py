"""Small file helpers shared by the design writer and the exporters: atomic writes.

Every file quaton-fab produces is first written under a temporary name in the destination folder and then
renamed, so an interrupted or failed write never leaves a half-written file under the final name.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_with", "commit_set", "write_set"]


@contextmanager
def atomic_path(path: str | os.PathLike[str], *, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it to ``path``, on error delete it.

    ``suffix`` (default: the suffix of ``path``) is kept on the temporary name, for writers that choose the
    format from the file name (e.g. trimesh, gdstk).
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{final.stem}.", suffix=final.suffix if suffix is None else suffix, dir=final.parent
        )
    except OSError as exc:  # name the file the user asked for, not the temporary one that could not be made
        raise OSError(exc.errno, exc.strerror or str(exc), str(final)) from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the file the usual permissions
        os.replace(tmp, final)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.filename in (None, str(tmp), tmp):  # name the file the user asked for, not the temporary one
            raise OSError(exc.errno, exc.strerror or str(exc), str(final)) from None
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _umask() -> int:
    """The process umask (read without changing it for longer than the call)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_with(path: str | os.PathLike[str], write: Callable[[BinaryIO], object]) -> Path:
    """Call ``write(binary_file)`` on a temporary file next to ``path``, then rename it to ``path``."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            write(handle)
    return Path(path)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    return atomic_write_with(path, lambda handle: handle.write(data))


def commit_set(pairs: list[tuple[Path, Path]]) -> None:
    """Move each staged ``(temporary, final)`` file or folder into place as one set: all of them or none.

    Existing finals are first renamed to hidden backups beside them; if any move fails, the moved ones are
    removed and the backups restored, and the error (naming the final path) is raised. Backups are deleted
    once every move succeeded. Staged entries are deleted on failure.
    """
    backups: list[tuple[Path, Path]] = []
    moved: list[Path] = []
    try:
        for tmp, final in pairs:
            if final.exists() or final.is_symlink():
                backup = Path(tempfile.mkdtemp(prefix=f".{final.name}.old-", dir=final.parent))
                os.rename(final, backup / final.name)
                backups.append((backup, final))
            try:
                os.replace(tmp, final)
            except OSError as exc:
                if exc.filename in (None, str(tmp), tmp):
                    raise OSError(exc.errno, exc.strerror or str(exc), str(final)) from None
                raise
            moved.append(final)
    except BaseException:
        for final in moved:
            _remove(final)
        for backup, final in backups:
            os.rename(backup / final.name, final)
            backup.rmdir()
        for tmp, _ in pairs:
            _remove(tmp)
        raise
    for backup, _ in backups:
        shutil.rmtree(backup, ignore_errors=True)


def write_set(writers: Mapping[Path, Callable[[Path], object]], *, prefix: str = ".set-") -> list[Path]:
    """Write files of one folder as one set: all of them or none (e.g. a result's JSON, Markdown and figure).

    ``writers`` maps each final path (all in the same folder) to ``write(path)``, which is called with a staged
    twin in a hidden folder (named ``prefix`` + random) beside them; then every twin is moved in together
    (:func:`commit_set`). An error names the final file, not its staged twin. Returns the final paths.
    """
    finals = list(writers)
    folder = finals[0].parent
    folder.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=prefix, dir=folder))
    try:
        pairs = [(stage / final.name, final) for final in finals]
        for staged, final in pairs:
            writers[final](staged)
        commit_set(pairs)
    except OSError as exc:  # name the file the user asked for, not its staged twin
        if exc.filename is not None and Path(os.fsdecode(exc.filename)).parent == stage:
            raise OSError(exc.errno, exc.strerror or str(exc), str(folder / Path(os.fsdecode(exc.filename)).name)
                          ) from None
        raise
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return finals


def _remove(path: Path) -> None:
    """Delete a file, link or folder if it exists."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
