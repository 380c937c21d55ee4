"""The closed loop's table: the simulator's prediction beside the runtime's measurement.

    python benchmarks/bench_closed_loop.py [--steps 40] [--out docs/closed-loop-table.md]

Calibrates this machine (`ultracluster calibrate`), then runs every site-sync mode on 2 sites
x 1 worker, with and without an emulated WAN, and prints predicted vs measured median step
time, tokens/s and inter-site bytes (target: step time within 15%, bytes equal).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from ultracluster.cli.closedloop import predict
from ultracluster.files import atomic_write_text
from ultracluster.plan.vocab import RunSync
from ultracluster.run import calibrate
from ultracluster.run.config import RunConfig
from ultracluster.run.launch import run

MODES: dict[RunSync, dict[str, int]] = {
    RunSync.DDP: {},
    RunSync.HIERARCHICAL: {},
    # the steady state the simulator predicts: no DDP warm-up
    RunSync.DILOCO: {"inner_steps": 20, "sync_bits": 8, "sync_warmup_steps": 0},
    RunSync.STREAMING: {"inner_steps": 20, "fragments": 4, "sync_bits": 8, "sync_warmup_steps": 0},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--out", default="docs/closed-loop-table.md")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="uc-loop-"))
    cal = tmp / "local.toml"
    calibrate.save(calibrate.calibrated_cluster(calibrate.measure()), cal)
    lines = ["| mode | WAN | measured step s | predicted | error | measured tok/s | predicted |"
             " inter-site MB measured | predicted |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    errs = []
    for wan in (None, (1.0, 20.0)):
        for mode, kw in MODES.items():
            cfg = RunConfig(site_sync=mode, steps=args.steps, run_dir=str(tmp / f"{mode}-{wan}"),
                            wan_gbps=wan[0] if wan else None,
                            wan_latency_ms=wan[1] if wan else 0.0, **kw)  # type: ignore[arg-type]
            s = run(cfg)
            p = predict(cfg, cluster_file=str(cal))
            err = 100 * (p["step_time_s"] - s["step_time_s"]) / s["step_time_s"]
            errs.append(abs(err))
            lines.append(
                f"| {mode} | {'1 Gbit/s, 20 ms' if wan else 'none'} | {s['step_time_s']:.4f} | "
                f"{p['step_time_s']:.4f} | {err:+.1f}% | {s['tokens_per_s']:,.0f} | "
                f"{p['tokens_per_s']:,.0f} | {s['bytes']['inter_site'] / 1e6:,.2f} | "
                f"{p['inter_site_bytes'] / 1e6:,.2f} |")
            print(lines[-1], flush=True)
    lines.append("")
    lines.append(f"Median |step-time error| {sorted(errs)[len(errs) // 2]:.1f}%, "
                 f"max {max(errs):.1f}%.")
    text = "\n".join(lines) + "\n"
    print(text)
    atomic_write_text(args.out, text)


if __name__ == "__main__":
    main()
