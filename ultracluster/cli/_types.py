"""argparse ``type=`` converters with ranges, so a flag's bad value is one line naming the
flag, the value and the range (``--tp: 0 is out of range; must be in [1, 10,000,000]``).

Nothing here imports another CLI module.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TypeVar

from ultracluster.errors import ConfigError
from ultracluster.fields import check_float, check_int

T = TypeVar("T", int, float)


def whole(lo: int, hi: int) -> Callable[[str], int]:
    """A whole number in [lo, hi] (``8``; not ``8.5`` or ``abc``)."""

    def convert(text: str) -> int:
        try:
            value = int(text.strip().replace("_", ""))
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number in "
                                             f"[{lo:,}, {hi:,}]") from None
        return _check(lambda: check_int(value, "", minimum=lo, maximum=hi))

    convert.__name__ = "whole number"
    return convert


def number(lo: float, hi: float, *, positive: bool = False) -> Callable[[str], float]:
    """A finite number in [lo, hi] (> 0 as well when `positive`)."""

    def convert(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        return _check(lambda: check_float(value, "", minimum=lo, maximum=hi,
                                          positive=positive))

    convert.__name__ = "number"
    return convert


def _check(fn: Callable[[], T]) -> T:
    try:
        return fn()
    except ConfigError as e:
        raise argparse.ArgumentTypeError(str(e).removeprefix(": ")) from None



def path(text: str) -> str:
    """A file path flag: an empty one is an error, not "use the default"."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not a path (leave the flag out for the "
                                         "default)")
    return text
