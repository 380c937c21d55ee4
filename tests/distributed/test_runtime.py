"""The runtime on CPU over gloo: DiLoCo's outer step, byte counters, compression, compile.
(Checkpoints and resume: test_resume.py.)"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
import torch.distributed as dist  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402

from ultracluster.errors import ConfigError  # noqa: E402
from ultracluster.run import compress  # noqa: E402
from ultracluster.run.comms import build_layout  # noqa: E402
from ultracluster.run.config import RunConfig  # noqa: E402
from ultracluster.run.launch import read_metrics, run, start, wait  # noqa: E402
from ultracluster.run.diloco import DiLoCoSync  # noqa: E402


@pytest.mark.parametrize("bits", [32, 16, 8, 4])
def test_compression_round_trip_within_stated_error(bits: int) -> None:
    g = torch.Generator().manual_seed(bits)
    x = torch.randn(1000, generator=g) * torch.logspace(-3, 1, 1000)
    parts = compress.encode(x, bits)
    y = compress.decode(parts, bits, x.numel())
    assert y.dtype == torch.float32 and y.shape == x.shape
    assert bool(((y - x).abs() <= compress.max_error(x, bits) + 1e-12).all())
    expected = {32: 4000, 16: 2000, 8: 1000 + 16 * 4, 4: 500 + 16 * 4}[bits]
    assert compress.nbytes(parts) == expected


@pytest.mark.parametrize("bits", [32, 16, 8, 4])
def test_compression_in_place_path_gives_the_same_values(bits: int) -> None:
    """The exchange's buffers (an encoder's scratch, a decoder accumulating in place) change
    no value: a run keeps its losses bit for bit."""
    g = torch.Generator().manual_seed(bits)
    x = torch.randn(1001, generator=g) * torch.logspace(-3, 1, 1001)
    scratch = torch.full((compress.padded(x.numel()) + 64,), float("nan"))  # stale contents
    fresh, held = compress.encode(x, bits), compress.encode(x, bits, scratch)
    assert all(torch.equal(a, b) for a, b in zip(fresh, held))
    out = torch.full_like(x, 0.25)
    compress.decode_add(held, bits, out, alpha=0.5, scratch=scratch)
    assert torch.equal(out, 0.25 + 0.5 * compress.decode(fresh, bits, x.numel()))


def _outer_step_worker(rank: int, store: str, out: Any) -> None:
    # a file rendezvous: no port to pick (a port freed by the OS may be taken again)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    try:
        topo = build_layout(sites=2, workers=1, wan_gbps=None, wan_latency_ms=0)
        model = torch.nn.Linear(3, 2, bias=False)
        with torch.no_grad():
            model.weight.fill_(1.0)
        cfg = RunConfig(site_sync="diloco", inner_steps=1, sync_bits=32, outer_lr=0.7,
                        outer_momentum=0.9, sync_warmup_steps=0)
        sync = DiLoCoSync(model, topo, cfg)
        with torch.no_grad():  # each site drifted differently
            model.weight.fill_(0.5 if rank == 0 else 0.9)
        sync.after_step(1)
        out[rank] = (model.weight.detach().clone(), topo.counters.inter_site)
    finally:
        dist.destroy_process_group()


def test_diloco_outer_step_matches_hand_reference(tmp_path: Path) -> None:
    with mp.Manager() as m:
        out = m.dict()
        mp.spawn(_outer_step_worker, args=(str(tmp_path / "store"), out), nprocs=2, join=True)
        w0, sent0 = out[0]
        w1, _ = out[1]
    # pseudo-gradients 1 - 0.5 = 0.5 and 1 - 0.9 = 0.1, mean 0.3; first Nesterov step:
    # buf = g, update = g + momentum * buf = 1.9 g; theta = 1 - 0.7 * 1.9 * 0.3
    want = 1.0 - 0.7 * 1.9 * 0.3
    assert torch.allclose(w0, torch.full((2, 3), want)) and torch.equal(w0, w1)
    assert sent0 == 6 * 4  # (sites - 1) x 6 fp32 values on the wire


def _cfg(tmp: Path, **kw: Any) -> RunConfig:
    base: dict[str, Any] = dict(sites=2, workers_per_site=1, steps=10, micro_batch=4,
                                seq_len=64, inner_steps=5, eval_batches=2,
                                run_dir=str(tmp / "run"), checkpoint_dir=str(tmp / "ckpt"),
                                checkpoint_every=5, max_restarts=2)
    base |= kw
    return RunConfig(**base)


def test_compiled_blocks_train_like_eager(tmp_path: Path) -> None:
    """`--compile` (torch.compile per block, for GPUs) changes speed, not the numbers."""
    kw: dict[str, Any] = dict(sites=1, steps=3, micro_batch=2, seq_len=32, eval_batches=1)
    eager = run(RunConfig(run_dir=str(tmp_path / "eager"), **kw))
    compiled = run(RunConfig(run_dir=str(tmp_path / "compiled"), compile=True, **kw))
    assert compiled["final_train_loss"] == pytest.approx(eager["final_train_loss"], rel=1e-4)
    assert compiled["eval_loss"] == pytest.approx(eager["eval_loss"], rel=1e-4)
