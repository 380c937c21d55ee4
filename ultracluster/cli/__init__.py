"""The ``ultracluster`` command line: the parser, dispatch and the error contract.

Each command lives in one module of this package and registers itself once: its
``register(sub)`` adds its sub-parser and sets ``handler`` on it. This package is the only one
that imports both `run` and `simulate` (the closed loop); nothing imports it.

Every command has ``--json`` (one JSON document on stdout, nothing else); bad input prints one
line on stderr and exits 2.
"""

from __future__ import annotations

import argparse
import functools
import re
import sys
from collections.abc import Sequence
from typing import NoReturn

import numpy as np

from ultracluster.cli import calibrate, plan, report, show, simulate, sweep, train, validate
from ultracluster.errors import ConfigError, InfeasiblePlanError

# In the order `ultracluster --help` lists them.
COMMAND_MODULES = (show, simulate, validate, plan, report, sweep, train, calibrate)


_ARGPARSE_FORMS = (
    (re.compile(r"^argument (\S+): invalid int value: (.*)$"), r"\1: \2 is not an integer"),
    (re.compile(r"^argument (\S+): invalid float value: (.*)$"), r"\1: \2 is not a number"),
    (re.compile(r"^argument (\S+): invalid choice: (.*) \(choose from (.*)\)$"),
     r"\1: \2 is not one of \3"),
    (re.compile(r"^argument (\S+): expected one argument$"), r"\1: expects a value"),
    (re.compile(r"^argument (\S+): (.*)$"), r"\1: \2"),
)


def one_line(message: str) -> str:
    """`message` on one line: control characters (a newline in a file name) escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)


class Parser(argparse.ArgumentParser):
    """argparse with the CLI's error contract: one line on stderr, exit status 2 (not the
    usage text); ``--help`` still prints the usage. Sub-parsers are of this class too."""

    def error(self, message: str) -> NoReturn:
        """argparse's message, reworded by `_ARGPARSE_FORMS`, as one line on stderr; exit
        status 2."""
        for pattern, form in _ARGPARSE_FORMS:
            if pattern.match(message):
                message = pattern.sub(form, message)
                break
        self.exit(2, f"{one_line(self.prog)}: error: {one_line(message)}\n")


def build_parser() -> argparse.ArgumentParser:
    """The whole parser: one sub-parser per command, each with its handler set."""
    parser = Parser(
        prog="ultracluster",
        description="Plan, simulate and run one model's training on a multi-site ultra-cluster.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for module in COMMAND_MODULES:
        module.register(sub)
    return parser


@functools.cache
def _parser() -> argparse.ArgumentParser:
    """`build_parser`, built once per process (it is stateless between `parse_args` calls, and
    building it costs about as much as a small command: in-process callers run `main` often)."""
    return build_parser()


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; bad input is one line on stderr and exit status 2."""
    args = _parser().parse_args(argv)
    try:
        # Inputs are range-checked, so an overflow or 0/0 inside the vectorised model is a
        # masked row (an infeasible plan), not news for the user's terminal; a non-finite
        # figure that reaches the output is refused by `emit_json`.
        with np.errstate(all="ignore"):
            status: int = args.handler(args)
        return status
    except (ConfigError, InfeasiblePlanError) as e:
        print(f"ultracluster {args.command}: error: {one_line(str(e))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ultracluster: interrupted", file=sys.stderr)
        return 130

