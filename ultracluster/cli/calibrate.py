"""``ultracluster calibrate``: measure this machine and write a cluster file."""

from __future__ import annotations

import argparse

from rich.table import Table

from ultracluster.cli._output import console, emit_json


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``calibrate``."""
    c = sub.add_parser("calibrate", help="measure this machine and write a cluster file")
    c.add_argument("--save", default="local.toml", help="cluster file to write")
    c.add_argument("--json", action="store_true", help="print one JSON document")
    c.set_defaults(handler=run_calibrate)


def run_calibrate(args: argparse.Namespace) -> int:
    """Measure matmul, memory and gloo figures here; write them as a cluster file."""
    from ultracluster.run import calibrate

    m = calibrate.measure()
    cluster = calibrate.calibrated_cluster(m)
    calibrate.save(cluster, args.save)
    doc = m.to_json() | {"saved": args.save}
    if args.json:
        emit_json(doc)
    else:
        out = console()
        t = Table(title="This machine, measured")
        t.add_column("figure")
        t.add_column("value", justify="right")
        for shape, r in m.matmul_flops.items():
            t.add_row(f"matmul {shape} (MxNxK, 1 thread)", f"{r / 1e9:,.1f} GFLOP/s")
        t.add_row("fitted peak / half-efficiency size",
                  f"{m.peak_flops / 1e9:,.1f} GFLOP/s / {m.half_dim:,.0f}")
        t.add_row("memory bandwidth / memory-bound efficiency (AdamW)",
                  f"{m.memory_bytes_per_s / 1e9:,.1f} GB/s / {m.memory_eff:.2f}")
        t.add_row("causal attention, forward + backward / over the GEMM peak",
                  f"{m.attention_flops / 1e9:,.1f} GFLOP/s / {m.attention_eff_ratio:.2f}")
        t.add_row("fixed cost per layer (forward + backward)",
                  f"{m.layer_overhead_s * 1e3:,.2f} ms")
        t.add_row("gloo all-reduce bandwidth / latency",
                  f"{m.gloo_bytes_per_s / 1e9:,.2f} GB/s / {m.gloo_latency_s * 1e6:,.0f} us")
        out.print(t)
        out.print(f"cluster file written to {args.save}")
    return 0
