"""``ultracluster plan``, ``compare`` and ``sweep``: the planner's commands."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable
from typing import Any

from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from ultracluster.cli import console, emit_json
from ultracluster.cli_sim import add_workload_args
from ultracluster.cluster import Cluster, load_cluster
from ultracluster.errors import ConfigError
from ultracluster.plan import save_plan
from ultracluster.report import tables_plan
from ultracluster.search import SearchResult, search
from ultracluster.units import GBPS, parse_count
from ultracluster.workload import TrainingJob, load_model
from ultracluster.workload.job import DEFAULT_GLOBAL_BATCH_TOKENS, DEFAULT_SEQ_LEN

SWEEP_FIELDS = ("inter-site-gbps", "sites", "max-chips", "pue", "tokens")


def _add_search_args(p: argparse.ArgumentParser, *, many_clusters: bool = False) -> None:
    add_workload_args(p, many_clusters=many_clusters)
    p.add_argument("--global-batch", default=str(DEFAULT_GLOBAL_BATCH_TOKENS),
                   help="sequences (2048) or tokens (16M); default 16M tokens")
    p.add_argument("--seq-len", type=int, default=DEFAULT_SEQ_LEN)
    p.add_argument("--objective", default="time", choices=["time", "energy", "cost"])
    p.add_argument("--top", type=int, default=10)
    p.add_argument("--max-chips", default=None, help="use at most this many chips")
    p.add_argument("--sites", default=None, help="comma-separated site names to use")
    p.add_argument("--max-days", type=float, default=None,
                   help="only plans that finish within this many days")


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("plan", help="search every valid plan and rank them (the main job)")
    _add_search_args(p)
    p.add_argument("--save", help="write the best plan as TOML (for simulate/train --plan)")
    p.add_argument("--figure", help="write the Pareto front as a PNG")
    c = sub.add_parser("compare", help="the best plan on each of several clusters")
    _add_search_args(c, many_clusters=True)
    r = sub.add_parser("report", help="a self-contained HTML report (figures, tables)")
    _add_search_args(r)
    r.add_argument("--out", required=True, help="folder for index.html")
    s = sub.add_parser("sweep", help="best plan as one field varies; table and PNG figure")
    _add_search_args(s)
    s.add_argument("--vary", required=True, help=f"FIELD=V1,V2,... with FIELD in {SWEEP_FIELDS}")
    s.add_argument("--figure", default=None, help="PNG path (default sweep-FIELD.png)")


def _job(args: argparse.Namespace, tokens: float | None = None) -> TrainingJob:
    if args.seq_len < 1:
        raise ConfigError(f"--seq-len: {args.seq_len} must be >= 1")
    return TrainingJob.from_batch(
        tokens=tokens or parse_count(args.tokens, field="--tokens"), seq_len=args.seq_len,
        global_batch=parse_count(args.global_batch, field="--global-batch"))


def _cluster(name: str, args: argparse.Namespace) -> Cluster:
    c = load_cluster(name)
    if args.sites and args.command != "compare":
        c = c.restrict(site_names=tuple(s.strip() for s in args.sites.split(",") if s.strip()))
    return c


def _run_search(cluster: Cluster, args: argparse.Namespace, job: TrainingJob,
                quiet: bool) -> SearchResult:
    if args.top < 1:
        raise ConfigError(f"--top: {args.top} must be >= 1")
    max_chips = int(parse_count(args.max_chips, field="--max-chips")) if args.max_chips else None
    kw: dict[str, Any] = dict(cluster=cluster, model=load_model(args.model), job=job,
                              objective=args.objective, top=args.top, max_chips=max_chips,
                              price_per_chip_hour=args.price_per_chip_hour,
                              max_days=args.max_days)
    if quiet:
        return search(**kw)
    with Progress(SpinnerColumn(), TextColumn("[b]searching[/b] {task.description}"),
                  TimeElapsedColumn(), console=console(), transient=True) as bar:
        task = bar.add_task(cluster.name)

        def progress(considered: int, evaluated: int) -> None:
            bar.update(task, description=f"{cluster.name}: {evaluated:,} plans evaluated")

        return search(**kw, progress=progress)


def run_plan(args: argparse.Namespace) -> int:
    cluster = _cluster(args.cluster, args)
    job = _job(args)
    res = _run_search(cluster, args, job, quiet=args.json)
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
    names = args.clusters
    if len(names) < 2:
        raise ConfigError("compare: give at least two clusters (--cluster A --cluster B)")
    job = _job(args)
    docs = []
    for name in names:
        res = _run_search(_cluster(name, args), args, job, quiet=args.json)
        docs.append(tables_plan.search_doc(res, cluster=name, model=args.model, job=job))
    doc = tables_plan.compare_doc(docs)
    if args.json:
        emit_json(doc)
    else:
        tables_plan.print_compare(console(), doc)
    return 0


def _sweep_value(field: str, raw: str) -> float:
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
    field, _, values = args.vary.partition("=")
    field = field.strip()
    if field not in SWEEP_FIELDS or not values:
        raise ConfigError(f"--vary: {args.vary!r} must be FIELD=V1,V2,... with FIELD in "
                          f"{', '.join(SWEEP_FIELDS)}")
    base = _cluster(args.cluster, args)
    points = []
    for raw in values.split(","):
        value = _sweep_value(field, raw.strip())
        cluster, a = _apply(field, value, base, args)
        res = _run_search(cluster, a, _job(a), quiet=args.json)
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


def run_report(args: argparse.Namespace) -> int:
    import tempfile
    from pathlib import Path

    from ultracluster.report import describe, figures, html
    from ultracluster.search.candidates import SYNC_VARIANTS, SearchSpace
    from ultracluster.simulate.validate import validate

    cluster = _cluster(args.cluster, args)
    job = _job(args)
    res = _run_search(cluster, args, job, quiet=args.json)
    doc = tables_plan.search_doc(res, cluster=cluster.name, model=args.model, job=job)
    by_sync: dict[str, Any] = {}
    model = load_model(args.model)
    max_chips = int(parse_count(args.max_chips, field="--max-chips")) if args.max_chips \
        else cluster.num_chips
    for code, mode in enumerate(("sync", "diloco", "streaming")):
        space = SearchSpace(max_chips=max_chips,
                            site_sync=tuple(v for v in SYNC_VARIANTS if v[0] == code))
        try:
            r = search(cluster=cluster, model=model, job=job, objective=args.objective, top=1,
                       space=space, price_per_chip_hour=args.price_per_chip_hour,
                       max_days=args.max_days)
            best = r.plans[0].to_json()
            by_sync[mode] = best if best["plan"]["site_sync"]["mode"] == mode else None
        except ConfigError:
            by_sync[mode] = None
    results, summary = validate()
    vdoc = {"rows": [x.to_json() for x in results], "summary": summary.to_json()}
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


HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {
    "plan": run_plan, "compare": run_compare, "sweep": run_sweep, "report": run_report,
}
