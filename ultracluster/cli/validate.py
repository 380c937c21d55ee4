"""``ultracluster validate``: predict published measured runs and report the error."""

from __future__ import annotations

import argparse

from ultracluster.cli import _types
from ultracluster.cli._output import output
from ultracluster.report import tables_sim
from ultracluster.simulate.validate import validate_full


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``validate``."""
    v = sub.add_parser("validate", help="predict published measured runs and report the error")
    v.add_argument("--measurements", default=None, type=_types.path, help="CSV in the reference schema")
    v.add_argument("--json", action="store_true", help="print one JSON document")
    v.add_argument("--figure", help="PNG: predicted vs measured with the identity line")
    v.set_defaults(handler=run_validate)


def run_validate(args: argparse.Namespace) -> int:
    """Predict every row of the measurements CSV in-sample and leave-one-source-out; the error
    table, its summaries, intervals and their coverage."""
    doc = validate_full(args.measurements).to_json()
    return output(args, doc, figure="validation_figure", show=tables_sim.print_validation)
