"""Site-sync strategies: how replicas in different sites agree.

- `ddp`: torch DDP over every rank, every step (the baseline), its all-reduce overlapping
  backward as usual; a comm hook counts the bytes per tier and schedules the emulated WAN.
- `hierarchical`: every step, average gradients inside each site, exchange one shard per worker
  across sites, all-gather the shards back inside the site.
- `diloco` and `streaming` (`run/diloco.py`): DDP inside each site every step, and every H
  steps (every H/F for a fragment) an exchange of pseudo-gradients and an outer step.

Here: the strategies' base class and registry, the two every-step strategies and the pieces
DiLoCo shares with them (DDP with its counting hook, the hierarchical gradient mean).

A strategy's state (`state_dict`) is the same on every worker of a site and does not depend
on W, so a checkpoint keeps one copy per site and resumes with another W.
"""

# no `from __future__ import annotations`: DDP checks the comm hook's annotation at run time

import time
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

from ultracluster.run.comms import (ProcessGroupLayout, all_gather_bytes, all_reduce_bytes,
                                    broadcast_bytes)
from ultracluster.plan.vocab import RunSync
from ultracluster.run.config import RunConfig

def _counting_hook(layout: ProcessGroupLayout, group: dist.ProcessGroup | None, n: int, *,
                   inter: bool, wan: bool) -> Any:
    """DDP's own all-reduce (divide, then an asynchronous all-reduce, as torch's default
    hook), with its bytes counted and, across sites, its WAN time put on the link."""

    def hook(_: Any, bucket: dist.GradBucket) -> torch.futures.Future[torch.Tensor]:  # type: ignore[name-defined]  # DDP checks this exact annotation; the stubs omit it
        buf = bucket.buffer()
        t0 = time.perf_counter()
        nbytes = all_reduce_bytes(n, buf.numel() * buf.element_size())
        layout.count(nbytes, inter=inter)
        if wan:
            layout.schedule_wan(nbytes, 2 * (n - 1), t0)
        buf.div_(n)
        work = dist.all_reduce(buf, group=group, async_op=True)
        assert work is not None  # async_op=True returns a Work
        out: torch.futures.Future[torch.Tensor] = work.get_future().then(
            lambda f: f.value()[0])
        return out

    return hook


def counted_ddp(model: nn.Module, layout: ProcessGroupLayout, group: dist.ProcessGroup | None,
         n: int, *, crosses: bool) -> DDP:
    """DDP with the counting hook; its start-up broadcast of the weights and buffers is
    counted too. The model's only buffers are rotary tables every rank computes alike, so they
    are not synced again before each forward."""
    t0 = time.perf_counter()
    # broadcast_buffers=False: no per-forward buffer sync (the keyword every torch >= 2.4 has;
    # 2.13's forward_sync_buffers does not exist on 2.11, which a lent H100 ran)
    ddp = DDP(model, process_group=group, broadcast_buffers=False,
              gradient_as_bucket_view=True,  # gradients live in the buckets: no second copy
              **_device_ids(model))
    weights = sum(t.numel() * t.element_size()
                  for t in (*model.parameters(), *model.buffers()))
    sent = broadcast_bytes(n, weights)
    layout.count(sent, inter=crosses)
    if layout.sites > 1 and group is None:
        layout.wan_floor(sent, n - 1, t0)
    ddp.register_comm_hook(None, _counting_hook(layout, group, n, inter=crosses,
                                                wan=layout.sites > 1 and group is None))
    return ddp


STRATEGIES: dict[RunSync, type["SyncStrategy"]] = {}
"""Each `--site-sync` strategy's class, filled by the subclasses' `runs` (the DiLoCo ones
once `run/diloco.py` is imported, as `run/train.py` does)."""


class SyncStrategy:
    """Base: no-ops a strategy overrides. A subclass names the `RunSync` members it runs in
    `runs`, which registers it in `STRATEGIES`."""

    runs: tuple[RunSync, ...] = ()

    def __init_subclass__(cls) -> None:
        super().__init_subclass__()
        for member in cls.runs:
            if member in STRATEGIES:
                raise TypeError(f"{member} is run by both {STRATEGIES[member].__name__} "
                                f"and {cls.__name__}")
            STRATEGIES[member] = cls

    def __init__(self, model: nn.Module, layout: ProcessGroupLayout, cfg: RunConfig) -> None:
        self.model, self.layout, self.cfg = model, layout, cfg

    def module(self) -> nn.Module:
        """The module the training loop calls (the model, or a DDP wrapper of it)."""
        return self.model

    def after_backward(self) -> None:
        """Called after each backward, before the optimizer step (e.g. to average gradients)."""
        pass

    def after_step(self, step: int) -> None:
        """Called after the optimizer step that completed step `step` (e.g. an outer step)."""
        pass

    def finish(self) -> None:
        """Called once after the last step, to leave every site with the same weights."""
        pass

    HEADER: tuple[str, ...] = ()

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint must keep of the strategy (the same on every worker of a site)."""
        return {}

    def template(self, pending_frag: int) -> dict[str, Any]:
        """The shape of `state_dict`, for a checkpoint reader to fill in (`pending_frag` read
        first, see `HEADER`)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` saved."""
        pass


class DDPSync(SyncStrategy):
    runs = (RunSync.DDP,)

    def __init__(self, model: nn.Module, layout: ProcessGroupLayout, cfg: RunConfig) -> None:
        super().__init__(model, layout, cfg)
        self.ddp = counted_ddp(model, layout, None, layout.world, crosses=layout.flat_hop_crosses)

    def module(self) -> nn.Module:
        return self.ddp

    def after_backward(self) -> None:
        self.layout.drain_wan()  # backward returned once the buckets' all-reduces completed


def _cross_site_mean(t: ProcessGroupLayout, flat: torch.Tensor) -> torch.Tensor:
    """The mean over sites of `flat` (identical on a site's workers): worker l all-reduces
    chunk l across sites, then the site all-gathers the chunks."""
    if t.sites < 2:
        return flat
    chunks = list(flat.tensor_split(t.workers))
    mine = chunks[t.local].contiguous()
    t1 = time.perf_counter()
    dist.all_reduce(mine, group=t.cross_group)
    mine.div_(t.sites)
    sent = all_reduce_bytes(t.sites, mine.numel() * mine.element_size())
    t.count(sent, inter=True)
    t.wan_floor(sent * t.workers, 2 * (t.sites - 1), t1)  # the W workers share the link
    gathered = [torch.empty_like(c) for c in chunks]
    dist.all_gather(gathered, mine, group=t.site_group)
    t.count(all_gather_bytes(t.workers, mine.numel() * mine.element_size()), inter=False)
    return torch.cat(gathered)


def hierarchical_grads(t: ProcessGroupLayout, model: nn.Module, *, in_site: bool) -> None:
    """Average every gradient over all ranks: inside the site (unless DDP already did),
    then across sites one chunk per worker."""
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    flat = torch.cat([g.flatten() for g in grads])
    t0 = time.perf_counter()
    if in_site:
        dist.all_reduce(flat, group=t.site_group)
        flat.div_(t.workers)
        t.count(all_reduce_bytes(t.workers, flat.numel() * 4), inter=False)
    flat = _cross_site_mean(t, flat)
    t.counters.comm_s += time.perf_counter() - t0
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()


class HierarchicalSync(SyncStrategy):
    runs = (RunSync.HIERARCHICAL,)

    def after_backward(self) -> None:
        hierarchical_grads(self.layout, self.model, in_site=True)


def _device_ids(model: nn.Module) -> dict[str, Any]:
    dev = next(model.parameters()).device
    return {"device_ids": [dev.index]} if dev.type == "cuda" else {}


def make_sync(model: nn.Module, layout: ProcessGroupLayout, cfg: RunConfig) -> SyncStrategy:
    """The strategy `cfg.site_sync` names, built on `model` and the run's process groups
    (the DiLoCo ones are registered once `run/diloco.py` is imported, as `run/train.py`
    does)."""
    return STRATEGIES[cfg.site_sync](model, layout, cfg)
