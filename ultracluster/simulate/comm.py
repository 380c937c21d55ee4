"""Collectives on network tiers: ``latency + bytes / (bandwidth x efficiency)`` per step.

Every function works elementwise on numpy arrays (the planner's bulk path) and on 0-d arrays
(one plan). Bandwidths are per chip, one direction, already multiplied by efficiency.

Algorithms (Thakur, Rabenseifner & Gropp 2005, 'Optimization of Collective Communication
Operations in MPICH'; Patarasuk & Yuan 2009 for bandwidth-optimal rings):

- ring reduce-scatter / all-gather on n ranks: (n-1)/n x B / bw + (n-1) x latency;
- ring all-reduce: twice that;
- hierarchical (Sanders et al.; NCCL's tree/ring across tiers): reduce-scatter inside the
  inner tier, then the next tier works on 1/n_inner of the bytes, and so on;
- all-to-all: (n-1)/n x B / bw + (n-1) x latency (pairwise exchange);
- point-to-point: B / bw + latency.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

Arr = npt.NDArray[np.float64]
ArrLike = Any  # an ndarray or a float (numpy broadcasting handles both)


def ring_rs(n: ArrLike, nbytes: ArrLike, bw: ArrLike, lat: ArrLike) -> Arr:
    """Reduce-scatter (or all-gather) of `nbytes` per rank over `n` ranks."""
    n = np.asarray(n, dtype=np.float64)
    return np.where(n > 1, (n - 1) / n * nbytes / bw + (n - 1) * lat, 0.0)


def ring_ar(n: ArrLike, nbytes: ArrLike, bw: ArrLike, lat: ArrLike) -> Arr:
    """All-reduce = reduce-scatter + all-gather."""
    return 2.0 * ring_rs(n, nbytes, bw, lat)


def all_to_all(n: ArrLike, nbytes: ArrLike, bw: ArrLike, lat: ArrLike) -> Arr:
    """Each rank sends (n-1)/n of `nbytes` to the others."""
    return ring_rs(n, nbytes, bw, lat)


def p2p(nbytes: ArrLike, bw: ArrLike, lat: ArrLike) -> Arr:
    """Seconds to send `nbytes` point to point at bandwidth `bw` with latency `lat`."""
    return np.asarray(nbytes / bw + lat, dtype=np.float64)


def hierarchical_rs(
    ns: tuple[ArrLike, ...], nbytes: ArrLike, bws: tuple[ArrLike, ...],
    lats: tuple[ArrLike, ...],
) -> Arr:
    """Reduce-scatter across tiers, innermost first; each tier handles 1/n_inner of the bytes."""
    total = np.zeros(np.broadcast(*ns, nbytes).shape)
    b = np.asarray(nbytes, dtype=np.float64)
    for n, bw, lat in zip(ns, bws, lats):
        total = total + ring_rs(n, b, bw, lat)
        b = b / n
    return total


def torus_factor(span: ArrLike, dims: tuple[int, ...]) -> Arr:
    """Fraction of a chip's torus links a group of `span` consecutive chips can use.

    A group that fits in the first torus dimension uses only that dimension's links (1/k of
    them on a k-D torus); one spanning the first two uses 2/k; and so on.
    """
    span = np.asarray(span, dtype=np.float64)
    if not dims:
        return np.ones_like(span)
    used = np.zeros_like(span)
    prod = 1.0
    for d in dims:
        used = used + (span > prod)
        prod *= d
    out: Arr = np.maximum(used, 1.0) / len(dims)
    return out


def tier_split(stride: ArrLike, n: ArrLike, pod: float, site: ArrLike) -> tuple[Arr, Arr, Arr]:
    """How a group of `n` ranks at `stride` splits across pod, site and inter-site tiers.

    Returns (members inside one pod, pods inside one site, sites).
    """
    stride = np.asarray(stride, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    n_pod = np.clip(np.floor(pod / stride), 1.0, n)
    n_site = np.clip(np.floor(site / (stride * n_pod)), 1.0, n / n_pod)
    n_inter = np.maximum(n / (n_pod * n_site), 1.0)
    return n_pod, n_site, n_inter
