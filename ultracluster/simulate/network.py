"""Which tier a parallel group crosses, and the time of its collectives there.

A group of `n` ranks at rank `stride` (the product of the degrees placed inside it) has
members inside one pod, pods inside one site and sites (`comm.tier_split`). Its collectives
run hierarchically: the scale-up tier first (bandwidth scaled by the torus links the group can
use), then the site fabric (each chip's NIC share), then the inter-site links, which every chip
of a site shares; a reduce-scatter between sites is a direct exchange over the full mesh of
links, so S sites use S-1 links at once.

On NVIDIA chips each call runs the algorithm and protocol NCCL's cost model picks
(`nccl.py`), over the same tiers' bandwidth; elsewhere the hierarchical ring of `comm.py`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ultracluster.simulate import comm, nccl
from ultracluster.simulate.comm import Arr, ArrLike
from ultracluster.simulate.context import HwContext


@dataclass(frozen=True, slots=True)
class Net:
    """Per-plan network constants (arrays over plans)."""

    hw: HwContext
    world: Arr
    chips_per_site: Arr
    """Chips of the plan in one site."""

    def tiers(self, stride: ArrLike, n: ArrLike) -> tuple[tuple[Arr, Arr, Arr], tuple[Arr, Arr, Arr],
                                                          tuple[Arr, Arr, Arr]]:
        """(members per tier), (bandwidth per chip per tier), (latency per tier)."""
        hw = self.hw
        e = hw.eff
        site = np.minimum(hw.site_chips, self.chips_per_site)
        n_pod, n_site, n_inter = comm.tier_split(stride, n, hw.pod_chips, site)
        span_pod = np.minimum(np.asarray(stride) * n_pod, hw.pod_chips)
        bw_up = hw.up_bw * comm.torus_factor(span_pod, hw.torus_dims) * e.scale_up_eff
        bw_out = np.broadcast_to(np.asarray(hw.fabric_bw * e.scale_out_eff), bw_up.shape)
        links = np.maximum(n_inter - 1, 1.0)
        bw_inter = hw.inter_bw * links / site * e.scale_out_eff if hw.inter_bw > 0 else \
            np.full_like(bw_up, np.inf)
        lat = (np.full_like(bw_up, hw.up_lat), np.full_like(bw_up, hw.fabric_lat),
               np.full_like(bw_up, hw.inter_lat + hw.fabric_lat))
        return (n_pod, n_site, n_inter), (bw_up, bw_out, np.asarray(bw_inter)), lat

    def groups(self, stride: ArrLike, n: ArrLike) -> tuple[nccl.Group, nccl.Group]:
        """The communicator of a group with the inter-site tier and without it (its members
        inside one site), from one tier split, so a group's several collectives share it."""
        (n1, n2, n3), (b1, b2, b3), (l1, l2, l3) = self.tiers(stride, n)
        a1 = (n1 - 1) / n1 / b1
        a2 = (n2 - 1) / n2 / (n1 * b2)
        a3 = (n3 - 1) / n3 / (n1 * n2 * b3)
        c12 = (n1 - 1) * l1 + (n2 - 1) * l2
        hw = self.hw
        site_lat = hw.inter_lat
        with_inter = nccl.Group(n_pod=n1, n_site=n2, n_inter=n3, a_rs=a1 + a2 + a3,
                                ring_lat=c12 + (n3 - 1) * l3, site_lat=site_lat)
        without = nccl.Group(n_pod=n1, n_site=n2, n_inter=np.ones_like(n3), a_rs=a1 + a2,
                             ring_lat=c12, site_lat=site_lat)
        return with_inter, without

    def cost(self, g: nccl.Group, coll: str) -> nccl.Cost:
        """`coll` ("all_reduce", "reduce_scatter", "all_gather") on `g`: NCCL's choice of
        algorithm and protocol on NVIDIA chips (`nccl.py`); elsewhere the hierarchical ring of
        `comm.py` (reduce-scatter = all-gather: t = a x B + c; all-reduce twice that)."""
        if self.hw.nccl_arch:
            return nccl.cost(g, coll, self.hw.nccl_arch)
        k = 2.0 if coll == "all_reduce" else 1.0
        return nccl.linear(k * g.a_rs, k * g.ring_lat)

    def reduce_scatter(self, stride: ArrLike, n: ArrLike, nbytes: ArrLike,
                       *, inter: bool = True) -> Arr:
        """Reduce-scatter (= all-gather) of `nbytes` per chip."""
        g = self.groups(stride, n)[0 if inter else 1]
        return self.cost(g, "reduce_scatter").time(nbytes)

    def all_reduce(self, stride: ArrLike, n: ArrLike, nbytes: ArrLike) -> Arr:
        """Seconds for an all-reduce of `nbytes` per chip (`cost`)."""
        return self.cost(self.groups(stride, n)[0], "all_reduce").time(nbytes)

    def outermost(self, stride: ArrLike, n: ArrLike) -> tuple[Arr, Arr]:
        """Bandwidth and latency of the slowest tier a group touches (for all-to-all, p2p)."""
        ns, bws, lats = self.tiers(stride, n)
        bw = np.where(ns[2] > 1, bws[2], np.where(ns[1] > 1, bws[1], bws[0]))
        lat = np.where(ns[2] > 1, lats[2], np.where(ns[1] > 1, lats[1], lats[0]))
        return bw, lat

    def all_to_all(self, stride: ArrLike, n: ArrLike, nbytes: ArrLike) -> Arr:
        """Seconds for an all-to-all of `nbytes` per chip at the slowest tier the group
        crosses (`comm.all_to_all`).
        """
        bw, lat = self.outermost(stride, n)
        return comm.all_to_all(n, nbytes, bw, lat)

    def neighbour(self, stride: ArrLike, nbytes: ArrLike) -> Arr:
        """Point-to-point to the next rank at `stride` (pipeline, context ring)."""
        bw, lat = self.outermost(stride, 2.0)
        return comm.p2p(nbytes, bw, lat)

    def inter_site(self, stride: ArrLike, n: ArrLike) -> tuple[Arr, Arr, Arr]:
        """(sites in the group, per-chip inter-site bandwidth, inter-site latency)."""
        ns, bws, lats = self.tiers(stride, n)
        return ns[2], bws[2], lats[2]
