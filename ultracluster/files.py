"""Atomic file writes: a file is either complete or absent (temp file, fsync, rename, fsync of
the folder).

Only a regular file is ever replaced: a symlink, a folder, a FIFO or a device at the target is
refused with a `ConfigError`, never turned into a regular file. A replaced file keeps its
permission bits (a 0600 file stays 0600); a new file gets the usual ``0666 & ~umask``. Any
failure (read-only folder, a parent that is a file, a full disk) is a one-line `ConfigError`
naming the path, and leaves no temp file behind.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path

from ultracluster.errors import ConfigError
from ultracluster.readers import file_kind


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write `text` to `path` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write `data` to `path` atomically: temp file in the same folder, fsync, rename, then
    fsync the folder so the rename itself survives a power loss.

    Raises:
        ConfigError: the target is not a regular file, or the path cannot be written.
    """
    p = Path(path)
    mode = _target_mode(p)
    _make_parent(p)
    try:
        fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name[:200]}.", suffix=".tmp")
    except OSError as e:
        raise ConfigError(f"{p}: cannot write in {_folder(p)} ({_why(e)})") from None
    try:
        try:
            os.fchmod(fd, mode)  # mkstemp makes 0600
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, p)
        except OSError as e:
            raise ConfigError(f"{p}: cannot write ({_why(e)})") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_folder(p.parent)


def _target_mode(p: Path) -> int:
    """Permission bits for the new file: the existing regular file's, or 0666 & ~umask."""
    try:
        st = os.lstat(p)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask
    except NotADirectoryError:
        raise ConfigError(f"{p}: a parent of this path is a file, not a folder") from None
    except (OSError, ValueError) as e:
        raise ConfigError(f"{p}: cannot write ({_why(e)})") from None
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError(f"{p}: is {file_kind(st.st_mode)}; only a regular file is replaced "
                          "(give another path)")
    return stat.S_IMODE(st.st_mode)


def _make_parent(p: Path) -> None:
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise ConfigError(f"{p}: a parent of this path is a file, not a folder") from None
    except OSError as e:
        raise ConfigError(f"{p}: cannot create the folder {_folder(p)} ({_why(e)})") from None


def fsync_folder(folder: str | Path) -> None:
    """fsync a folder so a rename into it is durable (skipped where the OS does not allow
    opening folders, as on Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.EBADF):  # file systems without folder fsync
            raise ConfigError(f"{folder}: cannot flush the folder ({_why(e)})") from None
    finally:
        os.close(fd)


def _folder(p: Path) -> str:
    return str(p.parent) if str(p.parent) else "."


def _why(e: BaseException) -> str:
    return e.strerror if isinstance(e, OSError) and e.strerror else str(e)
