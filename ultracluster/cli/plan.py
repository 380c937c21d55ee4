"""``ultracluster plan`` and ``ultracluster compare``: search every plan and rank them."""

from __future__ import annotations

import argparse

from ultracluster.cli._inputs import add_search_args, run_search, search_cluster, search_job
from ultracluster.cli._output import console, emit_json
from ultracluster.errors import ConfigError
from ultracluster.plan import save_plan
from ultracluster.report import tables_plan


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``plan`` and ``compare``."""
    p = sub.add_parser("plan", help="search every valid plan and rank them (the main job)")
    add_search_args(p)
    p.add_argument("--save", help="write the best plan as TOML (for simulate/train --plan)")
    p.add_argument("--figure", help="write the Pareto front as a PNG")
    p.set_defaults(handler=run_plan)
    c = sub.add_parser("compare", help="the best plan on each of several clusters")
    add_search_args(c, many_clusters=True)
    c.set_defaults(handler=run_compare)


def run_plan(args: argparse.Namespace) -> int:
    """Rank the plans for one cluster; optionally save the best and draw the Pareto front."""
    cluster = search_cluster(args.cluster, args)
    job = search_job(args)
    res = run_search(cluster, args, job, quiet=args.json)
    doc = tables_plan.search_doc(res, cluster=cluster.name, model=args.model, job=job)
    if args.save:
        save_plan(res.plans[0].plan, args.save)
    if args.figure:
        from ultracluster.report import figures

        figures.pareto_figure(doc, args.figure)
    if args.json:
        emit_json(doc)
    else:
        tables_plan.print_search(console(), doc, saved=args.save)
    return 0


def run_compare(args: argparse.Namespace) -> int:
    """The best plan on each of two or more clusters, side by side."""
    names = args.clusters
    if len(names) < 2:
        raise ConfigError("compare: give at least two clusters (--cluster A --cluster B)")
    job = search_job(args)
    docs = []
    for name in names:
        res = run_search(search_cluster(name, args), args, job, quiet=args.json)
        docs.append(tables_plan.search_doc(res, cluster=name, model=args.model, job=job))
    doc = tables_plan.compare_doc(docs)
    if args.json:
        emit_json(doc)
    else:
        tables_plan.print_compare(console(), doc)
    return 0
