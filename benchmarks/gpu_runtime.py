"""The runtime on a GPU: a 1B-class model on CUDA/NCCL, tokens/s and MFU against the card's
BF16 peak (target >= 40% on an H100). Run it on the accelerator machine:

    python benchmarks/gpu_runtime.py [--steps 30] [--micro-batch 8] [--seq-len 2048]

It launches `ultracluster.run.train` with torchrun on every visible GPU (one site, DDP),
then prints the measured tokens/s and MFU with the card's name.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from ultracluster.hardware import CHIPS
from ultracluster.run.config import RunConfig
from ultracluster.run.launch import run
from ultracluster.workload import load_model

CONFIG = Path(__file__).parent / "configs" / "llama-1b-bytes.json"
CARDS = {"H100": "h100-sxm", "H200": "h200", "B200": "b200", "A100": "a100-80gb"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--micro-batch", type=int, default=8)
    ap.add_argument("--seq-len", type=int, default=2048)
    args = ap.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device: run this on the accelerator machine")
    name = torch.cuda.get_device_name(0)
    chip = next((CHIPS[v] for k, v in CARDS.items() if k in name), CHIPS["h100-sxm"])
    gpus = torch.cuda.device_count()
    cfg = RunConfig(model=str(CONFIG), sites=1, workers_per_site=gpus, site_sync="ddp",
                    steps=args.steps, micro_batch=args.micro_batch, seq_len=args.seq_len,
                    lr=3e-4, warmup_steps=5, eval_batches=2, compile=True,
                    run_dir="runs/gpu")
    s = run(cfg)
    spec = load_model(str(CONFIG))
    tokens_per_s_per_gpu = cfg.micro_batch * cfg.seq_len / s["step_time_s"]
    mfu = spec.flops_per_token(cfg.seq_len) * tokens_per_s_per_gpu / chip.peak_flops_bf16
    print(json.dumps({"card": name, "gpus": gpus, "params": spec.params,
                      "tokens_per_s_per_gpu": tokens_per_s_per_gpu, "mfu_bf16": mfu,
                      "median_step_s": s["step_time_s"], "eval_loss": s["eval_loss"]}, indent=2))


if __name__ == "__main__":
    main()
