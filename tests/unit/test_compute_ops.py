"""Compute from operations: tile/wave quantisation, sourced GEMM rates, FP8 only where measured."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from ultracluster.cluster.presets import get_preset
from ultracluster.hardware import get_chip
from ultracluster.hardware.sources import Flag
from ultracluster.plan.dims import ParallelDims
from ultracluster.plan.plan import Plan
from ultracluster.simulate.compute import attention_fractions, gemm_efficiency, gemm_time
from ultracluster.simulate.context import hw_context
from ultracluster.simulate.estimate import estimate
from ultracluster.workload.job import TrainingJob
from ultracluster.workload.presets import get_model_preset

H100 = hw_context(get_preset("meta-24k-h100"))


def test_wave_quantisation() -> None:
    # 128 x 256 tiles on 132 SMs: 132 tiles fill one wave, 133 need two
    one_wave = float(gemm_efficiency(128 * 12, 256 * 11, 1e9, H100))
    two_waves = float(gemm_efficiency(128 * 12 + 1, 256 * 11, 1e9, H100))
    assert one_wave == pytest.approx(1.0, rel=1e-6)
    assert two_waves < 0.55
    # padding: a 64-row GEMM uses half of each 128-row tile
    assert float(gemm_efficiency(64, 256 * 132, 1e9, H100)) == pytest.approx(0.5, rel=1e-6)
    # no charge for a short K loop beyond its bytes (accelerators' half dimension is 0) ...
    assert float(gemm_efficiency(128 * 12, 256 * 11, 128, H100)) == pytest.approx(1.0)
    # ... which the roofline charges: at k 64 the GEMM moves its operands slower than it
    # multiplies them, and its time is their bytes over HBM
    m, n, k = 8192, 8192, 64
    fwd, _ = gemm_time(m, n, k, np.asarray(H100.peak_bf16), H100)
    io = 2.0 * (m * k + k * n + m * n) / (H100.hbm_bw * H100.eff.memory_eff)
    assert float(fwd) == pytest.approx(io)
    assert io > 2.0 * m * n * k / H100.peak_bf16
    # where a half dimension is set (`ultracluster calibrate` on a CPU), short K is slower
    half = replace(H100, eff=replace(H100.eff, matmul_half_dim=384.0))
    assert float(gemm_efficiency(128 * 12, 256 * 11, 128, half)) < 0.5


def test_gemm_rates_are_sourced_and_fp8_estimates_flagged() -> None:
    h100, trn2 = get_chip("h100-sxm"), get_chip("trn2")
    assert h100.sources["gemm_fraction_bf16"].flag == Flag.MEASURED
    assert h100.gemm_fraction_bf16 == pytest.approx(794.5 / 989.4)
    assert trn2.sources["gemm_fraction_fp8"].flag == Flag.ESTIMATE
    # no FP8 benchmark: FP8 assumed no faster than BF16's achievable rate
    assert trn2.peak_flops_fp8 * trn2.gemm_fraction_fp8 == pytest.approx(  # type: ignore[operator]
        trn2.peak_flops_bf16 * trn2.gemm_fraction_bf16)


def test_flash_attention_rate_follows_the_published_curve_by_length() -> None:
    # FlashAttention-3 paper's FlashAttention-2 figures on H100: forward (causal) 298 TF at 2K,
    # 335 at 16K; backward 291 and 322; flat beyond the measured lengths
    fwd, bwd = attention_fractions(np.array([2048.0, 16384.0, 262144.0, 256.0]), H100)
    assert fwd * 989.4 == pytest.approx([298, 335, 335, 191], rel=1e-6)
    assert bwd * 989.4 == pytest.approx([291, 322, 322, 214], rel=1e-6)
    # between points: interpolated in log2(length), so 3K lies between 2K's and 4K's
    mid = float(attention_fractions(3072.0, H100)[0][()])
    assert 298 / 989.4 < mid < 319 / 989.4
    # a chip without a curve: its one fraction at every length
    a100 = hw_context(get_preset("meta-24k-h100"))
    a100 = replace(a100, attention_curve=(), attention_fraction=0.6)
    assert attention_fractions(512.0, a100)[0] == pytest.approx(0.6)
    assert attention_fractions(65536.0, a100)[1] == pytest.approx(0.6)


def test_tpu_gemm_rate_is_xla_measured_on_v5e_and_estimated_elsewhere() -> None:
    v5e = get_chip("tpu-v5e")
    assert v5e.sources["gemm_fraction_bf16"].flag == Flag.MEASURED
    assert v5e.gemm_fraction_bf16 * v5e.peak_flops_bf16 == pytest.approx(181.8e12, rel=0.01)
    for name in ("tpu-v4", "tpu-v5p", "tpu-v6e", "tpu-ironwood"):
        chip = get_chip(name)
        assert chip.sources["gemm_fraction_bf16"].flag == Flag.ESTIMATE
        assert chip.gemm_fraction_bf16 == v5e.gemm_fraction_bf16


def test_fp8_on_trainium2_is_not_a_free_doubling() -> None:
    c, m = get_preset("rainier"), get_model_preset("llama3-405b")
    job = TrainingJob(tokens=1e12, seq_len=8192, global_batch_seqs=2048)

    def mfu(precision: str) -> float:
        plan = Plan(dims=ParallelDims(tp=8, dp=2048), global_batch=2048, seq_len=8192, zero=3,
                    precision=precision, tp_comm_overlap=True)  # type: ignore[arg-type]
        return estimate(cluster=c, model=m, job=job, plan=plan).mfu

    assert mfu("fp8") <= mfu("bf16") * 1.01
    assert mfu("bf16") < 0.8


def _llama8b_step(attention: str) -> tuple[float, float, float]:
    """Llama 3 8B, TP 8 x DP 8 on H100, 8K tokens, no recomputation: step seconds,
    activation bytes and total bytes per chip."""
    c, m = get_preset("meta-24k-h100"), get_model_preset("llama3-8b")
    job = TrainingJob(tokens=1e12, seq_len=8192, global_batch_seqs=64)
    plan = Plan(dims=ParallelDims(tp=8, dp=8), global_batch=64, seq_len=8192,
                recompute="none", attention=attention)  # type: ignore[arg-type]
    e = estimate(cluster=c, model=m, job=job, plan=plan, check_memory=False)
    return e.step_time_s, e.memory_breakdown["activations"], e.memory_per_chip_bytes


def test_eager_attention_costs_time_and_memory() -> None:
    (t_f, a_f, _), (t_e, a_e, _) = _llama8b_step("flash"), _llama8b_step("eager")
    assert t_e > t_f and a_e > 2 * a_f
    assert np.isfinite(t_e)


def test_cudnn_attention_uses_its_own_published_curve_where_the_chip_has_one() -> None:
    # FlashAttention-3 paper, same panels: cuDNN forward (causal) 484 TF at 2K, 539 at 16K;
    # backward 465 and 516
    fwd, bwd = attention_fractions(np.array([2048.0, 16384.0]), H100, np.array([1.0, 1.0]))
    assert fwd * 989.4 == pytest.approx([484, 539], rel=1e-6)
    assert bwd * 989.4 == pytest.approx([465, 516], rel=1e-6)
    assert get_chip("h100-sxm").sources["attention_curve_cudnn"].flag == Flag.MEASURED
    # mixed per plan: 0 keeps FlashAttention-2's curve
    mixed = attention_fractions(np.array([2048.0, 2048.0]), H100, np.array([0.0, 1.0]))[0]
    assert mixed * 989.4 == pytest.approx([298, 484], rel=1e-6)
    # a chip with no cuDNN curve (A100: Transformer Engine runs FlashAttention there) times
    # cudnn as flash
    no_curve = replace(H100, attention_curve_cudnn=())
    assert attention_fractions(2048.0, no_curve, 1.0)[0] * 989.4 == pytest.approx(298)

    (t_f, _, mem_f), (t_c, _, mem_c) = _llama8b_step("flash"), _llama8b_step("cudnn")
    assert t_c < t_f and mem_c == mem_f


def test_fp8_casts_cost_memory_traffic() -> None:
    """FP8 GEMMs need their inputs and output gradients cast (Transformer Engine's
    cast_transpose): the casts alone take 4 bytes per element through HBM."""
    from ultracluster.simulate.compute import FP8_CAST_BYTES, compute_times
    from ultracluster.simulate.context import model_context
    from ultracluster.simulate.planarrays import from_plan

    m = get_preset("meta-24k-h100")
    model = get_model_preset("llama3-8b")
    mc = model_context(model, seq_len=8192)

    def layer(precision: str, t: int) -> tuple[float, float]:
        plan = Plan(dims=ParallelDims(tp=t, dp=64 // t), global_batch=64, seq_len=8192,
                    precision=precision)  # type: ignore[arg-type]
        c = compute_times(from_plan(plan), hw_context(m), mc)
        return float(c.layer_fwd + c.layer_bwd), float(c.layer_gemm)

    for t in (1, 8):
        (total8, gemm8), (total16, gemm16) = layer("fp8", t), layer("bf16", t)
        h, q, kv, ffn = mc.hidden, mc.q_width, mc.kv_width, mc.ffn_width
        down = ffn / 2  # gated
        elements = 8192 * (4 * h + (q + down + q + 2 * kv + ffn) / t)
        cast_s = FP8_CAST_BYTES * elements / (H100.hbm_bw * H100.eff.memory_eff)
        # the same non-GEMM work in both precisions, plus the casts in FP8
        assert (total8 - gemm8) - (total16 - gemm16) == pytest.approx(cast_s, rel=1e-6)


def test_kv_heads_replicate_when_tp_ranks_outnumber_them() -> None:
    """Llama 3 8B (8 KV heads of 128) at TP 16 Trainium1 chips is TP 32 NeuronCores: each
    core computes one whole KV head (NxD's kv_size_multiplier 4), not a quarter of one."""
    from ultracluster.simulate.compute import kv_width_per_chip
    from ultracluster.simulate.context import model_context

    m = model_context(get_model_preset("llama3-8b"), seq_len=8192)
    trn1 = replace(hw_context(get_preset("rainier")),
                   ranks_per_chip=float(get_chip("trn1").ranks_per_chip))
    assert get_chip("trn1").ranks_per_chip == 2 and get_chip("h100-sxm").ranks_per_chip == 1
    # enough heads: the plain split, on any chip
    assert float(kv_width_per_chip(4, m, trn1)) == pytest.approx(2 * 128)
    assert float(kv_width_per_chip(8, m, H100)) == pytest.approx(128)
    # more ranks than heads: a whole head per rank (2 per Trainium1 chip, 1 per GPU)
    assert float(kv_width_per_chip(16, m, trn1)) == pytest.approx(2 * 128)
    assert float(kv_width_per_chip(16, m, H100)) == pytest.approx(128)


def test_trainium_gemm_rate_is_the_nki_tutorial_measured_on_trainium1() -> None:
    trn1 = get_chip("trn1")
    assert trn1.sources["gemm_fraction_bf16"].flag == Flag.MEASURED
    # 2 x 4096 x 8192 x 8192 in 6.97 ms on one of Trainium1's two NeuronCores (95 TF each)
    per_core = 2 * 4096 * 8192 * 8192 / 6.97e-3
    assert trn1.gemm_fraction_bf16 == pytest.approx(per_core / (trn1.peak_flops_bf16 / 2),
                                                    abs=0.005)
    for name in ("trn2", "trn3"):
        chip = get_chip(name)
        assert chip.sources["gemm_fraction_bf16"].flag == Flag.ESTIMATE
        assert chip.gemm_fraction_bf16 == trn1.gemm_fraction_bf16


def test_latent_attention_projections_cost_their_low_rank_weights() -> None:
    """DeepSeek-V3's MLA: the four projection GEMMs (two duplicated down-projections, two
    column-parallel up-projections) do 2 FLOPs per weight per token, not a full QKV GEMM
    from the hidden state (which would be 5x the work)."""
    from ultracluster.simulate.compute import _mla_projections, gemm_time
    from ultracluster.simulate.context import model_context

    spec = get_model_preset("deepseek-v3")
    assert spec.mla is not None
    mc = model_context(spec, seq_len=4096)
    a, tok = spec.mla, 4096.0
    weights = (spec.hidden * (a.q_lora_rank + a.kv_lora_rank + a.qk_rope_head_dim)
               + a.q_lora_rank * spec.num_heads * (a.qk_nope_head_dim + a.qk_rope_head_dim)
               + a.kv_lora_rank * spec.num_heads * (a.qk_nope_head_dim + a.v_head_dim))
    # at an unreachable HBM bandwidth and full efficiency the time is FLOPs / peak
    hw = replace(H100, hbm_bw=1e30, compute_units=1, gemm_tile=(1, 1),
                 eff=replace(H100.eff, matmul_half_dim=0.0))
    peak = np.asarray(1e15)
    two = np.asarray(2.0)
    down = spec.hidden * (a.q_lora_rank + a.kv_lora_rank + a.qk_rope_head_dim)
    for t, sp in ((1.0, False), (8.0, False), (8.0, True)):
        rep = tok / t if sp else tok  # sequence parallelism: the duplicated GEMMs' tokens
        pr = _mla_projections(np.asarray(tok), np.asarray(rep), np.asarray(t), mc, hw, peak,
                              two)
        # down duplicated on the rank's tokens, up split over t on the whole sequence
        flops = 2 * (rep * down + tok * (weights - down) / t)
        assert float(pr.fwd) * 1e15 == pytest.approx(flops, rel=1e-9)
        assert float(pr.bwd) == pytest.approx(2 * float(pr.fwd), rel=1e-9)
        # only the column-parallel up-projections' backward hides the TP collectives
        up = 2 * 2 * tok * (weights - down) / t
        assert float(pr.col_bwd) * 1e15 == pytest.approx(up, rel=1e-9)
        assert float(pr.in_tokens) == rep
    # no query rank: the query comes column-parallel from the hidden state
    no_q = model_context(replace(spec, mla=replace(a, q_lora_rank=0)), seq_len=4096)
    pr = _mla_projections(np.asarray(tok), np.asarray(tok), np.asarray(1.0), no_q, hw, peak, two)
    q_full = spec.hidden * spec.num_heads * (a.qk_nope_head_dim + a.qk_rope_head_dim)
    kv = (spec.hidden * (a.kv_lora_rank + a.qk_rope_head_dim)
          + a.kv_lora_rank * spec.num_heads * (a.qk_nope_head_dim + a.v_head_dim))
    assert float(pr.fwd) * 1e15 == pytest.approx(2 * tok * (q_full + kv), rel=1e-9)
    full_f, _ = gemm_time(tok, mc.q_width + 2 * mc.kv_width, spec.hidden, peak, hw)
    assert float(full_f) * 1e15 > 4 * 2 * tok * weights


def test_latent_attention_gathers_its_latents_not_the_hidden_state() -> None:
    """With sequence parallelism and asynchronous backward collectives a layer moves 5 A (A =
    an all-reduce of the hidden state); MLA's attention-input all-gather, its gradient's
    reduce-scatter and its re-gather carry the latents instead: 3.5 + 1.5 r, r = 2112 / 7168."""
    from ultracluster.simulate.context import model_context

    spec = get_model_preset("deepseek-v3")
    assert spec.mla is not None
    c = get_preset("meta-24k-h100")
    plan = Plan(dims=ParallelDims(tp=8, dp=8, sequence_parallel=True), global_batch=64,
                seq_len=4096, zero=1, tp_async_backward=True)
    job = TrainingJob(tokens=1e12, seq_len=4096, global_batch_seqs=64)
    mc = model_context(spec, seq_len=4096)

    def tp_total(m: object) -> float:
        e = estimate(cluster=c, model=spec, job=job, plan=plan, mc=m,  # type: ignore[arg-type]
                     check_memory=False)
        return e.extra["tp_total_s"]

    hidden_wide = replace(mc, mla_q_rank=0.0)  # the query from the hidden state: r = 1
    a = spec.mla
    r = (a.q_lora_rank + a.kv_lora_rank + a.qk_rope_head_dim) / spec.hidden
    assert tp_total(mc) / tp_total(hidden_wide) == pytest.approx((3.5 + 1.5 * r) / 5, rel=1e-9)


def test_full_recompute_that_stops_early_skips_the_last_gemm_and_its_collective() -> None:
    """Non-reentrant checkpointing (torchtitan) and jax.checkpoint (MaxText) rerun a layer's
    forward only as far as the backward needs: not the MLP's down projection, whose output
    nothing saves, nor the TP reduce-scatter after it. Megatron's CheckpointFunction reruns it
    all. A model with dropout after the MLP saves its mask, so it reruns the projection too."""
    from ultracluster.simulate.compute import compute_times, gemm_time
    from ultracluster.simulate.context import model_context
    from ultracluster.simulate.core import tp_term
    from ultracluster.simulate.network import Net
    from ultracluster.simulate.planarrays import from_plan

    c = get_preset("meta-24k-h100")
    hw = hw_context(c)
    mc = model_context(get_model_preset("llama3-8b"), seq_len=8192)

    def plan(early: bool, recompute: str = "full") -> Plan:
        return Plan(dims=ParallelDims(tp=8, dp=8, sequence_parallel=True), global_batch=64,
                    seq_len=8192, recompute=recompute,  # type: ignore[arg-type]
                    recompute_early_stop=early)

    whole, early = (compute_times(from_plan(plan(e)), hw, mc) for e in (False, True))
    assert float(whole.layer_recompute) == pytest.approx(float(whole.layer_fwd))
    fc2_f, _ = gemm_time(8192, mc.hidden, mc.ffn_width / 2 / 8, hw.eff.matmul_eff_max
                         * hw.peak_bf16 * hw.gemm_fraction, hw, elem_bytes=2.0)
    assert float(whole.layer_recompute - early.layer_recompute) == pytest.approx(float(fc2_f))
    # the forward's collectives are rerun but for the last reduce-scatter (half an A)
    net = Net(hw=hw, world=64, chips_per_site=64)
    one = float(net.all_reduce(1.0, 8.0, 8192 * mc.hidden * 2.0))
    tp_whole = float(tp_term(from_plan(plan(False)), net, mc, whole).total)
    tp_early = float(tp_term(from_plan(plan(True)), net, mc, early).total)
    assert tp_whole - tp_early == pytest.approx(0.5 * one)
    # no effect without full recomputation, nor with dropout after the MLP
    sel = [compute_times(from_plan(plan(e, "selective")), hw, mc) for e in (False, True)]
    assert float(sel[0].layer_recompute) == float(sel[1].layer_recompute)
    drop = replace(mc, dropout=True)
    assert (float(compute_times(from_plan(plan(True)), hw, drop).layer_recompute)
            == pytest.approx(float(compute_times(from_plan(plan(False)), hw, drop)
                                   .layer_recompute)))
    # a plan file carries the setting
    from ultracluster.plan.plan import plan_from_dict, plan_to_dict
    assert plan_from_dict(plan_to_dict(plan(True))).recompute_early_stop
