"""DiLoCo's settings at equal tokens: eval loss against DDP over a small grid of
(mode, H, outer lr, outer momentum, DDP warm-up, fragments).

    nice -n 10 python benchmarks/sweep_outer.py \\
        --grid diloco:50:0.7:0.5:0,diloco:30:0.7:0.5:10 [--seeds 0] [--steps 2100]

A grid point is `mode:H:outer_lr:outer_momentum:sync_warmup_steps[:fragments[:bits[:inner_lr]]]`
(bits of the exchange, 8 by default; inner_lr, that point's peak inner learning rate). The job is
the equal-token comparison of `bench_runtime.py` (2 sites x 1 worker, the 0.43M-parameter
model of `configs/bytes-0.4m.json`, 2,100 steps x 4,096 = 8.6M tokens); one
DDP run per seed is the baseline for that seed (a seed sets the initial weights and the data
order). Each row also gives the inter-site bytes relative to DDP, since a shorter H or a
longer warm-up buys loss with bytes. About 3 minutes a run on an idle 2-core machine; the
table is rewritten after every run, so a partial sweep keeps what it measured.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

from bench_runtime import job

from ultracluster.files import atomic_write_text


def parse_point(text: str) -> dict[str, Any]:
    f = text.split(":")
    if len(f) not in (5, 6, 7, 8) or f[0] not in ("diloco", "streaming"):
        raise SystemExit(f"--grid: {text!r} is not "
                         "mode:H:lr:momentum:warmup[:fragments[:bits[:inner_lr]]]")
    p: dict[str, Any] = {"site_sync": f[0], "inner_steps": int(f[1]), "outer_lr": float(f[2]),
                         "outer_momentum": float(f[3]), "sync_warmup_steps": int(f[4]),
                         "fragments": int(f[5]) if len(f) >= 6 else 1,
                         "sync_bits": int(f[6]) if len(f) >= 7 else 8}
    if len(f) == 8:
        p["lr"] = float(f[7])
    return p


def label(p: dict[str, Any]) -> str:
    return (f"{p['site_sync']}:{p['inner_steps']}:{p['outer_lr']}:{p['outer_momentum']}:"
            f"{p['sync_warmup_steps']}:{p['fragments']}:{p['sync_bits']}b"
            + (f":lr{p['lr']:g}" if "lr" in p else ""))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--grid", default="diloco:50:0.7:0.5:0,diloco:30:0.7:0.5:0,"
                                      "diloco:50:0.7:0.5:8,diloco:30:0.7:0.5:8")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--steps", type=int, default=2100)
    ap.add_argument("--lr", type=float, default=None,
                    help="peak inner learning rate of every run, DDP's included (default: "
                         "the runtime's)")
    ap.add_argument("--out", default="docs/runtime-sweep.md")
    ap.add_argument("--ddp-cache", default=None,
                    help="JSON file of DDP baselines (eval loss, inter-site bytes) by seed, "
                         "steps and lr: DDP is deterministic, so a later sweep reuses them")
    args = ap.parse_args()
    points = [parse_point(g) for g in args.grid.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="uc-sweep-"))
    model = str(Path(__file__).parent / "configs" / "bytes-0.4m.json")
    base = dict(model=model, sites=2, workers_per_site=1, steps=args.steps, micro_batch=16,
                seq_len=128, eval_batches=32)
    if args.lr is not None:
        base["lr"] = args.lr
    lines = ["| mode | H | outer lr | outer momentum | DDP warm-up steps | F | bits | seed | "
             "eval loss | vs DDP | inter-site bytes, DDP / this |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for seed in seeds:
        key = f"seed={seed} steps={args.steps} lr={base.get('lr', 'default')}"
        cache = json.loads(Path(args.ddp_cache).read_text()) if (
            args.ddp_cache and Path(args.ddp_cache).exists()) else {}
        if key in cache:
            ddp = cache[key]
        else:
            s = job(tmp, f"ddp-s{seed}", site_sync="ddp", seed=seed, **base)
            ddp = {"eval_loss": s["eval_loss"], "bytes": s["bytes"]}
            if args.ddp_cache:
                cache[key] = ddp
                atomic_write_text(args.ddp_cache, json.dumps(cache, indent=1))
        lines.append(f"| ddp | | | | | | | {seed} | {ddp['eval_loss']:.4f} | | 1x |")
        for p in points:
            s = job(tmp, f"{label(p)}-s{seed}".replace(":", "_"), seed=seed, **{**base, **p})
            gap = 100 * (s["eval_loss"] - ddp["eval_loss"]) / ddp["eval_loss"]
            ratio = ddp["bytes"]["inter_site"] / max(s["bytes"]["inter_site"], 1)
            lines.append(f"| {p['site_sync']}{' inner lr %g' % p['lr'] if 'lr' in p else ''} | "
                         f"{p['inner_steps']} | {p['outer_lr']} | "
                         f"{p['outer_momentum']} | {p['sync_warmup_steps']} | {p['fragments']} "
                         f"| {p['sync_bits']} | {seed} | {s['eval_loss']:.4f} | {gap:+.2f}% | {ratio:,.0f}x |")
            atomic_write_text(args.out, "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
