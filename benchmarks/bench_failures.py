"""Failure benchmarks: sites as failure domains against restarting everything.

    python benchmarks/bench_failures.py [--minutes 5] [--kill-every 30] [--out FILE]

Three sites x 1 worker, DiLoCo (H = 20, 8-bit), the `tiny` model, gloo on this machine; every
ratio is measured in the same run:

1. failure-free reference: `--failure-domain site` and `--failure-domain job`, about a third of
   the failure runs' length (their rate is what the failure runs are compared with);
2. `--failure-domain site --kill-site-every 30`: every 30 s all the processes of site 1, then
   site 2, ... are SIGKILLed; torchrun restarts that site alone and it rejoins from a healthy
   peer (torchft);
3. today's baseline, `--failure-domain job --kill-site-every 30` with a checkpoint every outer
   step: each kill restarts every rank of every site from the last checkpoint;
4. `--failure-domain site --straggler-site 2 --straggler-slowdown 3`.

Reported: the job's useful tokens per second of wall time (tokens whose work reached the final
model) over the failure-free run's, the in-run goodput, site failures and rejoins, how many
outer steps of site 0 a rejoining site waited, and whether site 0 ever stopped (its longest
gap between two steps).
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from ultracluster.files import atomic_write_text
from ultracluster.run.config import RunConfig
from ultracluster.run.launch import read_metrics, run

H = 20


def job(tmp: Path, name: str, **kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = dict(sites=3, workers_per_site=1, site_sync="diloco", inner_steps=H,
                                sync_bits=8, micro_batch=8, seq_len=128, eval_batches=4,
                                sync_timeout=3.0, max_restarts=100)
    t0 = time.time()
    s = run(RunConfig(run_dir=str(tmp / name), **(base | kw)))
    s["launcher_wall_s"] = time.time() - t0
    s["name"] = name
    rows = read_metrics(Path(s["run_dir"]))
    gaps = [b["time"] - a["time"] for a, b in zip(rows, rows[1:]) if "time" in a]
    s["site0_longest_gap_s"] = max(gaps) if gaps else float("nan")
    s["rejoin_outer_steps"] = rejoin_outer_steps(Path(s["run_dir"]), rows)
    print(f"{name:34s} steps {s['steps']:5d} wall {s['job_wall_s']:7.1f} s  useful tok/s "
          f"{s['job_tokens_per_s']:8,.0f}  goodput {s['goodput']:.1%}  failures "
          f"{s['site_failures']} rejoins {s['site_rejoins']} restarts {s['restarts']}  "
          f"eval {s['eval_loss']:.4f}  site-0 longest gap {s['site0_longest_gap_s']:.1f} s",
          flush=True)
    return s


def rejoin_outer_steps(run_dir: Path, site0: list[dict[str, Any]]) -> list[int]:
    """For each rejoin: how many outer steps site 0 began between the restarted site's join
    request and its return (1: back at the first outer step begun after it asked)."""
    out = []
    for f in sorted((run_dir / "ranks").glob("rank-*.jsonl")):
        events = [r for r in read_metrics(f.parent, f.name) if "event" in r]
        for a, b in zip(events, events[1:]):
            if a["event"] == "joining" and b["event"] == "rejoined" and a["a"] > 0:
                prev = {r["step"]: r["time"] for r in site0}
                out.append(sum(1 for r in site0 if r["step"] % H == 0 and r["time"] < b["time"]
                               and prev.get(r["step"] - 1, 0.0) > a["time"]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=5.0, help="failure runs' target length")
    ap.add_argument("--kill-every", type=float, default=30.0)
    ap.add_argument("--reference-steps", type=int, default=200)
    ap.add_argument("--out", default="docs/runtime-failures-bench.md")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="uc-fail-"))
    try:
        ff_site = job(tmp, "site, failure-free", failure_domain="site",
                      steps=args.reference_steps)
        ff_job = job(tmp, "job, failure-free", failure_domain="job", steps=args.reference_steps,
                     checkpoint_dir=str(tmp / "ckpt-ff"), checkpoint_every=H)
        steps_per_s = args.reference_steps / ff_site["job_wall_s"]
        steps = max(H, int(steps_per_s * args.minutes * 60) // H * H)
        site = job(tmp, "site, kill a site every 30 s", failure_domain="site", steps=steps,
                   kill_site_every=args.kill_every)
        base = job(tmp, "job (restart all), kill every 30 s", failure_domain="job", steps=steps,
                   kill_site_every=args.kill_every, checkpoint_dir=str(tmp / "ckpt"),
                   checkpoint_every=H)
        slow = job(tmp, "site, site 2 slowed 3x", failure_domain="site",
                   steps=args.reference_steps, straggler_site=2, straggler_slowdown=3.0)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    def rate(s: dict[str, Any], ref: dict[str, Any]) -> float:
        return float(s["job_tokens_per_s"] / ref["job_tokens_per_s"])

    lines = [
        "| comparison | value | target |",
        "| --- | ---: | ---: |",
        f"| useful tokens/s, site failure domain with a site killed every "
        f"{args.kill_every:.0f} s / failure-free | {rate(site, ff_site):.2f}x | >= 0.80x |",
        f"| useful tokens/s, restart everything with a site killed every "
        f"{args.kill_every:.0f} s / failure-free | {rate(base, ff_job):.2f}x | (baseline) |",
        f"| site 0's longest pause between two steps, site failure domain | "
        f"{site['site0_longest_gap_s']:.1f} s | the others never stop |",
        f"| site 0's longest pause between two steps, restart everything | "
        f"{base['site0_longest_gap_s']:.1f} s | |",
        f"| outer steps a restarted site waited before rejoining (each rejoin) | "
        f"{', '.join(str(x) for x in site['rejoin_outer_steps']) or '-'} | <= 1 |",
        f"| useful tokens/s, site 2 slowed 3x / failure-free | {rate(slow, ff_site):.2f}x | "
        ">= 0.60x |",
        "",
        "| run | steps | wall s | useful tokens/s | goodput | site failures | rejoins | "
        "restarts | tokens (all attempts) | useful tokens | eval loss |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for s in (ff_site, ff_job, site, base, slow):
        lines.append(f"| {s['name']} | {s['steps']} | {s['job_wall_s']:.0f} | "
                     f"{s['job_tokens_per_s']:,.0f} | {s['goodput']:.0%} | {s['site_failures']} "
                     f"| {s['site_rejoins']} | {s['restarts']} | {s['tokens']:,} | "
                     f"{s['useful_tokens']:,} | {s['eval_loss']:.4f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    atomic_write_text(Path(args.out), text)
    atomic_write_text(Path(args.out).with_suffix(".json"), json.dumps(
        [ff_site, ff_job, site, base, slow], indent=1, default=str))


if __name__ == "__main__":
    main()
