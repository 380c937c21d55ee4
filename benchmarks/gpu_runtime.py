"""The runtime on a GPU: the 1B-class byte-level Llama on CUDA, tokens/s and MFU against the
card's dense BF16 peak (target >= 40% on an H100).

    python benchmarks/gpu_runtime.py              # on the accelerator machine, < 8 minutes
    python benchmarks/gpu_runtime.py --dry-run    # on CPU: the same code path, a tiny model

It launches `ultracluster.run.train` with torchrun on every visible GPU (one site, DDP over
NCCL; BF16 autocast, fused AdamW, each block compiled with torch.compile, PyTorch's SDPA,
which picks the flash kernel for BF16 on Hopper), with no restarts: an out-of-memory error
ends the run with one line saying which micro-batch to try. The card is looked up in a table
of known cards with their dense BF16 peaks and sources; an unknown card is refused (give
`--peak-tflops` and `--peak-source` for it) rather than assumed to be an H100 SXM.

MFU = model FLOPs per token (3 x forward: matmuls and causal attention, no recomputation) x
tokens/s per GPU / dense BF16 peak; tokens/s from the median step, so the compile steps do
not count.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ultracluster.errors import ConfigError
from ultracluster.hardware import CHIPS
from ultracluster.plan.vocab import RunSync
from ultracluster.run.config import RunConfig
from ultracluster.run.launch import read_metrics, start, wait
from ultracluster.workload import load_model

CONFIGS = Path(__file__).parent / "configs"
MODEL = CONFIGS / "llama-1b-bytes.json"
DRY_MODEL = CONFIGS / "bytes-0.4m.json"
T = 1e12
_H100_DATASHEET = ("NVIDIA H100 Tensor Core GPU datasheet (2023): BF16 Tensor Core "
                   "{sparse} TFLOPS with sparsity, half that dense")


@dataclass(frozen=True)
class Card:
    label: str
    peak_flops_bf16: float
    source: str


def _catalogue(key: str) -> Card:
    chip = CHIPS[key]
    return Card(chip.display_name, chip.peak_flops_bf16,
                f"catalogue chip {key!r}: {chip.sources['peak_flops_bf16'].ref}")


def known_cards() -> list[tuple[str, Card]]:
    """(substring of torch.cuda.get_device_name, card), most specific first."""
    return [
        ("H100 PCIe", Card("H100 PCIe", 756 * T, _H100_DATASHEET.format(sparse="1,513"))),
        ("H100 NVL", Card("H100 NVL", 835 * T, _H100_DATASHEET.format(sparse="1,671"))),
        ("H100", _catalogue("h100-sxm")),  # "NVIDIA H100 80GB HBM3": the SXM5 part
        ("H200 NVL", Card("H200 NVL", 835 * T, "NVIDIA H200 datasheet (2024): BF16 Tensor "
                                               "Core 1,671 TFLOPS with sparsity, half dense")),
        ("H200", _catalogue("h200")),
        ("H800", _catalogue("h800")),
        ("A100", _catalogue("a100-80gb")),  # 312 dense for every A100 (SXM and PCIe)
        ("B200", _catalogue("b200")),
    ]


def card_for(name: str) -> Card:
    for needle, card in known_cards():
        if needle in name:
            return card
    raise ConfigError(f"GPU {name!r} is not in the table of known cards "
                      f"({', '.join(n for n, _ in known_cards())}); give --peak-tflops and "
                      "--peak-source for it rather than assume another card's peak")


def run_with_limit(cfg: RunConfig, limit_s: float) -> dict[str, Any]:
    proc, run_dir = start(cfg)
    deadline = time.monotonic() + limit_s
    while proc.poll() is None and time.monotonic() < deadline:
        time.sleep(1.0)
    if proc.poll() is None:
        proc.stop()  # SIGTERM the torchrun agents (they stop their ranks), then SIGKILL
        steps = len(read_metrics(run_dir))
        raise ConfigError(f"stopped after --time-limit {limit_s:.0f} s at step {steps} of "
                          f"{cfg.steps}; see {run_dir}/train.log")
    return wait(proc, run_dir)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--micro-batch", type=int, default=8,
                    help="sequences per GPU per step (8 x 2048 tokens fill an estimated 65 of an "
                         "H100's 80 GB with this model)")
    ap.add_argument("--seq-len", type=int, default=2048)
    ap.add_argument("--time-limit", type=float, default=420.0,
                    help="stop the run after this many seconds (default 420)")
    ap.add_argument("--dry-run", action="store_true",
                    help="CPU check: the 0.4M model, 3 steps, no compile; --card names the "
                         "card whose peak the summary uses")
    ap.add_argument("--card", help="card name to look up (default: the visible GPU's)")
    ap.add_argument("--peak-tflops", type=float, help="dense BF16 peak of an unlisted card")
    ap.add_argument("--peak-source", help="where --peak-tflops comes from")
    ap.add_argument("--run-dir", default="runs/gpu")
    ap.add_argument("--json", action="store_true", help="print one JSON document")
    args = ap.parse_args(argv)
    import torch

    try:
        if args.dry_run:
            name = args.card or "NVIDIA H100 80GB HBM3"
            gpus, model = 1, DRY_MODEL
            kw: dict[str, Any] = dict(steps=3, micro_batch=2, seq_len=128, compile=False)
        else:
            if not torch.cuda.is_available():
                raise ConfigError("no CUDA device: run this on the accelerator machine, or "
                                  "use --dry-run to check it on CPU")
            name = args.card or torch.cuda.get_device_name(0)
            gpus, model = torch.cuda.device_count(), MODEL
            kw = dict(steps=args.steps, micro_batch=args.micro_batch, seq_len=args.seq_len,
                      compile=True)
        if args.peak_tflops is not None:
            if not (args.peak_tflops > 0 and args.peak_source):
                raise ConfigError("--peak-tflops needs a positive value and --peak-source")
            card = Card(name, args.peak_tflops * T, args.peak_source)
        else:
            card = card_for(name)
        cfg = RunConfig(model=str(model), sites=1, workers_per_site=gpus, site_sync=RunSync.DDP,
                        lr=3e-4, warmup_steps=min(5, kw["steps"]), eval_batches=2,
                        max_restarts=0, run_dir=args.run_dir, **kw)
        t0 = time.monotonic()
        try:
            s = run_with_limit(cfg, args.time_limit)
        except ConfigError as e:
            if "OutOfMemoryError" in str(e) or "out of memory" in str(e):
                raise ConfigError(f"out of memory at --micro-batch {cfg.micro_batch} x "
                                  f"--seq-len {cfg.seq_len}; try --micro-batch "
                                  f"{max(cfg.micro_batch // 2, 1)}") from None
            raise
        wall = time.monotonic() - t0
    except ConfigError as e:
        print(f"gpu_runtime: error: {e}", file=sys.stderr)
        return 2
    spec = load_model(str(model))
    per_gpu = cfg.micro_batch * cfg.seq_len / s["step_time_s"]
    flops_per_token = spec.flops_per_token(cfg.seq_len)
    mfu = flops_per_token * per_gpu / card.peak_flops_bf16
    doc = {"card": name, "card_matched": card.label,
           "peak_flops_bf16": card.peak_flops_bf16, "peak_source": card.source,
           "gpus": gpus, "dry_run": args.dry_run, "model": model.name, "params": spec.params,
           "micro_batch": cfg.micro_batch, "seq_len": cfg.seq_len, "steps": cfg.steps,
           "median_step_s": s["step_time_s"], "tokens_per_s_per_gpu": per_gpu,
           "model_flops_per_token": flops_per_token, "mfu_bf16": mfu,
           "final_train_loss": s["final_train_loss"], "eval_loss": s["eval_loss"],
           "device": s["device"], "wall_s_with_startup_and_compile": wall}
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        print(f"{name} (as {card.label}, dense BF16 peak {card.peak_flops_bf16 / T:,.0f} "
              f"TFLOPS: {card.source})")
        print(f"{model.name}: {spec.params / 1e6:,.1f}M parameters, {gpus} GPU(s), "
              f"{cfg.micro_batch} x {cfg.seq_len} tokens per GPU per step, {cfg.steps} steps"
              + (" [dry run on CPU: MFU meaningless]" if args.dry_run else ""))
        print(f"median step {s['step_time_s']:.3f} s, {per_gpu:,.0f} tokens/s per GPU, "
              f"MFU {100 * mfu:.1f}% (target >= 40% on an H100), eval loss "
              f"{s['eval_loss']:.3f}, wall {wall:.0f} s including start-up and compile")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
