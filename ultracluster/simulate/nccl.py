"""NCCL's choice of algorithm and protocol per collective call, from its own cost model.

NCCL predicts, for every call, ``time = latency(algorithm, protocol) + bytes / bandwidth``
for each algorithm and protocol it may use, and runs the fastest (``ncclTopoTuneModel`` and
``ncclTopoGetAlgoTime`` in ``src/graph/tuning.cc``). Every constant below is that file's, at
NVIDIA/nccl commit ``b6475625fbcaa2c3c0e50eed2fa1255d7514d4a2`` (NCCL 2.19-2.20, 2023-24;
``SRC`` below), unless flagged an estimate:

- all-reduce: Ring or Tree; reduce-scatter and all-gather: Ring only (NVLS, CollNet and PAT
  need NVLink SHARP, in-network reduction or a newer NCCL: not modelled);
- protocols LL, LL128 and Simple; LL128 only on Volta, Ampere and Hopper with NVLink (the
  file's default, so Blackwell runs LL and Simple here);
- ring latency: base + (steps - inter-node steps) x intra + inter-node steps x inter, with
  2(n-1) steps for all-reduce (2 x nodes of them inter-node), n-1 for reduce-scatter and
  all-gather (nodes-1 inter-node);
- tree latency: base + 2 x ((ranks per node - 1) x intra + log2(nodes) x inter);
- bus bandwidth: the ring's (here: the hierarchical tiers' of `comm.py`, which is what the
  ring reaches: a node's NICs carry its share of every channel); LL x 1/4 (1/3 for a
  single-node reduce-scatter or all-gather) and capped, LL128 x 0.92 (0.7 with one rank per
  node); tree x 0.92, LL x 1/3.8 (capped), LL128 x 7/9 (one node) or 120/128; algorithm
  bandwidth = bus x n/(2(n-1)) for a ring all-reduce, x n/(n-1) for reduce-scatter and
  all-gather, x 1/2 for a tree; the tree's per-size correction; the ring's "plateau" x 1.4 on
  a multi-node Simple all-reduce's latency.

Departures (each stated where it is used): the per-channel caps (``perChMax*Bws`` x channels)
are left out, since the channel count is not in the catalogue (they bind only on a tree's or
LL128's bandwidth, which the ring beats at large sizes anyway); multi-node LL caps take the
Intel-CPU row; the network plugin's latency (``graphs->latencyInter``) is 0, as NCCL's
InfiniBand transport reports it, so the catalogue's fabric latency is not added: ``hwLat``
already holds a network step's; a step between sites adds the inter-site link's latency
(NCCL's model has no such tier).

Non-NVIDIA chips (Trainium's Neuron collectives, TPU ICI, AMD's RCCL, the CPU gloo preset)
keep `comm.py`'s ring model: no published source states their algorithm choice.
Everything is elementwise over numpy arrays, as the planner's bulk path needs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ultracluster.simulate.comm import Arr, ArrLike

SRC = "NVIDIA/nccl src/graph/tuning.cc @ b6475625fbcaa2c3c0e50eed2fa1255d7514d4a2"
US = 1e-6
GB = 1e9  # tuning.cc's bandwidths are GB/s (time_us = lat + bytes / (1000 x bw))

LL, LL128, SIMPLE = 0, 1, 2
PROTOCOLS = ("LL", "LL128", "Simple")
RING, TREE = 0, 1
ALGORITHMS = ("Ring", "Tree")

BASE_LAT = {RING: (6.6 * US, 14.0 * US, 8.4 * US), TREE: (6.8 * US, 14.0 * US, 0.0)}
"""``baseLat`` (us) per algorithm, per protocol (LL, LL128, Simple)."""
NVLINK_LAT = {RING: (0.6 * US, 1.9 * US, 3.4 * US), TREE: (0.6 * US, 1.25 * US, 28.0 * US)}
"""``hwLat[NCCL_HW_NVLINK]``: a step inside a node."""
NET_LAT = {RING: (2.7 * US, 4.0 * US, 14.0 * US), TREE: (5.0 * US, 8.5 * US, 28.0 * US)}
"""``hwLat[NCCL_HW_NET]``: a step between nodes."""
NET_OVERHEAD = 1.0 * US
"""``getNetOverhead``: 1 us per step on Intel CPUs (2 us on AMD), x 3 for Simple; a ring's
intra-node steps cost at least this when the communicator spans nodes."""
RING_LL_BW = (1.0 / 4.0, 1.0 / 3.0)
"""Ring LL bus bandwidth factor: 1/4 across nodes or for all-reduce, 1/3 otherwise."""
RING_LL128_BW = (0.92, 0.7)
"""Ring LL128 factor: 0.92, or 0.7 with fewer than 2 ranks per node (``ppn < 2``)."""
TREE_BW = 0.92
TREE_LL_BW = 1.0 / 3.8
TREE_LL128_BW = (7.0 / 9.0, 120.0 / 128.0)
"""Tree LL128 factor: 7/9 on one node, 120/128 across nodes."""
RING_PLATEAU = 1.4
"""Ring Simple all-reduce across nodes: latency x 1.4 (compute capability >= 8.0)."""
LL_MAX_BW = {"volta": 39.0 * GB, "ampere": 87.7 * GB, "hopper": 87.7 * GB}
"""``llMaxBws`` on one node, by GPU generation (Blackwell takes Hopper's row, as the file's
``minCompCap >= 90`` index does)."""
LL_MAX_BW_NODES = (39.0 * GB, 20.4 * GB)
"""``llMaxBws`` across 2 nodes and across more (Intel-CPU row; the AMD row reads 22.5 and
19.0: which CPU a system has is not in the catalogue)."""
TREE_CORRECTION = (
    (1.0, 1.0, 1.0, 1.0, .9, .8, .7, .7, .7, .7, .6, .5, .4, .4, .5, .6, .7, .8, .9, 1.0, 1.0,
     1.0, 1.0),
    (1.0, 1.0, 1.0, 1.0, 1.0, .9, .8, .8, .8, .7, .6, .6, .6, .6, .6, .6, .8, .9, .9, .9, .9,
     1.0, 1.0),
    (.9, .9, .9, .9, .9, .9, .9, .8, .7, .6, .6, .5, .5, .5, .5, .6, .7, .8, .7, .7, .8, .9,
     .9),
)
"""``treeCorrectionFactor[protocol][log2(bytes / 64)]``, 64 B to 256 MB; 1 beyond."""
LL128_ARCHS = frozenset({"volta", "ampere", "hopper"})
"""LL128 on by default (compute capability 7.0, 8.0, 9.0 with NVLink); off elsewhere."""


@dataclass(frozen=True, slots=True)
class Cost:
    """A collective's seconds for `nbytes`: the fastest of its options,
    ``c_k + a_k x nbytes / correction_k(nbytes)`` (the tree's per-size correction; 1 else)."""

    a: tuple[Arr, ...]
    c: tuple[Arr, ...]
    tree_proto: tuple[int, ...]
    """Per option, the tree protocol whose correction applies (-1: none)."""
    names: tuple[str, ...]

    def options(self, nbytes: ArrLike) -> list[Arr]:
        b = np.asarray(nbytes, dtype=np.float64)
        out: list[Arr] = []
        for a, c, tp in zip(self.a, self.c, self.tree_proto):
            t = c + a * b / tree_correction(tp, b) if tp >= 0 else c + a * b
            out.append(np.asarray(t, dtype=np.float64))
        return out

    def time(self, nbytes: ArrLike) -> Arr:
        opts = self.options(nbytes)
        best = opts[0]
        for t in opts[1:]:
            best = np.minimum(best, t)
        return best

    def choice(self, nbytes: ArrLike) -> Arr:
        """Index into `names` of the option chosen."""
        out: Arr = np.argmin(np.stack(np.broadcast_arrays(*self.options(nbytes))), axis=0)
        return out


def linear(a: Arr, c: Arr, name: str = "ring") -> Cost:
    """One option, ``c + a x nbytes`` (the ring model of `comm.py`)."""
    return Cost(a=(a,), c=(c,), tree_proto=(-1,), names=(name,))


def tree_correction(proto: int, nbytes: Arr) -> Arr:
    """``treeCorrectionFactor[proto][log2i(nbytes >> 6)]`` (1 at 512 MB and above)."""
    table = np.asarray(TREE_CORRECTION[proto] + (1.0,))
    idx = np.floor(np.log2(np.maximum(nbytes / 64.0, 1.0)))
    out: Arr = table[np.minimum(idx, len(table) - 1).astype(np.int64)]
    return out


@dataclass(frozen=True, slots=True)
class Group:
    """A communicator in NCCL's terms, with the tiers' physical figures (arrays over plans)."""

    n_pod: Arr
    """Ranks per node (NCCL's node is a scale-up domain: a DGX, or an NVL72 rack)."""
    n_site: Arr
    """Nodes per site."""
    n_inter: Arr
    """Sites."""
    a_rs: Arr
    """Seconds per byte of a ring reduce-scatter at full (Simple) bus bandwidth."""
    ring_lat: Arr
    """The hierarchical ring's latency (`comm.py`'s model, which non-NVIDIA chips keep)."""
    site_lat: float
    """Extra latency of a step between sites (the inter-site link's)."""


def _ll_cap(arch: str, nodes: Arr) -> Arr:
    one = LL_MAX_BW.get(arch, LL_MAX_BW["hopper"])
    out: Arr = np.where(nodes <= 1, one, np.where(nodes <= 2, LL_MAX_BW_NODES[0],
                                                  LL_MAX_BW_NODES[1]))
    return out


def cost(g: Group, coll: str, arch: str) -> Cost:
    """NCCL's options for `coll` ("all_reduce", "reduce_scatter" or "all_gather") on `g`."""
    n = g.n_pod * g.n_site * g.n_inter
    nodes = g.n_site * g.n_inter
    active = n > 1
    ar = coll == "all_reduce"
    multi = nodes > 1
    # bus bandwidth at Simple, as seconds per byte of "bus" traffic: (n-1)/n x B / busBw = a_rs x B
    frac = np.where(active, (n - 1) / np.where(active, n, 1.0), 1.0)
    inv_bus = np.where(active, g.a_rs / frac, 0.0)
    ll_cap = _ll_cap(arch, nodes)
    protos = (LL, LL128, SIMPLE) if arch in LL128_ARCHS else (LL, SIMPLE)
    # ring steps: all of them, those between nodes, those of them between sites
    if ar:
        steps, inter = 2 * (n - 1), np.where(multi, 2 * nodes, 0.0)
        site = np.where(g.n_inter > 1, 2 * g.n_inter, 0.0)
    else:
        steps, inter, site = n - 1, nodes - 1, g.n_inter - 1
    intra_steps = np.maximum(steps - inter, 0.0)
    fab_steps = inter - site
    a_out: list[Arr] = []
    c_out: list[Arr] = []
    tree_proto: list[int] = []
    names: list[str] = []
    for p in protos:
        simple = p == SIMPLE
        # ring bandwidth
        if p == LL:
            f = np.where(multi | ar, RING_LL_BW[0], RING_LL_BW[1])
            inv = np.maximum(inv_bus / f, 1.0 / ll_cap)
        elif p == LL128:
            inv = inv_bus / np.where(g.n_pod < 2, RING_LL128_BW[1], RING_LL128_BW[0])
        else:
            inv = inv_bus
        a_ring = (2.0 if ar else 1.0) * frac * inv
        # ring latency; a step between sites also waits for the inter-site link
        nvl = NVLINK_LAT[RING][p]
        intra = np.where(multi, max(nvl, NET_OVERHEAD * (3 if simple else 1)), nvl)
        net = NET_LAT[RING][p]
        net_site = NET_LAT[RING][p] + g.site_lat
        lat = BASE_LAT[RING][p] + intra_steps * intra + fab_steps * net + site * net_site
        if ar and simple:
            lat = np.where(multi, lat * RING_PLATEAU, lat)
        a_out.append(np.where(active, a_ring, 0.0))
        c_out.append(np.where(active, lat, 0.0))
        tree_proto.append(-1)
        names.append(f"Ring/{PROTOCOLS[p]}")
    if ar:
        levels = np.floor(np.log2(np.maximum(nodes, 1.0)))
        site_levels = np.floor(np.log2(np.maximum(g.n_inter, 1.0)))
        for p in protos:
            simple = p == SIMPLE
            inv = inv_bus / TREE_BW
            if p == LL:
                inv = np.maximum(inv / TREE_LL_BW, 1.0 / ll_cap)
            elif p == LL128:
                inv = inv / np.where(multi, TREE_LL128_BW[1], TREE_LL128_BW[0])
            net = NET_LAT[TREE][p]
            net_site = NET_LAT[TREE][p] + g.site_lat
            lat = BASE_LAT[TREE][p] + 2 * ((g.n_pod - 1) * NVLINK_LAT[TREE][p]
                                           + (levels - site_levels) * net
                                           + site_levels * net_site)
            # a tree's algorithm bandwidth is half its bus bandwidth
            a_out.append(np.where(active, 2.0 * inv, 0.0))
            c_out.append(np.where(active, lat, 0.0))
            tree_proto.append(p)
            names.append(f"Tree/{PROTOCOLS[p]}")
    return Cost(a=tuple(a_out), c=tuple(c_out), tree_proto=tuple(tree_proto),
                names=tuple(names))
