"""Runtime benchmarks: site-sync modes at equal tokens, over an emulated WAN, and overhead.

    nice -n 10 python benchmarks/bench_runtime.py [--sections equal,wan] [--steps 2100]

Every ratio is measured in the same run on this machine (2 sites x 1 worker, the Python stdlib
corpus, gloo on CPU). Sections:

- `equal` (about an hour on a quiet 2-core machine): ddp vs diloco vs streaming with the
  defaults, at equal tokens: eval loss (target: within 3%) and inter-site bytes (the default
  DDP warm-up, 100 of the 2,100 steps, holds most of them here: about 18x fewer than DDP's;
  the 113x of the steady state is the `wan` section's >= 100x). The model is the
  0.43M-parameter byte-level Llama of `configs/bytes-0.4m.json`, trained on 2,100 x 4,096 =
  8.6M tokens, about 20 tokens per parameter: the compute-optimal budget at which the DiLoCo
  scaling-law study (Charles et al. 2025) compares DiLoCo with data parallelism.
- `wan` (a few minutes): the `tiny` model over an emulated 1 Gbit/s, 20 ms WAN, DDP (its
  all-reduce overlapping backward) against diloco (H = 50, 8-bit), at the default batch
  (8 x 128 tokens a worker) and at a communication-bound one (1 x 32 tokens, where DDP's
  exchange is several times its compute), each beside what `ultracluster train --predict`
  (the simulator, on this machine's calibrated cluster file) predicts for the same run; and
  the pair without a WAN (overhead).
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
    s["config"] = cfg
    print(f"{name:28s} eval {s['eval_loss']:.4f} train {s['final_train_loss']:.4f} "
          f"tok/s {s['tokens_per_s']:,.0f} step {s['step_time_s']:.3f} s "
          f"inter-site {s['bytes']['inter_site'] / 1e6:,.2f} MB", flush=True)
    return s


def equal_tokens(tmp: Path, steps: int) -> list[str]:
    model = str(Path(__file__).parent / "configs" / "bytes-0.4m.json")
    base = dict(model=model, sites=2, workers_per_site=1, steps=steps, micro_batch=16,
                seq_len=128, eval_batches=32)
    ddp = job(tmp, "ddp", site_sync="ddp", **base)
    dil = job(tmp, "diloco-defaults", site_sync="diloco", **base)
    stm = job(tmp, "streaming-defaults", site_sync="streaming", **base)

    def gap(s: dict[str, Any]) -> float:
        return float(100 * (s["eval_loss"] - ddp["eval_loss"]) / ddp["eval_loss"])

    def fewer(s: dict[str, Any]) -> float:
        return float(ddp["bytes"]["inter_site"] / max(s["bytes"]["inter_site"], 1))

    lines = ["| run (defaults) | H | F | outer lr / momentum | DDP warm-up | eval loss | "
             "vs DDP | inter-site MB | fewer bytes than DDP |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
             f"| ddp | | | | | {ddp['eval_loss']:.4f} | | "
             f"{ddp['bytes']['inter_site'] / 1e6:,.1f} | |"]
    for name, s in (("diloco", dil), ("streaming", stm)):
        c = s["config"]
        lines.append(f"| {name} | {c.inner_steps} | {c.fragments} | {c.outer_lr} / "
                     f"{c.outer_momentum} | {c.sync_warmup_steps} | {s['eval_loss']:.4f} | "
                     f"{gap(s):+.2f}% | {s['bytes']['inter_site'] / 1e6:,.2f} | "
                     f"{fewer(s):,.0f}x |")
    return lines


def wan(tmp: Path, steps: int) -> list[str]:
    from ultracluster.cli.closedloop import predict
    from ultracluster.run import calibrate

    cluster = tmp / "local.toml"
    calibrate.save(calibrate.calibrated_cluster(calibrate.measure()), cluster)
    link = dict(wan_gbps=1.0, wan_latency_ms=20.0)
    batches = {"default batch (8 x 128)": dict(micro_batch=8, seq_len=128),
               "communication-bound (1 x 32)": dict(micro_batch=1, seq_len=32)}
    lines = ["| batch per worker | WAN | ddp tokens/s | diloco tokens/s | diloco / ddp | "
             "predicted diloco / ddp | ddp step: compute / exchange (predicted) | "
             "inter-site bytes, ddp / diloco |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for label, batch in batches.items():
        for wan_kw, wan_label in ((link, "1 Gbit/s, 20 ms"), ({}, "none")):
            if not wan_kw and "default" not in label:
                continue
            kw: dict[str, Any] = dict(sites=2, workers_per_site=1, steps=steps, **batch,
                                      **wan_kw)
            tag = f"{batch['micro_batch']}x{batch['seq_len']}-{'wan' if wan_kw else 'nowan'}"
            d = job(tmp, f"ddp-{tag}", site_sync="ddp", **kw)
            # the steady state: no DDP warm-up (a one-off cost the simulator's step leaves out)
            g = job(tmp, f"diloco-{tag}", site_sync="diloco", inner_steps=50, sync_bits=8,
                    sync_warmup_steps=0, **kw)
            pd = predict(d["config"], cluster_file=str(cluster))
            pg = predict(g["config"], cluster_file=str(cluster))
            b = pd["breakdown"]
            compute = b["compute"]
            exchange = b["dp_exposed"] + pd["overlapped"]["dp"]
            lines.append(
                f"| {label} | {wan_label} | {d['tokens_per_s']:,.0f} | "
                f"{g['tokens_per_s']:,.0f} | {g['tokens_per_s'] / d['tokens_per_s']:.2f}x | "
                f"{pg['tokens_per_s'] / pd['tokens_per_s']:.2f}x | "
                f"{compute * 1e3:,.0f} ms / {exchange * 1e3:,.0f} ms | "
                f"{d['bytes']['inter_site'] / max(g['bytes']['inter_site'], 1):,.0f}x |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sections", default="equal,wan")
    ap.add_argument("--steps", type=int, default=2100)
    ap.add_argument("--wan-steps", type=int, default=200,
                    help="steps of each WAN run: 4 outer steps of H = 50, so that tokens/s is "
                         "the steady state's, not the start's (default 200)")
    ap.add_argument("--out", default="docs/runtime-bench.md")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="uc-bench-"))
    lines: list[str] = []
    sections = args.sections.split(",")
    if "wan" in sections:
        lines += wan(tmp, args.wan_steps) + [""]
    if "equal" in sections:
        lines += equal_tokens(tmp, args.steps) + [""]
    text = "\n".join(lines)
    print(text)
    atomic_write_text(args.out, text)


if __name__ == "__main__":
    main()
