"""Process groups from the site layout, byte counters per tier, and WAN emulation.

Rank r belongs to site r // W (W workers per site) and has local index r % W. Each site has a
data-parallel group; each local index has a cross-site group (one rank per site).

Bytes are counted for every collective this rank takes part in, as the bytes it puts on the
wire under the bandwidth-optimal algorithm: all-reduce of B over n ranks 2(n-1)/n x B,
all-gather of a P-byte contribution (n-1) x P; they go to `inter_site` when the group spans
sites, else to `intra_site`.

WAN emulation: a cross-site collective takes at least latency + (bytes x W) / bandwidth, the W
workers of a site sharing its one link; the real collective runs, then the rank waits out
the rest (counted as waiting time).
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
        return {"intra_site": self.intra_site, "inter_site": self.inter_site,
                "comm_s": self.comm_s, "wait_s": self.wait_s}


@dataclass
class Topology:
    rank: int
    world: int
    sites: int
    workers: int
    site_group: ProcessGroup | None
    cross_group: ProcessGroup | None
    wan_bytes_per_s: float | None
    wan_latency_s: float
    counters: Counters = field(default_factory=Counters)

    @property
    def site(self) -> int:
        return self.rank // self.workers

    @property
    def local(self) -> int:
        return self.rank % self.workers

    def count(self, nbytes: float, *, inter: bool) -> None:
        if inter:
            self.counters.inter_site += int(nbytes)
        else:
            self.counters.intra_site += int(nbytes)

    def wan_floor(self, nbytes: float, started: float) -> None:
        """Wait until a cross-site transfer of `nbytes` started at `started` could finish."""
        if self.sites < 2:
            return
        need = self.wan_latency_s
        if self.wan_bytes_per_s:
            need += nbytes * self.workers / self.wan_bytes_per_s
        left = need - (time.perf_counter() - started)
        if left > 0:
            time.sleep(left)
            self.counters.wait_s += left


def build_topology(*, sites: int, workers: int, wan_gbps: float | None,
                   wan_latency_ms: float) -> Topology:
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
    return Topology(rank=rank, world=world, sites=sites, workers=workers,
                    site_group=site_group, cross_group=cross_group,
                    wan_bytes_per_s=wan_gbps * 1e9 / 8 if wan_gbps else None,
                    wan_latency_s=wan_latency_ms / 1e3)


def all_reduce_bytes(n: int, nbytes: int) -> float:
    return 2 * (n - 1) / n * nbytes if n > 1 else 0.0
