"""Generate every valid plan as columns of numbers, in chunks, without building `Plan`s.

Candidates are named columns (`Columns`), one entry per plan. Structures (one column per
`ParallelDims` degree, `DEGREES`) are enumerated from divisors that fit the model and the
cluster; a cheap memory lower bound (ZeRO-3, full recomputation, one sequence per
micro-batch) drops structures that can never fit; each survivor is then crossed with the
settings (micro-batch, ZeRO stage, recomputation, precision, placement, site sync) and
checked against `VALIDITY_RULES`; `to_plan_arrays` turns the columns into `PlanArrays` for
bulk evaluation.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import product

import numpy as np
import numpy.typing as npt

from ultracluster.cluster.model import Cluster
from ultracluster.plan.dims import DEGREES, WORLD_DIMS, stages_fit, world_of
from ultracluster.plan.plan import SiteSync
from ultracluster.plan.vocab import Precision, Recompute, SyncMode
from ultracluster.simulate.comm import Arr
from ultracluster.simulate.context import HwContext, ModelContext
from ultracluster.simulate.core import evaluate
from ultracluster.simulate.pipeline import schedule_valid, stage_layout
from ultracluster.search.divisors import divisors, num_divisors
from ultracluster.simulate.planarrays import RECOMPUTE_CODE, SYNC_CODE, PlanArrays, strides
from ultracluster.workload.job import TrainingJob
from ultracluster.workload.spec import TransformerSpec

ORDERS: tuple[tuple[str, ...], ...] = (
    ("tp", "cp", "ep", "pp", "dp"),  # data parallel outermost: DP spans pods and sites
    ("tp", "cp", "ep", "dp", "pp"),  # pipeline outermost: stages span sites
)
TP_DEGREES = (1, 2, 4, 8, 16, 32, 64, 128)
"""Powers of two, as head counts are; `tp_options` keeps those within one pod (TP traffic
stays on the scale-up fabric, as Megatron places it)."""
CP_DEGREES = (1, 2, 4, 8, 16, 32)
"""Context-parallel degrees tried (a pruning choice: powers of two that divide the sequence;
Llama 3 405B ran CP 16 at its longest context, paper Table 4)."""
CP_ABOVE_8_MIN_SEQ = 65536
"""A pruning choice: context parallelism beyond 8 only for sequences of 64K tokens or more
(Llama 3 405B used CP 16 only in its 128K-context stage, paper Table 4; at 8K tokens CP 16
would leave each rank 512)."""
VPP_DEGREES = (1, 2, 4, 8)
"""Virtual stages per pipeline rank tried (a pruning choice: powers of two; each doubling
halves the bubble and doubles the pipeline's sends)."""
MICRO_BATCHES = (1, 2, 4, 8, 16)
"""Sequences per micro-batch the planner tries (those that divide a replica's batch)."""
SYNC_VARIANTS: tuple[SiteSync, ...] = (
    SiteSync(mode=SyncMode.SYNC, inner_steps=1),
    *(SiteSync(mode=SyncMode.DILOCO, inner_steps=h, bits=b) for h in (100, 500) for b in (16, 4)),
    *(SiteSync(mode=SyncMode.STREAMING, inner_steps=h, bits=4, fragments=4) for h in (100, 500)),
)
"""Site syncs the planner tries where a plan crosses sites: every step; DiLoCo every 100 or
500 steps (the DiLoCo paper's H range) in 16 or 4 bits; streaming DiLoCo in 4 fragments."""

Columns = dict[str, Arr]
"""Candidate plans as named columns, one entry per plan: the `DEGREES`, then ``mb``, ``zero``,
``recompute`` and ``sync`` (codes from `simulate.planarrays`), ``fp8``, ``tp_overlap``,
``order`` (an index into `ORDERS`), ``inner_steps``, ``bits`` and ``fragments``."""
SYNC_COLUMNS = ("sync", "inner_steps", "bits", "fragments")
"""The columns a `SiteSync` fills."""


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
    """Most pipeline stages tried (Llama 3 405B used 16; DeepSeek-V3 16)."""


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
    """Tensor-parallel degrees that fit in a pod and divide the attention heads (and the KV
    heads, or are divided by them)."""
    out = []
    for tp in TP_DEGREES:
        if tp > pod_chips or model.num_heads % tp:
            continue
        if model.mla is None and model.num_kv_heads % tp and tp % model.num_kv_heads:
            continue
        out.append(tp)
    return out


def pp_options(layers: int, max_pp: int) -> list[int]:
    """Divisors of the layer count plus powers of two (uneven last stage), up to max_pp."""
    opts = set(_divisors(layers)) | {2**k for k in range(8)}  # powers of two up to 128
    return sorted(p for p in opts if p <= min(layers, max_pp))


def _columns(rows: Sequence[Sequence[float]], names: Sequence[str]) -> Columns:
    """Rows of values in the order of `names` -> one column per name."""
    a = np.asarray(rows, dtype=np.float64).reshape(len(rows), len(names))
    return {n: a[:, i] for i, n in enumerate(names)}


def structures(
    *, model: TransformerSpec, job: TrainingJob, pod_chips: int, space: SearchSpace,
    counts: Counts,
) -> Columns:
    """Layouts (one column per `DEGREES` name) that divide the model, the batch and fit the
    chip budget."""
    gb = job.global_batch_seqs
    cps = [c for c in CP_DEGREES if job.seq_len % c == 0
           and (c <= 8 or job.seq_len >= CP_ABOVE_8_MIN_SEQ)]
    rows: list[tuple[int, ...]] = []
    for tp, cp, pp in product(tp_options(model, pod_chips), cps,
                              pp_options(model.num_layers, space.max_pp)):
        for vpp in VPP_DEGREES:
            if vpp > 1 and (pp == 1 or not stages_fit(pp, vpp, model.num_layers)):
                counts.infeasible["divisibility"] += 1
                continue
            dps = divisors(gb, limit=space.max_chips // (tp * cp * pp))  # cost: not O(gb)
            counts.infeasible["chips"] += num_divisors(gb) - len(dps)
            for dp in dps:
                eps = [1] if model.moe is None else [
                    e for e in _divisors(model.moe.num_experts) if (tp * cp * dp) % e == 0]
                for ep in eps:
                    row = dict(tp=tp, cp=cp, pp=pp, vpp=vpp, dp=dp, ep=ep)
                    rows.append(tuple(row[n] for n in DEGREES))
    return _columns(rows, DEGREES)


def _sync_columns(syncs: Sequence[SiteSync]) -> Columns:
    return _columns([(SYNC_CODE[s.mode], s.inner_steps, s.bits, s.fragments) for s in syncs],
                    SYNC_COLUMNS)


@dataclass(frozen=True, slots=True)
class RuleInputs:
    """What the rules need beyond the columns: the same for every candidate of a search."""

    gb: float
    """Global batch in sequences."""
    layers: float
    """Transformer layers of the model."""


def _schedule_rule(cols: Columns, inputs: RuleInputs) -> npt.NDArray[np.bool_]:
    """Megatron-LM's interleaved schedule: micro-batches per pipeline a multiple of pp and the
    layers in equal virtual chunks (`simulate.pipeline.schedule_valid`)."""
    p = to_plan_arrays(cols, gb=inputs.gb)
    ok: npt.NDArray[np.bool_] = schedule_valid(p, stage_layout(p, inputs.layers)) > 0
    return ok


VALIDITY_RULES: tuple[tuple[str, Callable[[Columns, RuleInputs], npt.NDArray[np.bool_]]],
                      ...] = (("schedule", _schedule_rule),)
"""(reason, rule): a rule returns True for the candidate rows it allows. Rows a rule refuses
are dropped before evaluation and counted under `Counts.infeasible[reason]`. The place for
checks that need the settings as well as the layout (a schedule's micro-batch count, say);
checks on the layout alone belong in `structures`."""


def _apply_rules(cols: Columns, counts: Counts, inputs: RuleInputs) -> Columns:
    keep = np.ones(cols["tp"].shape[0], dtype=bool)
    for reason, rule in VALIDITY_RULES:
        refused = keep & ~rule(cols, inputs)
        counts.infeasible[reason] += int(refused.sum())
        keep &= ~refused
    return cols if keep.all() else {k: v[keep] for k, v in cols.items()}


def to_plan_arrays(c: Columns, *, gb: float) -> PlanArrays:
    """Columns -> `PlanArrays` (strides from each row's placement order)."""
    n = c["tp"].shape[0]
    deg = {k: c[k] for k in WORLD_DIMS}
    st = {k: np.empty(n) for k in WORLD_DIMS}
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
        sp=(c["tp"] > 1).astype(np.float64), eager=np.zeros(n), cudnn=np.zeros(n),
        tp_overlap=c["tp_overlap"],
        ep_overlap=np.zeros(n), dp_overlap=np.ones(n), stride_tp=st["tp"], stride_cp=st["cp"],
        stride_pp=st["pp"], stride_dp=st["dp"], sync=c["sync"], inner_steps=c["inner_steps"],
        bits=c["bits"], fragments=c["fragments"],
    )


def _fits_lower_bound(structs: Columns, *, gb: int, hw: HwContext, mc: ModelContext,
                      tokens: float) -> npt.NDArray[np.bool_]:
    """True where the structure fits with ZeRO-3, full recomputation and mb = 1."""
    n = structs["tp"].shape[0]
    lightest = {"mb": 1, "zero": 3, "recompute": RECOMPUTE_CODE[Recompute.FULL], "fp8": 0,
                "tp_overlap": 0, "order": 0}
    cols = structs | {k: np.full(n, float(v)) for k, v in lightest.items()} | {
        k: np.repeat(v, n) for k, v in _sync_columns([SiteSync(inner_steps=1)]).items()}
    t = evaluate(to_plan_arrays(cols, gb=float(gb)), hw, mc, tokens=tokens)
    fits: npt.NDArray[np.bool_] = t.fits > 0
    return fits


def _grid(**axes: Sequence[float]) -> Columns:
    """Cartesian product of `axes` as columns; the first axis varies slowest."""
    mesh = np.meshgrid(*[np.asarray(a, dtype=np.float64) for a in axes.values()], indexing="ij")
    return {name: m.ravel() for name, m in zip(axes, mesh)}


def plan_chunks(
    *, cluster: Cluster, model: TransformerSpec, job: TrainingJob, hw: HwContext,
    mc: ModelContext, space: SearchSpace, counts: Counts,
    chunk: int = 250_000,  # rows evaluated at once: bounds the arrays' memory (tens of MB)
) -> Iterator[Columns]:
    """Yield candidate columns in chunks of about `chunk` rows.

    Structures with the same shape of settings (crossing sites or not, the micro-batches that
    divide their batch) are expanded together: structure rows repeated, settings tiled.
    """
    gb = job.global_batch_seqs
    structs = structures(model=model, job=job, pod_chips=int(hw.pod_chips), space=space,
                         counts=counts)
    if not structs["tp"].shape[0]:
        return
    fits = _fits_lower_bound(structs, gb=gb, hw=hw, mc=mc, tokens=job.tokens)
    # FP8 only where the chip has faster FP8 matmuls than BF16 and a published benchmark of
    # its FP8 GEMM rate (an estimated rate, e.g. Trainium2's, is not planned on)
    precisions = tuple(float(p == Precision.FP8) for p in space.precisions
                       if p == Precision.BF16 or (hw.peak_fp8 > hw.peak_bf16 and hw.fp8_measured))
    recompute = tuple(float(RECOMPUTE_CODE[r]) for r in space.recompute)
    multi_site = cluster.num_sites > 1
    rules_in = RuleInputs(gb=float(gb), layers=float(model.num_layers))
    crosses_site = multi_site & (world_of(structs) > hw.site_chips)
    groups: dict[tuple[bool, tuple[int, ...]], list[int]] = {}
    for i, (dp, crosses) in enumerate(zip(structs["dp"].astype(int), crosses_site)):
        mbs = tuple(mb for mb in MICRO_BATCHES if (gb // dp) % mb == 0)
        groups.setdefault((bool(crosses), mbs), []).append(i)
    for (crosses, mbs), members in groups.items():
        sync = space.site_sync if crosses else space.site_sync[:1]
        orders = tuple(range(len(ORDERS))) if crosses else (0,)
        settings = _grid(variant=range(len(sync)), mb=mbs, zero=space.zero,
                         recompute=recompute, fp8=precisions, order=orders)
        variant = settings.pop("variant").astype(int)
        settings |= {k: v[variant] for k, v in _sync_columns(sync).items()}
        k = variant.shape[0]
        ids = np.asarray(members)
        unfit = int((~fits[ids]).sum()) * k
        counts.considered += unfit
        counts.infeasible["memory"] += unfit
        ids = ids[fits[ids]]
        per = max(1, chunk // k)
        for start in range(0, ids.shape[0], per):
            block = ids[start:start + per]
            cols = {n: np.repeat(structs[n][block], k) for n in DEGREES}
            cols |= {n: np.tile(v, block.shape[0]) for n, v in settings.items()}
            cols["tp_overlap"] = (cols["tp"] > 1).astype(np.float64)
            cols = _apply_rules(cols, counts, rules_in)
            counts.considered += cols["tp"].shape[0]
            yield cols
