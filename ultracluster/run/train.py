"""Train one model across sites: what torchrun runs on every rank.

    torchrun --nnodes 2 --nproc-per-node W --rdzv-backend c10d --rdzv-endpoint HOST:29500 \\
        -m ultracluster.run.train --sites 2 --workers-per-site W --site-sync diloco ...

Reads top to bottom: init from torchrun's environment (or a single process), build the site
groups, model, data and optimiser, apply the site sync, train, checkpoint, evaluate, write the
summary, clean up.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import math
import os
import random
import signal
import socket
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.distributed import PrefixStore, TCPStore  # type: ignore[attr-defined]  # stubs omit them

from ultracluster.errors import ConfigError
from ultracluster.files import atomic_write_text
from ultracluster.run import data, replica
from ultracluster.run.comms import (
    Counters,
    ProcessGroupLayout,
    all_reduce_bytes,
    build_layout,
)
from ultracluster.run.config import RunConfig, add_flags, config_from_args
from ultracluster.run.diloco import DiLoCoSync
from ultracluster.run.model import Transformer, apply_compile
from ultracluster.run.sync import SyncStrategy, make_sync
from ultracluster.workload import load_model


def _is_loopback(host: str) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_LISTENERS: list[socket.socket] = []  # the sockets our stores listen on, kept open


def _host_store(host: str, port: int, world: int) -> TCPStore:
    """A TCPStore server. On a loopback address it listens on that address only (TCPStore on
    its own binds every interface, so we hand it a socket already bound)."""
    if not _is_loopback(host):
        return TCPStore(host, port, world_size=world, is_master=True, wait_for_workers=False)
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    _LISTENERS.append(sock)
    return TCPStore(host, sock.getsockname()[1], world_size=world, is_master=True,
                    wait_for_workers=False, master_listen_fd=sock.fileno())


def init_distributed(timeout_s: float = 1800.0) -> None:
    """torchrun's environment, or one local process (rank 0 of 1) for a quick try.

    After an elastic restart the agent's store still holds the previous attempt's addresses,
    so each attempt's process group lives under its own prefix of that store. When the agent
    does not share its store (`ultracluster train` on one machine), rank 0 hosts it, on
    loopback. Every collective times out after `timeout_s` (`--sync-timeout`).
    """
    backend = "cuda:nccl,cpu:gloo" if torch.cuda.is_available() else "gloo"
    timeout = timedelta(seconds=timeout_s)
    if "RANK" not in os.environ:
        store = _host_store("127.0.0.1", 0, 1)
        dist.init_process_group(backend, store=store, rank=0, world_size=1, timeout=timeout)
        return
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    host, port = os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"])
    if os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "False" and rank == 0:
        store = _host_store(host, port, world)
    else:
        store = TCPStore(host, port, world_size=world, is_master=False, wait_for_workers=False)
    attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend, store=PrefixStore(f"ultracluster/{attempt}", store),
                            rank=rank, world_size=world, timeout=timeout)


def process_started() -> float | None:
    """When this process started (wall clock, Linux; None elsewhere): the restart's latency
    before Python runs our code is `started` minus the failure's time."""
    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return time.time() - (uptime - ticks / os.sysconf("SC_CLK_TCK"))


STARTUP: dict[str, float] = {}
"""Wall-clock times of this process's start-up phases, logged as the `started` event."""


def die_with_parent() -> None:
    """Linux: this process gets SIGKILL when its parent (torchrun) dies, so killing the
    launcher's tree never leaves a rank behind."""
    if sys.platform != "linux" or "TORCHELASTIC_RESTART_COUNT" not in os.environ:
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() == 1:  # the parent died before prctl
        os._exit(1)


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
    """What a checkpoint must share with the run that resumes it (the workers per site may
    differ: a site's state is stored once and read by however many workers it has). The
    failure domain too: `job` saves every site's state, `site` the state they share."""
    return {"model": cfg.model, "sites": cfg.sites, "site_sync": cfg.site_sync,
            "fragments": cfg.fragments, "seq_len": cfg.seq_len, "data_order": data.ORDER,
            "sync_warmup_steps": cfg.sync_warmup_steps, "failure_domain": cfg.failure_domain}


def rng_state() -> dict[str, torch.Tensor]:
    """Torch's and Python's random states as tensors (for a checkpoint)."""
    return {"torch": torch.get_rng_state(),
            "python": torch.tensor(random.getstate()[1], dtype=torch.int64)}


def set_rng_state(s: dict[str, torch.Tensor]) -> None:
    """Restore the random states `rng_state` saved."""
    torch.set_rng_state(s["torch"])
    random.setstate((3, tuple(int(v) for v in s["python"]), None))


class NonFiniteLoss(ConfigError):
    """The loss became NaN or infinite: the run stops, keeping its last checkpoint."""


def check_finite(loss: float, *, step: int, rank: int) -> None:
    """`NonFiniteLoss` (one line, naming step and rank) when `loss` is NaN or infinite."""
    if not math.isfinite(loss):
        raise NonFiniteLoss(f"loss is {loss} at step {step} (rank {rank}); stopped, keeping "
                            "the last checkpoint; lower --lr or --outer-lr")


STOPPED = "stopped.txt"
"""Written into the run folder when a rank stops on bad input or a non-finite loss, so the
restarts torchrun would make stop at once with the same message."""


def site_state(model: Transformer, opt: torch.optim.Optimizer, sync: SyncStrategy,
               shard: data.Shard, step: int) -> dict[str, Any]:
    """This rank's part of a checkpoint: the same on every worker of its site."""
    from ultracluster.run import checkpoint  # torch.distributed.checkpoint: 1.7 s to import

    named = list(model.named_parameters())
    return {"model": model.state_dict(), "optim": checkpoint.optimizer_state(opt, named),
            "sync": sync.state_dict(), "data_position": torch.tensor(shard.position),
            "rng": rng_state(), "step": torch.tensor(step)}


def resume(folder: Path, site: int, model: Transformer, opt: torch.optim.Optimizer,
           sync: SyncStrategy, shard: data.Shard, *, fused: bool) -> int:
    """Load this rank's site from `folder`; return the step to continue from."""
    from ultracluster.run import checkpoint

    key = f"site{site}"
    head = checkpoint.read(folder, {key: {"sync": {k: torch.tensor(0) for k in sync.HEADER}}})
    pending = int(head[key]["sync"]["pending_frag"]) if sync.HEADER else -1
    named = list(model.named_parameters())
    st = checkpoint.read(folder, {key: {
        "model": model.state_dict(), "optim": checkpoint.adamw_template(named, fused=fused),
        "sync": sync.template(pending), "data_position": torch.tensor(0),
        "rng": {"torch": torch.get_rng_state(), "python": torch.zeros(625, dtype=torch.int64)},
        "step": torch.tensor(0)}})[key]
    checkpoint.load_optimizer(opt, named, st["optim"])
    sync.load_state_dict(st["sync"])
    shard.position = int(st["data_position"])
    set_rng_state(st["rng"])
    return int(st["step"])


def _site_checkpoints(cfg: RunConfig, layout: ProcessGroupLayout, sync: DiLoCoSync,
                      opt: torch.optim.Optimizer, shard: data.Shard, log: replica.RankLog, *,
                      restarted: bool, fused: bool) -> tuple[Any, int]:
    """--failure-domain site with --checkpoint-dir: this site's Checkpointer, the restore
    `sync.join` calls when every site restarted at once, and with --resume (a fresh start)
    the newest intact checkpoint read; the checkpointer and the step to start from."""
    from ultracluster.run import site_checkpoint

    ident = identity(cfg)
    ckpt = site_checkpoint.checkpointer(cfg, site=layout.site, local=layout.local,
                                        identity=ident)
    sync.restore = site_checkpoint.restorer(cfg, sync, opt, local=layout.local,
                                            identity=ident, fused=fused)
    start = 0
    if cfg.resume and not restarted:  # a site restarted by torchrun recovers from a peer
        step = sync.restore()
        if step is not None:
            start = step
            shard.position = step * cfg.micro_batch * layout.workers
            log.event("resumed", step=step)
    return ckpt, start


@torch.no_grad()
def evaluate(model: Transformer, held: torch.Tensor, cfg: RunConfig,
             layout: ProcessGroupLayout) -> float:
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
    layout.count(all_reduce_bytes(layout.world, 4), inter=layout.flat_hop_crosses)
    model.train()
    return float(t.item() / dist.get_world_size())


def _site_of_process(cfg: RunConfig) -> int | None:
    """--failure-domain site: this process's site (set by the launcher, or by hand on many
    machines); None when one torchrun holds every site."""
    if cfg.failure_domain != "site":
        return None
    raw = os.environ.get("UC_SITE")
    if raw is None or not raw.isdigit() or not 0 <= int(raw) < cfg.sites:
        raise ConfigError(f"UC_SITE: {raw!r} must name this process's site, 0 to "
                          f"{cfg.sites - 1} (--failure-domain site)")
    return int(raw)


def train(cfg: RunConfig) -> dict[str, Any]:
    """Train `cfg` as this rank of the job (torchrun's environment): build the model, data
    shard and site-sync strategy, run the steps (resuming from a checkpoint when asked), and
    return this rank's summary."""
    site_of_process = _site_of_process(cfg)
    if site_of_process is None:
        layout = build_layout(sites=cfg.sites, workers=cfg.workers_per_site,
                              wan_gbps=cfg.wan_gbps, wan_latency_ms=cfg.wan_latency_ms)
    else:
        layout = replica.site_layout(cfg, site=site_of_process)
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    spec = load_model(cfg.model)
    dev = device()
    model = Transformer(spec, max_seq_len=cfg.seq_len).to(dev)
    if cfg.compile:
        apply_compile(model)
    restarts = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0"))
    run_dir = Path(cfg.run_dir)
    corpus = data.read_corpus_once(cfg.data, run_dir / f"corpus-{socket.gethostname()}.bin",
                                   restarted=restarts > 0)
    shards, held = data.split(corpus, sites=cfg.sites, seed=cfg.seed)
    shard = shards[layout.site]
    sync: SyncStrategy = make_sync(model, layout, cfg)
    net = sync.module()
    fused = dev.type == "cuda"
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(0.9, 0.95), weight_decay=0.1,
                            fused=True if fused else None)
    start = 0
    ckpt = None
    if cfg.checkpoint_dir and site_of_process is None:
        # imported only when used: torch.distributed.checkpoint (and DTensor) take about
        # 1.7 s to import, a tenth of a restarted site's way back
        from ultracluster.run import checkpoint

        ckpt = checkpoint.Checkpointer(cfg.checkpoint_dir, rank=layout.rank,
                                       identity=identity(cfg), keep=cfg.keep_checkpoints,
                                       async_save=cfg.async_checkpoint)
        ckpt.remove_stale()
        if cfg.resume or restarts > 0:
            folder = checkpoint.choose(cfg.checkpoint_dir, identity(cfg), rank=layout.rank)
            if folder is not None:
                start = resume(folder, layout.site, model, opt, sync, shard, fused=fused)
    log = replica.RankLog(run_dir, layout=layout, attempt=restarts)
    now = time.time()  # the set-up's bytes (DDP's start-up broadcast)
    log.step(step=start, t0=now, t1=now, tokens=0, c0=Counters().snapshot(),
             c1=layout.counters.snapshot(), useful=0)
    tokens_per_step = cfg.world * cfg.micro_batch * cfg.seq_len
    rank_tokens = cfg.micro_batch * cfg.seq_len
    membership = None
    last_saved = start  # --failure-domain site: the step of the last checkpoint captured
    if site_of_process is not None:
        assert isinstance(sync, DiLoCoSync)
        if cfg.checkpoint_dir:
            from ultracluster.run import site_checkpoint  # (DCP: imported only when used)

            ckpt, start = _site_checkpoints(cfg, layout, sync, opt, shard, log,
                                            restarted=restarts > 0, fused=fused)
            last_saved = start
        STARTUP["built"] = time.time()
        membership = replica.attach(sync, opt, cfg, layout)
        sync.tokens_per_step = rank_tokens
        t_join = time.time()
        started = process_started()
        log.event("started", **({"process": started} if started else {}),
                  **STARTUP, manager=t_join)
        log.event("joining", restarted=restarts > 0)
        if not sync.join(restarted=restarts > 0, wait_s=cfg.sync_timeout):
            log.event("left", why="no healthy peer to recover from")
            membership.shutdown()
            return {"left": True, "site": layout.site}
        if sync.resumed_at is not None:
            start = last_saved = sync.resumed_at
            sync.resumed_at = None
            shard.position = start * cfg.micro_batch * layout.workers
            log.event("resumed" if sync.restored else "rejoined", step=start,
                      wait_s=time.time() - t_join, quorums=sync.join_tries)
    metrics_path = run_dir / ("metrics.jsonl" if layout.site == 0 or membership is None
                              else f"metrics-site-{layout.site}.jsonl")
    slow = cfg.straggler_slowdown if cfg.straggler_site == layout.site else 1.0
    t_start = time.perf_counter()
    loss_v = math.nan
    step_times: list[float] = []
    steps_run = 0
    step = start
    while step < cfg.steps:
        t0 = time.perf_counter()
        w0 = time.time()
        c0 = layout.counters.snapshot()
        if ckpt is not None and membership is not None:
            assert isinstance(sync, DiLoCoSync)
            site_checkpoint.arm(sync, cfg.checkpoint_every, last_saved)
        # --inner-steps-by-time: a slower site sits out the end of each outer step
        trains = not isinstance(sync, DiLoCoSync) or sync.trains(step)
        if trains:
            for g in opt.param_groups:
                g["lr"] = lr_at(step, cfg)
            x, y = shard.batch(rows=cfg.micro_batch, seq_len=cfg.seq_len, worker=layout.local,
                               workers=layout.workers)
            shard.advance(rows=cfg.micro_batch, workers=layout.workers)
            x, y = x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda"):
                logits = net(x)
            loss = torch.nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]).float(), y.reshape(-1))
            opt.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]  # torch's stub is untyped
            sync.after_backward()
            opt.step()
            if slow > 1:  # an injected straggler: this site's steps take `slow` times as long
                time.sleep((slow - 1) * (time.perf_counter() - t0))
            sync.after_step(step + 1)
            loss_v = loss.item()
            check_finite(loss_v, step=step + 1, rank=layout.rank)
            dt = time.perf_counter() - t0
            step_times.append(dt)
            steps_run += 1
            if isinstance(sync, DiLoCoSync):
                sync.observe(dt)
        else:
            assert isinstance(sync, DiLoCoSync)
            sync.after_step(step + 1, trained=False)
            dt = time.perf_counter() - t0
        c1 = layout.counters.snapshot()
        done = step + 1
        useful = 0
        timings: dict[str, float] = {}
        if membership is not None:
            assert isinstance(sync, DiLoCoSync)
            useful, sync.useful_tokens = sync.useful_tokens, 0
            timings = membership.take_timings()
            if sync.redos:  # the lag cycle's redone exchanges (docs/runtime.md)
                timings["redos"], sync.redos = sync.redos, 0
        log.step(step=done, t0=w0, t1=time.time(), tokens=rank_tokens if trains else 0,
                 c0=c0, c1=c1, useful=useful, **timings)
        if trains and layout.local == 0 and (layout.rank == 0 or membership is not None):
            row = {"step": done, "loss": loss_v, "tokens_per_s": tokens_per_step / dt,
                   "step_s": dt, "bytes_intra_site": c1["intra_site"] - c0["intra_site"],
                   "bytes_inter_site": c1["inter_site"] - c0["inter_site"],
                   "comm_s": c1["comm_s"] - c0["comm_s"], "wait_s": c1["wait_s"] - c0["wait_s"],
                   "compute_s": dt - (c1["comm_s"] - c0["comm_s"]) - (c1["wait_s"] - c0["wait_s"]),
                   "restarts": restarts, "site": layout.site, "time": time.time()}
            if membership is not None:
                assert isinstance(sync, DiLoCoSync)
                row["sites_present"] = sync.present
                if cfg.inner_steps_by_time:
                    row["inner_steps_budget"] = sync.budget
            with metrics_path.open("a") as f:
                f.write(json.dumps(row) + "\n")
        step = done
        if membership is not None:
            assert isinstance(sync, DiLoCoSync)
            if sync.resumed_at is not None:  # fell behind and loaded a peer's state
                step = last_saved = sync.resumed_at
                sync.resumed_at = None
                shard.position = step * cfg.micro_batch * layout.workers
                log.event("rejoined", step=step, wait_s=0.0)
        if ckpt is not None:
            ckpt.poll()
            if membership is not None:  # the shared state of a committed outer step
                assert isinstance(sync, DiLoCoSync)
                captured = site_checkpoint.save_captured(ckpt, sync, opt)
                last_saved = last_saved if captured is None else captured
            elif cfg.checkpoint_every and done % cfg.checkpoint_every == 0:
                if not all(bool(torch.isfinite(p).all()) for p in model.parameters()):
                    raise NonFiniteLoss(f"the weights became non-finite at step {done} "
                                        f"(rank {layout.rank}); stopped, keeping the last "
                                        "checkpoint; lower --lr or --outer-lr")
                ckpt.save(done, {f"site{layout.site}": site_state(model, opt, sync, shard,
                                                                  done)})
    if ckpt is not None and membership is None:
        ckpt.wait()
    c0 = layout.counters.snapshot()
    w0 = time.time()
    sync.finish()
    if ckpt is not None and membership is not None:  # the last exchanges may be due one
        assert isinstance(sync, DiLoCoSync)
        site_checkpoint.save_captured(ckpt, sync, opt)
        ckpt.wait()
    useful = 0
    if membership is not None:
        assert isinstance(sync, DiLoCoSync)
        useful = sync.useful_tokens
        membership.shutdown()
    wall = time.perf_counter() - t_start
    eval_loss = evaluate(model, held, cfg, layout)
    log.step(step=cfg.steps, t0=w0, t1=time.time(), tokens=0, c0=c0,
             c1=layout.counters.snapshot(), useful=useful)  # the final exchanges' bytes
    totals = torch.tensor([float(layout.counters.intra_site), float(layout.counters.inter_site)],
                          dtype=torch.float64, device=dev)
    dist.all_reduce(totals)
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
        "device": str(dev), "failure_domain": cfg.failure_domain,
    }


def write_summary(path: Path, summary: dict[str, Any]) -> None:
    """Write the run's summary atomically, unless it only says this process left and a summary
    is already there. `launch.start` clears it, so one present is this run's: a site-0 process
    that finished, wrote it and then died in teardown is restarted by torchrun, finds no peer
    to recover from and leaves; it must not overwrite the result."""
    if summary.get("left") and path.is_file():
        return
    atomic_write_text(path, json.dumps(summary, indent=2))


def main(argv: list[str] | None = None) -> int:
    """What torchrun runs on every rank: flags or ``--config``, then `train`; rank 0 of site 0
    writes ``summary.json``. Bad input or a non-finite loss: one line, exit status 2."""
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
    run_dir = Path(cfg.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    stopped = run_dir / STOPPED
    if int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")) > 0 and stopped.is_file():
        print(f"ultracluster train: error: {stopped.read_text().strip()}", file=sys.stderr)
        return 2  # a restart would only meet the same non-finite loss
    stopped.unlink(missing_ok=True)
    die_with_parent()
    STARTUP["imported"] = time.time()
    init_distributed(cfg.sync_timeout)
    STARTUP["distributed"] = time.time()
    try:
        summary = train(cfg)
        if dist.get_rank() == 0 and os.environ.get("UC_SITE", "0") == "0":
            write_summary(run_dir / "summary.json", summary)
    except ConfigError as e:
        atomic_write_text(stopped, str(e) + "\n")  # not transient: restarts stop at once
        print(f"ultracluster train: error: {e}", file=sys.stderr, flush=True)
        return 2
    except Exception as e:  # one line on the user's terminal; the traceback stays in the log
        print(f"ultracluster train: error: rank {dist.get_rank()}: {type(e).__name__}: "
              f"{str(e).splitlines()[0] if str(e) else ''}", file=sys.stderr, flush=True)
        raise
    finally:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    code = main()
    # Every output is written (atomically) and the process group destroyed: leave without the
    # interpreter's teardown, in which torchft's Manager threads (shut down without waiting)
    # can abort the process ("terminate called without an active exception"), which torchrun
    # would count as a failure and restart. Exceptions still propagate as usual above.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
