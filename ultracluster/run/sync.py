"""Site-sync strategies: how replicas in different sites agree.

- `ddp`: torch DDP over every rank, every step (the baseline), its all-reduce overlapping
  backward as usual; a comm hook counts the bytes per tier and schedules the emulated WAN.
- `hierarchical`: every step, average gradients inside each site, exchange one shard per worker
  across sites, all-gather the shards back inside the site.
- `diloco`: DDP inside each site every step; every H steps the sites average pseudo-gradients
  (global minus local weights, compressed to `bits`) and take an outer Nesterov SGD step
  (Douillard et al. 2023). Each site keeps its own inner AdamW. An optional warm-up trains the
  first steps as one data-parallel job across sites.
- `streaming`: DiLoCo with the model in F fragments; one fragment is exchanged every H/F
  steps, asynchronously, and applied one inner step later (Douillard et al. 2025), so the
  exchange overlaps the next inner step; the local progress made meanwhile is kept.

The cross-site exchange of pseudo-gradients is split over the W workers of a site (their
replicas are identical after the intra-site all-reduce): worker l sends chunk l.

A strategy's state (`state_dict`) is the same on every worker of a site and does not depend
on W, so a checkpoint keeps one copy per site and resumes with another W. An exchange in
flight when a checkpoint is taken is completed (its communication, not its application) and
saved, so a resumed run applies it at the same step as an uninterrupted one.
"""

# no `from __future__ import annotations`: DDP checks the comm hook's annotation at run time

import copy
import math
import statistics
import time
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

from ultracluster.run import compress
from ultracluster.run.comms import (ProcessGroupLayout, all_gather_bytes, all_reduce_bytes,
                                    broadcast_bytes)
from ultracluster.plan.vocab import RunSync, SyncMode
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


def _ddp(model: nn.Module, layout: ProcessGroupLayout, group: dist.ProcessGroup | None,
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


REDO_PAUSE_S = 0.2
"""--failure-domain site: the pause between two tries of an exchange redone while a site
is missing (`DiLoCoSync._redo`). A polling interval: the redone quorum forms at once, so
without it the sites would rebuild their group as fast as they can while they wait."""

STRATEGIES: dict[RunSync, type["SyncStrategy"]] = {}
"""Each `--site-sync` strategy's class, filled by the subclasses' `runs`."""


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
        self.ddp = _ddp(model, layout, None, layout.world, crosses=layout.flat_hop_crosses)

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


def _hierarchical_grads(t: ProcessGroupLayout, model: nn.Module, *, in_site: bool) -> None:
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
        _hierarchical_grads(self.layout, self.model, in_site=True)


@dataclass
class _Exchange:
    """One fragment's cross-site exchange: in flight (`works`), then resolved (`outer_grad`,
    the mean pseudo-gradient over sites), then applied at the next step."""

    frag: int
    snapshot: list[torch.Tensor]  # the fragment's local weights when the exchange started
    started: float = 0.0
    sent: float = 0.0
    chunk_numel: int = 0
    works: list[Any] | None = None
    outs: list[list[torch.Tensor]] | None = None
    outer_grad: torch.Tensor | None = None


def paced_steps(h: int, step_s: list[float], own_s: float) -> int:
    """--inner-steps-by-time: the inner steps a site runs in the next outer step, so that it
    arrives with the others. The outer step lasts H steps of the typical site (the lower
    median of the step times shared in the last exchange: with 3 sites of which one is slow,
    the fast ones' pace); a slower site runs as many of its own steps as fit in that time (at
    least 1, at most H), a faster one runs H and waits."""
    known = sorted(t for t in step_s if t > 0)
    if not known or own_s <= 0:
        return h
    pace = known[(len(known) - 1) // 2]
    return max(1, min(h, math.floor(h * pace / own_s + 1e-6)))


class DiLoCoSync(SyncStrategy):
    """DiLoCo (fragments = 1) and streaming DiLoCo (fragments = F, overlapped)."""

    runs = (RunSync.DILOCO, RunSync.STREAMING)

    def __init__(self, model: nn.Module, layout: ProcessGroupLayout, cfg: RunConfig) -> None:
        super().__init__(model, layout, cfg)
        self.ddp = _ddp(model, layout, layout.site_group, layout.workers, crosses=False)
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
        self.synced_at = [0] * len(self.fragments)
        self.pending: _Exchange | None = None
        # --failure-domain site: the quorum of each exchange (run/replica.py); None in a job
        # whose ranks all live or die together
        self.membership: Any = None
        self.inner: torch.optim.Optimizer | None = None  # sent to a rejoining site
        self.resumed_at: int | None = None  # set when this site loads a peer's state
        self.weight = 1.0  # 0 for a site whose pseudo-gradient this round is not its own
        self.useful_tokens = 0  # tokens whose pseudo-gradient entered a committed outer step
        self.pending_tokens = 0
        self.tokens_per_step = 0
        self.present = layout.sites  # sites in the last exchange's quorum
        self.join_tries = 0  # quorums it took to join (join())
        self.last_total = 0.0  # the weights brought to the last committed exchange
        # --inner-steps-by-time: the inner steps this site runs per outer step (`budget`), the
        # steps it ran and their times since the last exchange
        self.budget = cfg.inner_steps
        self.round_steps = 0
        self.round_times: list[float] = []
        self.step_s = 0.0  # this site's median step time, as sent in the last exchange
        # --failure-domain site checkpoints (run/site_checkpoint.py): the first committed
        # outer step whose exchange started at step `capture_at` or later keeps a copy of the
        # shared state in `captured`
        self.quorum_sites: list[int] = []  # the sites of the last exchange's quorum
        self.capture_at: int | None = None
        self.captured: dict[str, Any] | None = None
        self.restore: Any = None  # () -> step or None: read the newest intact checkpoint
        self.restored = False  # set when join() went on from a checkpoint
        self.redo = False  # the exchange just resolved is to be redone (_resolve)
        self.formed_at = 0.0  # when this exchange's first quorum formed (monotonic, _redo)
        self.redos = 0  # exchanges redone since the rank log last took the count

    def module(self) -> nn.Module:
        return self.ddp

    def _every(self) -> int:
        return self.cfg.inner_steps // len(self.fragments)

    def after_backward(self) -> None:
        """During the warm-up (the first `sync_warmup_steps` steps) the sites train as one
        data-parallel job: gradients averaged across sites every step."""
        if self.step < self.cfg.sync_warmup_steps:
            _hierarchical_grads(self.layout, self.model, in_site=False)

    def _fragment_at(self, step: int) -> int:
        return ((step - self.cfg.sync_warmup_steps) // self._every() - 1) % len(self.fragments)

    def trains(self, step: int) -> bool:
        """Whether this site runs inner step `step` (0-based) or sits it out: with
        --inner-steps-by-time it runs the first `budget` steps of each outer step."""
        warm = self.cfg.sync_warmup_steps
        if not self.cfg.inner_steps_by_time or step < warm:
            return True
        return (step - warm) % self.cfg.inner_steps < self.budget

    def observe(self, step_s: float) -> None:
        """The wall time of an inner step this site ran (for --inner-steps-by-time)."""
        self.round_times.append(step_s)

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

    def join(self, *, restarted: bool, wait_s: float) -> bool:
        """--failure-domain site, before the first step: join the quorum. A site that is
        behind (restarted, or started late) loads a healthy peer's state and takes part in
        that outer step with weight 0. At a fresh start every site waits up to `wait_s` for all
        the others. False if this site restarted and no peer is left to recover from.

        A restarted site that the quorum did not heal takes part in its exchange with weight
        0 and goes on only if some site of the quorum brought a pseudo-gradient of its own (a
        site that holds the job's state). Two restarted sites can meet in a quorum of their
        own while the healthy ones train: going on from it would train from the initial
        weights, and meanwhile the lighthouse (which wants a majority of the sites that
        heartbeat) would hold the healthy site's next quorum until one of them came back (the
        pauses of 12 to 29 s measured on site 0, docs/runtime.md). Only when that quorum holds
        every site of the job (all restarted at once: nobody holds the state) do they go on,
        from the newest intact checkpoint (`restore`) or from the start."""
        m = self.membership
        end = time.monotonic() + wait_s
        self.join_tries = 0
        while True:
            self.join_tries += 1
            if m.begin():
                self.weight = 0.0
                self._start(self._fragment_at(self.step), quorum=False)
                assert self.pending is not None
                self._apply(self.pending)
                return True
            n = m.participants()
            if m.errored():  # the recovery or the group's set-up failed: next quorum
                m.commit()
                time.sleep(0.1)
                continue
            if restarted and n < 2:
                m.fail("no healthy peer to recover from")
                m.commit()
                return False
            if restarted:  # behind nobody here: does any site of this quorum hold the state?
                self.weight = 0.0
                self._start(self._fragment_at(self.step), quorum=False)
                assert self.pending is not None
                self._apply(self.pending)
                if self.last_total > 0:
                    return True
                if n == self.layout.sites:  # every site restarted: nobody holds the state
                    self._restore()
                    return True
                time.sleep(0.5)  # only restarted sites met: ask again, with the others
                continue
            if n < self.layout.sites and time.monotonic() < end:
                m.fail("waiting for every site to start")
                m.commit()
                time.sleep(0.1)
                continue
            m.commit()
            return True

    def _restore(self) -> None:
        """The whole job restarted at once (every site is in a quorum that no site brought
        work to): go on from the newest intact checkpoint, or from the start without one."""
        step = self.restore() if self.restore is not None else None
        self.restored = True
        self.resumed_at = 0 if step is None else step

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
        if not again:  # the first quorum of this exchange has just formed (see _redo)
            self.formed_at = time.monotonic()
        local = self.fragments[f]
        delta = torch.cat([(g - p.detach().float().cpu()).flatten()
                           for g, p in zip(self.global_params[f], local)])
        chunk = delta.tensor_split(t.workers)[t.local].contiguous()
        ex = _Exchange(frag=f, snapshot=[p.detach().clone() for p in local],
                       chunk_numel=chunk.numel())
        parts = compress.encode(chunk, self.cfg.sync_bits)
        ex.started = time.perf_counter()
        if self.membership is not None:  # the sites of this quorum, each with its weight,
            # its median inner step time (--inner-steps-by-time paces the next one on it), its
            # number and the seconds since the first quorum of this exchange formed (_redo)
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
        (None: with --failure-domain site, the quorum did not commit, or nobody brought a
        pseudo-gradient of its own; the outer step is skipped)."""
        if ex.outer_grad is not None:
            return ex.outer_grad
        assert ex.works is not None and ex.outs is not None
        t = self.layout
        outs = ex.outs
        n = t.sites
        if self.membership is not None:
            self.membership.wait(ex.works)
            *outs, wout = outs
            weights = [float(w[0]) for w in wout]
            self.quorum_sites = [int(w[2]) for w in wout]
            n, total = len(weights), sum(weights)
            self.present = n
            self.last_total = 0.0
            t.count(ex.sent, inter=True)
            if self._redo(n, weights, [float(w[3]) for w in wout]):
                self.membership.fail("redone at once: a site was left out")
                self.membership.commit()
                t.counters.comm_s += time.perf_counter() - ex.started
                ex.works = ex.outs = None
                return None
            if not self.membership.commit():  # a site failed in this exchange: skip it
                t.counters.comm_s += time.perf_counter() - ex.started
                ex.works = ex.outs = None
                return None
            if self.cfg.inner_steps_by_time:
                own = float(torch.tensor(self.step_s))  # as sent (float32)
                budget = torch.tensor([paced_steps(self.cfg.inner_steps,
                                                   [float(w[1]) for w in wout], own)])
                if t.workers > 1:  # the site's workers step together: the same budget
                    dist.all_reduce(budget, op=dist.ReduceOp.MIN, group=t.site_group)
                    t.count(all_reduce_bytes(t.workers, 8), inter=False)
                self.budget = int(budget.item())
            if self.weight > 0:
                self.useful_tokens += self.pending_tokens
            self.pending_tokens = 0
            self.last_total = total
            if total == 0:
                ex.works = ex.outs = None
                return None
        else:
            for w in ex.works:
                w.wait()
            t.count(ex.sent, inter=t.sites > 1)
        t.wan_floor(ex.sent * t.workers, n - 1, ex.started)  # W workers share the link
        per_site = [compress.decode([o[s] for o in outs], self.cfg.sync_bits, ex.chunk_numel)
                    for s in range(n)]
        if self.membership is None:
            mean = torch.stack(per_site).mean(dim=0)
        else:  # over the sites present that bring a pseudo-gradient of their own
            mean = torch.stack([w * x for w, x in zip(weights, per_site)]).sum(dim=0) / total
        gathered = [torch.empty_like(mean) for _ in range(t.workers)]
        dist.all_gather(gathered, mean, group=t.site_group)
        t.count(all_gather_bytes(t.workers, mean.numel() * 4), inter=False)
        t.counters.comm_s += time.perf_counter() - ex.started
        ex.outer_grad = torch.cat(gathered)  # the chunks of `tensor_split`, in order
        ex.works = ex.outs = None
        return ex.outer_grad

    def _redo(self, n: int, weights: list[float], elapsed: list[float]) -> bool:
        """--failure-domain site: whether to abandon this exchange, uncommitted, and redo it
        in a new quorum (the lag cycle of docs/runtime.md).

        torchft's lighthouse waits for a late site up to its join timeout (--sync-timeout)
        counted from the *first* request of a round, and forms a quorum at once when every
        site of the previous quorum has asked (its fast quorum). A site that missed a quorum
        (restarted, hung, late) asks for the next one while the others are still training,
        so by the time they come its request has run the timer out: the quorum forms the
        moment the first of them arrives and leaves out the others, on time by a fraction of
        a second, which are then early in turn; every outer step would lose a site's work.
        Such a quorum lacks a site and holds one that brings no work of its own (weight 0:
        it has just recovered from a peer). Nobody commits it, and the same exchange is
        redone in a new quorum, again and again (`REDO_PAUSE_S` apart) while it keeps that
        shape, until the site left out has asked (it is then in the next one: the sites
        that redo are the previous quorum, so the lighthouse forms it the moment they have
        all asked, with every site waiting) or --sync-timeout has passed since the first
        quorum of the exchange formed (the wait the lighthouse's own rule gives a late site
        after the first on-time request; later, it is late and the exchange goes on
        without it). A single immediate redo is not enough: its quorum is the previous one,
        fast, formed before a site a fraction of a second late has asked.

        The same decision on every worker of every site of the quorum: it depends only on
        what they all-gathered (the largest `elapsed`, each site's seconds since it saw the
        first quorum form), and the workers of a site agree on it (one whose all-gather
        failed says no)."""
        t = self.layout
        assert self.membership is not None
        redo = (n < t.sites and min(weights) == 0.0 and max(weights) > 0.0
                and max(elapsed) < self.cfg.sync_timeout and not self.membership.errored())
        if t.workers > 1:
            flag = torch.tensor([int(redo)])
            dist.all_reduce(flag, op=dist.ReduceOp.MIN, group=t.site_group)
            t.count(all_reduce_bytes(t.workers, 8), inter=False)
            redo = bool(flag.item())
        self.redo = redo
        return redo

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
            g.grad = outer_grad[offset:offset + g.numel()].view_as(g).clone()
            offset += g.numel()
        assert offset == outer_grad.numel()
        self.outer[f].step()
        self.outer[f].zero_grad()
        with torch.no_grad():
            for g, p, snap in zip(self.global_params[f], self.fragments[f], ex.snapshot):
                drift = p - snap  # inner progress made while the exchange was in flight
                p.copy_(g.to(p.device, p.dtype) + drift)
        if self.capture_at is not None and self.synced_at[f] >= self.capture_at:
            self._capture(self.synced_at[f])

    def _capture(self, step: int) -> None:
        """--failure-domain site: the state every site shares after this committed outer step
        (global weights, outer momentum, the step its exchange started at); the saving site
        adds its inner optimiser's state (run/site_checkpoint.py)."""
        self.capture_at = None
        state = self.state_dict()  # no exchange in flight: _apply has just cleared it
        state["step"] = torch.tensor(step)
        state["synced_at"] = torch.tensor([min(s, step) for s in self.synced_at])
        self.captured = state

    def saver(self) -> bool:
        """Whether this site writes the checkpoint of the last committed outer step: the
        lowest-numbered site of its quorum (one copy for the job)."""
        return bool(self.quorum_sites) and min(self.quorum_sites) == self.layout.site

    def load_shared(self, state: dict[str, Any]) -> int:
        """Start this site from a checkpoint's shared state: the global weights and outer
        momentum, and local weights equal to the global ones; return the step."""
        self.load_state_dict(state)
        with torch.no_grad():
            for params, glob in zip(self.fragments, self.global_params):
                for p, g in zip(params, glob):
                    p.copy_(g.to(p.device, p.dtype))
        self.pending_tokens = 0
        return self.step

    def peer_state(self) -> dict[str, Any]:
        """What a rejoining site loads from this one (torchft sends it over HTTP)."""
        assert self.inner is not None
        return {"global": [[g.clone() for g in frag] for frag in self.global_params],
                "outer": copy.deepcopy([o.state_dict() for o in self.outer]),
                "inner": copy.deepcopy(self.inner.state_dict()), "step": self.step,
                "synced_at": list(self.synced_at)}

    def load_peer_state(self, state: dict[str, Any]) -> None:
        """Take a healthy peer's global weights, optimiser states and step; the local
        weights restart from the global ones (their own progress is not this site's)."""
        assert self.inner is not None
        self.inner.load_state_dict(state["inner"])
        for glob_f, saved in zip(self.global_params, state["global"]):
            for g, v in zip(glob_f, saved):
                g.copy_(v)
        for o, st in zip(self.outer, state["outer"]):
            o.load_state_dict(st)
        self.step = int(state["step"])
        self.synced_at = [int(x) for x in state["synced_at"]]
        self.pending = None
        with torch.no_grad():
            for params, glob in zip(self.fragments, self.global_params):
                for p, g in zip(params, glob):
                    p.copy_(g.to(p.device, p.dtype))
        self.resumed_at = self.step
        self.pending_tokens = 0

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


def _device_ids(model: nn.Module) -> dict[str, Any]:
    dev = next(model.parameters()).device
    return {"device_ids": [dev.index]} if dev.type == "cuda" else {}


def make_sync(model: nn.Module, layout: ProcessGroupLayout, cfg: RunConfig) -> SyncStrategy:
    """The strategy `cfg.site_sync` names, built on `model` and the run's process groups."""
    return STRATEGIES[cfg.site_sync](model, layout, cfg)
