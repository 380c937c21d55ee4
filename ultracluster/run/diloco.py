"""DiLoCo and streaming DiLoCo (`--site-sync diloco|streaming`): sites that agree every H
steps instead of every step.

- `diloco`: DDP inside each site every step; every H steps the sites average pseudo-gradients
  (global minus local weights, compressed to `bits`) and take an outer Nesterov SGD step
  (Douillard et al. 2023). Each site keeps its own inner AdamW. An optional warm-up trains the
  first steps as one data-parallel job across sites.
- `streaming`: DiLoCo with the model in F fragments; one fragment is exchanged every H/F
  steps, asynchronously, and applied one inner step later (Douillard et al. 2025), so the
  exchange overlaps the next inner step; the local progress made meanwhile is kept.

The cross-site exchange of pseudo-gradients is split over the W workers of a site (their
replicas are identical after the intra-site all-reduce): worker l sends chunk l. With
`--failure-domain site` it runs over the quorum of the outer step, and what a site does as a
failure domain (joining, the vote, recovery from a peer) is `run/quorum.py`'s.

The state (`state_dict`) is the same on every worker of a site and does not depend on W. An
exchange in flight when a checkpoint is taken is completed (its communication, not its
application) and saved, so a resumed run applies it at the same step as an uninterrupted one.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from ultracluster.plan.vocab import RunSync, SyncMode
from ultracluster.run import compress
from ultracluster.run.comms import ProcessGroupLayout, all_gather_bytes
from ultracluster.run.config import RunConfig
from ultracluster.run.quorum import REDO_PAUSE_S, SiteMember, _Exchange
from ultracluster.run.sync import counted_ddp, hierarchical_grads


class DiLoCoSync(SiteMember):
    """DiLoCo (fragments = 1) and streaming DiLoCo (fragments = F, overlapped)."""

    runs = (RunSync.DILOCO, RunSync.STREAMING)

    def __init__(self, model: nn.Module, layout: ProcessGroupLayout, cfg: RunConfig) -> None:
        super().__init__(model, layout, cfg)
        self.ddp = counted_ddp(model, layout, layout.site_group, layout.workers, crosses=False)
        self.streaming = cfg.site_sync.mode == SyncMode.STREAMING
        self.names = [n for n, _ in model.named_parameters()]
        params = [p for p in model.parameters()]
        f = cfg.fragments if self.streaming else 1
        self.frag_index = [list(range(len(params)))[i::f] for i in range(f)]
        self.fragments = [[params[i] for i in idx] for idx in self.frag_index]
        # the outer state lives in fp32 on the host (DiLoCo keeps it off the accelerator)
        self.global_params = [[p.detach().float().cpu().clone() for p in frag]
                              for frag in self.fragments]
        self.outer = [torch.optim.SGD(g, lr=cfg.outer_lr, momentum=cfg.outer_momentum,
                                      nesterov=cfg.outer_momentum > 0)
                      for g in self.global_params]
        self.step = 0
        self._buffers: dict[str, torch.Tensor] = {}
        self.synced_at = [0] * len(self.fragments)
        self.pending = None

    def module(self) -> nn.Module:
        return self.ddp

    def _every(self) -> int:
        return self.cfg.inner_steps // len(self.fragments)

    def after_backward(self) -> None:
        """During the warm-up (the first `sync_warmup_steps` steps) the sites train as one
        data-parallel job: gradients averaged across sites every step."""
        if self.step < self.cfg.sync_warmup_steps:
            hierarchical_grads(self.layout, self.model, in_site=False)

    def _fragment_at(self, step: int) -> int:
        return ((step - self.cfg.sync_warmup_steps) // self._every() - 1) % len(self.fragments)

    def after_step(self, step: int, *, trained: bool = True) -> None:
        self.step = step
        if trained:
            self.pending_tokens += self.tokens_per_step
            self.round_steps += 1
        warm = self.cfg.sync_warmup_steps
        if step <= warm:
            if step == warm:  # the replicas are identical: that is the first global model
                self._restart_outer()
            return
        if self.pending is not None:
            self._apply(self.pending)
        if (step - warm) % self._every() == 0:
            self._start(self._fragment_at(step))
            if not self.streaming:
                assert self.pending is not None
                self._apply(self.pending)

    def _restart_outer(self) -> None:
        with torch.no_grad():
            for frag, params in zip(self.global_params, self.fragments):
                for g, p in zip(frag, params):
                    g.copy_(p.detach().float().cpu())
        self.synced_at = [self.step] * len(self.fragments)

    def finish(self) -> None:
        """Bring every site to the same weights: sync the fragments trained since their last
        exchange (the same decision on every rank: it depends only on the step)."""
        if self.pending is not None:
            self._apply(self.pending)
        for f in range(len(self.fragments)):
            if self.synced_at[f] < self.step:
                self._start(f)
                assert self.pending is not None
                self._apply(self.pending)

    def _start(self, f: int, *, quorum: bool = True, again: bool = False) -> None:
        """Start the exchange of fragment `f`; `again`: redo the one just abandoned (same
        work, same weight and step time, a new quorum)."""
        t = self.layout
        if self.membership is not None and quorum:
            if not again:  # the share of the outer step's H inner steps this site ran
                self.weight = (min(self.round_steps, self.cfg.inner_steps)
                               / self.cfg.inner_steps if self.cfg.inner_steps_by_time else 1.0)
            if self.membership.begin():  # this site was behind: it now holds a peer's state
                f = self._fragment_at(self.step)
                self.weight = 0.0
        if not again:  # the first quorum of this exchange has just formed (see SiteMember._redo)
            self.formed_at = time.monotonic()
        local = self.fragments[f]
        delta = self._held(f"delta{f}", sum(p.numel() for p in local))
        offset = 0
        for g, p in zip(self.global_params[f], local):  # global minus local, in place
            torch.sub(g, p.detach().float().cpu(), out=delta[offset:offset + g.numel()].view_as(g))
            offset += g.numel()
        chunk = delta.tensor_split(t.workers)[t.local]
        ex = _Exchange(frag=f, snapshot=[p.detach().clone() for p in local],
                       chunk_numel=chunk.numel())
        parts = compress.encode(chunk, self.cfg.sync_bits,
                                self._held("scratch", compress.padded(chunk.numel())))
        ex.started = time.perf_counter()
        if self.membership is not None:  # the sites of this quorum, each with its weight,
            # its median inner step time (--inner-steps-by-time paces the next one on it), its
            # number and the seconds since the exchange's first quorum formed (SiteMember._redo)
            if not again:
                self.step_s = statistics.median(self.round_times) if self.round_times else 0.0
                self.round_times, self.round_steps = [], 0
            parts = parts + [torch.tensor([self.weight, self.step_s, float(t.site),
                                           time.monotonic() - self.formed_at])]
            ex.works, ex.outs = self.membership.all_gather(parts)
            n = len(ex.outs[0])
        else:
            n = t.sites
            ex.works, ex.outs = [], []
            for part in parts:
                out = [torch.empty_like(part) for _ in range(t.sites)]
                ex.works.append(dist.all_gather(out, part, group=t.cross_group, async_op=True))
                ex.outs.append(out)
        ex.sent = all_gather_bytes(n, compress.nbytes(parts))
        self.pending = ex
        self.synced_at[f] = self.step

    def _resolve(self, ex: _Exchange) -> torch.Tensor | None:
        """Finish the exchange's communication: the mean pseudo-gradient of the fragment
        (None: with --failure-domain site, the quorum did not commit, is to be redone, or
        nobody brought a pseudo-gradient of its own; the outer step is skipped)."""
        if ex.outer_grad is not None:
            return ex.outer_grad
        assert ex.works is not None and ex.outs is not None
        t = self.layout
        outs = ex.outs
        n = t.sites
        weights: list[float] = []
        if self.membership is not None:
            voted = self.vote(ex)
            if voted is None:
                t.counters.comm_s += time.perf_counter() - ex.started
                ex.works = ex.outs = None
                return None
            weights, outs, n = voted, outs[:-1], len(voted)
        else:
            for w in ex.works:
                w.wait()
            t.count(ex.sent, inter=t.sites > 1)
        t.wan_floor(ex.sent * t.workers, n - 1, ex.started)  # W workers share the link
        # the mean over the sites (with --failure-domain site, over those present that bring
        # a pseudo-gradient of their own, each with its weight), accumulated in buffers kept
        # from one exchange to the next
        mean = self._held("mean", ex.chunk_numel)
        scratch = self._held("scratch", compress.padded(ex.chunk_numel))
        mean.zero_()
        for s in range(n):
            compress.decode_add([o[s] for o in outs], self.cfg.sync_bits, mean,
                                alpha=weights[s] if weights else 1.0, scratch=scratch)
        mean.div_(sum(weights) if weights else n)
        if t.workers > 1:
            gathered = [torch.empty_like(mean) for _ in range(t.workers)]
            dist.all_gather(gathered, mean, group=t.site_group)
            t.count(all_gather_bytes(t.workers, mean.numel() * 4), inter=False)
            ex.outer_grad = torch.cat(gathered)  # the chunks of `tensor_split`, in order
        else:
            ex.outer_grad = mean
        t.counters.comm_s += time.perf_counter() - ex.started
        ex.works = ex.outs = None
        return ex.outer_grad

    def _held(self, name: str, numel: int) -> torch.Tensor:
        """A host fp32 buffer of at least `numel` values, kept from one exchange to the next
        (the pseudo-gradient, the codec's scratch, the mean): a model's worth of fresh pages
        at every exchange costs more than its arithmetic on a CPU."""
        buf = self._buffers.get(name)
        if buf is None or buf.numel() < numel:
            buf = self._buffers[name] = torch.empty(numel)
        return buf[:numel]

    def _apply(self, ex: _Exchange) -> None:
        """The outer step on the fragment, keeping the inner progress made meanwhile."""
        outer_grad = self._resolve(ex)
        self.pending = None
        if self.redo:  # abandoned uncommitted: the same exchange again, in a new quorum
            self.redo = False
            self.redos += 1
            time.sleep(REDO_PAUSE_S)
            self._start(ex.frag, again=True)
            assert self.pending is not None
            self._apply(self.pending)
            return
        if outer_grad is None:  # skipped: keep the local weights
            return
        f = ex.frag
        offset = 0
        for g in self.global_params[f]:
            g.grad = outer_grad[offset:offset + g.numel()].view_as(g)  # SGD only reads it
            offset += g.numel()
        assert offset == outer_grad.numel()
        self.outer[f].step()
        self.outer[f].zero_grad()
        with torch.no_grad():
            for g, p, snap in zip(self.global_params[f], self.fragments[f], ex.snapshot):
                # the inner progress made while the exchange was in flight, on the new global
                p.sub_(snap).add_(g.to(p.device, p.dtype))
        if self.capture_at is not None and self.synced_at[f] >= self.capture_at:
            self._capture(self.synced_at[f])

    def state_dict(self) -> dict[str, Any]:
        """Tensors keyed by parameter name (the same on every worker of a site, independent
        of W). An exchange in flight is resolved first and saved with its snapshot."""
        state = self.template(-1 if self.pending is None else self.pending.frag)
        state["step"] = torch.tensor(self.step)
        state["synced_at"] = torch.tensor(self.synced_at, dtype=torch.int64)
        for f, (idx, frag, opt) in enumerate(zip(self.frag_index, self.global_params,
                                                 self.outer)):
            for i, g in zip(idx, frag):
                state["global"][self.names[i]] = g.clone()
                buf = opt.state.get(g, {}).get("momentum_buffer")
                if buf is not None:
                    state["momentum"][self.names[i]] = buf.clone()
                    state["has_momentum"][f] = 1
        if self.pending is not None:
            grad = self._resolve(self.pending)
            assert grad is not None  # checkpoints are for --failure-domain job
            state["pending_grad"] = grad.clone()
            for i, snap in zip(self.frag_index[self.pending.frag], self.pending.snapshot):
                state["snapshot"][self.names[i]] = snap.detach().cpu().clone()
        return state

    HEADER = ("pending_frag",)
    """The keys to read first: `pending_frag` says which template the rest needs."""

    def template(self, pending_frag: int) -> dict[str, Any]:
        """The state's shape, for a checkpoint reader to fill in (zeros where unset)."""
        state: dict[str, Any] = {
            "step": torch.tensor(0),
            "synced_at": torch.zeros(len(self.fragments), dtype=torch.int64),
            "pending_frag": torch.tensor(pending_frag),
            "has_momentum": torch.zeros(len(self.fragments), dtype=torch.int64),
            "global": {}, "momentum": {},
        }
        for idx, frag in zip(self.frag_index, self.global_params):
            for i, g in zip(idx, frag):
                state["global"][self.names[i]] = torch.zeros_like(g)
                state["momentum"][self.names[i]] = torch.zeros_like(g)
        if pending_frag >= 0:
            idx, params = self.frag_index[pending_frag], self.fragments[pending_frag]
            state["pending_grad"] = torch.zeros(sum(p.numel() for p in params))
            state["snapshot"] = {self.names[i]: torch.zeros_like(p.detach().cpu())
                                 for i, p in zip(idx, params)}
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for f, (idx, frag, opt) in enumerate(zip(self.frag_index, self.global_params,
                                                 self.outer)):
            for i, g in zip(idx, frag):
                g.copy_(state["global"][self.names[i]])
                opt.state.pop(g, None)
                if int(state["has_momentum"][f]):
                    opt.state[g]["momentum_buffer"] = state["momentum"][self.names[i]].clone()
        self.step = int(state["step"])
        self.synced_at = [int(x) for x in state["synced_at"]]
        pending = int(state["pending_frag"])
        self.pending = None
        if pending >= 0:
            dev = self.fragments[pending][0].device
            snap = [state["snapshot"][self.names[i]].to(dev) for i in self.frag_index[pending]]
            self.pending = _Exchange(frag=pending, snapshot=snap,
                                     outer_grad=state["pending_grad"].clone())
