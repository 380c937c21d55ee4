"""Site-sync strategies: how replicas in different sites agree.

- `ddp`: torch DDP over every rank, every step (the baseline).
- `hierarchical`: every step, average gradients inside each site, exchange one shard per worker
  across sites, all-gather the shards back inside the site.
- `diloco`: DDP inside each site every step; every H steps the sites average pseudo-gradients
  (global minus local weights, compressed to `bits`) and take an outer Nesterov SGD step
  (Douillard et al. 2023: outer lr 0.7, momentum 0.9). Each site keeps its own inner AdamW.
- `streaming`: DiLoCo with the model in F fragments; one fragment is exchanged every H/F
  steps, asynchronously, and applied one inner step later (Douillard et al. 2025), so the
  exchange overlaps the next inner step; the local progress made meanwhile is kept.

The cross-site exchange of pseudo-gradients is split over the W workers of a site (their
replicas are identical after the intra-site all-reduce): worker l sends chunk l.
"""



import time
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

from ultracluster.run import compress
from ultracluster.run.comms import Topology, all_reduce_bytes
from ultracluster.run.config import RunConfig


def _counting_hook(topo: Topology, group: dist.ProcessGroup | None, n: int, inter: bool) -> Any:
    """A DDP comm hook: the same all-reduce DDP does, with bytes counted (and WAN time)."""

    def hook(_: Any, bucket: dist.GradBucket) -> torch.futures.Future[torch.Tensor]:  # type: ignore[name-defined]  # DDP checks this exact annotation; the stubs omit it
        buf = bucket.buffer()
        t0 = time.perf_counter()
        dist.all_reduce(buf, group=group)
        buf.div_(n)
        nbytes = all_reduce_bytes(n, buf.numel() * buf.element_size())
        topo.counters.comm_s += time.perf_counter() - t0
        topo.count(nbytes, inter=inter)
        if inter:
            topo.wan_floor(nbytes, t0)
        fut: torch.futures.Future[torch.Tensor] = torch.futures.Future()
        fut.set_result(buf)
        return fut

    return hook


class SiteSync:
    """Base: no-ops a strategy overrides."""

    def __init__(self, model: nn.Module, topo: Topology, cfg: RunConfig) -> None:
        self.model, self.topo, self.cfg = model, topo, cfg

    def module(self) -> nn.Module:
        return self.model

    def after_backward(self) -> None:
        pass

    def after_step(self, step: int) -> None:
        pass

    def finish(self) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


class DDPSync(SiteSync):
    def __init__(self, model: nn.Module, topo: Topology, cfg: RunConfig) -> None:
        super().__init__(model, topo, cfg)
        self.ddp = DDP(model, **_device_ids(model))
        self.ddp.register_comm_hook(None, _counting_hook(topo, None, topo.world,
                                                         inter=topo.sites > 1))

    def module(self) -> nn.Module:
        return self.ddp


class HierarchicalSync(SiteSync):
    def after_backward(self) -> None:
        t = self.topo
        grads = [p.grad for p in self.model.parameters() if p.grad is not None]
        flat = torch.cat([g.flatten() for g in grads])
        t0 = time.perf_counter()
        dist.all_reduce(flat, group=t.site_group)
        flat.div_(t.workers)
        t.count(all_reduce_bytes(t.workers, flat.numel() * 4), inter=False)
        if t.sites > 1:
            chunks = list(flat.tensor_split(t.workers))
            mine = chunks[t.local].contiguous()
            t1 = time.perf_counter()
            dist.all_reduce(mine, group=t.cross_group)
            mine.div_(t.sites)
            sent = all_reduce_bytes(t.sites, mine.numel() * 4)
            t.count(sent, inter=True)
            t.wan_floor(sent, t1)
            gathered = [torch.empty_like(c) for c in chunks]
            dist.all_gather(gathered, mine, group=t.site_group)
            t.count((t.workers - 1) * mine.numel() * 4, inter=False)
            flat = torch.cat(gathered)
        t.counters.comm_s += time.perf_counter() - t0
        offset = 0
        for g in grads:
            g.copy_(flat[offset:offset + g.numel()].view_as(g))
            offset += g.numel()


class DiLoCoSync(SiteSync):
    """DiLoCo (fragments = 1) and streaming DiLoCo (fragments = F, overlapped)."""

    def __init__(self, model: nn.Module, topo: Topology, cfg: RunConfig) -> None:
        super().__init__(model, topo, cfg)
        self.ddp = DDP(model, process_group=topo.site_group, **_device_ids(model))
        self.ddp.register_comm_hook(None, _counting_hook(topo, topo.site_group, topo.workers,
                                                         inter=False))
        self.streaming = cfg.site_sync == "streaming"
        params = [p for p in model.parameters()]
        f = cfg.fragments if self.streaming else 1
        self.fragments = [params[i::f] for i in range(f)] if f > 1 else [params]
        # the outer state lives in fp32 on the host (DiLoCo keeps it off the accelerator)
        self.global_params = [[p.detach().float().cpu().clone() for p in frag]
                              for frag in self.fragments]
        self.outer = [torch.optim.SGD(g, lr=cfg.outer_lr, momentum=cfg.outer_momentum,
                                      nesterov=cfg.outer_momentum > 0)
                      for g in self.global_params]
        self.step = 0
        self.synced_at = [0] * len(self.fragments)
        self.pending: tuple[int, Any, list[torch.Tensor], list[torch.Tensor], int, float,
                            float] | None = None

    def module(self) -> nn.Module:
        return self.ddp

    def _every(self) -> int:
        return self.cfg.inner_steps // len(self.fragments)

    def after_step(self, step: int) -> None:
        self.step = step
        if self.pending is not None:
            self._complete()
        if step % self._every() == 0:
            frag = (step // self._every() - 1) % len(self.fragments)
            self._start(frag)
            if not self.streaming:
                self._complete()

    def finish(self) -> None:
        """Bring every site to the same weights: sync the fragments trained since their last
        exchange (the same decision on every rank: it depends only on the step)."""
        if self.pending is not None:
            self._complete()
        for f in range(len(self.fragments)):
            if self.synced_at[f] < self.step:
                self._start(f)
                self._complete()

    def _start(self, f: int) -> None:
        t = self.topo
        local = self.fragments[f]
        delta = torch.cat([(g - p.detach().float().cpu()).flatten()
                           for g, p in zip(self.global_params[f], local)])
        chunk = delta.tensor_split(t.workers)[t.local].contiguous()
        snapshot = [p.detach().clone() for p in local]
        parts = compress.encode(chunk, self.cfg.sync_bits)
        t0 = time.perf_counter()
        works, outs = [], []
        for part in parts:
            out = [torch.empty_like(part) for _ in range(t.sites)]
            works.append(dist.all_gather(out, part, group=t.cross_group, async_op=True))
            outs.append(out)
        sent = (t.sites - 1) * compress.nbytes(parts)
        self.pending = (f, (works, outs), snapshot, [chunk], delta.numel(), t0, sent)
        self.synced_at[f] = self.step

    def _complete(self) -> None:
        assert self.pending is not None
        f, (works, outs), snapshot, (chunk,), numel, t0, sent = self.pending
        self.pending = None
        t = self.topo
        for w in works:
            w.wait()
        t.count(sent, inter=t.sites > 1)
        t.wan_floor(sent, t0)
        per_site = [compress.decode([o[s] for o in outs], self.cfg.sync_bits, chunk.numel())
                    for s in range(t.sites)]
        mean = torch.stack(per_site).mean(dim=0)
        gathered = [torch.empty_like(mean) for _ in range(t.workers)]
        dist.all_gather(gathered, mean, group=t.site_group)
        t.count((t.workers - 1) * mean.numel() * 4, inter=False)
        t.counters.comm_s += time.perf_counter() - t0
        outer_grad = torch.cat(gathered)  # the chunks of `tensor_split`, in order
        assert outer_grad.numel() == numel
        offset = 0
        for g in self.global_params[f]:
            g.grad = outer_grad[offset:offset + g.numel()].view_as(g).clone()
            offset += g.numel()
        self.outer[f].step()
        self.outer[f].zero_grad()
        with torch.no_grad():
            for g, p, snap in zip(self.global_params[f], self.fragments[f], snapshot):
                drift = p - snap  # inner progress made while the exchange was in flight
                p.copy_(g.to(p.device, p.dtype) + drift)

    def state_dict(self) -> dict[str, Any]:
        return {"global": [[g.clone() for g in frag] for frag in self.global_params],
                "outer": [o.state_dict() for o in self.outer], "step": self.step,
                "synced_at": list(self.synced_at)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for frag, saved in zip(self.global_params, state["global"]):
            for g, s in zip(frag, saved):
                g.copy_(s)
        for o, s in zip(self.outer, state["outer"]):
            o.load_state_dict(s)
        self.step = int(state["step"])
        self.synced_at = [int(x) for x in state["synced_at"]]


def _device_ids(model: nn.Module) -> dict[str, Any]:
    dev = next(model.parameters()).device
    return {"device_ids": [dev.index]} if dev.type == "cuda" else {}


def make_sync(model: nn.Module, topo: Topology, cfg: RunConfig) -> SiteSync:
    cls = {"ddp": DDPSync, "hierarchical": HierarchicalSync, "diloco": DiLoCoSync,
           "streaming": DiLoCoSync}[cfg.site_sync]
    return cls(model, topo, cfg)
