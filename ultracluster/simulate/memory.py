"""Memory per chip: weights, gradients, optimiser state, activations, buffers.

Mixed-precision Adam (Rajbhandari et al. 2020, ZeRO s.3.1; Megatron-LM distributed-optimizer
docs): bf16 weights (2 B/param), bf16 gradient buffer (2 B; Megatron-Core's
``grad_reduce_in_fp32`` defaults to False), fp32 master weights and two Adam moments (12 B). ZeRO-1 shards the 12 B over the data-parallel group, ZeRO-2 also the
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
from ultracluster.simulate.planarrays import PlanArrays, stage_layers

WEIGHT_BYTES = 2.0
GRAD_BYTES = 2.0
OPTIM_BYTES = 12.0
FP32_OPTIM_BYTES = 8.0
"""Pure fp32 training keeps no master copy: Adam's two moments only."""


def byte_widths(p: PlanArrays) -> tuple[Arr, Arr, Arr, Arr]:
    """Bytes per weight, gradient, optimiser state and activation value for each plan."""
    f = p.fp32 > 0
    return (np.where(f, 4.0, WEIGHT_BYTES), np.where(f, 4.0, GRAD_BYTES),
            np.where(f, FP32_OPTIM_BYTES, OPTIM_BYTES), np.where(f, 4.0, 2.0))
DDP_BUCKET_PARAMS = 40e6
"""Megatron-LM default gradient bucket (``--ddp-bucket-size``: 40M parameters)."""


def activation_bytes_per_token(
    m: ModelContext,
    *,
    tp: Any,
    sp: Any,
    recompute: Any,
    flash: bool = True,
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
    layer input, 2h per token (Table 2). Flash attention never stores the core (its
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
    core = 0.0 if flash else (5.0 if dropout else 2.0) * m.num_heads * m.seq_len
    tp = np.asarray(tp, dtype=np.float64)
    sp_div = np.where(np.asarray(sp) > 0, tp, 1.0)
    keep = replicated / sp_div + split / tp + np.where(np.asarray(recompute) >= 1, 0.0, core / tp)
    return np.where(np.asarray(recompute) == 2, 2.0 * h, keep)


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
        return self.weights + self.gradients + self.optimizer + self.activations + self.buffers


@dataclass(frozen=True, slots=True)
class StageParams:
    """Parameters one chip holds for its pipeline stage (before ZeRO sharding)."""

    dense_first: Arr
    dense_last: Arr
    expert: Arr
    layer: Arr
    """One transformer layer's parameters on one chip (what ZeRO-3 gathers at a time)."""

    @property
    def dense_max(self) -> Arr:
        return np.maximum(self.dense_first, self.dense_last)


def stage_params(p: PlanArrays, m: ModelContext) -> StageParams:
    layers = stage_layers(p, m)
    dense_frac = m.dense_layers / m.layers
    moe_frac = m.moe_layers / m.layers
    per_layer = (m.attn_weights + m.norm_params_per_layer + dense_frac * m.ffn_weights
                 + moe_frac * (m.router_weights + m.shared * m.expert_weights))
    body = layers * per_layer / p.tp
    one_stage = p.pp == 1
    first = body + m.embed_params / p.tp + np.where(one_stage, m.output_params / p.tp, 0.0)
    last = body + m.output_params / p.tp + np.where(one_stage, m.embed_params / p.tp, 0.0)
    expert = layers * moe_frac * m.experts * m.expert_weights / p.ep
    layer = per_layer / p.tp + moe_frac * m.experts * m.expert_weights / p.ep
    return StageParams(dense_first=first, dense_last=last, expert=expert, layer=layer)


def memory_bytes(p: PlanArrays, m: ModelContext, sp_: StageParams) -> MemoryBytes:
    dense_dp = p.dp * p.cp
    expert_dp = p.dp * p.cp * p.tp / p.ep
    n_mb = p.gb / (p.dp * p.mb)
    tok = p.mb * m.seq_len / p.cp

    w_b, g_b, o_b, a_b = byte_widths(p)

    def sharded(per_param: Arr, level: int, dense: Arr) -> Arr:
        on = p.zero >= level
        out: Arr = per_param * (np.where(on, dense / dense_dp, dense)
                                + np.where(on, sp_.expert / expert_dp, sp_.expert))
        return out

    def state(dense: Arr) -> tuple[Arr, Arr, Arr]:
        return sharded(w_b, 3, dense), sharded(g_b, 2, dense), sharded(o_b, 1, dense)

    dense_frac = m.dense_layers / m.layers
    act_tok = (dense_frac * activation_bytes_per_token(m, tp=p.tp, sp=p.sp,
                                                        recompute=p.recompute, fp8=p.fp8)
               + (1 - dense_frac) * activation_bytes_per_token(
                   m, tp=p.tp, sp=p.sp, recompute=p.recompute, moe=True, fp8=p.fp8))
    act_layer_mb = act_tok * tok * a_b / 2.0  # the per-token counts are for 2-byte values
    layers = stage_layers(p, m)
    interleave = np.where(p.vpp > 1, 1 + (p.pp - 1) / (p.pp * p.vpp), 1.0)
    in_flight = np.minimum(n_mb, p.pp) * interleave
    act_first = act_layer_mb * layers * in_flight
    logits = 4.0 * tok * m.vocab / p.tp  # fp32 logits for the loss (last stage)
    act_last = act_layer_mb * layers + logits
    wf, gf, of = state(sp_.dense_first)
    wl, gl, ol = state(sp_.dense_last)
    first_total = wf + gf + of + act_first
    last_total = wl + gl + ol + act_last
    use_first = first_total >= last_total
    buffers = np.where(p.zero >= 3, 2 * w_b * sp_.layer * 2,
                       2 * g_b * np.minimum(DDP_BUCKET_PARAMS,
                                                   sp_.dense_max + sp_.expert))
    return MemoryBytes(
        weights=np.where(use_first, wf, wl), gradients=np.where(use_first, gf, gl),
        optimizer=np.where(use_first, of, ol),
        activations=np.where(use_first, act_first, act_last), buffers=buffers,
    )
