"""Byte counters per tier: a flat ring over 2 sites x 2 workers puts only its crossing hops'
bytes on the inter-site tier, and DDP's start-up broadcast is counted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from ultracluster.run.comms import (ProcessGroupLayout, all_reduce_bytes,  # noqa: E402
                                    broadcast_bytes)
from ultracluster.run.config import RunConfig  # noqa: E402
from ultracluster.run.launch import run  # noqa: E402
from ultracluster.workload import load_model  # noqa: E402

SMALL = {"model_type": "llama", "hidden_size": 64, "intermediate_size": 128,
         "num_attention_heads": 4, "num_key_value_heads": 2, "num_hidden_layers": 2,
         "vocab_size": 256, "max_position_embeddings": 64, "tie_word_embeddings": False}


def test_only_the_hop_from_a_sites_last_worker_crosses() -> None:
    def crosses(rank: int, sites: int, workers: int) -> bool:
        return ProcessGroupLayout(rank=rank, world=sites * workers, sites=sites,
                                  workers=workers, site_group=None, cross_group=None,
                                  wan_bytes_per_s=None, wan_latency_s=0.0).flat_hop_crosses
    assert [crosses(r, 2, 2) for r in range(4)] == [False, True, False, True]
    assert [crosses(r, 3, 1) for r in range(3)] == [True, True, True]
    assert [crosses(r, 1, 4) for r in range(4)] == [False] * 4


def test_emulated_link_serialises_transfers_and_adds_ring_latencies() -> None:
    lay = ProcessGroupLayout(rank=0, world=2, sites=2, workers=1, site_group=None,
                             cross_group=None, wan_bytes_per_s=1e6, wan_latency_s=0.01)
    a = lay.schedule_wan(1e6, 2, started=100.0)  # 1 s on the link, then 2 latencies
    b = lay.schedule_wan(5e5, 2, started=100.2)  # waits for the link: starts at 101
    assert a == pytest.approx(101.02) and b == pytest.approx(101.52)


def test_flat_ddp_counts_crossing_hops_only(tmp_path: Path) -> None:
    model = tmp_path / "small.json"
    model.write_text(json.dumps(SMALL))
    steps, seq = 2, 32
    s = run(RunConfig(model=str(model), sites=2, workers_per_site=2, site_sync="ddp",
                      steps=steps, micro_batch=2, seq_len=seq, eval_batches=1,
                      run_dir=str(tmp_path / "run"), max_restarts=0))
    spec = load_model(str(model))
    grads = 4 * spec.params  # fp32 gradients, every parameter trainable
    buffers = 2 * seq * spec.d_head // 2 * 4  # the rotary cos/sin tables
    per_rank = (steps * all_reduce_bytes(4, grads) + broadcast_bytes(4, grads + buffers)
                + all_reduce_bytes(4, 4))  # the eval loss's all-reduce
    # ranks 1 and 3 send across sites; ranks 0 and 2 to their site's next worker
    assert s["bytes"]["inter_site"] == pytest.approx(2 * per_rank, abs=8)
    assert s["bytes"]["intra_site"] == pytest.approx(2 * per_rank, abs=8)
