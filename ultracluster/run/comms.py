"""The process-group layout of a run, byte counters per tier, and WAN emulation.

Rank r belongs to site r // W (W workers per site) and has local index r % W. Each site has a
data-parallel group; each local index has a cross-site group (one rank per site); the flat
group holds every rank, in site order.

Bytes are counted for every collective this rank takes part in, as the bytes it puts on the
wire under the bandwidth-optimal ring (Patarasuk & Yuan 2009): all-reduce of B over n ranks
2(n-1)/n x B, all-gather of a P-byte contribution (n-1) x P, broadcast of B (n-1)/n x B. They
go to `inter_site` when the hop they leave on crosses sites, else to `intra_site`. A group of
one site never crosses; a cross-site group (one rank per site) always does; in a flat ring
over ranks in site order only the hop from a site's last worker to the next site's first
crosses, so only those ranks' bytes are inter-site (S of the S x W hops).

WAN emulation (`--wan-gbps`, `--wan-latency-ms`): each site has one link to the others. A
cross-site transfer occupies it for its bytes / bandwidth, one transfer after another, and
arrives one latency per sequential ring step later (2(n-1) steps for an all-reduce, n-1 for
an all-gather), as the simulator's ring formulas count them. The real collective runs; the
rank then waits out the rest of the emulated time (counted as waiting time). Transfers
started asynchronously (DDP's buckets during backward) are scheduled on the link as they are
issued and waited for once, after backward, so they overlap compute as they do in DDP.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch.distributed as dist
from torch.distributed import ProcessGroup


@dataclass
class Counters:
    intra_site: int = 0
    inter_site: int = 0
    comm_s: float = 0.0
    wait_s: float = 0.0

    def snapshot(self) -> dict[str, float]:
        """The counters' current values, as a plain dict (for the metrics log and deltas)."""
        return {"intra_site": self.intra_site, "inter_site": self.inter_site,
                "comm_s": self.comm_s, "wait_s": self.wait_s}


def all_reduce_bytes(n: int, nbytes: float) -> float:
    """Bytes one rank sends in a ring all-reduce of `nbytes` over `n` ranks."""
    return 2 * (n - 1) / n * nbytes if n > 1 else 0.0


def all_gather_bytes(n: int, nbytes: float) -> float:
    """Bytes one rank sends in a ring all-gather of an `nbytes` contribution over `n` ranks."""
    return (n - 1) * nbytes if n > 1 else 0.0


def broadcast_bytes(n: int, nbytes: float) -> float:
    """Bytes one rank sends, on average, in a pipelined ring broadcast of `nbytes`."""
    return (n - 1) / n * nbytes if n > 1 else 0.0


@dataclass
class ProcessGroupLayout:
    """Which process group each rank is in, and what its collectives cost per tier."""

    rank: int
    world: int
    sites: int
    workers: int
    site_group: ProcessGroup | None
    cross_group: ProcessGroup | None
    wan_bytes_per_s: float | None
    wan_latency_s: float
    counters: Counters = field(default_factory=Counters)
    _link_free: float = 0.0
    _wan_done: float = 0.0

    @property
    def site(self) -> int:
        """This rank's site (ranks are numbered site by site)."""
        return self.rank // self.workers

    @property
    def local(self) -> int:
        """This rank's index among its site's workers."""
        return self.rank % self.workers

    @property
    def flat_hop_crosses(self) -> bool:
        """In a ring over every rank in site order, does this rank's outgoing hop cross?"""
        return self.sites > 1 and self.local == self.workers - 1

    def count(self, nbytes: float, *, inter: bool) -> None:
        """Add `nbytes` this rank sent to the inter-site or the intra-site counter."""
        if inter:
            self.counters.inter_site += int(nbytes)
        else:
            self.counters.intra_site += int(nbytes)

    def schedule_wan(self, link_bytes: float, steps: int, started: float) -> float:
        """Put a cross-site transfer of `link_bytes` (on this site's link) in `steps`
        sequential ring steps, issued at `started`, on the link; return its arrival time."""
        if self.sites < 2 or (not self.wan_bytes_per_s and not self.wan_latency_s):
            return started
        begin = max(started, self._link_free)
        busy = link_bytes / self.wan_bytes_per_s if self.wan_bytes_per_s else 0.0
        self._link_free = begin + busy
        done = self._link_free + steps * self.wan_latency_s
        self._wan_done = max(self._wan_done, done)
        return done

    def wait_until(self, when: float) -> None:
        """Sleep until the `time.perf_counter()` instant `when` (if still ahead), counting the
        wait."""
        left = when - time.perf_counter()
        if left > 0:
            time.sleep(left)
            self.counters.wait_s += left

    def wan_floor(self, link_bytes: float, steps: int, started: float) -> None:
        """A synchronous cross-site transfer: wait until it could have arrived."""
        self.wait_until(self.schedule_wan(link_bytes, steps, started))

    def drain_wan(self) -> None:
        """Wait for every transfer scheduled so far (DDP's overlapped buckets)."""
        self.wait_until(self._wan_done)


def build_layout(*, sites: int, workers: int, wan_gbps: float | None,
                 wan_latency_ms: float) -> ProcessGroupLayout:
    """Create every group (all ranks must call this in the same order)."""
    rank, world = dist.get_rank(), dist.get_world_size()
    if world != sites * workers:
        raise RuntimeError(f"world size {world} != sites {sites} x workers {workers}")
    site_group = cross_group = None
    for s in range(sites):
        g = dist.new_group(list(range(s * workers, (s + 1) * workers)))
        if rank // workers == s:
            site_group = g
    for lidx in range(workers):
        g = dist.new_group([s * workers + lidx for s in range(sites)])
        if rank % workers == lidx:
            cross_group = g
    return ProcessGroupLayout(rank=rank, world=world, sites=sites, workers=workers,
                              site_group=site_group, cross_group=cross_group,
                              wan_bytes_per_s=wan_gbps * 1e9 / 8 if wan_gbps else None,
                              wan_latency_s=wan_latency_ms / 1e3)
