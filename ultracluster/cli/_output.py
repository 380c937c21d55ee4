"""The bottom of the CLI: the rich console and JSON emission every command writes through.

Nothing here imports another CLI module, so every command module can import it.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable
from typing import Any

from rich.console import Console

from ultracluster.errors import ConfigError

def emit_json(doc: Any) -> None:
    """Print `doc` as the one JSON document on stdout (strict JSON: no NaN or Infinity).

    Raises:
        ConfigError: a figure of `doc` is not finite (named by its path in the document),
            so the user gets one line instead of a half-written document or a traceback.
    """
    try:
        text = json.dumps(doc, indent=2, allow_nan=False, default=str)
    except ValueError:
        where, value = _first_non_finite(doc, "")
        if not where:
            raise
        raise ConfigError(f"result{where} is {value}: the inputs are outside what the "
                          "model can compute (check the figures they set)") from None
    sys.stdout.write(text + "\n")


def _first_non_finite(doc: Any, where: str) -> tuple[str, float]:
    if isinstance(doc, float) and not math.isfinite(doc):
        return where, doc
    items = (doc.items() if isinstance(doc, dict)
             else enumerate(doc) if isinstance(doc, (list, tuple)) else ())
    for k, v in items:
        found = _first_non_finite(v, f"{where}.{k}" if isinstance(k, str) else f"{where}[{k}]")
        if found[0]:
            return found
    return "", 0.0


def output(args: argparse.Namespace, doc: dict[str, Any], *, figure: str | None = None,
           show: Callable[[Console, dict[str, Any]], None]) -> int:
    """Write the optional figure (named by ``args.figure``), then the JSON document or the
    human tables. `figure` names a function of `report.figures`."""
    path = getattr(args, "figure", None)
    if figure and path:
        from ultracluster.report import figures

        getattr(figures, figure)(doc, path)
    if args.json:
        emit_json(doc)
    else:
        show(console(), doc)
    return 0


def console() -> Console:
    """Rich console; wide when writing to a file or pipe so tables do not wrap."""
    return Console(width=None if sys.stdout.isatty() else 150)
