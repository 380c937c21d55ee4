"""Reading typed fields out of parsed TOML/JSON with one-line `ConfigError`s.

Every loader (cluster files, Hugging Face configs, plan files, measurement CSVs) reads its
fields through these helpers, so every bad value is reported the same way: where, which field,
what was found, what is valid.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, TypeVar

from ultracluster.errors import ConfigError
from ultracluster.readers import read_json, read_toml

__all__ = ["check_keys", "get_bool", "get_float", "get_int", "get_str", "read_json",
           "read_toml", "span", "table"]

MAX_INT = 2**53
"""Integers above this are refused everywhere (beyond it floats lose whole numbers); each
field has its own, smaller, physical range as well."""

T = TypeVar("T")
_MISSING: Any = object()


def table(d: Any, where: str) -> Mapping[str, Any]:
    """`d` itself if it is a table (a mapping), else `ConfigError` naming `where`."""
    if not isinstance(d, Mapping):
        raise ConfigError(f"{where}: expected a table, got {type(d).__name__}")
    return d


def get_str(d: Mapping[str, Any], key: str, where: str, default: Any = _MISSING) -> str:
    """`d[key]` as a string (`default` when absent), else `ConfigError` naming `where.key`."""
    v = _get(d, key, where, default)
    if not isinstance(v, str):
        raise ConfigError(f"{where}.{key}: expected a string, got {v!r}")
    return v


def get_bool(d: Mapping[str, Any], key: str, where: str, default: Any = _MISSING) -> bool:
    """`d[key]` as a boolean (`default` when absent), else `ConfigError` naming `where.key`."""
    v = _get(d, key, where, default)
    if not isinstance(v, bool):
        raise ConfigError(f"{where}.{key}: expected true or false, got {v!r}")
    return v


def span(lo: float, hi: float) -> str:
    """A range as messages print it: ``[1, 10,000]``, ``(0, 1]``."""
    return f"[{_num(lo)}, {_num(hi)}]"


def _num(x: float) -> str:
    if isinstance(x, int) or float(x).is_integer() and abs(x) < 1e15:
        return f"{int(x):,}"
    return f"{x:g}"


def _show(v: Any) -> str:
    """A value as found, shortened (an integer of 5,000 digits is not printed whole)."""
    if isinstance(v, int) and not isinstance(v, bool) and abs(v) >= 10**15:
        try:
            return f"{float(v):.3g}"
        except OverflowError:
            return f"an integer of about {int(v.bit_length() * math.log10(2)) + 1:,} digits"
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


def get_int(
    d: Mapping[str, Any], key: str, where: str, default: Any = _MISSING, *, minimum: int = 1,
    maximum: int = MAX_INT,
) -> int:
    """An integer in [minimum, maximum]; ``8.0`` reads as 8, ``1.9`` and ``true`` are errors."""
    v = _get(d, key, where, default)
    return check_int(v, f"{where}.{key}", minimum=minimum, maximum=maximum)


def check_int(v: Any, field: str, *, minimum: int = 1, maximum: int = MAX_INT) -> int:
    """`v` as an integer in [minimum, maximum], or a `ConfigError` naming `field`."""
    found = v
    if isinstance(v, float) and math.isfinite(v) and v.is_integer():
        v = int(v)
    if isinstance(v, bool) or not isinstance(v, int):
        raise ConfigError(f"{field}: expected a whole number in {span(minimum, maximum)}, "
                          f"got {_show(found)}")
    if not minimum <= v <= maximum:
        raise ConfigError(f"{field}: {_show(found)} is out of range; must be in "
                          f"{span(minimum, maximum)}")
    return v


def get_float(
    d: Mapping[str, Any],
    key: str,
    where: str,
    default: Any = _MISSING,
    *,
    minimum: float = 0.0,
    maximum: float = math.inf,
    positive: bool = False,
) -> float:
    """A finite number in [minimum, maximum] (> 0 as well when `positive`)."""
    v = _get(d, key, where, default)
    return check_float(v, f"{where}.{key}", minimum=minimum, maximum=maximum,
                       positive=positive)


def check_float(v: Any, field: str, *, minimum: float = 0.0, maximum: float = math.inf,
                positive: bool = False) -> float:
    """`v` as a finite float in range, or a `ConfigError` naming `field` and the range."""
    rng = ("(0, " + _num(maximum) + "]") if positive and minimum <= 0 else span(minimum, maximum)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ConfigError(f"{field}: expected a number in {rng}, got {_show(v)}")
    try:
        x = float(v)
    except OverflowError:
        x = math.inf
    if not math.isfinite(x):
        raise ConfigError(f"{field}: {_show(v)} is not a finite number; must be in {rng}")
    if (positive and not x > 0) or not minimum <= x <= maximum:
        raise ConfigError(f"{field}: {_show(v)} is out of range; must be in {rng}")
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
