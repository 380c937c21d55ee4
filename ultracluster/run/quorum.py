"""--failure-domain site: a DiLoCo site's seat in the quorum of each outer step.

`SiteMember`, the base of `run/diloco.py`'s `DiLoCoSync`, holds what a site does as a
failure domain on top of the exchange: joining the job, the vote on each exchange (the
quorum's weights, torchft's commit, the lag cycle's redo), pacing a slow site
(--inner-steps-by-time), the state a rejoining site loads from a healthy peer and the shared
state a site checkpoint keeps; and the record of one exchange (`_Exchange`), which the
vote reads. torchft's Manager and lighthouse are driven from
`run/replica.py`; the exchange itself is `run/diloco.py`'s.

Imports torch, like all of `run/`.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from ultracluster.run.comms import ProcessGroupLayout, all_reduce_bytes
from ultracluster.run.config import RunConfig
from ultracluster.run.sync import SyncStrategy


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


REDO_PAUSE_S = 0.2
"""--failure-domain site: the pause between two tries of an exchange redone while a site
is missing (`SiteMember._redo`). A polling interval: the redone quorum forms at once, so
without it the sites would rebuild their group as fast as they can while they wait."""


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


class SiteMember(SyncStrategy):
    """The failure-domain side of a DiLoCo site (a base class: `runs` names no strategy).
    `membership` is None in a job whose ranks all live or die together, and then every
    method here but `trains` and `observe` is unused."""

    # the exchange's state, set by DiLoCoSync
    step: int
    fragments: list[list[nn.Parameter]]
    global_params: list[list[torch.Tensor]]
    outer: list[torch.optim.SGD]
    synced_at: list[int]
    pending: _Exchange | None

    def __init__(self, model: nn.Module, layout: ProcessGroupLayout, cfg: RunConfig) -> None:
        super().__init__(model, layout, cfg)
        # the quorum of each exchange (run/replica.py)
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
        # site checkpoints (run/site_checkpoint.py): the first committed outer step whose
        # exchange started at step `capture_at` or later keeps a copy of the shared state in
        # `captured`
        self.quorum_sites: list[int] = []  # the sites of the last exchange's quorum
        self.capture_at: int | None = None
        self.captured: dict[str, Any] | None = None
        self.restore: Any = None  # () -> step or None: read the newest intact checkpoint
        self.restored = False  # set when join() went on from a checkpoint
        self.redo = False  # the exchange just resolved is to be redone (vote)
        self.formed_at = 0.0  # when this exchange's first quorum formed (monotonic, _redo)
        self.redos = 0  # exchanges redone since the rank log last took the count

    # the exchange, defined by DiLoCoSync
    def _start(self, f: int, *, quorum: bool = True, again: bool = False) -> None:
        raise NotImplementedError

    def _apply(self, ex: _Exchange) -> None:
        raise NotImplementedError

    def _fragment_at(self, step: int) -> int:
        raise NotImplementedError

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

    def vote(self, ex: _Exchange) -> list[float] | None:
        """Wait for this exchange's all-gather over the quorum and decide on it: the weight
        of each site present, or None when the outer step is skipped (the quorum did not
        commit, or is to be redone: `redo` is then set, or nobody brought a pseudo-gradient of
        its own). The last part all-gathered is each site's weight, step time, number and
        seconds since its first quorum of the exchange formed (`DiLoCoSync._start`)."""
        assert ex.works is not None and ex.outs is not None
        t = self.layout
        self.membership.wait(ex.works)
        wout = ex.outs[-1]
        weights = [float(w[0]) for w in wout]
        self.quorum_sites = [int(w[2]) for w in wout]
        n, total = len(weights), sum(weights)
        self.present = n
        self.last_total = 0.0
        t.count(ex.sent, inter=True)
        if self._redo(n, weights, [float(w[3]) for w in wout]):
            self.membership.fail("redone: a site was left out")
            self.membership.commit()
            return None
        if not self.membership.commit():  # a site failed in this exchange: skip it
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
        return weights if total > 0 else None

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
