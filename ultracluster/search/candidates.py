"""Generate every valid plan as columns of numbers, in chunks, without building `Plan`s.

Structures (tp, cp, pp, vpp, dp, ep) are enumerated from divisors that fit the model and the
cluster; a cheap memory lower bound (ZeRO-3, full recomputation, one sequence per
micro-batch) drops structures that can never fit; each survivor is then crossed with the
settings (micro-batch, ZeRO stage, recomputation, precision, TP overlap, placement, site
sync) into `PlanArrays` for bulk evaluation.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from itertools import product

import numpy as np

from ultracluster.cluster.model import Cluster
from ultracluster.plan.plan import SiteSync
from ultracluster.plan.vocab import Precision, Recompute, SyncMode
from ultracluster.simulate.comm import Arr
from ultracluster.simulate.context import HwContext, ModelContext
from ultracluster.simulate.core import evaluate
from ultracluster.search.divisors import divisors, num_divisors
from ultracluster.simulate.planarrays import RECOMPUTE_CODE, SYNC_CODE, PlanArrays, strides
from ultracluster.workload.job import TrainingJob
from ultracluster.workload.spec import TransformerSpec

ORDERS: tuple[tuple[str, ...], ...] = (
    ("tp", "cp", "ep", "pp", "dp"),  # data parallel outermost: DP spans pods and sites
    ("tp", "cp", "ep", "dp", "pp"),  # pipeline outermost: stages span sites
)
MICRO_BATCHES = (1, 2, 4, 8, 16)
SYNC_VARIANTS: tuple[SiteSync, ...] = (
    SiteSync(mode=SyncMode.SYNC, inner_steps=1),
    *(SiteSync(mode=SyncMode.DILOCO, inner_steps=h, bits=b) for h in (100, 500) for b in (16, 4)),
    *(SiteSync(mode=SyncMode.STREAMING, inner_steps=h, bits=4, fragments=4) for h in (100, 500)),
)
"""Site syncs the planner tries where a plan crosses sites: every step; DiLoCo every 100 or
500 steps (the DiLoCo paper's H range) in 16 or 4 bits; streaming DiLoCo in 4 fragments."""


@dataclass(frozen=True, kw_only=True, slots=True)
class SearchSpace:
    """What the planner may vary."""

    max_chips: int
    """At most this many chips."""
    precisions: tuple[Precision, ...] = (Precision.BF16, Precision.FP8)
    """fp8 is tried only where the chip's FP8 peak beats its BF16 peak."""
    zero: tuple[int, ...] = (2, 3)
    """ZeRO-0 and -1 are dominated by ZeRO-2 in this model (same traffic, more memory)."""
    recompute: tuple[Recompute, ...] = (Recompute.NONE, Recompute.FULL)
    """Selective recomputation is dominated under flash attention (the attention core is
    never stored), so the search tries none and full."""
    site_sync: tuple[SiteSync, ...] = SYNC_VARIANTS
    """The first is used for plans that stay in one site."""
    max_pp: int = 64


@dataclass(kw_only=True)
class Counts:
    """How many candidates were considered and why some were dropped."""

    considered: int = 0
    infeasible: Counter[str] = field(default_factory=Counter)
    evaluated: int = 0
    kept: int = 0


def _divisors(n: int) -> list[int]:
    return divisors(n)


def tp_options(model: TransformerSpec, pod_chips: int) -> list[int]:
    out = []
    for tp in (1, 2, 4, 8, 16, 32, 64, 128):
        if tp > pod_chips or model.num_heads % tp:
            continue
        if model.mla is None and model.num_kv_heads % tp and tp % model.num_kv_heads:
            continue
        out.append(tp)
    return out


def pp_options(layers: int, max_pp: int) -> list[int]:
    """Divisors of the layer count plus powers of two (uneven last stage), up to max_pp."""
    opts = set(_divisors(layers)) | {2**k for k in range(8)}
    return sorted(p for p in opts if p <= min(layers, max_pp))


def structures(
    *, model: TransformerSpec, job: TrainingJob, pod_chips: int, space: SearchSpace,
    counts: Counts,
) -> list[tuple[int, int, int, int, int, int]]:
    """(tp, cp, pp, vpp, dp, ep) that divide the model, the batch and fit the chip budget."""
    gb = job.global_batch_seqs
    cps = [c for c in (1, 2, 4, 8, 16, 32) if job.seq_len % c == 0
           and (c <= 8 or job.seq_len >= 65536)]
    out: list[tuple[int, int, int, int, int, int]] = []
    for tp, cp, pp in product(tp_options(model, pod_chips), cps,
                              pp_options(model.num_layers, space.max_pp)):
        for vpp in (1, 2, 4, 8):
            if vpp > 1 and (pp == 1 or pp * vpp > model.num_layers):
                counts.infeasible["divisibility"] += 1
                continue
            dps = divisors(gb, limit=space.max_chips // (tp * cp * pp))  # cost: not O(gb)
            counts.infeasible["chips"] += num_divisors(gb) - len(dps)
            for dp in dps:
                eps = [1] if model.moe is None else [
                    e for e in _divisors(model.moe.num_experts) if (tp * cp * dp) % e == 0]
                out.extend((tp, cp, pp, vpp, dp, ep) for ep in eps)
    return out


def _cols(rows: Sequence[tuple[float, ...]], names: tuple[str, ...]) -> dict[str, Arr]:
    a = np.asarray(rows, dtype=np.float64).reshape(len(rows), len(names))
    return {n: a[:, i] for i, n in enumerate(names)}


_NAMES = ("tp", "cp", "pp", "vpp", "dp", "ep", "mb", "zero", "recompute", "fp8", "tp_overlap",
          "order", "sync", "inner_steps", "bits", "fragments")


def to_plan_arrays(c: dict[str, Arr], *, gb: float) -> PlanArrays:
    """Columns -> `PlanArrays` (strides from each row's placement order)."""
    n = c["tp"].shape[0]
    deg = {k: c[k] for k in ("tp", "cp", "pp", "dp")}
    st = {k: np.empty(n) for k in ("tp", "cp", "pp", "dp")}
    for i, order in enumerate(ORDERS):
        sel = c["order"] == i
        if sel.any():
            s = strides(order, {k: v[sel] for k, v in deg.items()})
            for k in st:
                st[k][sel] = s[k]
    return PlanArrays(
        tp=c["tp"], pp=c["pp"], vpp=c["vpp"], dp=c["dp"], cp=c["cp"], ep=c["ep"], mb=c["mb"],
        gb=np.full(n, gb), zero=c["zero"], recompute=c["recompute"], fp8=c["fp8"],
        fp32=np.zeros(n),
        sp=(c["tp"] > 1).astype(np.float64), tp_overlap=c["tp_overlap"],
        ep_overlap=np.zeros(n), dp_overlap=np.ones(n), stride_tp=st["tp"], stride_cp=st["cp"], stride_pp=st["pp"],
        stride_dp=st["dp"], sync=c["sync"], inner_steps=c["inner_steps"], bits=c["bits"],
        fragments=c["fragments"],
    )


def _fits_lower_bound(rows: list[tuple[int, int, int, int, int, int]], *, gb: int,
                      hw: HwContext, mc: ModelContext, tokens: float) -> np.ndarray:
    """True where the structure fits with ZeRO-3, full recomputation and mb = 1."""
    base = [(tp, cp, pp, vpp, dp, ep, 1, 3, RECOMPUTE_CODE[Recompute.FULL], 0, 0, 0,
             SYNC_CODE[SyncMode.SYNC], 1, 16, 1)
            for tp, cp, pp, vpp, dp, ep in rows]
    t = evaluate(to_plan_arrays(_cols(base, _NAMES), gb=float(gb)), hw, mc, tokens=tokens)
    return t["fits"] > 0


def _grid(*axes: tuple[float, ...]) -> Arr:
    """Cartesian product of `axes` as an (n x len(axes)) array."""
    mesh = np.meshgrid(*[np.asarray(a, dtype=np.float64) for a in axes], indexing="ij")
    return np.stack([m.ravel() for m in mesh], axis=1)


def plan_chunks(
    *, cluster: Cluster, model: TransformerSpec, job: TrainingJob, hw: HwContext,
    mc: ModelContext, space: SearchSpace, counts: Counts, chunk: int = 250_000,
) -> Iterator[dict[str, Arr]]:
    """Yield candidate columns in chunks of about `chunk` rows.

    Structures with the same shape of settings (crossing sites or not, the micro-batches that
    divide their batch) are expanded together: structure rows repeated, settings tiled.
    """
    gb = job.global_batch_seqs
    structs = structures(model=model, job=job, pod_chips=int(hw.pod_chips), space=space,
                         counts=counts)
    if not structs:
        return
    ok = _fits_lower_bound(structs, gb=gb, hw=hw, mc=mc, tokens=job.tokens)
    # FP8 only where the chip has faster FP8 matmuls than BF16
    precisions = tuple(float(p == Precision.FP8) for p in space.precisions
                       if p == Precision.BF16 or hw.peak_fp8 > hw.peak_bf16)
    recompute = tuple(RECOMPUTE_CODE[r] for r in space.recompute)
    multi_site = cluster.num_sites > 1
    groups: dict[tuple[bool, tuple[int, ...]], list[tuple[int, ...]]] = {}
    for row, fits in zip(structs, ok):
        tp, cp, pp, vpp, dp, ep = row
        mbs = tuple(mb for mb in MICRO_BATCHES if (gb // dp) % mb == 0)
        crosses = multi_site and tp * cp * pp * dp > hw.site_chips
        groups.setdefault((crosses, mbs), []).append(row + (int(bool(fits)),))
    for (crosses, mbs), rows in groups.items():
        sync = space.site_sync if crosses else space.site_sync[:1]
        orders = tuple(range(len(ORDERS))) if crosses else (0,)
        settings = np.concatenate([
            _grid(mbs, space.zero, recompute, precisions, orders, (i,))
            for i in range(len(sync))])
        sync_cols = np.asarray([(SYNC_CODE[s.mode], s.inner_steps, s.bits, s.fragments)
                                for s in sync], dtype=np.float64)[settings[:, 5].astype(int)]
        st = np.asarray(rows, dtype=np.float64)
        fits = st[:, 6] > 0
        counts.considered += int((~fits).sum()) * settings.shape[0]
        counts.infeasible["memory"] += int((~fits).sum()) * settings.shape[0]
        st = st[fits, :6]
        per = max(1, chunk // settings.shape[0])
        for start in range(0, st.shape[0], per):
            block = st[start:start + per]
            n = block.shape[0] * settings.shape[0]
            rep = np.repeat(block, settings.shape[0], axis=0)
            til = np.tile(settings, (block.shape[0], 1))
            syn = np.tile(sync_cols, (block.shape[0], 1))
            counts.considered += n
            yield {
                "tp": rep[:, 0], "cp": rep[:, 1], "pp": rep[:, 2], "vpp": rep[:, 3],
                "dp": rep[:, 4], "ep": rep[:, 5], "mb": til[:, 0], "zero": til[:, 1],
                "recompute": til[:, 2], "fp8": til[:, 3], "order": til[:, 4],
                "tp_overlap": (rep[:, 0] > 1).astype(np.float64),
                "sync": syn[:, 0], "inner_steps": syn[:, 1], "bits": syn[:, 2],
                "fragments": syn[:, 3],
            }
