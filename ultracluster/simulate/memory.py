"""Memory per chip: weights, gradients, optimiser state, activations, buffers.

Mixed-precision Adam (Rajbhandari et al. 2020, ZeRO s.3.1; Megatron-LM distributed-optimizer
docs): bf16 weights (2 B/param), fp32 gradient buffer (4 B, see `GRAD_BYTES`; 2 B with
``Plan.grad_reduce_in_fp32`` off), fp32 master
weights and two Adam moments (12 B). ZeRO-1 shards the 12 B over the data-parallel group, ZeRO-2 also the
gradients, ZeRO-3 (FSDP) also the weights.

Activations follow Korthikanti et al. 2022 ('Reducing Activation Recomputation in Large
Transformer Models', s.4 and Table 2), generalised term by term to grouped-query attention,
gated FFNs, MoE and flash attention (see `activation_bytes_per_token`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ultracluster.simulate.comm import Arr
from ultracluster.simulate.context import ModelContext
from ultracluster.simulate.pipeline import StageLayout, in_flight_chunks
from ultracluster.simulate.planarrays import PlanArrays

WEIGHT_BYTES = 2.0
"""bf16 weights (ZeRO s.3.1: mixed-precision training keeps an fp16/bf16 copy, 2 B)."""
GRAD_BYTES = 4.0
"""Gradients are accumulated (and reduced) in fp32: Megatron-LM's ``main_grad`` buffers (forced
for bf16), Llama 3 paper s.3.3.4 ("accumulate gradients ... in FP32 and also reduce-scatter
gradients in FP32"); Korthikanti et al. 2022 Fig. 1 implies the same 18 bytes per parameter."""
OPTIM_BYTES = 12.0
"""fp32 master weights and Adam's two moments, 4 B each (ZeRO s.3.1: K = 12)."""
FP32_OPTIM_BYTES = 8.0
"""Pure fp32 training keeps no master copy: Adam's two moments only."""


def byte_widths(p: PlanArrays) -> tuple[Arr, Arr, Arr, Arr]:
    """Bytes per weight, gradient, optimiser state and activation value for each plan."""
    f = p.fp32 > 0
    # fp32 plans: 4-byte weights, gradients and activations; else bf16 activations (2 B)
    g = np.where(f | (p.grad32 > 0), GRAD_BYTES, WEIGHT_BYTES)  # bf16 gradients: as weights
    return (np.where(f, 4.0, WEIGHT_BYTES), g,
            np.where(f, FP32_OPTIM_BYTES, OPTIM_BYTES), np.where(f, 4.0, 2.0))
DDP_BUCKET_PARAMS = 40e6
"""Megatron-LM default gradient bucket (``--ddp-bucket-size``: 40M parameters)."""


def activation_bytes_per_token(
    m: ModelContext,
    *,
    tp: Any,
    sp: Any,
    recompute: Any,
    flash: Any = True,
    dropout: bool = False,
    moe: bool = False,
    fp8: Any = 0.0,
) -> Arr:
    """Activation bytes one layer keeps per token for the backward pass.

    Korthikanti et al. 2022 count, per token (s x b = 1), for GPT (MHA, 4h GeLU MLP, dropout):
    layer-norm inputs 4h, QKV input 2h, Q and K 4h, V 2h, attention output 2h, MLP input 2h,
    GeLU input 8h, second GEMM input 8h, two dropout masks 2h = 34h, plus the attention core
    5as (softmax 2as, its dropout mask as, dropout output 2as). Tensor parallelism divides all
    but 10h (norm inputs, GEMM inputs, masks) by t; sequence parallelism divides those too.
    Selective recomputation drops the attention core; full recomputation keeps only the
    layer input, 2h per token (Table 2), split over the t ranks under sequence parallelism
    (the layer input is then sharded along the sequence, as Megatron and torchtitan keep it). Flash attention never stores the core (its
    softmax statistics are negligible). With FP8 matmuls the four GEMM inputs (QKV, output
    projection, FC1, FC2) are kept in their 1-byte FP8 casts (Transformer Engine; DeepSeek-V3
    report s.3.3.3).
    """
    h = m.hidden
    copies = (m.top_k + m.shared) if moe else 1.0
    width = m.expert_width if moe else m.ffn_width  # gate+up (gated) or the one projection
    down = width / (2 if m.gated else 1)
    gemm_in = np.where(np.asarray(fp8) > 0, 1.0, 2.0)
    replicated = 4 * h + gemm_in * h * (1 + copies) + (2 * h if dropout else 0.0)
    split = (2 * (m.q_width + m.kv_width) + 2 * m.kv_width + gemm_in * m.q_width
             + 2 * width * copies + gemm_in * down * copies)
    core = np.where(np.asarray(flash), 0.0, (5.0 if dropout else 2.0) * m.num_heads * m.seq_len)
    tp = np.asarray(tp, dtype=np.float64)
    sp_div = np.where(np.asarray(sp) > 0, tp, 1.0)
    keep = replicated / sp_div + split / tp + np.where(np.asarray(recompute) >= 1, 0.0, core / tp)
    return np.where(np.asarray(recompute) == 2, 2.0 * h / sp_div, keep)


@dataclass(frozen=True, slots=True)
class MemoryBytes:
    """Bytes per chip on the fullest pipeline stage, by kind."""

    weights: Arr
    gradients: Arr
    optimizer: Arr
    activations: Arr
    buffers: Arr

    @property
    def total(self) -> Arr:
        """Bytes per chip, every kind together."""
        return self.weights + self.gradients + self.optimizer + self.activations + self.buffers


@dataclass(frozen=True, slots=True)
class StageParams:
    """Parameters one chip holds for its pipeline stage (before ZeRO sharding)."""

    dense_first: Arr
    dense_body: Arr
    dense_last: Arr
    expert_first: Arr
    expert_body: Arr
    expert_last: Arr
    layer: Arr
    """One transformer layer's parameters on one chip (what ZeRO-3 gathers at a time)."""

    @property
    def dense_max(self) -> Arr:
        """Dense parameters on the fullest of the first, a middle and the last stage."""
        out: Arr = np.maximum(np.maximum(self.dense_first, self.dense_last), self.dense_body)
        return out

    @property
    def expert(self) -> Arr:
        """Expert parameters on the fullest stage."""
        out: Arr = np.maximum(np.maximum(self.expert_first, self.expert_last), self.expert_body)
        return out


def stage_params(p: PlanArrays, m: ModelContext, layout: StageLayout) -> StageParams:
    """Parameters one chip holds on each pipeline stage: layers split by `layout`, embedding on
    the first stage, output layer (or the tied embedding's copy) on the last, experts split
    over ep."""
    dense_frac = m.dense_layers / m.layers
    moe_frac = m.moe_layers / m.layers
    per_layer = (m.attn_weights + m.norm_params_per_layer + dense_frac * m.ffn_weights
                 + moe_frac * (m.router_weights + m.shared * m.expert_weights))
    one_stage = p.pp == 1
    embed = m.embed_params / p.tp
    # tied embeddings: the last stage keeps its own copy of the word embedding for the output
    # layer when the pipeline splits them (Megatron-LM; their gradients are all-reduced)
    tied = m.vocab * m.hidden if m.output_params == 0 else m.output_params
    out = np.where(p.pp > 1, tied, m.output_params) / p.tp
    first = layout.first * per_layer / p.tp + embed + np.where(one_stage, out, 0.0)
    last = layout.last * per_layer / p.tp + out + np.where(one_stage, embed, 0.0)
    body = layout.body * per_layer / p.tp
    per_expert_layer = moe_frac * m.experts * m.expert_weights / p.ep
    layer = per_layer / p.tp + per_expert_layer
    return StageParams(dense_first=first, dense_body=body, dense_last=last,
                       expert_first=layout.first * per_expert_layer,
                       expert_body=layout.body * per_expert_layer,
                       expert_last=layout.last * per_expert_layer, layer=layer)


def memory_bytes(p: PlanArrays, m: ModelContext, sp_: StageParams,
                 layout: StageLayout) -> MemoryBytes:
    """Bytes on the fullest of the first, a middle and the last pipeline rank.

    The first rank holds the most micro-batches in flight (1F1B: min(m, p); interleaved:
    Megatron's warm-up), a middle rank one fewer, the last rank one, plus the fp32 logits.
    """
    dense_dp = p.dp * p.cp
    expert_dp = p.dp * p.cp * p.tp / p.ep
    n_mb = p.gb / (p.dp * p.mb)
    tok = p.mb * m.seq_len / p.cp

    w_b, g_b, o_b, a_b = byte_widths(p)

    def state(dense: Arr, expert: Arr) -> Arr:
        def sharded(per_param: Arr, level: int) -> Arr:
            on = p.zero >= level
            out: Arr = per_param * (np.where(on, dense / dense_dp, dense)
                                    + np.where(on, expert / expert_dp, expert))
            return out
        return np.stack([sharded(w_b, 3), sharded(g_b, 2), sharded(o_b, 1)])

    flash = p.eager == 0
    dense_frac = m.dense_layers / m.layers
    def per_token(recompute: Arr) -> Arr:
        kw = dict(tp=p.tp, sp=p.sp, recompute=recompute, fp8=p.fp8, flash=flash,
                  dropout=m.dropout)
        out: Arr = (dense_frac * activation_bytes_per_token(m, **kw)
                    + (1 - dense_frac) * activation_bytes_per_token(m, moe=True, **kw))
        return out

    # blocks that recompute keep less; with `recompute_every` > 1 the others keep everything
    act_tok = p.rc_share * per_token(p.recompute) + (1 - p.rc_share) * per_token(0.0 * p.recompute)
    act_layer_mb = act_tok * tok * a_b / 2.0  # the per-token counts are for 2-byte values
    v = p.vpp
    first_flight = in_flight_chunks(m=n_mb, p=p.pp, v=v)
    # Megatron's interleaved warm-up, 2(p - r - 1) + (v - 1)p chunks on rank r, plus the one
    # in its steady state, over v chunks a rank-load: r = 1 (a middle rank) and r = p - 1
    body_flight = np.where(v > 1, np.minimum((2.0 * (p.pp - 2) + (v - 1) * p.pp + 1) / v, n_mb),
                           np.minimum(n_mb, p.pp - 1))
    last_flight = np.where(v > 1, np.minimum(((v - 1) * p.pp + 1) / v, n_mb), 1.0)
    logits = 4.0 * tok * m.vocab / p.tp  # fp32 logits for the loss (last stage)
    single = p.pp == 1
    act_first = act_layer_mb * layout.first * first_flight + np.where(single, logits, 0.0)
    act_body = act_layer_mb * layout.body * np.maximum(body_flight, 1.0)
    act_last = act_layer_mb * layout.last * last_flight + logits
    s_first = state(sp_.dense_first, sp_.expert_first)
    s_body = np.where(p.pp > 2, state(sp_.dense_body, sp_.expert_body), 0.0)
    s_last = state(sp_.dense_last, sp_.expert_last)
    act_body = np.where(p.pp > 2, act_body, 0.0)
    totals = np.stack([s_first.sum(axis=0) + act_first, s_body.sum(axis=0) + act_body,
                       s_last.sum(axis=0) + act_last])
    pick = np.argmax(totals, axis=0)

    def choose(a0: Arr, a1: Arr, a2: Arr) -> Arr:
        out: Arr = np.choose(pick, [a0, a1, a2])
        return out

    # ZeRO-3: two layers gathered at a time (the current one and the one prefetched: "the
    # next all-gather's output tensor must be allocated while the current one is still in
    # use", PyTorch FSDP notes), each counted twice (its gathered weights and its unsharded
    # gradient before the reduce-scatter; an assumption, not fitted). Otherwise two gradient
    # buckets (one being reduced while the next fills; an assumption, not fitted).
    buffers = np.where(p.zero >= 3, 2 * w_b * sp_.layer * 2,
                       2 * g_b * np.minimum(DDP_BUCKET_PARAMS, sp_.dense_max + sp_.expert))
    return MemoryBytes(
        weights=choose(s_first[0], s_body[0], s_last[0]),
        gradients=choose(s_first[1], s_body[1], s_last[1]),
        optimizer=choose(s_first[2], s_body[2], s_last[2]),
        activations=choose(act_first, act_body, act_last), buffers=buffers,
    )
