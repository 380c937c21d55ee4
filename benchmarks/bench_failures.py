"""Failure benchmarks: sites as failure domains against restarting everything.

    python benchmarks/bench_failures.py [--minutes 5] [--kill-every 30] [--out FILE]
        [--sections kill,straggler]

Three sites x 1 worker, DiLoCo (H = 20, 8-bit), the `tiny` model, gloo on this machine; every
ratio is measured in the same run:

1. failure-free reference: `--failure-domain site` and `--failure-domain job`, about a third of
   the failure runs' length (their rate is what the failure runs are compared with);
2. `--failure-domain site --kill-site-every 30`: every 30 s all the processes of site 1, then
   site 2, ... are SIGKILLed; torchrun restarts that site alone and it rejoins from a healthy
   peer (torchft);
3. today's baseline, `--failure-domain job --kill-site-every 30` with a checkpoint every outer
   step: each kill restarts every rank of every site from the last checkpoint; stopped after
   `--baseline-cap` times the site run's wall time if it has not finished (its useful tokens
   are then the steps its final trajectory reached);
4. `--failure-domain site --straggler-site 2 --straggler-slowdown 3`, as it is (the late site
   dropped at each outer step) and with `--inner-steps-by-time` (the slow site runs fewer inner
   steps, weighted by its tokens), each the failure-free run's length.

Reported: the job's useful tokens per second of wall time (tokens whose work reached the final
model) over the failure-free run's, the in-run goodput, site failures and rejoins, how many
outer steps of site 0 a rejoining site waited, and whether site 0 ever stopped (its longest
gap between two steps).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from ultracluster.files import atomic_write_text
from ultracluster.run.config import RunConfig
from ultracluster.run.launch import Injector, Job, job_totals, read_metrics, run, start

H = 20


def capped(cfg: RunConfig, cap_s: float) -> dict[str, Any]:
    """`run`, stopped after `cap_s` seconds: the totals of what the ranks logged, the useful
    tokens being the steps the final trajectory reached (for the restart-everything job)."""
    job: Job
    job, run_dir = start(cfg)
    injector = Injector(cfg)
    end = time.monotonic() + cap_s
    try:
        while job.poll() is None and time.monotonic() < end:
            time.sleep(0.5)
            injector.tick(job, started=bool(read_metrics(run_dir)))
        finished = job.poll() == 0
    finally:
        job.stop()
    if finished:
        s: dict[str, Any] = json.loads((run_dir / "summary.json").read_text())
    else:
        s = {"steps": 0, "eval_loss": float("nan"), "restarts": 0}
    s |= job_totals(cfg, run_dir, s)
    if not finished:
        reached = max((r["step"] for r in read_metrics(run_dir)), default=0)
        s["steps"] = reached
        s["useful_tokens"] = reached * cfg.world * cfg.micro_batch * cfg.seq_len
        s["job_tokens_per_s"] = s["useful_tokens"] / s["job_wall_s"]
        s["restarts"] = max((int(r.get("a", 0)) for f in (run_dir / "ranks").glob("*.jsonl")
                             for r in read_metrics(f.parent, f.name)), default=0)
        s["goodput"] = float("nan")
    s["site_failures"] = job.site_failures
    s["capped_s"] = None if finished else cap_s
    s["run_dir"] = str(run_dir)
    return s


def job(tmp: Path, name: str, cap_s: float | None = None, **kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = dict(sites=3, workers_per_site=1, site_sync="diloco", inner_steps=H,
                                sync_bits=8, micro_batch=8, seq_len=128, eval_batches=4,
                                sync_timeout=3.0, max_restarts=100)
    t0 = time.time()
    load_start = os.getloadavg()
    cfg = RunConfig(run_dir=str(tmp / name), **(base | kw))
    s = run(cfg) if cap_s is None else capped(cfg, cap_s)
    s["launcher_wall_s"] = time.time() - t0
    s["name"] = name
    s["load_average"] = os.getloadavg()
    s["load_average_start"] = load_start
    rows = read_metrics(Path(s["run_dir"]))
    gaps = [b["time"] - a["time"] for a, b in zip(rows, rows[1:]) if "time" in a]
    s["site0_longest_gap_s"] = max(gaps) if gaps else float("nan")
    h = int(kw.get("inner_steps", H))
    s["rejoin_outer_steps"] = rejoin_outer_steps(Path(s["run_dir"]), rows, h)
    present = [r["sites_present"] for r in rows if r["step"] % h == 0 and "sites_present" in r]
    s["outer_steps_all_sites"] = [sum(1 for n in present if n == cfg.sites), len(present)]
    inner = [r["step_s"] for r in rows if r["step"] % h]
    outer = [r["step_s"] for r in rows if r["step"] % h == 0]
    if inner and outer:  # what an outer step adds to an inner step (quorum, exchange)
        s["inner_step_s"] = statistics.median(inner)
        s["outer_step_cost_s"] = max(0.0, statistics.mean(outer) - s["inner_step_s"])
    print(f"{name:34s} steps {s['steps']:5d} wall {s['job_wall_s']:7.1f} s  useful tok/s "
          f"{s['job_tokens_per_s']:8,.0f}  goodput {s['goodput']:.1%}  failures "
          f"{s['site_failures']} rejoins {s['site_rejoins']} restarts {s['restarts']}  "
          f"eval {s['eval_loss']:.4f}  site-0 longest gap {s['site0_longest_gap_s']:.1f} s",
          flush=True)
    return s


def rejoin_outer_steps(run_dir: Path, site0: list[dict[str, Any]], h: int) -> list[int]:
    """For each rejoin: how many outer steps site 0 began between the restarted site's join
    request and its return (1: back at the first outer step begun after it asked)."""
    out = []
    for f in sorted((run_dir / "ranks").glob("rank-*.jsonl")):
        events = [r for r in read_metrics(f.parent, f.name) if "event" in r]
        for a, b in zip(events, events[1:]):
            if a["event"] == "joining" and b["event"] == "rejoined" and a["a"] > 0:
                prev = {r["step"]: r["time"] for r in site0}
                out.append(sum(1 for r in site0 if r["step"] % h == 0 and r["time"] < b["time"]
                               and prev.get(r["step"] - 1, 0.0) > a["time"]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=5.0, help="failure runs' target length")
    ap.add_argument("--kill-every", type=float, default=30.0)
    ap.add_argument("--reference-steps", type=int, default=200,
                    help="failure-free and straggler runs' steps")
    ap.add_argument("--kill-inner-steps", type=int, default=0,
                    help="H of the kill runs (default: Young/Daly's interval from the "
                         "failure-free run's outer-step cost and the kill rate)")
    ap.add_argument("--baseline-cap", type=float, default=1.5,
                    help="stop the restart-everything run after this many times the site "
                         "run's wall time")
    ap.add_argument("--sections", default="kill,straggler",
                    help="comma-separated: kill (site killed every --kill-every s, both "
                         "failure domains), straggler (site 2 slowed 3x)")
    ap.add_argument("--out", default="docs/runtime-failures-bench.md")
    ap.add_argument("--keep", action="store_true",
                    help="keep the runs' folders (rank logs) and print where they are")
    args = ap.parse_args()
    sections = set(args.sections.split(","))
    tmp = Path(tempfile.mkdtemp(prefix="uc-fail-"))
    runs: list[dict[str, Any]] = []
    lines = ["| comparison | value | target |", "| --- | ---: | ---: |"]

    def rate(s: dict[str, Any], ref: dict[str, Any]) -> float:
        return float(s["job_tokens_per_s"] / ref["job_tokens_per_s"])

    try:
        ff_site = job(tmp, "site, failure-free", failure_domain="site",
                      steps=args.reference_steps)
        runs.append(ff_site)
        if "kill" in sections:
            # H for this failure rate (Young 1974, Daly 2006): an outer step is the moment a
            # site's work is saved into the global model, so the interval that loses least is
            # sqrt(2 x its cost x a site's MTBF), as for checkpoints
            mtbf = args.kill_every * 2  # sites 1 and 2 are killed in turn
            hk = args.kill_inner_steps or max(1, min(H, round(math.sqrt(
                2 * ff_site["outer_step_cost_s"] * mtbf) / ff_site["inner_step_s"])))
            print(f"kill runs: H = {hk} (outer step cost {ff_site['outer_step_cost_s']:.2f} s, "
                  f"inner step {ff_site['inner_step_s']:.2f} s, a site's MTBF {mtbf:.0f} s)",
                  flush=True)
            lines.insert(2, f"| H of the kill runs (sqrt(2 x outer-step cost "
                            f"{ff_site['outer_step_cost_s']:.2f} s x a site's MTBF {mtbf:.0f} s)"
                            f" / inner step {ff_site['inner_step_s']:.2f} s) | {hk} | |")
            ref = ff_site
            if hk != H:
                ref = job(tmp, f"site, failure-free, H = {hk}", failure_domain="site",
                          steps=args.reference_steps, inner_steps=hk)
                runs.append(ref)
            ff_job = job(tmp, f"job, failure-free, H = {hk}", failure_domain="job",
                         steps=args.reference_steps, checkpoint_dir=str(tmp / "ckpt-ff"),
                         checkpoint_every=hk, inner_steps=hk)
            steps_per_s = args.reference_steps / ref["job_wall_s"]
            steps = max(hk, int(steps_per_s * args.minutes * 60) // hk * hk)
            every = f"{args.kill_every:.0f} s"
            site = job(tmp, f"site, kill a site every {every}, H = {hk}", failure_domain="site",
                       steps=steps, kill_site_every=args.kill_every, inner_steps=hk)
            base = job(tmp, f"job (restart all), kill every {every}, H = {hk}",
                       failure_domain="job", steps=steps, kill_site_every=args.kill_every,
                       checkpoint_dir=str(tmp / "ckpt"), checkpoint_every=hk, inner_steps=hk,
                       cap_s=args.baseline_cap * site["launcher_wall_s"])
            runs += [ff_job, site, base]
            capped_note = (f" (stopped after {base['capped_s']:.0f} s at step {base['steps']}"
                           f" of {steps})" if base.get("capped_s") else "")
            lines += [
                f"| useful tokens/s, site failure domain with a site killed every {every} / "
                f"failure-free | {rate(site, ref):.2f}x | >= 0.80x |",
                f"| the same against the failure-free run at H = {H} | "
                f"{rate(site, ff_site):.2f}x | |",
                f"| useful tokens/s, restart everything with a site killed every {every} / "
                f"failure-free{capped_note} | {rate(base, ff_job):.2f}x | (baseline) |",
                f"| site 0's longest pause between two steps, site failure domain | "
                f"{site['site0_longest_gap_s']:.1f} s | the others never stop |",
                f"| site 0's longest pause between two steps, restart everything | "
                f"{base['site0_longest_gap_s']:.1f} s | |",
                f"| outer steps a restarted site waited before rejoining (each rejoin) | "
                f"{', '.join(str(x) for x in site['rejoin_outer_steps']) or '-'} | <= 1 |",
                f"| site 0's outer steps with every site in the exchange, site failure domain | "
                f"{site['outer_steps_all_sites'][0]} of {site['outer_steps_all_sites'][1]} | |",
            ]
        if "straggler" in sections:
            slow = job(tmp, "site, site 2 slowed 3x (dropped when late)", failure_domain="site",
                       steps=args.reference_steps, straggler_site=2, straggler_slowdown=3.0)
            paced = job(tmp, "site, site 2 slowed 3x, --inner-steps-by-time",
                        failure_domain="site", steps=args.reference_steps, straggler_site=2,
                        straggler_slowdown=3.0, inner_steps_by_time=True)
            runs += [slow, paced]
            lines += [
                f"| useful tokens/s, site 2 slowed 3x / failure-free | {rate(slow, ff_site):.2f}x"
                " | >= 0.60x |",
                f"| useful tokens/s, site 2 slowed 3x with --inner-steps-by-time / failure-free "
                f"| {rate(paced, ff_site):.2f}x | >= 0.60x |",
            ]
    finally:
        if args.keep:
            print(f"runs kept in {tmp}", flush=True)
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    lines += [
        "",
        "| run | steps | wall s | useful tokens/s | goodput | site failures | rejoins | "
        "restarts | tokens (all attempts) | useful tokens | eval loss | load average, start / end |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for s in runs:
        lines.append(f"| {s['name']} | {s['steps']} | {s['job_wall_s']:.0f} | "
                     f"{s['job_tokens_per_s']:,.0f} | {s['goodput']:.0%} | {s['site_failures']} "
                     f"| {s.get('site_rejoins', '-')} | {s['restarts']} | {s['tokens']:,} | "
                     f"{s['useful_tokens']:,} | {s['eval_loss']:.4f} | "
                     f"{s['load_average_start'][0]:.1f} / {s['load_average'][0]:.1f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    atomic_write_text(Path(args.out), text)
    atomic_write_text(Path(args.out).with_suffix(".json"), json.dumps(runs, indent=1,
                                                                      default=str))


if __name__ == "__main__":
    main()
