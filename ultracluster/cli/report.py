"""``ultracluster report``: a self-contained HTML report (figures, tables)."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from ultracluster.cli._inputs import add_search_args, run_search, search_cluster, search_job
from ultracluster.cli._output import console, emit_json
from ultracluster.errors import ConfigError
from ultracluster.plan import SyncMode
from ultracluster.report import describe, figures, html, tables_plan
from ultracluster.search import search
from ultracluster.search.candidates import SYNC_VARIANTS, SearchSpace
from ultracluster.simulate.validate import validate_full
from ultracluster.units import parse_whole
from ultracluster.workload import load_model


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``report``."""
    r = sub.add_parser("report", help="a self-contained HTML report (figures, tables)")
    add_search_args(r)
    r.add_argument("--out", required=True, help="folder for index.html")
    r.set_defaults(handler=run_report)


def run_report(args: argparse.Namespace) -> int:
    """Search, the best plan per site-sync mode and the validation table, as one HTML page."""
    cluster = search_cluster(args.cluster, args)
    job = search_job(args)
    res = run_search(cluster, args, job, quiet=args.json)
    doc = tables_plan.search_doc(res, cluster=cluster.name, model=args.model, job=job)
    by_sync: dict[str, Any] = {}
    model = load_model(args.model)
    max_chips = parse_whole(args.max_chips, field="--max-chips") \
        if args.max_chips is not None else cluster.num_chips
    for mode in SyncMode:
        space = SearchSpace(max_chips=max_chips,
                            site_sync=tuple(v for v in SYNC_VARIANTS if v.mode == mode))
        try:
            r = search(cluster=cluster, model=model, job=job, objective=args.objective, top=1,
                       space=space, price_per_chip_hour=args.price_per_chip_hour,
                       max_days=args.max_days)
            best = r.plans[0].to_json()
            by_sync[mode] = best if best["plan"]["site_sync"]["mode"] == mode else None
        except ConfigError:
            by_sync[mode] = None
    vdoc = validate_full().to_json()
    with tempfile.TemporaryDirectory() as tmp:
        figs = {k: Path(tmp) / f"{k}.png" for k in ("step", "pareto", "validation")}
        step_doc = doc["plans"][0]
        figures.step_figure(step_doc, figs["step"])
        figures.pareto_figure(doc, figs["pareto"])
        figures.validation_figure(vdoc, figs["validation"])
        page = html.render(cluster=describe.cluster_dict(cluster), search=doc, by_sync=by_sync,
                           validation=vdoc, figures=figs)
    path = html.write(args.out, page)
    if args.json:
        emit_json({"report": str(path), "best": doc["plans"][0]})
    else:
        console().print(f"report written to {path}")
    return 0
