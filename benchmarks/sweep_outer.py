"""DiLoCo's outer step at equal tokens: eval loss against DDP over a grid of (outer lr, momentum).

    python benchmarks/sweep_outer.py [--grid 1.0:0,0.7:0.5,0.7:0.9] [--seeds 0,1] [--steps 2100]

The same job as the equal-token comparison of `bench_runtime.py` (2 sites x 1 worker, the
0.43M-parameter model of `configs/bytes-0.4m.json`, H = 50, 8-bit, 8.6M tokens); one DDP run
per seed is the baseline for that seed (a seed sets the initial weights and the data order).
About 3 minutes a run on this 2-core machine.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from bench_runtime import job

from ultracluster.files import atomic_write_text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--grid", default="1.0:0,0.7:0.5,0.7:0.9", help="lr:momentum,...")
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--steps", type=int, default=2100)
    ap.add_argument("--out", default="docs/runtime-outer-sweep.md")
    args = ap.parse_args()
    grid = [tuple(float(v) for v in g.split(":")) for g in args.grid.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="uc-sweep-"))
    model = str(Path(__file__).parent / "configs" / "bytes-0.4m.json")
    base = dict(model=model, sites=2, workers_per_site=1, steps=args.steps, micro_batch=16,
                seq_len=128, eval_batches=32)
    gaps: dict[tuple[float, ...], list[float]] = {g: [] for g in grid}
    for seed in seeds:
        ddp = job(tmp, f"ddp-s{seed}", site_sync="ddp", seed=seed, **base)["eval_loss"]
        for lr, mom in grid:
            s = job(tmp, f"diloco-{lr}-{mom}-s{seed}", site_sync="diloco", inner_steps=50,
                    sync_bits=8, outer_lr=lr, outer_momentum=mom, seed=seed, **base)
            gaps[(lr, mom)].append(100 * (s["eval_loss"] - ddp) / ddp)
    lines = ["| outer lr | outer momentum | " + " | ".join(f"seed {s}" for s in seeds)
             + " | mean |", "| ---: | ---: | " + "---: | " * (len(seeds) + 1)]
    for (lr, mom), g in gaps.items():
        lines.append(f"| {lr} | {mom} | " + " | ".join(f"{x:+.2f}%" for x in g)
                     + f" | {statistics.mean(g):+.2f}% |")
    text = "\n".join(lines) + "\n"
    print(text)
    atomic_write_text(args.out, text)


if __name__ == "__main__":
    main()
