"""Bounded readers for users' files: regular files only, a size cap, a nesting-depth cap.

Every input file (cluster and plan TOML, Hugging Face ``config.json``, measurement CSV) is read
through `read_bytes`, so a FIFO is refused without blocking (it is opened non-blocking and
checked with ``fstat`` before any read), a device such as ``/dev/zero`` is refused rather than
read until memory runs out, and a file over `MAX_FILE_BYTES` is refused. Parsed documents are
checked for depth (`MAX_DEPTH`) so a 2 KB file nested 1,000 deep is a one-line error, not a
``RecursionError``.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

from ultracluster.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

MAX_FILE_BYTES = 16 * 1024**2
"""16 MiB: the largest input file read (a DeepSeek-V3 config.json is ~1.7 KB, the reference
measurement CSV ~30 KB; a cluster file of 10,000 sites stays under 5 MB)."""
MAX_DEPTH = 32
"""Tables/lists nested deeper than this are refused (the deepest valid input nests 3)."""


def read_bytes(path: str | Path, *, limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of the regular file at `path`, at most `limit` of them.

    Raises:
        ConfigError: missing, not a regular file (folder, FIFO, device, socket), unreadable,
            or larger than `limit`.
    """
    p = Path(path)
    try:
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise ConfigError(f"{p}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"{p}: is a folder, not a file") from None
    except OSError as e:
        raise ConfigError(f"{p}: cannot read ({e.strerror})") from None
    except ValueError:  # a NUL byte: no file can have that name
        raise ConfigError(f"{p}: no such file (a file name cannot hold a NUL byte)") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ConfigError(f"{p}: is {file_kind(st.st_mode)}, not a regular file")
        if st.st_size > limit:
            raise ConfigError(f"{p}: {st.st_size:,} bytes is over the {limit:,}-byte limit "
                              "for an input file")
        chunks: list[bytes] = []
        size = 0
        while chunk := os.read(fd, 1 << 20):
            size += len(chunk)
            if size > limit:  # the file grew while we read it
                raise ConfigError(f"{p}: over the {limit:,}-byte limit for an input file")
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError as e:
        raise ConfigError(f"{p}: cannot read ({e.strerror})") from None
    finally:
        os.close(fd)


def file_kind(mode: int) -> str:
    """What a non-regular file is, for a message (``a FIFO``): `mode` from ``stat``/``lstat``."""
    for test, name in ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISDIR, "a folder"),
                       (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a device"),
                       (stat.S_ISBLK, "a device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "a special file"


def read_text(path: str | Path, *, limit: int = MAX_FILE_BYTES) -> str:
    """`read_bytes` decoded as UTF-8 (a BOM is dropped)."""
    try:
        return read_bytes(path, limit=limit).decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text (byte {e.start})") from None


def read_toml(path: str | Path) -> dict[str, Any]:
    """Parse a TOML file, turning I/O, syntax and shape problems into `ConfigError`s."""
    text = read_text(path)
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML ({_one_line(e)})") from None
    except RecursionError:
        raise ConfigError(f"{path}: nested more than {MAX_DEPTH} deep") from None
    except ValueError as e:  # an integer of over 4,300 digits
        raise ConfigError(f"{path}: not valid TOML ({_one_line(e)})") from None
    check_depth(doc, str(path))
    return doc


def read_json(path: str | Path) -> Any:
    """Parse a JSON file (``NaN`` and ``Infinity`` are refused, as strict JSON does)."""
    text = read_text(path)
    try:
        doc = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None
    except RecursionError:
        raise ConfigError(f"{path}: nested more than {MAX_DEPTH} deep") from None
    except ValueError as e:  # an integer of over 4,300 digits, or NaN/Infinity
        raise ConfigError(f"{path}: not valid JSON ({_one_line(e)})") from None
    check_depth(doc, str(path))
    return doc


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def check_depth(doc: Any, where: str, *, limit: int = MAX_DEPTH) -> None:
    """Refuse documents whose tables/lists nest deeper than `limit` (iteratively)."""
    stack: list[tuple[Any, int]] = [(doc, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            raise ConfigError(f"{where}: nested more than {limit} deep")
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return text if len(text) <= 200 else text[:197] + "..."


def exists(path: str | Path) -> bool:
    """`Path.exists` that answers False for names the OS refuses (too long, NUL bytes)."""
    try:
        return Path(path).exists()
    except (OSError, ValueError):
        return False


def is_dir(path: str | Path) -> bool:
    """`Path.is_dir` that answers False for names the OS refuses."""
    try:
        return Path(path).is_dir()
    except (OSError, ValueError):
        return False
