"""The one model: every formula of a training step, evaluated on `PlanArrays`.

`evaluate` is pure and elementwise: `estimate()` calls it on one plan (0-d arrays) and the
planner on millions (1-d arrays), so the two can never disagree.

Step time (Narayanan et al. 2021 s.3; Megatron-LM schedules):

    step = (m + (p - 1) / v) x t_microbatch        pipeline, bubble (p-1)/v micro-batches
         + exposed data-parallel / ZeRO traffic    what backward (or forward) cannot hide
         + optimizer                               memory-bound AdamW update
         + exposed site-sync traffic               sync: in the DP all-reduce; DiLoCo: /H

    t_microbatch = forward + backward (+ recompute) + exposed TP + exposed CP + EP + PP
"""

from __future__ import annotations

import numpy as np

from ultracluster.simulate import comm
from ultracluster.simulate.comm import Arr
from ultracluster.simulate.compute import compute_times
from ultracluster.simulate.context import HwContext, ModelContext
from ultracluster.simulate.memory import byte_widths, memory_bytes, stage_params
from ultracluster.simulate.network import Net
from ultracluster.simulate.planarrays import PlanArrays, stage_layers
from ultracluster.simulate.power import goodput_terms, power_terms

ADAM_BYTES_PER_PARAM = 30.0
"""AdamW step traffic: read fp32 grad, master, m, v (16 B); write master, m, v (12 B) and the
bf16 weight (2 B)."""
SITE_SYNC_BUDGET = 0.05
"""The inter-site bandwidth reported is the one at which the exchange costs 5% of a step."""

Terms = dict[str, Arr]


def evaluate(p: PlanArrays, hw: HwContext, m: ModelContext, *, tokens: float) -> Terms:
    """Every term of the estimate for the plans in `p` (see module docstring)."""
    t: Terms = {}
    world = p.world
    sites_used = np.ceil(world / hw.site_chips - 1e-9)
    net = Net(hw=hw, world=world, chips_per_site=world / sites_used)
    n_mb = p.gb / (p.dp * p.mb)
    tok = p.mb * m.seq_len / p.cp
    layers = stage_layers(p, m)
    moe_frac = m.moe_layers / m.layers

    c = compute_times(p, hw, m)
    w_b, g_b, o_b, act_b = byte_widths(p)

    # tensor parallel: 2 all-reduce-equivalents forward, 2 backward, 2 more with full recompute
    # (with sequence parallelism each is an all-gather + reduce-scatter of the same volume)
    n_ar = 4 + 2 * (p.recompute == 2)
    tp_time = layers * n_ar * net.all_reduce(p.stride_tp, p.tp, tok * m.hidden * act_b)
    tp_time = np.where(p.tp > 1, tp_time, 0.0)
    tp_exposed = np.where(p.tp_overlap > 0, np.maximum(0.0, tp_time - c.matmul), tp_time)

    # context parallel: ring passes K and V of the local chunk cp-1 times per pass
    kv_bytes = tok * 2 * m.kv_width * act_b / np.minimum(p.tp, max(m.kv_width, 1.0))
    passes = 3 + (p.recompute >= 1)
    cp_time = layers * passes * (p.cp - 1) * net.neighbour(p.stride_cp, kv_bytes)
    cp_exposed = np.maximum(0.0, cp_time - c.attn_core)

    # expert parallel: dispatch + combine all-to-all, forward and backward (+ recompute)
    # (the group takes tp x cp first, then spreads over dp ranks at dp's stride)
    inner = np.minimum(p.ep, p.tp * p.cp)
    outer = p.ep / inner
    bw_ep, lat_ep = net.outermost(np.where(outer > 1, p.stride_dp, 1.0),
                                  np.where(outer > 1, outer, inner))
    # dispatch in FP8 when the matmuls are FP8 (DeepSeek-V3 s.3.3), combine in BF16
    a2a_bytes = tok / p.tp * m.top_k * m.hidden * np.where(p.fp8 > 0, 1.5, act_b)
    n_a2a = 4 + 2 * (p.recompute == 2)
    ep_time = np.where(p.ep > 1, layers * moe_frac * n_a2a
                       * comm.all_to_all(p.ep, a2a_bytes, bw_ep, lat_ep), 0.0)
    ep_exposed = np.where(p.ep_overlap > 0, np.maximum(0.0, ep_time - (c.fwd + c.bwd)), ep_time)

    # pipeline: activations forward, gradients backward, once per virtual stage
    pp_bytes = tok * m.hidden * act_b / np.where(p.sp > 0, p.tp, 1.0)
    pp_time = np.where(p.pp > 1, 2 * p.vpp * net.neighbour(p.stride_pp, pp_bytes), 0.0)

    t_mb = c.fwd + c.bwd + tp_exposed + cp_exposed + ep_exposed + pp_time
    bubble = (p.pp - 1) / p.vpp * t_mb
    pipeline = n_mb * t_mb + bubble

    # data parallel / ZeRO, dense weights over dp x cp, experts over their own replicas
    sp_ = stage_params(p, m)
    dense = sp_.dense_max
    edp_inner = np.maximum(p.tp * p.cp / inner, 1.0)
    edp_outer = np.maximum(p.dp / (p.ep / inner), 1.0)
    sync_every_step = p.sync == 0

    # reduce-scatter time per byte and fixed part, over dp x cp (dense) and the experts'
    # replicas, with and without the inter-site tier
    groups = [net.rs_coeffs(p.stride_cp, p.cp), net.rs_coeffs(p.stride_dp, p.dp)]
    if m.moe_layers:
        groups += [net.rs_coeffs(1.0, edp_inner), net.rs_coeffs(p.stride_dp, edp_outer)]

    def dp_rs(nbytes_per_param: Arr) -> Arr:
        """Reduce-scatter (= all-gather) of `nbytes_per_param` for every local parameter."""
        d = nbytes_per_param * dense
        sizes = [d, d / p.cp]
        if m.moe_layers:
            e = nbytes_per_param * sp_.expert
            sizes += [e, e / edp_inner]
        with_inter = sum(a * b + c for (a, c, _, _), b in zip(groups, sizes))
        without = sum(a * b + c for (_, _, a, c), b in zip(groups, sizes))
        out: Arr = np.where(sync_every_step, with_inter, without)
        return out

    grad_rs = dp_rs(g_b)
    param_ag = dp_rs(w_b)
    # the windows DP traffic can hide behind (none when the plan does not overlap it)
    fwd = np.where(p.dp_overlap > 0, c.fwd, 0.0)
    bwd = np.where(p.dp_overlap > 0, c.bwd, 0.0)
    dp_active = (p.dp * p.cp) > 1
    dp_exposed = np.select(
        [~dp_active, p.zero == 0, p.zero <= 2],
        [0.0,
         np.maximum(0.0, 2 * grad_rs - bwd),
         np.maximum(0.0, grad_rs - bwd) + np.maximum(0.0, param_ag - fwd)],
        n_mb * (np.maximum(0.0, param_ag - fwd) + np.maximum(0.0, param_ag + grad_rs - bwd)),
    )

    # optimizer: AdamW over this chip's shard
    shard = np.where(p.zero >= 1, dense / (p.dp * p.cp) + sp_.expert / (edp_inner * edp_outer),
                     dense + sp_.expert)
    optimizer = shard * ADAM_BYTES_PER_PARAM / (hw.hbm_bw * hw.eff.memory_eff)

    inner_step = pipeline + dp_exposed + optimizer

    # site sync ----------------------------------------------------------------------------
    n_sites, bw_site, lat_site = net.inter_site(p.stride_dp, p.dp)
    crosses = n_sites > 1
    dp_in_site = p.dp / n_sites
    shard_all = dense + sp_.expert
    # sync: the inter-site tier's share of the per-step DP traffic (per chip)
    per_param_sync = np.select([p.zero == 0, p.zero <= 2],
                               [2 * g_b, g_b + w_b], n_mb * (g_b + 2 * w_b))
    sync_bytes = per_param_sync * shard_all / (dp_in_site * p.cp)
    # DiLoCo: pseudo-gradients at `bits` (+ one fp32 scale per 64 values at 8 and 4 bits),
    # split over the identical replicas of a site, all-gathered between sites (quantised
    # values cannot be summed in flight, so each site decodes every other site's part)
    scales = np.where(p.bits <= 8, 4.0 / 64, 0.0)
    outer_bytes = shard_all * (p.bits / 8 + scales) / dp_in_site
    frags = np.where(p.sync == 2, p.fragments, 1.0)
    frag_bytes = outer_bytes / frags
    t_frag = (n_sites - 1) * (frag_bytes / bw_site + lat_site)
    every = np.where(p.sync == 2, p.inner_steps / frags, p.inner_steps)
    # streaming overlaps a fragment's exchange with the next inner step (tau = 1)
    window = np.where(p.sync == 2, inner_step, 0.0)
    outer_exposed = np.maximum(0.0, t_frag - window) / every
    site_exposed = np.where(crosses & (p.sync > 0), outer_exposed, 0.0)

    per_chip_cross = np.where(p.sync == 0, (n_sites - 1) / n_sites * sync_bytes,
                              (n_sites - 1) * frag_bytes / every)
    t["cross_site_bytes_per_step"] = np.where(crosses, world * per_chip_cross, 0.0)
    t["cross_site_bytes_per_outer_step"] = np.where(
        crosses & (p.sync > 0), world * (n_sites - 1) * outer_bytes, 0.0)
    t["cross_site_sites"] = n_sites

    step = inner_step + site_exposed
    t["step_time_s"] = step

    # bandwidth of one inter-site link at which the exchange costs SITE_SYNC_BUDGET of a step
    per_link = bw_site / max(hw.inter_bw, 1e-30)  # per-chip bandwidth per unit link bandwidth
    base = np.where(p.sync == 0, step, inner_step)
    volume = np.where(p.sync == 0, 2 * (n_sites - 1) / n_sites * sync_bytes,
                      (n_sites - 1) * frag_bytes)
    latency = np.where(p.sync == 0, 2 * (n_sites - 1) * lat_site * 2,
                       (n_sites - 1) * lat_site)
    room = SITE_SYNC_BUDGET * base * np.where(p.sync == 0, 1.0, every) + window - latency
    t["site_sync_bandwidth_5pct_bytes_per_s"] = np.where(
        crosses, np.where(room > 0, volume / (per_link * np.maximum(room, 1e-30)), np.inf), 0.0)

    # breakdown ---------------------------------------------------------------------------
    t["compute_s"] = n_mb * (c.fwd + c.bwd - c.recompute)
    t["recompute_s"] = n_mb * c.recompute
    t["tp_exposed_s"] = n_mb * tp_exposed
    t["tp_total_s"] = n_mb * tp_time
    t["cp_exposed_s"] = n_mb * cp_exposed
    t["ep_exposed_s"] = n_mb * ep_exposed
    t["ep_total_s"] = n_mb * ep_time
    t["pp_s"] = n_mb * pp_time
    t["bubble_s"] = bubble
    t["dp_exposed_s"] = dp_exposed
    t["dp_total_s"] = np.where(dp_active, np.select([p.zero == 0, p.zero <= 2],
                                                    [2 * grad_rs, grad_rs + param_ag],
                                                    n_mb * (2 * param_ag + grad_rs)), 0.0)
    t["optimizer_s"] = optimizer
    t["site_sync_exposed_s"] = site_exposed
    t["num_microbatches"] = n_mb

    # throughput --------------------------------------------------------------------------
    tokens_per_step = p.gb * m.seq_len
    tps = tokens_per_step / step
    t["tokens_per_step"] = tokens_per_step
    t["tokens_per_s"] = tps
    t["tokens_per_s_per_chip"] = tps / world
    t["num_chips"] = world
    t["mfu"] = m.model_flops_per_token * tps / (world * hw.peak_bf16)
    recompute_per_token = np.where(
        world > 0, n_mb * c.recompute / np.maximum(n_mb * (c.fwd + c.bwd - c.recompute), 1e-30),
        0.0)
    t["hfu"] = t["mfu"] * (1 + recompute_per_token)

    # memory ------------------------------------------------------------------------------
    mem = memory_bytes(p, m, sp_)
    t["mem_weights"] = mem.weights
    t["mem_gradients"] = mem.gradients
    t["mem_optimizer"] = mem.optimizer
    t["mem_activations"] = mem.activations
    t["mem_buffers"] = mem.buffers
    t["memory_per_chip_bytes"] = mem.total
    t["fits"] = (mem.total <= hw.hbm_bytes).astype(np.float64)

    busy = n_mb * (c.fwd + c.bwd) + optimizer
    t |= power_terms(hw, world=world, busy_s=busy, step_s=step, tokens_per_step=tokens_per_step)
    ckpt_bytes = m.params * (w_b + o_b)
    domain = np.where((p.sync > 0) & crosses, world / n_sites, world)
    t |= goodput_terms(hw, domain_chips=domain, world=world, checkpoint_bytes=ckpt_bytes)
    steps = tokens / tokens_per_step
    ideal = steps * step
    t["time_to_train_s"] = ideal / t["goodput"]
    t["energy_to_train_j"] = t["power_w"] * t["time_to_train_s"]
    chip_hours = world * t["time_to_train_s"] / 3600
    energy_usd = t["energy_to_train_j"] / 3.6e6 * hw.usd_per_kwh
    t["cost_energy_usd"] = energy_usd
    if hw.usd_per_chip_hour is not None:
        t["cost_usd"] = chip_hours * hw.usd_per_chip_hour
    else:
        t["cost_usd"] = energy_usd
    return t
