"""JSON-ready dictionaries for the descriptive records: chips, systems, clusters, models."""

from __future__ import annotations

from typing import Any

from ultracluster.cluster.model import Cluster
from ultracluster.hardware.chip import Chip
from ultracluster.hardware.system import System
from ultracluster.plan.vocab import Recompute
from ultracluster.workload.spec import TransformerSpec

_CHIP_FIGURES = ("peak_flops_fp32", "peak_flops_bf16", "peak_flops_fp8", "hbm_bytes",
                 "hbm_bytes_per_s", "scale_up_bytes_per_s", "tdp_w", "idle_w",
                 "gemm_fraction_bf16", "gemm_fraction_fp8", "attention_fraction",
                 "compute_units", "ranks_per_chip")
_SYSTEM_FIGURES = ("num_chips", "num_nodes", "topology", "scale_up_bytes_per_s",
                   "scale_up_latency_s", "nic_bytes_per_s", "scale_out_latency_s",
                   "price_per_hour_usd", "overhead_power_w")


def chip_dict(c: Chip) -> dict[str, Any]:
    """A chip as JSON: names, peak figures and each figure's source."""
    out: dict[str, Any] = {"name": c.name, "display_name": c.display_name, "vendor": c.vendor}
    out |= {f: getattr(c, f) for f in _CHIP_FIGURES}
    out["gemm_tile"] = list(c.gemm_tile)
    out["attention_curve"] = [{"seq_len": n, "forward": f, "backward": b}
                              for n, f, b in c.attention_curve]
    out["attention_curve_cudnn"] = [{"seq_len": n, "forward": f, "backward": b}
                                    for n, f, b in c.attention_curve_cudnn]
    out["sources"] = {k: s.to_json() for k, s in c.sources.items()}
    return out


def system_dict(s: System) -> dict[str, Any]:
    """A system (node or pod) as JSON: size, topology, links, price, sources."""
    out: dict[str, Any] = {"name": s.name, "display_name": s.display_name, "chip": s.chip.name}
    out |= {f: getattr(s, f) for f in _SYSTEM_FIGURES}
    out["torus_dims"] = list(s.torus_dims)
    out["peak_flops_bf16"] = s.num_chips * s.chip.peak_flops_bf16
    out["sources"] = {k: v.to_json() for k, v in s.sources.items()}
    return out


def cluster_dict(c: Cluster) -> dict[str, Any]:
    """A cluster as JSON: sites, inter-site links, tiers and the assumptions behind them."""
    sites = [
        {"name": s.name, "location": s.location, "system": s.system.name,
         "chip": s.system.chip.name, "num_pods": s.num_pods, "num_chips": s.num_chips,
         "peak_flops_bf16": s.num_chips * s.system.chip.peak_flops_bf16,
         "fabric_bytes_per_s_per_chip": s.fabric_bytes_per_s_per_chip,
         "fabric_latency_s": s.fabric_latency_s, "oversubscription": s.oversubscription,
         "pue": s.pue, "electricity_usd_per_kwh": s.electricity_usd_per_kwh}
        for s in c.sites
    ]
    tiers = [{"tier": t.name, "where": t.where, "bandwidth_bytes_per_s": t.bandwidth_bytes_per_s,
              "latency_s": t.latency_s} for t in c.tiers()]
    links = [{"sites": [k.site_a, k.site_b], "distance_km": k.distance_km,
              "bandwidth_bytes_per_s": k.bandwidth_bytes_per_s, "latency_s": k.latency_s,
              "assumption": k.assumption} for k in c.links]
    return {
        "name": c.name, "description": c.description, "num_chips": c.num_chips,
        "num_sites": c.num_sites,
        "peak_flops_bf16": sum(s["peak_flops_bf16"] for s in sites),
        "sites": sites, "tiers": tiers, "links": links, "assumptions": list(c.assumptions),
    }


def model_dict(m: TransformerSpec, *, seq_len: int | None = None) -> dict[str, Any]:
    """A model as JSON: shape, parameters (total and active), FLOPs per token at
    `seq_len` and what recomputation adds.
    """
    s = seq_len or m.max_seq_len
    out: dict[str, Any] = {
        "name": m.name, "num_layers": m.num_layers, "hidden": m.hidden,
        "num_heads": m.num_heads, "num_kv_heads": m.num_kv_heads, "head_dim": m.d_head,
        "ffn_hidden": m.ffn_hidden, "gated_ffn": m.gated_ffn, "vocab": m.vocab,
        "tied_embeddings": m.tied_embeddings, "params": m.params,
        "active_params": m.active_params, "seq_len": s,
        "flops_per_token": m.flops_per_token(s),
        "recompute_flops_per_token": {
            mode: m.recompute_flops_per_token(s, mode)
            for mode in (Recompute.SELECTIVE, Recompute.FULL)
        },
    }
    if m.moe is not None:
        out["moe"] = {"num_experts": m.moe.num_experts, "top_k": m.moe.top_k,
                      "expert_ffn_hidden": m.moe.expert_ffn_hidden,
                      "num_shared_experts": m.moe.num_shared_experts,
                      "num_dense_layers": m.moe.num_dense_layers}
    if m.mla is not None:
        out["mla"] = {"q_lora_rank": m.mla.q_lora_rank, "kv_lora_rank": m.mla.kv_lora_rank}
    return out
