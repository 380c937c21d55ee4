"""Runtime benchmarks: site-sync modes at equal tokens, over an emulated WAN, and overhead.

    python benchmarks/bench_runtime.py [--steps 2100] [--out docs/runtime-bench.md]

Every ratio is measured in the same run on this machine (2 sites x 1 worker, the Python stdlib
corpus, gloo on CPU; about 15 minutes on 2 cores):

1. equal tokens: ddp vs diloco (H=50, 8-bit) vs streaming (H=50, F=5, 8-bit): eval loss and
   inter-site bytes (target: >= 100x fewer bytes, eval loss within 3%). The model is the
   0.43M-parameter byte-level Llama of `configs/bytes-0.4m.json`, trained on 2,100 x 4,096 =
   8.6M tokens, about 20 tokens per parameter: the compute-optimal budget at which the DiLoCo
   scaling-law studies (Charles et al. 2025) compare DiLoCo with data parallelism. DiLoCo runs
   with the paper's outer step (lr 0.7, Nesterov 0.9) and, as a second row, with plain
   averaging (outer lr 1, no momentum);
2. an emulated WAN of 1 Gbit/s and 20 ms: tokens/s of diloco over ddp (target >= 5x);
3. no WAN: tokens/s of diloco over plain DDP (target >= 0.95x).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from ultracluster.files import atomic_write_text
from ultracluster.run.config import RunConfig
from ultracluster.run.launch import run


def job(tmp: Path, name: str, **kw: Any) -> dict[str, Any]:
    cfg = RunConfig(run_dir=str(tmp / name), **kw)
    s = run(cfg)
    print(f"{name:28s} eval {s['eval_loss']:.4f} train {s['final_train_loss']:.4f} "
          f"tok/s {s['tokens_per_s']:,.0f} inter-site {s['bytes']['inter_site'] / 1e6:,.2f} MB")
    return s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--steps", type=int, default=2100)
    ap.add_argument("--out", default="docs/runtime-bench.md")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="uc-bench-"))
    model = str(Path(__file__).parent / "configs" / "bytes-0.4m.json")
    base = dict(model=model, sites=2, workers_per_site=1, steps=args.steps, micro_batch=16,
                seq_len=128, eval_batches=32)
    ddp = job(tmp, "ddp", site_sync="ddp", **base)
    dil = job(tmp, "diloco-H50-8b", site_sync="diloco", inner_steps=50, sync_bits=8, **base)
    avg = job(tmp, "diloco-H50-8b-averaging", site_sync="diloco", inner_steps=50, sync_bits=8,
              outer_lr=1.0, outer_momentum=0.0, **base)
    stm = job(tmp, "streaming-H50-F5-8b", site_sync="streaming", inner_steps=50, fragments=5,
              sync_bits=8, **base)
    wan = dict(sites=2, workers_per_site=1, steps=60, micro_batch=1, seq_len=32,
               wan_gbps=1.0, wan_latency_ms=20.0)
    wddp = job(tmp, "ddp-wan-1g-20ms", site_sync="ddp", **wan)
    wdil = job(tmp, "diloco-wan-1g-20ms", site_sync="diloco", inner_steps=50, sync_bits=8, **wan)
    nowan = dict(sites=2, workers_per_site=1, steps=60, micro_batch=8, seq_len=128)
    nddp = job(tmp, "ddp-no-wan", site_sync="ddp", **nowan)
    ndil = job(tmp, "diloco-no-wan", site_sync="diloco", inner_steps=50, sync_bits=8, **nowan)

    def bytes_ratio(s: dict[str, Any]) -> float:
        return ddp["bytes"]["inter_site"] / max(s["bytes"]["inter_site"], 1)

    def loss_gap(s: dict[str, Any]) -> float:
        return 100 * (s["eval_loss"] - ddp["eval_loss"]) / ddp["eval_loss"]

    lines = [
        "| comparison | value | target |",
        "| --- | ---: | ---: |",
        f"| inter-site bytes, ddp / diloco (H=50, 8-bit) | {bytes_ratio(dil):,.0f}x | >= 100x |",
        f"| inter-site bytes, ddp / streaming (H=50, F=5, 8-bit) | {bytes_ratio(stm):,.0f}x | "
        ">= 100x |",
        f"| eval loss, diloco vs ddp | {loss_gap(dil):+.2f}% | within 3% |",
        f"| eval loss, diloco with plain averaging vs ddp | {loss_gap(avg):+.2f}% | within 3% |",
        f"| eval loss, streaming vs ddp | {loss_gap(stm):+.2f}% | within 3% |",
        f"| tokens/s over 1 Gbit/s + 20 ms WAN, diloco / ddp | "
        f"{wdil['tokens_per_s'] / wddp['tokens_per_s']:.1f}x | >= 5x |",
        f"| tokens/s without WAN, diloco / DDP | "
        f"{ndil['tokens_per_s'] / nddp['tokens_per_s']:.2f}x | >= 0.95x |",
        "",
        "| run | eval loss | tokens/s | inter-site MB |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, s in (("ddp", ddp), ("diloco H50 8-bit", dil),
                    ("diloco H50 8-bit, plain averaging", avg), ("streaming H50 F5 8-bit", stm),
                    ("ddp, WAN 1 Gbit/s 20 ms", wddp), ("diloco, WAN 1 Gbit/s 20 ms", wdil),
                    ("ddp, no WAN", nddp), ("diloco, no WAN", ndil)):
        lines.append(f"| {name} | {s['eval_loss']:.4f} | {s['tokens_per_s']:,.0f} | "
                     f"{s['bytes']['inter_site'] / 1e6:,.2f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    atomic_write_text(args.out, text)


if __name__ == "__main__":
    main()
