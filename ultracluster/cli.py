"""The ``ultracluster`` command line. The only module that knows every package.

Every command has ``--json`` (one JSON document on stdout, nothing else); bad input prints one
line on stderr and exits 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

from rich.console import Console

from ultracluster.errors import ConfigError, InfeasiblePlanError

Handler = Callable[[argparse.Namespace], int]
_COMMANDS: dict[str, Handler] = {}


def emit_json(doc: Any) -> None:
    sys.stdout.write(json.dumps(doc, indent=2, allow_nan=False, default=str) + "\n")


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


def _add_show(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("show", help="describe chips, systems, clusters, models")
    p.add_argument("what", choices=["chips", "systems", "clusters", "models",
                                    "chip", "system", "cluster", "model"])
    p.add_argument("name", nargs="?", help="key or file (for chip|system|cluster|model)")
    p.add_argument("--seq-len", type=int, default=None, help="context for model FLOPs")
    p.add_argument("--json", action="store_true", help="print one JSON document")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ultracluster",
        description="Plan, simulate and run one model's training on a multi-site ultra-cluster.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    _add_show(sub)
    from ultracluster import cli_plan, cli_sim, cli_train

    cli_sim.add_commands(sub)
    cli_plan.add_commands(sub)
    cli_train.add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from ultracluster import cli_plan, cli_show, cli_sim, cli_train

    handlers: dict[str, Handler] = ({"show": cli_show.run_show} | cli_sim.HANDLERS
                                    | cli_plan.HANDLERS | cli_train.HANDLERS)
    try:
        return handlers[args.command](args)
    except (ConfigError, InfeasiblePlanError) as e:
        print(f"ultracluster {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ultracluster: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
