"""Compute time of one micro-batch on one pipeline stage, op by op, by roofline.

Each op declares its FLOPs and its GEMM shape; time = FLOPs / (peak x efficiency(shape)),
or bytes / (HBM bandwidth x memory efficiency) for the memory-bound elementwise work (norms,
residual adds, activation functions, rotary embeddings), whichever is larger (roofline,
Williams et al. 2009). Backward costs twice the forward (two GEMMs per forward GEMM: Kaplan et
al. 2020; Narayanan et al. 2021 s.3.2).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ultracluster.simulate.comm import Arr
from ultracluster.simulate.context import HwContext, ModelContext
from ultracluster.simulate.planarrays import PlanArrays, stage_layers

ACT_BYTES = 2.0
"""bf16/fp16 activations."""


@dataclass(frozen=True, slots=True)
class ComputeTimes:
    """Seconds per micro-batch on the busiest pipeline stage."""

    fwd: Arr
    """Forward of every layer of the stage (and the output layer)."""
    bwd: Arr
    """Backward, including recomputation."""
    recompute: Arr
    """The recomputation part of `bwd`."""
    matmul: Arr
    """GEMM time per micro-batch (forward + backward), what TP overlap can hide behind."""
    attn_core: Arr
    """Attention-core time per micro-batch (fwd + bwd), what CP ring exchange hides behind."""


def gemm_eff(min_dim: Arr, hw: HwContext) -> Arr:
    """Achievable fraction of peak for a GEMM whose smallest dimension is `min_dim`."""
    e = hw.eff
    return e.matmul_eff_max * min_dim / (min_dim + e.matmul_half_dim)


def _gemm(flops: Arr, min_dim: Arr, peak: Arr, hw: HwContext) -> Arr:
    return flops / (peak * gemm_eff(min_dim, hw))


def compute_times(p: PlanArrays, hw: HwContext, m: ModelContext) -> ComputeTimes:
    e = hw.eff
    tok = p.mb * m.seq_len / p.cp  # tokens per micro-batch on one chip before the TP split
    tok_tp = tok / p.tp
    layers = stage_layers(p, m)
    dense_frac = m.dense_layers / m.layers
    moe_frac = m.moe_layers / m.layers
    peak = np.select([p.fp8 > 0, p.fp32 > 0], [hw.peak_fp8 * e.fp8_eff_ratio, hw.peak_fp32],
                     hw.peak_bf16)
    act_bytes = np.where(p.fp32 > 0, 4.0, ACT_BYTES)

    h = m.hidden
    attn_proj = _gemm(2 * m.attn_weights * tok_tp,
                      np.minimum(np.minimum(tok, m.q_width / p.tp), h), peak, hw)
    attn_core = (m.attn_core_fwd_per_token * tok_tp
                 / (np.where(p.fp32 > 0, hw.peak_fp32, hw.peak_bf16) * gemm_eff(np.asarray(m.seq_len / p.cp), hw)
                    * e.attention_eff_ratio))
    ffn_hidden = m.ffn_width / (2 if m.gated else 1)
    ffn = _gemm(2 * m.ffn_weights * tok_tp,
                np.minimum(np.minimum(tok, ffn_hidden / p.tp), h), peak, hw)
    if m.moe_layers:
        exp_hidden = m.expert_width / (2 if m.gated else 1)
        rows = np.maximum(tok_tp * m.top_k * p.ep / m.experts, 1.0)
        moe = (_gemm(2 * m.top_k * m.expert_weights * tok_tp,
                     np.minimum(np.minimum(rows, exp_hidden), h), peak, hw)
               + _gemm(2 * (m.shared * m.expert_weights + m.router_weights) * tok_tp,
                       np.minimum(np.minimum(tok, exp_hidden), h), peak, hw))
        moe_ffn_width = (m.top_k + m.shared) * m.expert_width
    else:
        moe = np.zeros_like(ffn)
        moe_ffn_width = 0.0
    logits = _gemm(2 * h * m.vocab * tok_tp, np.minimum(np.minimum(tok, m.vocab / p.tp), h),
                   peak, hw)

    def elementwise(ffn_width: float) -> Arr:
        # norms (r+w, 2x), residual adds (2r+w, 2x), activation (r 2f / w f), rotary (q, k)
        per_token = 10 * h + 1.5 * ffn_width + 2 * (m.q_width + m.kv_width)
        return act_bytes * per_token * tok_tp / (hw.hbm_bw * e.memory_eff)

    dense_layer = attn_proj + attn_core + ffn + elementwise(m.ffn_width)
    moe_layer = attn_proj + attn_core + moe + elementwise(moe_ffn_width)
    layer = dense_frac * dense_layer + moe_frac * moe_layer
    fwd = layers * (layer + e.layer_overhead_s / 3) + logits
    recompute = np.select([p.recompute == 2, p.recompute == 1],
                          [layers * layer, layers * attn_core], 0.0)
    bwd = 2 * fwd + recompute
    gemm_per_layer = attn_proj + dense_frac * ffn + moe_frac * moe
    return ComputeTimes(fwd=fwd, bwd=bwd, recompute=recompute,
                        matmul=3 * layers * gemm_per_layer,
                        attn_core=3 * layers * attn_core)
