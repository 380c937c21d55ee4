"""Compute time of one micro-batch, operation by operation, by roofline.

Every operation of a layer is timed as the larger of its FLOPs over the rate the chip achieves
for its shape and its bytes over the HBM bandwidth (roofline, Williams et al. 2009):

- GEMMs (QKV, attention output, FC1 with its gate, FC2, the experts, the router, the output
  layer), each with its (m, n, k) shape, forward and the two backward GEMMs (data gradient
  m x k x n, weight gradient k x n x m; Narayanan et al. 2021 s.3.2). The achievable rate is
  the catalogue's large-GEMM fraction of peak (published GEMM benchmarks, `Chip.sources`) times
  tile and wave quantisation (output tiles of ``gemm_tile`` spread over ``compute_units`` in
  whole waves: NVIDIA's 'Matrix Multiplication Background' guide); a short K loop costs the
  bytes it moves (the roofline), and ``k / (k + matmul_half_dim)`` more only where a
  cluster file or `ultracluster calibrate` sets a half dimension (0 for accelerators).
- The attention core: fused (flash) attention at the catalogue's attention fraction (on
  Hopper, FlashAttention-2's published forward and backward rates by sequence length, or
  cuDNN's with ``attention = "cudnn"``: `attention_fractions`), backward 2.5x the forward
  FLOPs (Dao 2023: five products instead of two), causal half skipped; or eager
  attention (``attention = "eager"``, Megatron-LM 2022): the two batched GEMMs over the whole
  s x s square, and the softmax, mask and dropout read and written in HBM.
- Memory-bound work: norms, residual adds, activation functions, rotary embeddings, dropout,
  MoE permutation (`moe_permute_bytes`), the fp32 cross-entropy over the vocabulary, the
  embedding lookup.
- With FP8 matmuls, the casts that feed them: every GEMM input in the forward and every
  output gradient in the backward is read once in BF16 and written as FP8 twice, as is and
  transposed for the other backward GEMM (Transformer Engine's fused ``cast_transpose``;
  `FP8_CAST_BYTES`). Weight casts are cached across micro-batches and not counted.

Without sequence parallelism the norms, residuals and dropouts run on every token on every
tensor-parallel rank (Korthikanti et al. 2022 s.4.2.2); with it, on 1/t of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ultracluster.simulate.comm import Arr, ArrLike
from ultracluster.simulate.context import HwContext, ModelContext
from ultracluster.simulate.planarrays import FULL, SELECTIVE, PlanArrays

FLASH_BWD_RATIO = 2.5
"""Flash-attention backward FLOPs over forward (Dao 2023, FlashAttention-2 s.4.1)."""
SOFTMAX_BYTES_FWD = 4.0
"""Fused scale-mask-softmax (Megatron-LM): read and write each 2-byte score."""
SOFTMAX_BYTES_BWD = 6.0
"""Its backward: read the probabilities and their gradient, write the score gradient."""
DROPOUT_BYTES_FWD = 5.0
"""Dropout: read and write a 2-byte value and write its 1-byte mask."""
DROPOUT_BYTES_BWD = 5.0
"""Its backward: read the gradient and the mask, write the gradient."""
BDA_MASK_BYTES = 1.0
"""The dropouts after the attention block and the MLP run fused with the bias and residual
adds that follow them (Megatron-LM's ``bias_dropout_add_fused_train``, on unless
``--no-bias-dropout-fusion``; Megatron-DeepSpeed inherits it): one kernel reads the two
inputs and writes the sum, as the plain residual add does, plus the 1-byte mask."""
CE_BYTES_FWD = 10.0
"""Cross-entropy per logit (Megatron's vocab-parallel loss in fp32): read the 2-byte logit,
write and read back its 4-byte exponential."""
FP8_CAST_BYTES = 4.0
"""Bytes per element of one FP8 cast: read the 2-byte value, write the 1-byte FP8 copy and its
1-byte transpose (Transformer Engine ``cast_transpose``; torchao's tensorwise dynamic scaling
reads the input once more for its amax, so this is the lower bound)."""
CE_BYTES_BWD = 6.0
"""Its backward: read the fp32 softmax, write the 2-byte logit gradient."""
PERMUTE_PASSES = 4.0
"""Values of each routed token copy moved by Megatron-Core's alltoall dispatcher around the
experts, forward (permutation 1 gathers each copy, read + write; unpermutation 1 reads each
copy and sums them, writing one value per token); the backward mirrors it."""
SORT_PASSES = 4.0
"""With several local experts, the received copies are sorted by expert before the experts
and unsorted after them (``sort_chunks_by_idxs``, permutation and unpermutation 2 of
``MoEAlltoAllTokenDispatcher``): read + write each copy twice more."""


def moe_permute_bytes(tok: ArrLike, top_k: float, h: float, local_experts: ArrLike,
                      elem_bytes: ArrLike) -> Arr:
    """Bytes one chip moves to permute and unpermute one micro-batch's `tok` tokens around
    the experts, forward (the backward mirrors it): `PERMUTE_PASSES` per routed copy, + the
    output written once per token, + `SORT_PASSES` per copy with more than one local expert
    (Megatron-Core ``token_dispatcher.py``, dropless)."""
    passes = PERMUTE_PASSES + np.where(np.asarray(local_experts) > 1, SORT_PASSES, 0.0)
    out: Arr = np.asarray(elem_bytes * tok * h * (top_k * passes + 1.0), dtype=np.float64)
    return out


@dataclass(frozen=True, slots=True)
class ComputeTimes:
    """Seconds per micro-batch on one chip."""

    layer_fwd: Arr
    """Forward of one transformer layer (dense and MoE layers averaged by their counts)."""
    layer_bwd: Arr
    """Backward of one layer, without recomputation."""
    layer_recompute: Arr
    """The extra forward work recomputation adds to one layer's backward."""
    layer_gemm: Arr
    """GEMM time of one layer, forward + backward: what TP overlap can hide behind."""
    layer_attn: Arr
    """Attention-core time of one layer, forward + backward: what the CP ring hides behind."""
    col_bwd: Arr
    """Backward GEMMs (data and weight gradient) of the layer's column-parallel linears (QKV,
    FC1, a shared expert's FC1): what asynchronous backward TP collectives hide behind."""
    out_fwd: Arr
    """Output layer and loss, forward (last stage)."""
    out_bwd: Arr
    """Output layer and loss, backward."""
    embed: Arr
    """Embedding lookup, forward + backward (first stage)."""

    @property
    def layer(self) -> Arr:
        """One layer, forward + backward + recomputation."""
        out: Arr = self.layer_fwd + self.layer_bwd + self.layer_recompute
        return out


def gemm_efficiency(m: ArrLike, n: ArrLike, k: ArrLike, hw: HwContext,
                    batch: ArrLike = 1.0) -> Arr:
    """Fraction of the large-GEMM rate `batch` GEMMs (m x k) @ (k x n) reach as one kernel."""
    tm, tn = hw.gemm_tile
    # the 1e-9 keeps a quotient that is whole up to float rounding from gaining a tile/wave
    tiles = batch * np.ceil(m / tm - 1e-9) * np.ceil(n / tn - 1e-9)
    waves = np.ceil(tiles / hw.compute_units - 1e-9)
    fill = batch * m * n / np.maximum(waves * hw.compute_units * tm * tn, 1.0)
    half = np.asarray(hw.eff.matmul_half_dim, dtype=np.float64)
    k_fill = np.where(half > 0, k / np.maximum(k + half, 1e-30), 1.0)
    out: Arr = np.minimum(fill, 1.0) * k_fill
    return out


def gemm_time(m: ArrLike, n: ArrLike, k: ArrLike, peak: Arr, hw: HwContext,
              batch: ArrLike = 1.0, elem_bytes: ArrLike = 2.0) -> tuple[Arr, Arr]:
    """(forward, backward) seconds of `batch` GEMMs of shape (m, n, k) at `peak`, the
    achievable large-GEMM rate (FLOP/s): each of the three GEMMs (forward, data gradient,
    weight gradient) the larger of its FLOPs over the rate for its shape and its operands'
    bytes over HBM (roofline): it reads two of m x k, k x n and m x n and writes the third,
    `elem_bytes` each. The bytes bound GEMMs with few rows, such as a small micro-batch's or
    an expert's that few tokens were routed to: their weights are read for little work."""
    f = 2.0 * batch * m * n * k
    if not np.any(f):
        zero: Arr = np.zeros_like(np.asarray(f, dtype=np.float64))
        return zero, zero
    io = _mem(np.asarray(batch * (m * k + k * n + m * n) * elem_bytes, dtype=np.float64), hw)
    fwd = np.maximum(f / (peak * gemm_efficiency(m, n, k, hw, batch)), io)
    bwd = (np.maximum(f / (peak * gemm_efficiency(m, k, n, hw, batch)), io)
           + np.maximum(f / (peak * gemm_efficiency(k, n, m, hw, batch)), io))
    return fwd, bwd


def attention_fractions(length: ArrLike, hw: HwContext, cudnn: ArrLike = 0.0
                        ) -> tuple[Arr, Arr]:
    """(forward, backward) fraction of the peak fused attention reaches on sequences of
    `length` tokens (the chip's share with context parallelism): the catalogue's published
    curve (`Chip.attention_curve`, FlashAttention-2; where `cudnn` is 1 and the chip has one,
    `Chip.attention_curve_cudnn`), interpolated in log2(length) and flat beyond its ends;
    the one `attention_fraction` where the chip has no curve."""
    n = np.asarray(length, dtype=np.float64)
    if not hw.attention_curve:
        one: Arr = np.full_like(n, hw.attention_fraction)
        return one, one
    x = np.log2(np.maximum(n, 1.0))

    def on(curve: tuple[tuple[float, float, float], ...]) -> tuple[Arr, Arr]:
        xs = np.log2([c[0] for c in curve])
        return (np.asarray(np.interp(x, xs, [c[1] for c in curve]), dtype=np.float64),
                np.asarray(np.interp(x, xs, [c[2] for c in curve]), dtype=np.float64))

    fwd, bwd = on(hw.attention_curve)
    if hw.attention_curve_cudnn:
        cf, cb = on(hw.attention_curve_cudnn)
        use = np.asarray(cudnn) > 0
        fwd, bwd = np.where(use, cf, fwd), np.where(use, cb, bwd)
    return fwd, bwd


def kv_width_per_chip(t: ArrLike, m: ModelContext, hw: HwContext) -> Arr:
    """K (or V) projection width one chip computes with tensor parallelism over `t` chips.

    Its t x r ranks (r = `HwContext.ranks_per_chip`) split the KV heads while there are
    enough; with fewer KV heads than ranks each rank still needs one whole head, so the
    heads are replicated (vLLM's ``num_kv_heads = max(1, total_num_kv_heads // tp_size)``;
    NeuronX Distributed's ``GQAQKVColumnParallelLinear`` with ``kv_size_multiplier`` =
    TP ranks / KV heads, e.g. 4 for Llama 3 8B and 70B at TP 32 NeuronCores): the chip
    computes r x max(heads / (t r), 1) heads, max(heads / t, r).
    """
    d_kv = m.kv_width / m.kv_heads
    return np.asarray(d_kv * np.maximum(m.kv_heads / np.asarray(t, dtype=np.float64),
                                        hw.ranks_per_chip), dtype=np.float64)


@dataclass(frozen=True, slots=True)
class Projections:
    """The attention's input projections on one chip, one micro-batch."""

    fwd: Arr
    bwd: Arr
    col_bwd: Arr
    """Backward of the column-parallel ones: what the backward TP collectives hide behind."""
    in_tokens: Arr
    """Tokens whose hidden state they read (what an FP8 run casts h-wide)."""
    cast_in: Arr
    """Further inputs an FP8 run casts, per token (MLA's latents)."""
    out_grad: Arr
    """Output-gradient width per token (cast in an FP8 run's backward)."""
    rope: Arr
    """Rotary's values read and written per token, x t (it runs on tok / t)."""


def _mla_projections(tok: Arr, rep: Arr, t: Arr, m: ModelContext, hw: HwContext, peak: Arr,
                     a: Arr) -> Projections:
    """Multi-head latent attention's projections (DeepSeek-V2/V3; Megatron-Core
    ``MLASelfAttention`` and its layer spec): the query and key/value down-projections
    (hidden -> q rank, hidden -> kv rank + the shared rotary key) are duplicated on every
    tensor-parallel rank and run on the rank's tokens (its 1/t of the sequence with sequence
    parallelism, `rep`); the up-projections (q rank -> heads x q head, kv rank -> heads x
    (key + value)) are column-parallel over the whole sequence, after the latents are gathered.
    Without a query rank the query is projected column-parallel from the hidden state. FP8
    casts: the hidden state on the tokens the first projections read, the latents; rotary: the
    query's rotary part and the one shared rotary key."""
    heads = m.num_heads
    down_w = m.mla_q_rank + m.mla_kv_rank + m.mla_rope
    d_f, d_b = gemm_time(rep, down_w, m.hidden, peak, hw, elem_bytes=a)
    q_up = heads * m.mla_q_head / t
    q_f, q_b = gemm_time(tok, q_up, m.mla_q_rank or m.hidden, peak, hw, elem_bytes=a)
    kv_up = heads * m.mla_kv_head / t
    kv_f, kv_b = gemm_time(tok, kv_up, m.mla_kv_rank, peak, hw, elem_bytes=a)
    f64 = np.float64
    return Projections(
        fwd=d_f + q_f + kv_f, bwd=d_b + q_b + kv_b, col_bwd=q_b + kv_b,
        in_tokens=np.asarray(rep if m.mla_q_rank else tok, dtype=f64),
        cast_in=np.asarray(m.mla_q_rank + m.mla_kv_rank + 0.0 * t, dtype=f64),
        out_grad=np.asarray(rep / tok * down_w + q_up + kv_up, dtype=f64),
        rope=np.asarray(2.0 * (heads * m.mla_rope + t * m.mla_rope), dtype=f64))


def _mem(nbytes: Arr | float, hw: HwContext) -> Arr:
    return np.asarray(nbytes / (hw.hbm_bw * hw.eff.memory_eff), dtype=np.float64)


def stops_early(p: PlanArrays, m: ModelContext) -> Arr:
    """1 where full recomputation stops before the layer's last GEMM and the collective after
    it (`Plan.recompute_early_stop`); never with dropout after the MLP, whose saved mask needs
    that GEMM's output."""
    return np.asarray(p.rc_early * (0.0 if m.dropout else 1.0), dtype=np.float64)


def compute_times(p: PlanArrays, hw: HwContext, m: ModelContext) -> ComputeTimes:
    """Per-micro-batch compute of one layer, the output layer and the embedding (docstring)."""
    e = hw.eff
    a = np.where(p.fp32 > 0, 4.0, 2.0)  # bytes per activation value
    tok = p.mb * m.seq_len / p.cp  # tokens of one micro-batch on one chip, before TP
    t = p.tp
    rep = np.where(p.sp > 0, tok / t, tok)  # tokens the norms and residuals run on
    h = m.hidden
    # achievable large-GEMM rates: the catalogue's benchmark fraction of peak, times the
    # fraction of it training sustains (`Efficiency.matmul_eff_max`, 1 unless calibrated)
    sustained = e.matmul_eff_max
    gemm_peak = sustained * np.select(
        [p.fp8 > 0, p.fp32 > 0],
        [hw.peak_fp8 * hw.gemm_fraction_fp8 * e.fp8_eff_ratio, hw.peak_fp32 * hw.gemm_fraction],
        hw.peak_bf16 * hw.gemm_fraction)
    vec_peak = sustained * hw.gemm_fraction * np.where(p.fp32 > 0, hw.peak_fp32, hw.peak_bf16)
    attn_peak = sustained * e.attention_eff_ratio * np.where(p.fp32 > 0, hw.peak_fp32,
                                                             hw.peak_bf16)
    eager = p.eager > 0

    # attention projections; K and V on the chip's share of the KV heads, at least one whole
    # head per rank (`kv_chip`)
    kv_chip = kv_width_per_chip(t, m, hw)
    if m.mla_kv_rank:
        qkv = _mla_projections(tok, rep, t, m, hw, gemm_peak, a)
    else:
        f, b = gemm_time(tok, m.q_width / t + 2 * kv_chip, h, gemm_peak, hw, elem_bytes=a)
        qkv = Projections(fwd=f, bwd=b, col_bwd=b, in_tokens=tok, cast_in=0.0 * t,
                          out_grad=m.q_width / t + 2 * kv_chip,
                          rope=2.0 * (m.q_width + t * kv_chip))
    qkv_f, qkv_b = qkv.fwd, qkv.bwd
    o_f, o_b = gemm_time(tok, h, m.q_width / t, gemm_peak, hw, elem_bytes=a)
    proj_f, proj_b = qkv_f + o_f, qkv_b + o_b

    # attention core (with context parallelism each chip attends its 1/cp of the queries)
    heads = m.num_heads / t
    d_head = m.q_width / m.num_heads
    flash_flops = m.attn_core_fwd_per_token * tok / t  # causal: masked half skipped
    frac_f, frac_b = attention_fractions(m.seq_len / p.cp, hw, p.cudnn)
    flash_f = flash_flops / (attn_peak * frac_f)
    flash_b = FLASH_BWD_RATIO * flash_flops / (attn_peak * frac_b)
    # eager: full s x s products as batched GEMMs, scores through HBM
    bh = p.mb * heads
    qk_f, qk_b = gemm_time(tok / p.mb, m.seq_len, d_head, vec_peak, hw, batch=bh,
                           elem_bytes=a)
    av_f, av_b = gemm_time(tok / p.mb, d_head, m.seq_len, vec_peak, hw, batch=bh,
                           elem_bytes=a)
    scores = bh * (tok / p.mb) * m.seq_len
    drop = 1.0 if m.dropout else 0.0
    sm_f = _mem(scores * (SOFTMAX_BYTES_FWD + drop * DROPOUT_BYTES_FWD), hw)
    sm_b = _mem(scores * (SOFTMAX_BYTES_BWD + drop * DROPOUT_BYTES_BWD), hw)
    attn_f = np.where(eager, qk_f + av_f + sm_f, flash_f)
    attn_b = np.where(eager, qk_b + av_b + sm_b, flash_b)

    # feed-forward (dense)
    down = m.ffn_width / (2 if m.gated else 1)
    fc1_f, fc1_b = gemm_time(tok, m.ffn_width / t, h, gemm_peak, hw, elem_bytes=a)
    fc2_f, fc2_b = gemm_time(tok, h, down / t, gemm_peak, hw, elem_bytes=a)
    ffn_f, ffn_b = fc1_f + fc2_f, fc1_b + fc2_b

    # memory-bound work, bytes per token: norms (2), residual adds (2), dropout after the
    # attention and the MLP (when the model has it) on the replicated tokens; the activation
    # function and rotary on the TP-split widths. The counts are values moved by unfused
    # kernels (but for the dropouts, fused with the adds after them: `BDA_MASK_BYTES`), each
    # input read once and each output written once (our count, not a fit):
    # forward 10h = two norms (read, write: 2h each) + two residual adds (read two, write
    # one: 3h each); backward 12h = two norm backwards and two residual backwards, 3h each
    # (read the gradient and the saved input, write the gradient). Activation function per
    # value of the FC2 input: gated (SwiGLU) reads gate and up and writes one (3), backward
    # reads the gradient, gate and up and writes two gradients (5); ungated (GeLU) 2 and 3.
    # Rotary: read and write Q and K (2 x their widths).
    def elementwise(width: float, down_w: float) -> tuple[Arr, Arr]:
        act_f = (3.0 if m.gated else 2.0) * down_w
        act_b = (5.0 if m.gated else 3.0) * down_w
        rope = 0.0 if m.learned_positions else qkv.rope
        dropout = drop * 2 * h * a / 2  # two dropouts; their byte counts are for 2-byte values
        f = a * (rep * 10 * h + tok / t * (act_f + rope)) + rep * drop * 2 * h * BDA_MASK_BYTES
        b = a * (rep * 12 * h + tok / t * (act_b + rope)) + rep * dropout * DROPOUT_BYTES_BWD
        return _mem(f, hw), _mem(b, hw)

    el_f, el_b = elementwise(m.ffn_width, down)

    def fp8_casts(copies: float | Arr, width: float, down_w: float,
                  mlp: float = 1.0) -> tuple[Arr, Arr]:
        """FP8 cast traffic of one layer: GEMM inputs (forward), output gradients (backward);
        h-wide ones cover the whole sequence (after the SP all-gather), the others 1/t;
        `mlp` 0 leaves out the h-wide ones of an MLP the layer does not have."""
        fwd = (qkv.in_tokens * h + tok * (mlp * h + m.q_width / t + qkv.cast_in)
               + copies * tok * down_w / t)
        bwd = tok * ((1 + mlp) * h + qkv.out_grad) + copies * tok * width / t
        on = p.fp8 > 0
        return (np.where(on, _mem(FP8_CAST_BYTES * fwd, hw), 0.0),
                np.where(on, _mem(FP8_CAST_BYTES * bwd, hw), 0.0))

    c8_f, c8_b = fp8_casts(1.0, m.ffn_width, down)
    dense_f = proj_f + attn_f + ffn_f + el_f + c8_f
    dense_b = proj_b + attn_b + ffn_b + el_b + c8_b
    dense_gemm = proj_f + proj_b + ffn_f + ffn_b
    dense_col = qkv.col_bwd + fc1_b

    if m.moe_layers:
        e_down = m.expert_width / (2 if m.gated else 1)
        local = m.experts / p.ep
        rows = np.maximum(tok / t * m.top_k * p.ep / m.experts, 1.0)
        x1_f, x1_b = gemm_time(rows, m.expert_width, h, gemm_peak, hw, batch=local,
                               elem_bytes=a)
        x2_f, x2_b = gemm_time(rows, h, e_down, gemm_peak, hw, batch=local, elem_bytes=a)
        sh_f, sh_b = gemm_time(tok, m.shared * m.expert_width / t, h, gemm_peak, hw,
                               elem_bytes=a)
        sh2_f, sh2_b = gemm_time(tok, h, m.shared * e_down / t, gemm_peak, hw,
                                 elem_bytes=a)
        # the router is a plain linear outside FP8 (Megatron-Core ``TopKRouter.gating``)
        r_f, r_b = gemm_time(tok / t, m.experts, h, vec_peak, hw, elem_bytes=a)
        perm = _mem(moe_permute_bytes(tok / t, m.top_k, h, local, a), hw)
        mel_f, mel_b = elementwise((m.top_k + m.shared) * m.expert_width,
                                   (m.top_k + m.shared) * e_down)
        moe_ffn_f = x1_f + x2_f + np.where(m.shared > 0, sh_f + sh2_f, 0.0) + r_f
        moe_ffn_b = x1_b + x2_b + np.where(m.shared > 0, sh_b + sh2_b, 0.0) + r_b
        # FP8 casts: attention and shared experts as dense; each routed copy's expert input
        # (h) and FC2 input forward, its FC2 output gradient (h) and FC1 output gradient
        # backward (Transformer Engine's GroupedLinear casts each expert's rows)
        s8_f, s8_b = fp8_casts(m.shared, m.expert_width, e_down,
                               1.0 if m.shared > 0 else 0.0)
        routed = tok / t * m.top_k
        m8_f = s8_f + np.where(p.fp8 > 0, _mem(FP8_CAST_BYTES * routed * (h + e_down), hw),
                               0.0)
        m8_b = s8_b + np.where(p.fp8 > 0,
                               _mem(FP8_CAST_BYTES * routed * (h + m.expert_width), hw), 0.0)
        moe_f = proj_f + attn_f + moe_ffn_f + mel_f + perm + m8_f
        moe_b = proj_b + attn_b + moe_ffn_b + mel_b + perm + m8_b
        moe_gemm = proj_f + proj_b + moe_ffn_f + moe_ffn_b
        # the routed experts are whole on each rank (no TP collective around them)
        moe_col = qkv.col_bwd + np.where(m.shared > 0, sh_b, 0.0)
        # the shared expert's down projection ends the layer; the routed experts' outputs are
        # saved by the probability-weighted sum (the router's gradient reads them)
        moe_last = np.where(m.shared > 0, sh2_f, 0.0)
    else:
        moe_f = moe_b = moe_gemm = moe_col = moe_last = np.zeros_like(dense_f)

    wd, wm = m.dense_layers / m.layers, m.moe_layers / m.layers
    overhead = e.layer_overhead_s
    # the fixed per-layer overhead split 1:2 between forward and backward, as their FLOPs
    # are (backward = two GEMMs per forward GEMM; Narayanan et al. 2021 s.3.2); an
    # assumption: the overhead is fitted as one figure (`Efficiency.layer_overhead_s`)
    layer_f = wd * dense_f + wm * moe_f + overhead / 3
    layer_b = wd * dense_b + wm * moe_b + 2 * overhead / 3
    layer_gemm = wd * dense_gemm + wm * moe_gemm
    col_bwd = wd * dense_col + wm * moe_col
    layer_attn = attn_f + attn_b
    # full: the whole layer forward again, less its last GEMM where recomputation stops once
    # the backward's inputs exist (`stops_early`); selective: the attention core's forward
    full = layer_f - stops_early(p, m) * (wd * fc2_f + wm * moe_last)
    recompute = p.rc_share * np.select([p.recompute == FULL, p.recompute == SELECTIVE],
                                       [full, attn_f], 0.0)

    # output layer and loss; embedding lookup and its gradient
    # the output layer runs in BF16 even in FP8 training: Megatron-Core's ``output_layer``
    # is a plain ``tensor_parallel.ColumnParallelLinear`` outside the transformer block's
    # ``fp8_autocast``, and torchtitan's float8 conversion skips it (``module_filter_fn``:
    # ``fqn != "output"``)
    lg_f, lg_b = gemm_time(tok, m.vocab / t, h, vec_peak, hw, elem_bytes=a)
    logits = tok * m.vocab / t
    # + the final norm: read and write h (2) forward; read gradient and input, write (3) back
    out_f = lg_f + _mem(logits * CE_BYTES_FWD + a * 2 * rep * h, hw)
    out_b = lg_b + _mem(logits * CE_BYTES_BWD + a * 3 * rep * h, hw)
    embed = _mem(tok * h * (a + 4.0 + 4.0), hw)  # gather; fp32 scatter-add of its gradient
    return ComputeTimes(layer_fwd=layer_f, layer_bwd=layer_b, layer_recompute=recompute,
                        layer_gemm=layer_gemm, layer_attn=layer_attn, col_bwd=col_bwd,
                        out_fwd=out_f, out_bwd=out_b, embed=embed)
