"""``ultracluster train``: really train across emulated sites on this machine."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ultracluster.cli import console, emit_json
from ultracluster.run.config import add_flags, config_from_args
from ultracluster.run.launch import run


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("train", help="train a real model across sites (torchrun, gloo)")
    add_flags(p)
    p.add_argument("--json", action="store_true", help="print one JSON summary document")


def run_train(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    if args.json:
        summary = run(cfg)
        emit_json(summary)
        return 0
    out = console()
    out.print(f"training [b]{cfg.model}[/b]: {cfg.sites} sites x {cfg.workers_per_site} "
              f"workers, site sync [b]{cfg.site_sync}[/b], {cfg.steps} steps"
              + (f", WAN {cfg.wan_gbps} Gb/s {cfg.wan_latency_ms} ms" if cfg.wan_gbps else ""))
    with Progress(TextColumn("step"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TextColumn("{task.description}"), TimeElapsedColumn(), console=out) as bar:
        task = bar.add_task("", total=cfg.steps)
        inter = 0.0

        def progress(row: dict[str, Any]) -> None:
            nonlocal inter
            inter += row["bytes_inter_site"] / 1e6
            bar.update(task, completed=row["step"],
                       description=f"loss {row['loss']:.3f}  {row['tokens_per_s']:,.0f} tok/s  "
                                   f"cross-site (rank 0) {inter:,.1f} MB")

        summary = run(cfg, progress=progress)
    print_summary(out, summary)
    return 0


def print_summary(out: Any, s: dict[str, Any]) -> None:
    t = Table(title="Training summary")
    t.add_column("figure")
    t.add_column("value", justify="right")
    for k, v in (("steps", f"{s['steps']}"), ("tokens", f"{s['tokens']:,}"),
                 ("final train loss", f"{s['final_train_loss']:.4f}"),
                 ("eval loss", f"{s['eval_loss']:.4f}"),
                 ("tokens/s", f"{s['tokens_per_s']:,.0f}"),
                 ("median step", f"{s['step_time_s']:.3f} s"), ("wall", f"{s['wall_s']:.1f} s"),
                 ("intra-site bytes", f"{s['bytes']['intra_site'] / 1e6:,.1f} MB"),
                 ("inter-site bytes", f"{s['bytes']['inter_site'] / 1e6:,.1f} MB"),
                 ("restarts", f"{s['restarts']}"), ("run folder", s["run_dir"])):
        t.add_row(k, v)
    out.print(t)


HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {"train": run_train}
