"""``ultracluster train``: really train across emulated sites on this machine."""

from __future__ import annotations

import argparse
from typing import Any

from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ultracluster.cli._output import console, emit_json
from ultracluster.cli.closedloop import predict
from ultracluster.run.config import add_flags, config_from_args
from ultracluster.run.launch import run


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``train``."""
    p = sub.add_parser("train", help="train a real model across sites (torchrun, gloo)")
    add_flags(p)
    p.add_argument("--json", action="store_true", help="print one JSON summary document")
    p.add_argument("--predict", action="store_true",
                   help="put the simulator's prediction for this run beside the measurement")
    p.add_argument("--cluster", default="local",
                   help="calibrated cluster file for --predict (from `ultracluster calibrate`)")
    p.set_defaults(handler=run_train)


def _with_prediction(summary: dict[str, Any], args: argparse.Namespace, cfg: Any
                     ) -> dict[str, Any]:
    if not args.predict:
        return summary
    pred = predict(cfg, cluster_file=args.cluster)
    summary["prediction"] = pred
    summary["prediction_error_pct"] = {
        "step_time_s": 100 * (pred["step_time_s"] - summary["step_time_s"])
        / summary["step_time_s"],
        "inter_site_bytes": (100 * (pred["inter_site_bytes"] - summary["bytes"]["inter_site"])
                             / summary["bytes"]["inter_site"])
        if summary["bytes"]["inter_site"] else None,
    }
    return summary


def run_train(args: argparse.Namespace) -> int:
    """Train with torchrun across the emulated sites; a progress bar and a summary table, or
    the JSON summary (with the prediction beside it under ``--predict``)."""
    cfg = config_from_args(args)
    if args.json:
        emit_json(_with_prediction(run(cfg), args, cfg))
        return 0
    out = console()
    out.print(f"training [b]{cfg.model}[/b]: {cfg.sites} sites x {cfg.workers_per_site} "
              f"workers, site sync [b]{cfg.site_sync}[/b], {cfg.steps} steps"
              + (", failure domain [b]site[/b]" if cfg.failure_domain == "site" else "")
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

        summary = _with_prediction(run(cfg, progress=progress), args, cfg)
    print_summary(out, summary)
    return 0


def print_summary(out: Any, s: dict[str, Any]) -> None:
    """The run's summary (and the prediction, when there is one) as one table."""
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
    if "goodput" in s and (s.get("failure_domain") == "site" or s["restarts"]
                           or s.get("site_failures")):
        t.add_row("useful tokens (all attempts: tokens above)", f"{s['useful_tokens']:,}")
        t.add_row("job tokens/s (useful / wall)", f"{s['job_tokens_per_s']:,.0f}")
        t.add_row("goodput", f"{s['goodput']:.1%}")
        t.add_row("site failures / rejoins", f"{s['site_failures']} / {s['site_rejoins']}")
    p = s.get("prediction")
    if p:
        err = s["prediction_error_pct"]
        t.add_row("[b]predicted[/b] median step",
                  f"{p['step_time_s']:.3f} s ({err['step_time_s']:+.1f}%)")
        t.add_row("[b]predicted[/b] tokens/s", f"{p['tokens_per_s']:,.0f}")
        t.add_row("[b]predicted[/b] inter-site bytes", f"{p['inter_site_bytes'] / 1e6:,.1f} MB")
    out.print(t)
