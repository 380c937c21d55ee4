"""``ultracluster sweep``: the best plan as one field of the cluster or job varies."""

from __future__ import annotations

import argparse
import dataclasses

from ultracluster.cli._inputs import add_search_args, run_search, search_cluster, search_job
from ultracluster.cli._output import console, emit_json
from ultracluster.cluster import Cluster
from ultracluster.errors import ConfigError
from ultracluster.report import tables_plan
from ultracluster.units import GBPS, parse_count, parse_whole

SWEEP_FIELDS = ("inter-site-gbps", "sites", "max-chips", "pue", "tokens")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``sweep``."""
    s = sub.add_parser("sweep", help="best plan as one field varies; table and PNG figure")
    add_search_args(s)
    s.add_argument("--vary", required=True, help=f"FIELD=V1,V2,... with FIELD in {SWEEP_FIELDS}")
    s.add_argument("--figure", default=None, help="PNG path (default sweep-FIELD.png)")
    s.set_defaults(handler=run_sweep)


def _sweep_value(field: str, raw: str) -> float:
    if field in ("sites", "max-chips"):
        return parse_whole(raw, field=f"--vary {field}")
    return parse_count(raw, field=f"--vary {field}")


def _apply(field: str, value: float, cluster: Cluster, args: argparse.Namespace
           ) -> tuple[Cluster, argparse.Namespace]:
    a = argparse.Namespace(**vars(args))
    if field == "inter-site-gbps":
        links = tuple(dataclasses.replace(k, bandwidth_bytes_per_s=value * GBPS)
                      for k in cluster.links)
        return dataclasses.replace(cluster, links=links), a
    if field == "sites":
        n = int(value)
        if not 1 <= n <= cluster.num_sites:
            raise ConfigError(f"--vary sites: {n} is not in 1..{cluster.num_sites}")
        return cluster.restrict(site_names=tuple(s.name for s in cluster.sites[:n])), a
    if field == "max-chips":
        a.max_chips = str(int(value))
        return cluster, a
    if field == "pue":
        return dataclasses.replace(cluster, sites=tuple(
            dataclasses.replace(s, pue=value) for s in cluster.sites)), a
    a.tokens = str(value)
    return cluster, a


def run_sweep(args: argparse.Namespace) -> int:
    """Search once per value of ``--vary FIELD=V1,V2,...``; a table and a PNG figure."""
    field, _, values = args.vary.partition("=")
    field = field.strip()
    if field not in SWEEP_FIELDS or not values:
        raise ConfigError(f"--vary: {args.vary!r} must be FIELD=V1,V2,... with FIELD in "
                          f"{', '.join(SWEEP_FIELDS)}")
    base = search_cluster(args.cluster, args)
    points = []
    for raw in values.split(","):
        value = _sweep_value(field, raw.strip())
        cluster, a = _apply(field, value, base, args)
        res = run_search(cluster, a, search_job(a), quiet=args.json)
        points.append({"value": value, "raw": raw.strip(), "best": res.plans[0].to_json()})
    doc = {"cluster": base.name, "model": args.model, "field": field, "points": points}
    from ultracluster.report import figures

    path = args.figure or f"sweep-{field}.png"
    figures.sweep_figure(doc, path)
    doc["figure"] = path
    if args.json:
        emit_json(doc)
    else:
        tables_plan.print_sweep(console(), doc)
    return 0
