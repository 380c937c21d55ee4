"""The numbers the estimate needs, pulled once out of (cluster, model, job).

`HwContext` and `ModelContext` are flat records of floats so that the core formulas never
parse or look anything up: the planner evaluates millions of plans against one context.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from ultracluster.cluster.model import Cluster, Site
from ultracluster.errors import ConfigError
from ultracluster.hardware.sources import Flag
from ultracluster.simulate.calibration import Efficiency, efficiency_for
from ultracluster.units import Precision
from ultracluster.workload.spec import MLASpec, TransformerSpec

# Llama 3 paper s.3.3.4 (the three figures below)
LLAMA3_INTERRUPTIONS = 419
LLAMA3_DAYS = 54
LLAMA3_GPUS = 16_384
FAILURES_PER_CHIP_HOUR = LLAMA3_INTERRUPTIONS / (LLAMA3_DAYS * 24 * LLAMA3_GPUS)
"""Llama 3 paper s.3.3.4: 419 unexpected interruptions in 54 days on 16,384 H100s."""
STORAGE_BYTES_PER_S_PER_CHIP = 2e12 / LLAMA3_GPUS
"""Llama 3 paper s.3.3.1: Tectonic sustains 2 TB/s for the 16K-GPU job; scaled per chip."""
RESTART_S = 600.0
"""Time to detect a failure, reschedule and reload (assumption: 10 minutes; the Llama 3 paper
reports most interruptions handled automatically but gives no restart time)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class HwContext:
    """Hardware figures of the chips a plan runs on (the weakest site, for a mixed cluster)."""

    chip_name: str
    chip_display: str
    peak_fp32: float
    peak_bf16: float
    peak_fp8: float
    hbm_bytes: float
    hbm_bw: float
    up_bw: float
    """Scale-up bandwidth per chip, one direction, before the topology factor and efficiency."""
    up_lat: float
    torus_dims: tuple[int, ...]
    pod_chips: float
    site_chips: float
    """Chips per site (the smallest site used)."""
    num_sites: int
    fabric_bw: float
    """Scale-out bandwidth per chip (after oversubscription), one direction."""
    fabric_lat: float
    inter_bw: float
    """Bandwidth of the slowest inter-site link (0 when one site)."""
    inter_lat: float
    eff: Efficiency
    gemm_fraction: float
    """Benchmarked large-GEMM fraction of the BF16 peak (catalogue)."""
    gemm_fraction_fp8: float
    """The same of the FP8 peak (the BF16 fraction where the chip has no FP8)."""
    attention_fraction: float
    """Benchmarked fused-attention fraction of the BF16 peak (catalogue)."""
    attention_curve: tuple[tuple[float, float, float], ...] = ()
    """The same by sequence length, forward and backward (`Chip.attention_curve`)."""
    attention_curve_cudnn: tuple[tuple[float, float, float], ...] = ()
    """cuDNN's fused attention by sequence length (`Chip.attention_curve_cudnn`)."""
    compute_units: float
    """Units a GEMM's tiles spread over (SMs, NeuronCores, ...)."""
    gemm_tile: tuple[float, float]
    """Output tile of one unit (rows, columns)."""
    overlap_slowdown: float
    """Extra compute per second of communication hidden behind it (collective kernels take
    ``collective_units`` of the chip's compute units)."""
    fp8_measured: bool
    """The chip's achievable FP8 GEMM rate comes from a published benchmark (not estimated)."""
    tdp_w: float
    idle_w: float
    overhead_w_per_chip: float
    pue: float
    usd_per_kwh: float
    usd_per_chip_hour: float | None
    failures_per_chip_hour: float = FAILURES_PER_CHIP_HOUR
    storage_bw_per_chip: float = STORAGE_BYTES_PER_S_PER_CHIP
    restart_s: float = RESTART_S
    ranks_per_chip: float = 1.0
    """Framework ranks one chip hosts (`Chip.ranks_per_chip`): a TP group of t chips is
    t x this many ranks."""
    nccl_arch: str = ""
    """GPU generation whose collectives run NCCL's algorithm choice (`simulate/nccl.py`):
    "ampere", "hopper", "blackwell"; "" keeps the ring model (non-NVIDIA chips)."""


def hw_context(
    cluster: Cluster,
    *,
    price_per_chip_hour: float | None = None,
    efficiency: Efficiency | None = None,
) -> HwContext:
    """Figures for a plan on `cluster`; a mixed cluster is modelled at its weakest site."""
    weakest: Site = min(cluster.sites, key=lambda s: s.system.chip.peak_flops_bf16)
    sys = weakest.system
    chip = sys.chip
    link = cluster.slowest_link()
    price = price_per_chip_hour if price_per_chip_hour is not None else sys.price_per_chip_hour_usd
    if price is not None and not (math.isfinite(price) and price >= 0):
        raise ConfigError(f"price per chip-hour: {price} must be >= 0")
    return HwContext(
        chip_name=chip.name, chip_display=chip.display_name,
        peak_fp32=chip.peak_flops_fp32, peak_bf16=chip.peak_flops_bf16, peak_fp8=chip.peak_flops(Precision.FP8),
        hbm_bytes=chip.hbm_bytes, hbm_bw=chip.hbm_bytes_per_s,
        up_bw=sys.scale_up_bytes_per_s / 2, up_lat=sys.scale_up_latency_s,
        torus_dims=sys.torus_dims if sys.topology == "torus" else (),
        pod_chips=float(sys.num_chips),
        site_chips=float(min(s.num_chips for s in cluster.sites)),
        num_sites=cluster.num_sites,
        fabric_bw=min(s.fabric_bytes_per_s_per_chip for s in cluster.sites),
        fabric_lat=max(s.fabric_latency_s for s in cluster.sites),
        inter_bw=link.bandwidth_bytes_per_s if link else 0.0,
        inter_lat=link.latency_s if link else 0.0,
        eff=efficiency or replace(efficiency_for(chip), **dict(weakest.efficiency)),
        gemm_fraction=chip.gemm_fraction_bf16,
        gemm_fraction_fp8=(chip.gemm_fraction_fp8 if chip.gemm_fraction_fp8 is not None
                           else chip.gemm_fraction_bf16),
        attention_fraction=chip.attention_fraction, attention_curve=chip.attention_curve,
        attention_curve_cudnn=chip.attention_curve_cudnn,
        compute_units=float(chip.compute_units),
        gemm_tile=(float(chip.gemm_tile[0]), float(chip.gemm_tile[1])),
        overlap_slowdown=chip.collective_units / (chip.compute_units - chip.collective_units),
        fp8_measured=(chip.gemm_fraction_fp8 is not None
                      and chip.sources.get("gemm_fraction_fp8") is not None
                      and chip.sources["gemm_fraction_fp8"].flag == Flag.MEASURED),
        tdp_w=chip.tdp_w, idle_w=chip.idle_w,
        overhead_w_per_chip=sys.overhead_power_w / sys.num_chips,
        pue=max(s.pue for s in cluster.sites),
        usd_per_kwh=max(s.electricity_usd_per_kwh for s in cluster.sites),
        usd_per_chip_hour=price,
        ranks_per_chip=float(chip.ranks_per_chip),
        nccl_arch=chip.family.removeprefix("nvidia-") if chip.family.startswith("nvidia-") else "",
    )


@dataclass(frozen=True, kw_only=True, slots=True)
class ModelContext:
    """Per-layer counts of one model at one sequence length."""

    name: str
    seq_len: float
    layers: float
    hidden: float
    num_heads: float
    vocab: float
    q_width: float
    """heads x d_head (MLA: heads x value width)."""
    kv_width: float
    """KV heads x d_head (what context parallelism passes around)."""
    kv_heads: float
    """KV heads (MLA: the attention heads, whose K and V are projected per head)."""
    attn_weights: float
    """Attention matmul weights of one layer."""
    attn_core_fwd_per_token: float
    """QK^T + AV forward FLOPs per token per layer (causal)."""
    ffn_weights: float
    """Dense FFN weights of one layer."""
    ffn_width: float
    """Dense FFN inner width (gated counts both projections)."""
    dense_layers: float
    moe_layers: float
    experts: float
    top_k: float
    shared: float
    expert_weights: float
    """Weights of one expert."""
    expert_width: float
    router_weights: float
    embed_params: float
    """Input embedding + learned positions (first stage)."""
    output_params: float
    """Output projection (last stage; 0 when tied, as the first stage holds it)."""
    norm_params_per_layer: float
    params: float
    active_params: float
    model_flops_per_token: float
    """6 x active matmul weights + causal attention: the MFU numerator."""
    gated: bool
    dropout: bool
    """The model applies dropout (memory and time of the masks)."""
    learned_positions: bool
    """Learned position embeddings (no rotary work)."""
    mla_kv_rank: float = 0.0
    """Multi-head latent attention's key/value compression rank (0: not MLA; then the
    projections are one QKV GEMM from the hidden state)."""
    mla_q_rank: float = 0.0
    """Its query compression rank (0: the query is projected from the hidden state)."""
    mla_rope: float = 0.0
    """Its rotary width per head (the keys' is shared by every head)."""
    mla_q_head: float = 0.0
    """Query (and key) width per head: no-rotary + rotary."""
    mla_kv_head: float = 0.0
    """Width the key/value up-projection writes per head: key without rotary + value."""


def model_context(m: TransformerSpec, *, seq_len: int) -> ModelContext:
    """The model's numbers the formulas need at `seq_len`: parameters per layer kind,
    FLOPs per token (the MFU numerator), and the shapes that set matmul sizes.
    """
    gate = 3 if m.gated_ffn else 2  # FFN weight matrices: gate, up, down (gated) or fc1, fc2
    norm = m.norm_params()
    attn = m.attention_params() - (2 * m.d_head if m.qk_norm else 0)
    if m.mla is not None:
        q_width = m.num_heads * m.mla.v_head_dim
        kv_width = m.num_heads * (m.mla.qk_nope_head_dim + m.mla.qk_rope_head_dim
                                  + m.mla.v_head_dim) / 2
    else:
        q_width = m.num_heads * m.d_head
        kv_width = m.num_kv_heads * m.d_head
    moe = m.moe
    return ModelContext(
        name=m.name, seq_len=float(seq_len), layers=float(m.num_layers), hidden=float(m.hidden),
        num_heads=float(m.num_heads), vocab=float(m.vocab), q_width=float(q_width), kv_width=float(kv_width),
        kv_heads=float(m.num_heads if m.mla is not None else m.num_kv_heads),
        attn_weights=float(attn),
        attn_core_fwd_per_token=m.attention_flops_per_token_fwd(seq_len) / m.num_layers,
        ffn_weights=float(m.ffn_params(m.ffn_hidden)), ffn_width=float(gate - 1) * m.ffn_hidden,
        dense_layers=float(m.num_dense_layers), moe_layers=float(m.num_moe_layers),
        experts=float(moe.num_experts if moe else 0), top_k=float(moe.top_k if moe else 0),
        shared=float(moe.num_shared_experts if moe else 0),
        expert_weights=float(m.ffn_params(moe.expert_ffn_hidden) if moe else 0),
        expert_width=float((gate - 1) * moe.expert_ffn_hidden if moe else 0),
        router_weights=float(m.hidden * moe.num_experts if moe else 0),
        embed_params=float(m.vocab * m.hidden + m.learned_positions * m.hidden),
        output_params=0.0 if m.tied_embeddings else float(m.vocab * m.hidden),
        norm_params_per_layer=float(norm), params=float(m.params),
        active_params=float(m.active_params),
        model_flops_per_token=m.flops_per_token(seq_len), gated=m.gated_ffn,
        dropout=m.dropout, learned_positions=m.learned_positions > 0,
        **(_mla_fields(m.mla) if m.mla is not None else {}),
    )


def _mla_fields(a: MLASpec) -> dict[str, float]:
    return dict(mla_kv_rank=float(a.kv_lora_rank), mla_q_rank=float(a.q_lora_rank),
                mla_rope=float(a.qk_rope_head_dim),
                mla_q_head=float(a.qk_nope_head_dim + a.qk_rope_head_dim),
                mla_kv_head=float(a.qk_nope_head_dim + a.v_head_dim))
