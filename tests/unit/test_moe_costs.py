"""The MoE layer's costs: the alltoall dispatcher's bytes and tiers, permutation traffic, the
FP8 casts of every routed copy, and the per-head width a measurements row implies."""

from __future__ import annotations

import numpy as np
import pytest

from ultracluster.cluster.presets import get_preset
from ultracluster.plan.dims import ParallelDims
from ultracluster.plan.plan import Plan
from ultracluster.simulate.compute import (
    FP8_CAST_BYTES, PERMUTE_PASSES, SORT_PASSES, compute_times, moe_permute_bytes)
from ultracluster.simulate.context import hw_context, model_context
from ultracluster.simulate.core import PROB_BYTES, ep_term
from ultracluster.simulate.measurements import (
    default_measurements, read_rows, row_head_dim, row_model)
from ultracluster.simulate.network import Net
from ultracluster.simulate.planarrays import from_plan
from ultracluster.workload.spec import MoESpec, TransformerSpec

CLUSTER = get_preset("meta-24k-h100")
HW = hw_context(CLUSTER)
# Qwen3-30B-A3B's shape (Hugging Face config.json), 128 experts top-8 of width 768
QWEN3_MOE = TransformerSpec(name="qwen3-30b-a3b", num_layers=48, hidden=2048, num_heads=32,
                            num_kv_heads=4, head_dim=128, ffn_hidden=768, vocab=151936,
                            moe=MoESpec(num_experts=128, top_k=8, expert_ffn_hidden=768))


def _plan(ep: int, dp: int, precision: str = "bf16", tp: int = 1) -> Plan:
    return Plan(dims=ParallelDims(dp=dp, ep=ep, tp=tp, sequence_parallel=tp > 1),
                micro_batch=2, global_batch=2 * dp, seq_len=4096,
                precision=precision)  # type: ignore[arg-type]


def _ep_total(ep: int, dp: int, tp: int = 1) -> float:
    p = from_plan(_plan(ep, dp, tp=tp))
    world = np.asarray(float(dp * tp))
    net = Net(hw=HW, world=world, chips_per_site=world)
    mc = model_context(QWEN3_MOE, seq_len=4096)
    c = compute_times(p, HW, mc)
    return float(ep_term(p, net, mc, c).total)


def test_dispatcher_sends_bf16_copies_and_probs_inside_a_node() -> None:
    """EP 8 inside an 8-chip node: four all-to-alls (dispatch, combine, their gradients) of
    every routed copy in BF16, the dispatch and its gradient with the copy's fp32 probability,
    7/8 of it to peers over NVLink."""
    per_a2a = 2 * 4096 * 8 * (2048 * 2 + PROB_BYTES / 2)
    bw = HW.up_bw * HW.eff.scale_up_eff
    expected = 4 * (7 / 8 * per_a2a / bw + 7 * HW.up_lat)
    assert _ep_total(8, 8) == pytest.approx(expected, rel=1e-9)


def test_dispatcher_across_nodes_is_set_by_the_fabric_share() -> None:
    """EP 16 over two nodes: 8/16 of the bytes cross the fabric while 7/16 use NVLink at the
    same time; the slower tier sets the time."""
    per_a2a = 2 * 4096 * 8 * (2048 * 2 + PROB_BYTES / 2)
    fabric = HW.fabric_bw * HW.eff.scale_out_eff
    lat = 7 * HW.up_lat + 8 * HW.fabric_lat
    expected = 4 * (8 / 16 * per_a2a / fabric + lat)
    assert _ep_total(16, 16) == pytest.approx(expected, rel=1e-9)
    assert 8 / 16 * per_a2a / fabric > 7 / 16 * per_a2a / (HW.up_bw * HW.eff.scale_up_eff)


def test_dispatcher_group_inside_a_wide_tensor_parallel_group() -> None:
    """EP 16 carved from TP 16 spans two 8-chip nodes although it is all 'inner' ranks: half
    its bytes cross the fabric, as with EP 16 over DP; each chip sends 1/t of the tokens."""
    per_a2a = 2 * 4096 / 16 * 8 * (2048 * 2 + PROB_BYTES / 2)
    fabric = HW.fabric_bw * HW.eff.scale_out_eff
    expected = 4 * (8 / 16 * per_a2a / fabric + 7 * HW.up_lat + 8 * HW.fabric_lat)
    assert _ep_total(16, 1, tp=16) == pytest.approx(expected, rel=1e-9)


def test_permutation_sorts_by_local_expert_only_with_several() -> None:
    one = float(moe_permute_bytes(100.0, 8.0, 64.0, 1.0, 2.0))
    many = float(moe_permute_bytes(100.0, 8.0, 64.0, 16.0, 2.0))
    assert one == 2.0 * 100 * 64 * (8 * PERMUTE_PASSES + 1)
    assert many - one == 2.0 * 100 * 64 * 8 * SORT_PASSES


def test_fp8_casts_every_routed_copy() -> None:
    """With FP8 experts, each of the top-k copies is cast on its way into FC1 and FC2 and its
    output gradients on the way back: the MoE layer's FP8 - BF16 non-GEMM difference is the
    attention's casts plus k copies' (h + FC2 input) forward and (h + FC1 width) backward."""
    mc = model_context(QWEN3_MOE, seq_len=4096)

    def layer(precision: str) -> tuple[float, float]:
        c = compute_times(from_plan(_plan(8, 8, precision)), HW, mc)
        return float(c.layer_fwd + c.layer_bwd), float(c.layer_gemm)

    (t8, g8), (t16, g16) = layer("fp8"), layer("bf16")
    tok, h, k = 2 * 4096, mc.hidden, mc.top_k
    attention = tok * (h + mc.q_width) + tok * (h + mc.q_width + 2 * mc.kv_width)
    experts = tok * k * (h + mc.expert_width / 2) + tok * k * (h + mc.expert_width)
    cast_s = FP8_CAST_BYTES * (attention + experts) / (HW.hbm_bw * HW.eff.memory_eff)
    assert (t8 - g8) - (t16 - g16) == pytest.approx(cast_s, rel=1e-6)


def test_head_dim_from_column_notes_or_known_architecture() -> None:
    base = {"id": "x", "model": "Some model", "notes": ""}
    assert row_head_dim(base) == 0
    assert row_head_dim({**base, "notes": "GQA; head_dim 64, SwiGLU"}) == 64
    assert row_head_dim({**base, "model": "Qwen3-30B-A3B (MoE)"}) == 128
    assert row_head_dim({**base, "model": "Qwen3-Next-80B-A3B"}) == 256
    assert row_head_dim({**base, "model": "gpt-oss-120b"}) == 64
    # the column wins over the notes and the name
    assert row_head_dim({**base, "model": "Qwen3-8B", "head_dim": "96",
                         "notes": "head_dim 64"}) == 96


def test_qwen3_row_attends_with_heads_of_128() -> None:
    rows = {r["id"]: r for r in read_rows(default_measurements())}
    spec = row_model(rows["bridge-11"])
    assert spec.d_head == 128
    mc = model_context(spec, seq_len=4096)
    assert mc.q_width == 32 * 128 and mc.kv_width == 4 * 128
    # a model without a stated head_dim keeps hidden / heads
    assert row_model(rows["mcore24-01"]).head_dim == 0
