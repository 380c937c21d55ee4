"""The one model: every term of a training step, evaluated on `PlanArrays`.

`evaluate` is pure and elementwise: `estimate()` calls it on one plan (0-d arrays) and the
planner on millions (1-d arrays), so the two can never disagree. Each term has its own
function returning its whole time and the part compute does not hide (`Exchange`):

    step = pipeline (schedule of `pipeline.py` over per-rank micro-batch times)
         + exposed data-parallel / ZeRO traffic   what backward (or forward) cannot hide
         + optimizer                              memory-bound AdamW update
         + exposed site-sync traffic              sync: in the DP traffic; DiLoCo: / H

    per-rank micro-batch = its layers x (forward + backward + recompute + exposed TP, CP, EP)
                         + pipeline sends + embedding (first rank) + output layer (last rank)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ultracluster.simulate import comm
from ultracluster.simulate.comm import Arr
from ultracluster.simulate.compute import ComputeTimes, compute_times, stops_early
from ultracluster.simulate.context import HwContext, ModelContext
from ultracluster.simulate.memory import (
    DDP_BUCKET_PARAMS, GRAD_BYTES,
    MemoryBytes, StageParams, byte_widths, memory_bytes, stage_params,
)
from ultracluster.simulate.network import Net
from ultracluster.simulate.pipeline import (
    StageLayout, pipeline_step, schedule_valid, stage_layout,
)
from ultracluster.simulate.planarrays import FULL, SELECTIVE, STREAMING, SYNC, PlanArrays
from ultracluster.simulate.power import goodput_terms, power_terms
from ultracluster.simulate.terms import Exchange, Terms

ADAM_BYTES_PER_PARAM = 34.0
"""AdamW step traffic: read the fp32 gradient, master weight, m and v (16 B); write master, m
and v (12 B) and the 2-byte weight; zero the 4-byte gradient buffer. With bf16 gradients the
read and the zeroing are 2 B each (30 B)."""
PROB_BYTES = 4.0
"""Router probability sent with each routed token copy (fp32: Megatron-Core's MoE router
computes and returns the probabilities in fp32, ``moe_router_dtype``)."""
SITE_SYNC_BUDGET = 0.05
"""The inter-site bandwidth reported is the one at which the exchange costs 5% of a step."""


def _with_interference(total: Arr, exposed: Arr, hw: HwContext) -> Exchange:
    """Communication hidden behind compute still costs the compute units its kernels occupy:
    the hidden time x ``overlap_slowdown`` is added to what the step sees."""
    return Exchange(total=total, exposed=exposed + (total - exposed) * hw.overlap_slowdown)


def tp_term(p: PlanArrays, net: Net, m: ModelContext, c: ComputeTimes) -> Exchange:
    """Tensor parallelism, one layer, one micro-batch, in all-reduces of its activations (A;
    with sequence parallelism each is an all-gather + reduce-scatter of the same volume,
    Korthikanti et al. 2022 s.4.2.2).

    Forward: 2 A, after the row-parallel attention output and FC2 (2 more with full
    recomputation, 1 where it stops early), blocking. Backward: 2 A at the column-parallel QKV and FC1 inputs. With
    `Plan.tp_async_backward` (Megatron-LM's ``LinearWithGradAccumulationAndAsyncCommunication``,
    Transformer Engine's ``Linear``) these are issued before the weight-gradient GEMM and run
    behind it; with sequence parallelism the layer keeps only its 1/t of the input, so the
    backward also all-gathers it again behind the data-gradient GEMM (+1 A), and the
    row-parallel layers' backward all-gathers (1 A) block. Without it every collective blocks.
    TP overlap (userbuffers) hides the whole volume behind the layer's GEMMs.

    Multi-head latent attention with a query rank gathers (and reduces the gradient of) its
    latents, not the hidden state: its down-projections are duplicated on every rank and read
    the rank's own tokens (Megatron-Core ``MLASelfAttention``), so the attention-input
    collectives carry (q rank + kv rank + rotary) / h of an A (`r`)."""
    act_b = byte_widths(p)[3]
    tok = p.mb * m.seq_len / p.cp
    one = net.all_reduce(p.stride_tp, p.tp, tok * m.hidden * act_b)
    on = p.tp_async > 0
    sp = p.sp > 0
    r = ((m.mla_q_rank + m.mla_kv_rank + m.mla_rope) / m.hidden
         if m.mla_kv_rank and m.mla_q_rank else 1.0)
    # forward: with SP the input all-gathers (attention: r) and output reduce-scatters (half
    # an A each); without, the two output all-reduces
    fwd = np.where(sp, 1.5 + 0.5 * r, 2.0)
    # full recomputation reruns the forward's collectives, but for the last one (the FC2
    # output's reduce-scatter or all-reduce) where it stops early (`Plan.recompute_early_stop`)
    rerun = fwd - stops_early(p, m) * np.where(sp, 0.5, 1.0)
    blocking = one * (fwd + (p.recompute == FULL) * p.rc_share * rerun
                      + np.where(on, np.where(sp, 1.0, 0.0), 1.0 + r))
    behind = np.where(on, (1.0 + r) * one, 0.0)
    # each A of `behind` runs beside one of the column-parallel layers' two backward GEMMs
    # (weight gradient; with sequence parallelism, the re-gather beside the data gradient)
    window = np.where(sp, c.col_bwd, c.col_bwd / 2)
    total = np.where(p.tp > 1, blocking + behind, 0.0)
    exposed = np.where(p.tp > 1, np.where(
        p.tp_overlap > 0, np.maximum(0.0, total - c.layer_gemm),
        blocking + np.maximum(0.0, behind - window)), 0.0)
    return _with_interference(total, exposed, net.hw)


def cp_term(p: PlanArrays, net: Net, m: ModelContext, c: ComputeTimes) -> Exchange:
    """Context parallelism, one layer, one micro-batch: the ring passes K and V of the local
    chunk cp - 1 times per pass (forward, two backward, + recompute), behind attention."""
    act_b = byte_widths(p)[3]
    tok = p.mb * m.seq_len / p.cp
    kv_bytes = tok * 2 * m.kv_width * act_b / np.minimum(p.tp, max(m.kv_width, 1.0))
    # K and V circulate once forward; backward circulates K, V and their gradients dK, dV
    # (twice the bytes: counted as two passes), as Transformer Engine's ring attention,
    # which Megatron-Core's context parallelism runs, sends "KV and dKV"
    # (`flash_attn_p2p_communicate`); recomputation adds a forward on its share of layers
    passes = 3 + (p.recompute >= SELECTIVE) * p.rc_share
    total = passes * (p.cp - 1) * net.neighbour(p.stride_cp, kv_bytes)
    return _with_interference(total, np.maximum(0.0, total - c.layer_attn), net.hw)


def ep_term(p: PlanArrays, net: Net, m: ModelContext, c: ComputeTimes) -> Exchange:
    """Expert parallelism, one layer (averaged over MoE and dense layers), one micro-batch:
    dispatch + combine all-to-all, forward and backward (+ recompute). The group takes tp x cp
    first, then spreads over dp ranks at dp's stride (Megatron's tp-cp-ep-dp-pp rank order).

    Megatron-Core's alltoall dispatcher sends each routed copy of a token in the activations'
    dtype (BF16 with FP8 matmuls too: the experts' GroupedLinear casts after the exchange;
    ``MoEAlltoAllTokenDispatcher``) with its router probability beside it, and the combine
    sends the weighted expert outputs back. An all-to-all sends each peer its share at once (NCCL
    grouped send/receive), so the peers in the same pod exchange over the scale-up links while
    those in other pods and sites use the fabric and inter-site links: the time is that of the
    slowest tier for its share of the bytes, (peers there) / n, + a latency per peer."""
    act_b = byte_widths(p)[3]
    tok = p.mb * m.seq_len / p.cp
    inner = np.minimum(p.ep, p.tp * p.cp)
    outer = p.ep / inner
    # members of the group per tier: the `inner` (tp x cp) ranks are contiguous, the `outer`
    # ones at dp's stride; each part's split over pods and sites multiplies (an inner part
    # wider than a pod puts its outer members in other pods)
    (i1, i2, i3), (ib1, ib2, ib3), (il1, il2, il3) = net.tiers(1.0, inner)
    (o1, o2, o3), (ob1, ob2, ob3), (ol1, ol2, ol3) = net.tiers(
        np.where(outer > 1, p.stride_dp, 1.0), outer)
    n_pod, n2, n3 = i1 * o1, i2 * o2, i3 * o3
    wide = outer > 1
    b1, b2, b3 = np.where(wide, ob1, ib1), np.where(wide, ob2, ib2), np.where(wide, ob3, ib3)
    l1, l2, l3 = np.where(wide, ol1, il1), np.where(wide, ol2, il2), np.where(wide, ol3, il3)
    # a token copy; its router probability travels with the dispatch and its gradient, not
    # with the combine (the experts weight their outputs before it): half the four exchanges
    per_copy = m.hidden * act_b + PROB_BYTES / 2
    a2a_bytes = tok / p.tp * m.top_k * per_copy
    t_up = (n_pod - 1) / p.ep * a2a_bytes / b1
    t_out = n_pod * (n2 - 1) / p.ep * a2a_bytes / b2
    t_inter = n_pod * n2 * (n3 - 1) / p.ep * a2a_bytes / b3
    lat = (n_pod - 1) * l1 + n_pod * (n2 - 1) * l2 + n_pod * n2 * (n3 - 1) * l3
    one = np.maximum(np.maximum(t_up, t_out), t_inter) + lat
    # dispatch + combine forward, their two gradients backward, + the forward's again
    # under full recomputation (on its share of layers)
    n_a2a = 4 + 2 * (p.recompute == FULL) * p.rc_share
    total = np.where(p.ep > 1, m.moe_layers / m.layers * n_a2a * one, 0.0)
    exposed = np.where(p.ep_overlap > 0, np.maximum(0.0, total - c.layer), total)
    return _with_interference(total, exposed, net.hw)


def pp_term(p: PlanArrays, net: Net, m: ModelContext) -> Arr:
    """One pipeline exchange of one micro-batch on one rank: the activation sent on to the next
    stage while the gradient comes back from it (opposite directions of the same link, at
    once). Each TP rank sends 1/t of the tensor (with sequence parallelism it holds only that;
    without, Megatron's scatter-gather optimisation splits it and all-gathers on the far side
    over the fast tier: Narayanan et al. 2021 s.4.1). A rank makes two exchanges per virtual
    stage per micro-batch (forward and backward)."""
    act_b = byte_widths(p)[3]
    tok = p.mb * m.seq_len / p.cp
    nbytes = tok * m.hidden * act_b / p.tp
    out: Arr = np.where(p.pp > 1, net.neighbour(p.stride_pp, nbytes), 0.0)
    return out


def pp_overlapped(p: PlanArrays) -> npt.NDArray[np.bool_]:
    """True where the schedule overlaps its sends with compute: interleaved (vpp > 1) with
    ``pp_comm_overlap``. Megatron-Core's ``overlap_p2p_comm`` applies to the interleaved
    schedule only (Megatron-LM ``validate_args`` turns it off without virtual stages: the
    non-interleaved 1F1B waits for each send/receive before its next step)."""
    out: npt.NDArray[np.bool_] = (p.pp > 1) & (p.vpp > 1) & (p.pp_overlap > 0)
    return out


def pp_per_microbatch(p: PlanArrays, hop: Arr, layers: Arr, c: ComputeTimes,
                      hw: HwContext) -> Arr:
    """Pipeline exchanges one rank holding `layers` pays per micro-batch in the steady state.

    Blocking (1F1B; interleaved with ``--no-overlap-p2p-communication``; Megatron-LM 2021-22):
    all 2 v exchanges. Overlapped (Megatron-Core's interleaved 1F1B with ``overlap_p2p_comm``):
    the exchange after a forward chunk runs during the next backward chunk and the one after a
    backward chunk during the next forward chunk (`schedules.py`
    ``forward_backward_pipelining_with_interleaving``: the send/receive is started, the other
    chunk computes, then it waits), so each exposes max(0, exchange - that chunk's compute);
    the hidden part still slows compute by ``overlap_slowdown`` as every overlapped exchange
    does here."""
    v = p.vpp
    blocking = 2.0 * v * hop
    fwd_chunk = layers * c.layer_fwd / v
    bwd_chunk = layers * (c.layer_bwd + c.layer_recompute) / v
    exposed = v * (np.maximum(0.0, hop - fwd_chunk) + np.maximum(0.0, hop - bwd_chunk))
    hidden = blocking - exposed
    out: Arr = np.where(pp_overlapped(p), exposed + hidden * hw.overlap_slowdown, blocking)
    return out


def warmup_flush_exchanges(p: PlanArrays, n_mb: Arr) -> Arr:
    """Exchanges of the first rank's warm-up (and as many of its flush) that the one-micro-batch
    chain does not already count: Megatron's interleaved warm-up runs ``(p - 1) x 2 + (v - 1) x
    p`` forward chunks on the first rank (all ``m v`` when there are no more), each send
    blocking (``--overlap-p2p-communication-warmup-flush`` is off by default; NeMo's
    communication-overlap guide: "The PP communications in pipeline fill and flush are still
    exposed"); the chain holds ``p v - 1`` of them."""
    warm = np.minimum(2.0 * (p.pp - 1.0) + (p.vpp - 1.0) * p.pp, n_mb * p.vpp)
    out: Arr = np.where(pp_overlapped(p), np.maximum(0.0, warm - (p.pp * p.vpp - 1.0)), 0.0)
    return out


@dataclass(frozen=True, slots=True)
class RankTimes:
    """Per-micro-batch seconds of the slowest pipeline rank, by part, and the schedule."""

    compute: Arr
    recompute: Arr
    tp: Arr
    cp: Arr
    ep: Arr
    pp: Arr
    warm_flush: Arr
    """Overlapped schedules: the warm-up and flush exchanges paid in full (whole step)."""
    t_max: Arr
    chain: Arr
    pipeline: Arr
    critical_path: Arr


def pipeline_term(p: PlanArrays, m: ModelContext, c: ComputeTimes, layout: StageLayout,
                  tp: Exchange, cp: Exchange, ep: Exchange, hop: Arr,
                  hw: HwContext) -> RankTimes:
    """The pipeline schedule over the first, middle and last ranks' micro-batch times.

    `hop` is one pipeline exchange (`pp_term`). The one-micro-batch chain pays every exchange in
    full (nothing else runs to hide it); the steady state pays what `pp_per_microbatch` leaves
    exposed; an overlapped schedule's warm-up and flush exchanges beyond the chain's are paid
    in full (`warmup_flush_exchanges`)."""
    n_mb = p.gb / (p.dp * p.mb)
    per_layer = c.layer + tp.exposed + cp.exposed + ep.exposed
    extras = {"first": c.embed, "body": 0.0 * c.embed, "last": c.out_fwd + c.out_bwd}
    extras["first"] = np.where(p.pp == 1, c.embed + c.out_fwd + c.out_bwd, c.embed)
    ranks = {"first": layout.first, "body": np.where(p.pp > 2, layout.body, 0.0),
             "last": np.where(p.pp == 1, 0.0, layout.last)}
    pp_rank = {k: pp_per_microbatch(p, hop, ranks[k], c, hw) for k in ranks}
    t_rank = {k: ranks[k] * per_layer + extras[k] + pp_rank[k] for k in ranks}
    t_max = np.maximum(np.maximum(t_rank["first"], t_rank["body"]), t_rank["last"])
    slowest = np.select([t_rank["first"] >= t_max, t_rank["last"] >= t_max], [0, 2], 1)

    def of(part_per_layer: Arr, first_extra: Arr, body_extra: Arr, last_extra: Arr) -> Arr:
        out: Arr = np.choose(slowest, [ranks["first"] * part_per_layer + first_extra,
                                       ranks["body"] * part_per_layer + body_extra,
                                       ranks["last"] * part_per_layer + last_extra])
        return out

    zero = 0.0 * t_max
    compute = of(c.layer_fwd + c.layer_bwd, extras["first"], zero, extras["last"])
    pp_slow = of(zero, pp_rank["first"], pp_rank["body"], pp_rank["last"])
    chain = (m.layers * per_layer + c.embed + c.out_fwd + c.out_bwd
             + np.where(p.pp > 1, 2.0 * hop * (p.pp * p.vpp - 1), 0.0))
    # the warm-up / flush exchanges an overlapped schedule still pays in full: each costs the
    # whole exchange instead of the steady state's exposed share (pp_slow / 2v per exchange)
    warm_flush = 2.0 * warmup_flush_exchanges(p, n_mb) * np.maximum(
        0.0, hop - pp_slow / (2.0 * p.vpp))
    step = pipeline_step(chain=chain, t_max=t_max, m=n_mb, p=p.pp, v=p.vpp) + warm_flush
    step = np.maximum(step, n_mb * t_max)
    warm_flush = np.minimum(warm_flush, step - n_mb * t_max)  # the part the step shows
    # one micro-batch through every (virtual) stage, the rest through the slowest one
    critical = np.maximum(chain + (n_mb - 1) * t_max / p.vpp, n_mb * t_max)
    return RankTimes(compute=compute, recompute=of(c.layer_recompute, zero, zero, zero),
                     tp=of(tp.exposed, zero, zero, zero), cp=of(cp.exposed, zero, zero, zero),
                     ep=of(ep.exposed, zero, zero, zero), pp=pp_slow, warm_flush=warm_flush,
                     t_max=t_max, chain=chain, pipeline=step, critical_path=critical)


@dataclass(frozen=True, slots=True)
class DataParallel:
    """Data-parallel / ZeRO traffic of one step (seconds)."""

    total: Arr
    exposed: Arr
    optimizer: Arr


def dp_term(p: PlanArrays, net: Net, m: ModelContext, c: ComputeTimes, sp_: StageParams,
            layout: StageLayout, hw: HwContext) -> DataParallel:
    """Gradient reduce-scatter and weight all-gather over dp x cp (dense weights) and the
    experts' replicas, with and without the inter-site tier; the AdamW update of the shard."""
    w_b, g_b, _, _ = byte_widths(p)
    n_mb = p.gb / (p.dp * p.mb)
    dense = sp_.dense_max
    inner = np.minimum(p.ep, p.tp * p.cp)
    edp_inner = np.maximum(p.tp * p.cp / inner, 1.0)
    edp_outer = np.maximum(p.dp / (p.ep / inner), 1.0)
    sync_every_step = p.sync == SYNC
    pairs = [net.groups(p.stride_cp, p.cp), net.groups(p.stride_dp, p.dp)]
    if m.moe_layers:
        pairs += [net.groups(1.0, edp_inner), net.groups(p.stride_dp, edp_outer)]

    def collective(coll: str) -> Callable[[Arr], Arr]:
        costs = [(net.cost(w, coll), net.cost(wo, coll)) for w, wo in pairs]

        def run(nbytes_per_param: Arr) -> Arr:
            """`coll` of `nbytes_per_param` for every local parameter, group after group (the
            context-parallel group first, then data-parallel on 1/cp of the bytes)."""
            d = nbytes_per_param * dense
            sizes = [d, d / p.cp]
            if m.moe_layers:
                e = nbytes_per_param * sp_.expert
                sizes += [e, e / edp_inner]
            with_inter = sum(w.time(b) for (w, _), b in zip(costs, sizes))
            without = sum(wo.time(b) for (_, wo), b in zip(costs, sizes))
            out: Arr = np.where(sync_every_step, with_inter, without)
            return out
        return run

    rs = collective("reduce_scatter")
    grad_rs = rs(g_b)
    param_ag = rs(w_b)
    # ZeRO-0 all-reduces the gradients (NCCL may pick a tree; the ring is 2 x reduce-scatter)
    grad_ar = collective("all_reduce")(g_b)
    fullest = layout.fullest
    on = p.dp_overlap > 0
    fwd = np.where(on, fullest * c.layer_fwd, 0.0)
    bwd = np.where(on, fullest * (c.layer_bwd + c.layer_recompute), 0.0)
    active = (p.dp * p.cp) > 1
    # gradients are reduced bucket by bucket as backward produces them: the last bucket's
    # traffic starts only when backward ends and is never hidden (all of it when the whole
    # model fits in one bucket); likewise the first bucket's weight all-gather before forward
    last = np.minimum(1.0, DDP_BUCKET_PARAMS / np.maximum(dense + sp_.expert, 1.0))

    def hidden_by(comm: Arr, window: Arr) -> Arr:
        out: Arr = np.maximum(np.maximum(0.0, comm - window), np.where(on, last * comm, comm))
        return out

    exposed = np.select(
        [~active, p.zero == 0, p.zero <= 2],
        [0.0, hidden_by(grad_ar, bwd), hidden_by(grad_rs, bwd) + hidden_by(param_ag, fwd)],
        n_mb * (np.maximum(0.0, param_ag - fwd) + np.maximum(0.0, param_ag + grad_rs - bwd)),
    )
    total = np.where(active, np.select([p.zero == 0, p.zero <= 2],
                                       [grad_ar, grad_rs + param_ag],
                                       n_mb * (2 * param_ag + grad_rs)), 0.0)
    exposed = _with_interference(total, exposed, hw).exposed
    shard = np.where(p.zero >= 1, dense / (p.dp * p.cp) + sp_.expert / (edp_inner * edp_outer),
                     dense + sp_.expert)
    adam = ADAM_BYTES_PER_PARAM - 2 * (GRAD_BYTES - g_b)  # bf16 gradients: 2 B less twice
    optimizer = shard * adam / (hw.hbm_bw * hw.eff.memory_eff)
    return DataParallel(total=total, exposed=exposed, optimizer=optimizer)


@dataclass(frozen=True, slots=True)
class SiteSyncTerm:
    exposed: Arr
    cross_site_bytes_per_step: Arr
    cross_site_bytes_per_outer_step: Arr
    sites: Arr
    bandwidth_5pct: Arr


def site_sync_term(p: PlanArrays, net: Net, sp_: StageParams, hw: HwContext, *,
                   inner_step: Arr, world: Arr) -> SiteSyncTerm:
    """Replicas in different sites: every step (sync: the inter-site share of the DP traffic)
    or every H steps (DiLoCo: pseudo-gradients at `bits`; streaming: F fragments, each
    overlapped with the next inner step)."""
    w_b, g_b, _, _ = byte_widths(p)
    n_mb = p.gb / (p.dp * p.mb)
    n_sites, bw_site, lat_site = net.inter_site(p.stride_dp, p.dp)
    crosses = n_sites > 1
    dp_in_site = p.dp / n_sites
    shard_all = sp_.dense_max + sp_.expert
    per_param_sync = np.select([p.zero == 0, p.zero <= 2],
                               [2 * g_b, g_b + w_b], n_mb * (g_b + 2 * w_b))
    sync_bytes = per_param_sync * shard_all / (dp_in_site * p.cp)
    # quantised values cannot be summed in flight: each site decodes every other site's part
    # one fp32 scale per block of 64 values at 8 and 4 bits, as the runtime sends
    # (`run/compress.py`, BLOCK)
    scales = np.where(p.bits <= 8, 4.0 / 64, 0.0)
    outer_bytes = shard_all * (p.bits / 8 + scales) / dp_in_site
    frags = np.where(p.sync == STREAMING, p.fragments, 1.0)
    frag_bytes = outer_bytes / frags
    t_frag = (n_sites - 1) * (frag_bytes / bw_site + lat_site)
    every = np.where(p.sync == STREAMING, p.inner_steps / frags, p.inner_steps)
    window = np.where(p.sync == STREAMING, inner_step, 0.0)
    outer_exposed = np.maximum(0.0, t_frag - window) / every
    exposed = np.where(crosses & (p.sync != SYNC), outer_exposed, 0.0)
    per_chip_cross = np.where(p.sync == SYNC, (n_sites - 1) / n_sites * sync_bytes,
                              (n_sites - 1) * frag_bytes / every)
    step = inner_step + exposed
    # (1e-30 here and below: a guard against dividing by zero, not a model figure)
    per_link = bw_site / max(hw.inter_bw, 1e-30)
    base = np.where(p.sync == SYNC, step, inner_step)
    volume = np.where(p.sync == SYNC, 2 * (n_sites - 1) / n_sites * sync_bytes,
                      (n_sites - 1) * frag_bytes)
    # sync: a ring over the sites, S - 1 hops for each of the two halves (an all-reduce's
    # reduce-scatter and all-gather, or ZeRO's gradient reduce-scatter and weight all-gather;
    # `volume` already counts both halves' bytes); periodic sync: one all-gather, S - 1 hops
    latency = np.where(p.sync == SYNC, 2 * (n_sites - 1) * lat_site, (n_sites - 1) * lat_site)
    room = SITE_SYNC_BUDGET * base * np.where(p.sync == SYNC, 1.0, every) + window - latency
    bw5 = np.where(crosses, np.where(room > 0, volume / (per_link * np.maximum(room, 1e-30)),
                                     np.inf), 0.0)
    return SiteSyncTerm(
        exposed=exposed,
        cross_site_bytes_per_step=np.where(crosses, world * per_chip_cross, 0.0),
        cross_site_bytes_per_outer_step=np.where(crosses & (p.sync != SYNC),
                                                 world * (n_sites - 1) * outer_bytes, 0.0),
        sites=n_sites, bandwidth_5pct=bw5)


def evaluate(p: PlanArrays, hw: HwContext, m: ModelContext, *, tokens: float) -> Terms:
    """Every term of the estimate for the plans in `p` (see module docstring)."""
    world = p.dp * p.tp * p.pp * p.cp
    sites_used = np.ceil(world / hw.site_chips - 1e-9)  # 1e-9: float rounding, not a figure
    net = Net(hw=hw, world=world, chips_per_site=world / sites_used)
    n_mb = p.gb / (p.dp * p.mb)
    layout = stage_layout(p, m.layers)
    c = compute_times(p, hw, m)
    tp, cp, ep = tp_term(p, net, m, c), cp_term(p, net, m, c), ep_term(p, net, m, c)
    r = pipeline_term(p, m, c, layout, tp, cp, ep, pp_term(p, net, m), hw)
    sp_ = stage_params(p, m, layout)
    dp = dp_term(p, net, m, c, sp_, layout, hw)
    inner_step = r.pipeline + dp.exposed + dp.optimizer
    site = site_sync_term(p, net, sp_, hw, inner_step=inner_step, world=world)
    step = inner_step + site.exposed

    tokens_per_step = p.gb * m.seq_len
    tps = tokens_per_step / step
    mfu = m.model_flops_per_token * tps / (world * hw.peak_bf16)
    done = n_mb * r.compute
    hfu = mfu * (1 + n_mb * r.recompute / np.maximum(done, 1e-30))  # 1e-30: a zero guard
    mem: MemoryBytes = memory_bytes(p, m, sp_, layout)
    w_b, _, o_b, _ = byte_widths(p)
    busy = n_mb * (r.compute + r.recompute) + dp.optimizer
    pw = power_terms(hw, world=world, busy_s=busy, step_s=step, tokens_per_step=tokens_per_step)
    domain = np.where((p.sync != SYNC) & (site.sites > 1), world / site.sites, world)
    gp = goodput_terms(hw, domain_chips=domain, world=world,
                       checkpoint_bytes=m.params * (w_b + o_b))
    time_to_train = tokens / tokens_per_step * step / gp["goodput"]
    energy = pw["power_w"] * time_to_train
    energy_usd = energy / 3.6e6 * hw.usd_per_kwh  # 3.6e6 J per kWh
    cost = (world * time_to_train / 3600 * hw.usd_per_chip_hour  # 3600 s per hour
            if hw.usd_per_chip_hour is not None else energy_usd)
    return Terms(
        step_time_s=step, compute_s=n_mb * r.compute, recompute_s=n_mb * r.recompute,
        tp_exposed_s=n_mb * r.tp, tp_total_s=n_mb * layout.fullest * tp.total,
        cp_exposed_s=n_mb * r.cp, cp_total_s=n_mb * layout.fullest * cp.total,
        ep_exposed_s=n_mb * r.ep, ep_total_s=n_mb * layout.fullest * ep.total,
        pp_s=n_mb * r.pp + r.warm_flush, bubble_s=r.pipeline - n_mb * r.t_max - r.warm_flush,
        dp_exposed_s=dp.exposed, dp_total_s=dp.total, optimizer_s=dp.optimizer,
        site_sync_exposed_s=site.exposed, critical_path_s=r.critical_path,
        num_microbatches=n_mb, schedule_valid=schedule_valid(p, layout),
        cross_site_bytes_per_step=site.cross_site_bytes_per_step,
        cross_site_bytes_per_outer_step=site.cross_site_bytes_per_outer_step,
        cross_site_sites=site.sites,
        site_sync_bandwidth_5pct_bytes_per_s=site.bandwidth_5pct,
        tokens_per_step=tokens_per_step + 0.0 * step, tokens_per_s=tps,
        tokens_per_s_per_chip=tps / world, num_chips=world, mfu=mfu, hfu=hfu,
        mem_weights=mem.weights, mem_gradients=mem.gradients, mem_optimizer=mem.optimizer,
        mem_activations=mem.activations, mem_buffers=mem.buffers,
        memory_per_chip_bytes=mem.total, fits=(mem.total <= hw.hbm_bytes).astype(np.float64),
        utilization=pw["utilization"], chip_power_w=pw["chip_power_w"],
        it_power_w=pw["it_power_w"], power_w=pw["power_w"],
        energy_per_step_j=pw["energy_per_step_j"], energy_per_token_j=pw["energy_per_token_j"],
        mtbf_s=gp["mtbf_s"], checkpoint_write_s=gp["checkpoint_write_s"],
        checkpoint_interval_s=gp["checkpoint_interval_s"], goodput=gp["goodput"],
        time_to_train_s=time_to_train, energy_to_train_j=energy, cost_energy_usd=energy_usd,
        cost_usd=cost,
    )
