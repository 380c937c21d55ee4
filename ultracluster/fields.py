"""Reading typed fields out of parsed TOML/JSON with one-line `ConfigError`s.

Every loader (cluster files, Hugging Face configs, plan files, measurement CSVs) reads its
fields through these helpers, so every bad value is reported the same way: where, which field,
what was found, what is valid.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from ultracluster.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

T = TypeVar("T")
_MISSING: Any = object()


def read_toml(path: str | Path) -> dict[str, Any]:
    """Parse a TOML file, turning I/O and syntax problems into `ConfigError`s."""
    p = Path(path)
    try:
        with p.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{p}: no such file") from None
    except OSError as e:
        raise ConfigError(f"{p}: cannot read ({e.strerror})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{p}: not valid TOML ({e})") from None


def table(d: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(d, Mapping):
        raise ConfigError(f"{where}: expected a table, got {type(d).__name__}")
    return d


def get_str(d: Mapping[str, Any], key: str, where: str, default: Any = _MISSING) -> str:
    v = _get(d, key, where, default)
    if not isinstance(v, str):
        raise ConfigError(f"{where}.{key}: expected a string, got {v!r}")
    return v


def get_bool(d: Mapping[str, Any], key: str, where: str, default: Any = _MISSING) -> bool:
    v = _get(d, key, where, default)
    if not isinstance(v, bool):
        raise ConfigError(f"{where}.{key}: expected true or false, got {v!r}")
    return v


def get_int(
    d: Mapping[str, Any], key: str, where: str, default: Any = _MISSING, *, minimum: int = 1
) -> int:
    v = _get(d, key, where, default)
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    if isinstance(v, bool) or not isinstance(v, int):
        raise ConfigError(f"{where}.{key}: expected an integer, got {v!r}")
    if v < minimum:
        raise ConfigError(f"{where}.{key}: {v} must be >= {minimum}")
    return v


def get_float(
    d: Mapping[str, Any],
    key: str,
    where: str,
    default: Any = _MISSING,
    *,
    minimum: float = 0.0,
    positive: bool = False,
) -> float:
    v = _get(d, key, where, default)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ConfigError(f"{where}.{key}: expected a number, got {v!r}")
    x = float(v)
    if not math.isfinite(x):
        raise ConfigError(f"{where}.{key}: {v!r} is not finite")
    if positive and not x > 0:
        raise ConfigError(f"{where}.{key}: {v!r} must be > 0")
    if x < minimum:
        raise ConfigError(f"{where}.{key}: {v!r} must be >= {minimum}")
    return x


def _get(d: Mapping[str, Any], key: str, where: str, default: Any) -> Any:
    if key in d and d[key] is not None:
        return d[key]
    if default is _MISSING:
        raise ConfigError(f"{where}: missing field {key!r}")
    return default


def check_keys(d: Mapping[str, Any], allowed: set[str], where: str) -> None:
    """Unknown keys are errors (a typo must not silently fall back to a default)."""
    extra = sorted(str(k) for k in d if k not in allowed)
    if extra:
        raise ConfigError(
            f"{where}: unknown field(s) {extra} (known: {', '.join(sorted(allowed))})"
        )
