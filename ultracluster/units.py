"""Units and the parsing of counts the way people write them ("15T", "4M", "15e12")."""

from __future__ import annotations

import math
from collections.abc import Sequence
from enum import StrEnum

from ultracluster.errors import ConfigError

KB = 1e3
MB = 1e6
GB = 1e9
TB = 1e12
KIB = 1024.0
MIB = 1024.0**2
GIB = 1024.0**3
TIB = 1024.0**4

GBPS = 1e9 / 8  # one gigabit per second, in bytes per second
TBPS = 1e12 / 8
TFLOPS = 1e12
US = 1e-6
MS = 1e-3
HOUR_S = 3600.0
DAY_S = 86400.0
KWH_J = 3.6e6

FIBRE_S_PER_KM = 4.9e-6
"""One-way propagation in silica fibre, group index ~1.468 (mapyourtech.com, 'The 5-microsecond
rule'; CommScope, 'Latency in Optical Fibers', 2017)."""



class Precision(StrEnum):
    """The number format of the matmuls. Defined here, below `hardware` (a chip's peak per
    format) and `workload` (the job's format); `plan` re-exports it with the plan's other
    words."""

    BF16 = "bf16"
    FP16 = "fp16"
    FP8 = "fp8"
    """FP8 matmuls, BF16 elsewhere (Transformer Engine's recipe)."""
    FP32 = "fp32"
    """Everything in 4 bytes: the CPU runtime's own jobs."""


def one_of(words: Sequence[str]) -> str:
    """``a, b or c``: valid words, for messages."""
    return ", ".join(words[:-1]) + " or " + words[-1] if len(words) > 1 else "".join(words)


_SUFFIXES = {"k": 1e3, "m": 1e6, "b": 1e9, "g": 1e9, "t": 1e12, "p": 1e15}


def parse_count(text: str | int | float, *, field: str) -> float:
    """Parse a positive count: ``15e12``, ``15T``, ``4M``, ``2048``, ``1.5k``.

    Args:
        text: what the user wrote.
        field: the option's name, quoted in the error.

    Returns:
        The value as a float.
    """
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value = float(text)
    else:
        s = str(text).strip().replace("_", "").replace(",", "")
        mult = 1.0
        if s and s[-1].lower() in _SUFFIXES:
            mult = _SUFFIXES[s[-1].lower()]
            s = s[:-1]
        try:
            value = float(s) * mult
        except ValueError:
            raise ConfigError(
                f"{field}: {text!r} is not a count (write 15e12, 15T, 4M or 2048)"
            ) from None
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{field}: {text!r} must be a positive finite number")
    return value


def parse_whole(text: str | int | float, *, field: str, maximum: float = 2.0**53) -> int:
    """Parse a positive whole count (``8``, ``64k``, ``1.5k``): ``0.5`` or ``1.9`` chips is an
    error, not a rounding."""
    value = parse_count(text, field=field)
    if not value.is_integer() or value > maximum:
        raise ConfigError(f"{field}: {text!r} must be a whole number in [1, {maximum:,.0f}]")
    return int(value)


def human_bytes(n: float) -> str:
    """Bytes in binary units: ``112.4 GiB``."""
    for unit, size in (("TiB", TIB), ("GiB", GIB), ("MiB", MIB), ("KiB", KIB)):
        if abs(n) >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n:.0f} B"


def human_count(n: float) -> str:
    """Counts with SI suffixes: ``405.9B``, ``15.0T``."""
    for unit, size in (("P", 1e15), ("T", 1e12), ("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.1f}{unit}"
    return f"{n:.0f}"
