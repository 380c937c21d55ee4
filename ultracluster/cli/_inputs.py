"""The flags that name a cluster, a model and a job, and the search runner behind ``plan``,
``compare``, ``report`` and ``sweep``. Shared by several command modules; imports only
`_output` from this package.
"""

from __future__ import annotations

import argparse
from typing import Any

from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from ultracluster.cli._output import console
from ultracluster.cli._types import number, whole
from ultracluster.cluster import DEFAULT_CLUSTER, Cluster, load_cluster
from ultracluster.errors import ConfigError
from ultracluster.search import SearchResult, search
from ultracluster.units import parse_count, parse_whole
from ultracluster.workload import DEFAULT_MODEL, TrainingJob, load_model
from ultracluster.workload.job import (DEFAULT_GLOBAL_BATCH_TOKENS, DEFAULT_SEQ_LEN,
                                       DEFAULT_TOKENS, MAX_SEQ_LEN)


def add_workload_args(p: argparse.ArgumentParser, *, many_clusters: bool = False) -> None:
    """``--cluster`` (once, or repeated with `many_clusters`), ``--model``, ``--tokens``,
    ``--price-per-chip-hour`` and ``--json``."""
    if many_clusters:
        p.add_argument("--cluster", dest="clusters", action="append", default=[],
                       help="preset or cluster .toml (repeat for each cluster)")
    else:
        p.add_argument("--cluster", default=DEFAULT_CLUSTER, help="preset or cluster .toml")
    p.add_argument("--model", default=DEFAULT_MODEL, help="preset or HF config.json")
    p.add_argument("--tokens", default=str(DEFAULT_TOKENS), help="training tokens (15T, 15e12)")
    p.add_argument("--price-per-chip-hour", type=number(0.0, 1e6), default=None,
                   help="USD per chip-hour (default: the catalogue's system price)")
    p.add_argument("--json", action="store_true", help="print one JSON document")


def add_search_args(p: argparse.ArgumentParser, *, many_clusters: bool = False) -> None:
    """The workload flags plus the search's: batch, sequence, objective, limits."""
    add_workload_args(p, many_clusters=many_clusters)
    p.add_argument("--global-batch", default=str(DEFAULT_GLOBAL_BATCH_TOKENS),
                   help="sequences (2048) or tokens (16M); default 16M tokens")
    p.add_argument("--seq-len", type=whole(1, MAX_SEQ_LEN), default=DEFAULT_SEQ_LEN)
    p.add_argument("--objective", default="time", choices=["time", "energy", "cost"])
    p.add_argument("--top", type=whole(1, 1_000_000), default=10)
    p.add_argument("--max-chips", default=None, help="use at most this many chips")
    p.add_argument("--sites", default=None, help="comma-separated site names to use")
    p.add_argument("--max-days", type=number(0.0, 1e9, positive=True), default=None,
                   help="only plans that finish within this many days")


def search_job(args: argparse.Namespace, tokens: float | None = None) -> TrainingJob:
    """The training job the search flags describe (`tokens` overrides ``--tokens``)."""
    if args.seq_len < 1:
        raise ConfigError(f"--seq-len: {args.seq_len} must be >= 1")
    return TrainingJob.from_batch(
        tokens=tokens or parse_count(args.tokens, field="--tokens"), seq_len=args.seq_len,
        global_batch=parse_count(args.global_batch, field="--global-batch"))


def search_cluster(name: str, args: argparse.Namespace) -> Cluster:
    """Load cluster `name`, restricted to ``--sites`` (except for ``compare``)."""
    c = load_cluster(name)
    if args.sites is not None and args.command != "compare":
        names = tuple(s.strip() for s in args.sites.split(",") if s.strip())
        if not names:  # not "every site": an empty value is a mistake, not the default
            raise ConfigError(f"--sites: {args.sites!r} names no site (comma-separated site "
                              "names; leave the flag out for every site)")
        c = c.restrict(site_names=names)
    return c


def run_search(cluster: Cluster, args: argparse.Namespace, job: TrainingJob,
               quiet: bool) -> SearchResult:
    """Search every plan for `job` on `cluster` with the flags' objective and limits; a
    spinner on the console unless `quiet`."""
    if args.top < 1:
        raise ConfigError(f"--top: {args.top} must be >= 1")
    max_chips = (None if args.max_chips is None
                 else parse_whole(args.max_chips, field="--max-chips"))
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
