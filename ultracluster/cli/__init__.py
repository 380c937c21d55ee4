"""The ``ultracluster`` command line: the parser, dispatch and the error contract.

Each command lives in one module of this package and registers itself once: its
``register(sub)`` adds its sub-parser and sets ``handler`` on it. This package is the only one
that imports both `run` and `simulate` (the closed loop); nothing imports it.

Every command has ``--json`` (one JSON document on stdout, nothing else); bad input prints one
line on stderr and exits 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ultracluster.cli import calibrate, plan, report, show, simulate, sweep, train, validate
from ultracluster.errors import ConfigError, InfeasiblePlanError

# In the order `ultracluster --help` lists them.
COMMAND_MODULES = (show, simulate, validate, plan, report, sweep, train, calibrate)


def build_parser() -> argparse.ArgumentParser:
    """The whole parser: one sub-parser per command, each with its handler set."""
    parser = argparse.ArgumentParser(
        prog="ultracluster",
        description="Plan, simulate and run one model's training on a multi-site ultra-cluster.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for module in COMMAND_MODULES:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; bad input is one line on stderr and exit status 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status: int = args.handler(args)
        return status
    except (ConfigError, InfeasiblePlanError) as e:
        print(f"ultracluster {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ultracluster: interrupted", file=sys.stderr)
        return 130

