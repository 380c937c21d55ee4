"""Train one model across sites: what torchrun runs on every rank.

    torchrun --nnodes 2 --nproc-per-node W --rdzv-backend c10d --rdzv-endpoint HOST:29500 \\
        -m ultracluster.run.train --sites 2 --workers-per-site W --site-sync diloco ...

Reads top to bottom: init from torchrun's environment (or a single process), build the site
groups, model, data and optimiser, apply the site sync, train, checkpoint, evaluate, write the
summary, clean up.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.distributed import PrefixStore, TCPStore  # type: ignore[attr-defined]  # stubs omit them

from ultracluster.errors import ConfigError
from ultracluster.files import atomic_write_text
from ultracluster.run import checkpoint, data
from ultracluster.run.comms import Topology, build_topology
from ultracluster.run.config import RunConfig, add_flags, config_from_args
from ultracluster.run.model import Transformer, apply_compile
from ultracluster.run.sync import SiteSync, make_sync
from ultracluster.workload import load_model


def init_distributed() -> None:
    """torchrun's environment, or one local process (rank 0 of 1) for a quick try.

    After an elastic restart the agent's store still holds the previous attempt's addresses,
    so each attempt's process group lives under its own prefix of that store.
    """
    backend = "cuda:nccl,cpu:gloo" if torch.cuda.is_available() else "gloo"
    if "RANK" not in os.environ:
        os.environ.update(RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1",
                          MASTER_PORT=os.environ.get("MASTER_PORT", "29533"))
        dist.init_process_group(backend)
        return
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    store = TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]),
                          world_size=world, is_master=False, wait_for_workers=False)
    attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend, store=PrefixStore(f"ultracluster/{attempt}", store),
                            rank=rank, world_size=world)


def device() -> torch.device:
    """This rank's GPU when CUDA is present (NCCL inside a site), else the CPU (gloo)."""
    if torch.cuda.is_available():
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def lr_at(step: int, cfg: RunConfig) -> float:
    """Linear warm-up, then cosine decay to `min_lr_ratio` x lr at the last step (the DiLoCo
    papers' inner schedule, and nanoGPT's), or constant."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if cfg.lr_schedule == "constant" or cfg.steps <= cfg.warmup_steps + 1:
        return cfg.lr
    progress = (step - cfg.warmup_steps) / (cfg.steps - 1 - cfg.warmup_steps)
    floor = cfg.min_lr_ratio * cfg.lr
    return floor + (cfg.lr - floor) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


def identity(cfg: RunConfig) -> dict[str, Any]:
    return {"model": cfg.model, "sites": cfg.sites, "workers_per_site": cfg.workers_per_site,
            "site_sync": cfg.site_sync, "fragments": cfg.fragments, "seq_len": cfg.seq_len,
            "data_order": data.ORDER}


def rng_state() -> dict[str, Any]:
    return {"torch": torch.get_rng_state(), "python": list(random.getstate()[1]),
            "python_pos": random.getstate()[2]}


def set_rng_state(s: dict[str, Any]) -> None:
    torch.set_rng_state(s["torch"])
    random.setstate((3, tuple(s["python"]), s["python_pos"]))


@torch.no_grad()
def evaluate(model: Transformer, held: torch.Tensor, cfg: RunConfig) -> float:
    """Mean loss on the held-out tokens (same batches on every rank), averaged over ranks."""
    model.eval()
    shard = data.Shard(tokens=held)  # seed 0: the same held-out windows in every run
    losses = []
    dev = next(model.parameters()).device
    for _ in range(cfg.eval_batches):
        x, y = shard.batch(rows=cfg.micro_batch, seq_len=cfg.seq_len, worker=0, workers=1)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda"):
            losses.append(model.loss(x.to(dev), y.to(dev)).item())
        shard.advance(rows=cfg.micro_batch, workers=1)
    t = torch.tensor([sum(losses) / len(losses)], device=dev)
    dist.all_reduce(t)
    model.train()
    return float(t.item() / dist.get_world_size())


def train(cfg: RunConfig) -> dict[str, Any]:
    topo: Topology = build_topology(sites=cfg.sites, workers=cfg.workers_per_site,
                                    wan_gbps=cfg.wan_gbps, wan_latency_ms=cfg.wan_latency_ms)
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    spec = load_model(cfg.model)
    dev = device()
    model = Transformer(spec, max_seq_len=cfg.seq_len).to(dev)
    if cfg.compile:
        apply_compile(model)
    shards, held = data.split(data.read_corpus(cfg.data), sites=cfg.sites, seed=cfg.seed)
    shard = shards[topo.site]
    sync: SiteSync = make_sync(model, topo, cfg)
    net = sync.module()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(0.9, 0.95), weight_decay=0.1,
                            fused=True if dev.type == "cuda" else None)
    restarts = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0"))
    start = 0
    ident = identity(cfg)
    if cfg.checkpoint_dir and (cfg.resume or restarts > 0):
        folder = checkpoint.latest(cfg.checkpoint_dir)
        if folder is not None:
            st = checkpoint.load(folder, rank=topo.rank, identity=ident)
            model.load_state_dict(st["model"])
            opt.load_state_dict(st["optimizer"])
            sync.load_state_dict(st["sync"])
            shard.position = int(st["data_position"])
            set_rng_state(st["rng"])
            start = int(st["step"])
    run_dir = Path(cfg.run_dir)
    metrics_path = run_dir / "metrics.jsonl"
    tokens_per_step = cfg.world * cfg.micro_batch * cfg.seq_len
    t_start = time.perf_counter()
    loss_v = math.nan
    step_times: list[float] = []
    for step in range(start, cfg.steps):
        t0 = time.perf_counter()
        c0 = topo.counters.snapshot()
        for g in opt.param_groups:
            g["lr"] = lr_at(step, cfg)
        x, y = shard.batch(rows=cfg.micro_batch, seq_len=cfg.seq_len, worker=topo.local,
                           workers=topo.workers)
        shard.advance(rows=cfg.micro_batch, workers=topo.workers)
        x, y = x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda"):
            logits = net(x)
        loss = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]).float(), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]  # torch's stub is untyped
        sync.after_backward()
        opt.step()
        sync.after_step(step + 1)
        loss_v = loss.item()
        dt = time.perf_counter() - t0
        step_times.append(dt)
        c1 = topo.counters.snapshot()
        if topo.rank == 0:
            row = {"step": step + 1, "loss": loss_v, "tokens_per_s": tokens_per_step / dt,
                   "step_s": dt, "bytes_intra_site": c1["intra_site"] - c0["intra_site"],
                   "bytes_inter_site": c1["inter_site"] - c0["inter_site"],
                   "comm_s": c1["comm_s"] - c0["comm_s"], "wait_s": c1["wait_s"] - c0["wait_s"],
                   "compute_s": dt - (c1["comm_s"] - c0["comm_s"]) - (c1["wait_s"] - c0["wait_s"]),
                   "restarts": restarts}
            with metrics_path.open("a") as f:
                f.write(json.dumps(row) + "\n")
        done = step + 1
        if cfg.checkpoint_dir and cfg.checkpoint_every and done % cfg.checkpoint_every == 0:
            checkpoint.save(cfg.checkpoint_dir, step=done, rank=topo.rank, world=topo.world,
                            identity=ident, state={
                                "model": model.state_dict(), "optimizer": opt.state_dict(),
                                "sync": sync.state_dict(), "data_position": shard.position,
                                "rng": rng_state(), "step": done})
    sync.finish()
    wall = time.perf_counter() - t_start
    eval_loss = evaluate(model, held, cfg)
    totals = torch.tensor([float(topo.counters.intra_site), float(topo.counters.inter_site)],
                          dtype=torch.float64, device=dev)
    dist.all_reduce(totals)
    steps_run = cfg.steps - start
    median = sorted(step_times)[len(step_times) // 2] if step_times else math.nan
    return {
        "steps": cfg.steps, "steps_this_run": steps_run, "tokens": cfg.steps * tokens_per_step,
        "final_train_loss": loss_v, "eval_loss": eval_loss,
        "tokens_per_s": steps_run * tokens_per_step / wall if wall > 0 else math.nan,
        "step_time_s": median, "wall_s": wall,
        "bytes": {"intra_site": int(totals[0]), "inter_site": int(totals[1])},
        "site_sync": {"mode": cfg.site_sync, "inner_steps": cfg.inner_steps,
                      "bits": cfg.sync_bits, "fragments": cfg.fragments,
                      "wan_gbps": cfg.wan_gbps, "wan_latency_ms": cfg.wan_latency_ms},
        "sites": cfg.sites, "workers_per_site": cfg.workers_per_site,
        "params": sum(p.numel() for p in model.parameters()), "restarts": restarts,
        "device": str(dev),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ultracluster.run.train",
                                 description=__doc__.splitlines()[0])
    add_flags(ap)
    ap.add_argument("--config", help="run config JSON written by `ultracluster train`")
    args = ap.parse_args(argv)
    try:
        if args.config:
            from ultracluster.run.config import load_config

            cfg = load_config(args.config)
        else:
            cfg = config_from_args(args)
    except ConfigError as e:
        print(f"ultracluster train: error: {e}", file=sys.stderr)
        return 2
    Path(cfg.run_dir).mkdir(parents=True, exist_ok=True)
    init_distributed()
    try:
        summary = train(cfg)
        if dist.get_rank() == 0:
            atomic_write_text(Path(cfg.run_dir) / "summary.json", json.dumps(summary, indent=2))
    except ConfigError as e:
        print(f"ultracluster train: error: {e}", file=sys.stderr)
        return 2
    finally:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
