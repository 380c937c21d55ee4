"""The runtime on CPU over gloo: DiLoCo's outer step, byte counters, compression,
checkpoint resume, a real SIGKILL, corrupt checkpoints."""

from __future__ import annotations

import json
import os
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
from ultracluster.run.comms import build_topology  # noqa: E402
from ultracluster.run.config import RunConfig  # noqa: E402
from ultracluster.run.launch import read_metrics, run, start, wait  # noqa: E402
from ultracluster.run.sync import DiLoCoSync  # noqa: E402


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


def _outer_step_worker(rank: int, port: int, out: Any) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        topo = build_topology(sites=2, workers=1, wan_gbps=None, wan_latency_ms=0)
        model = torch.nn.Linear(3, 2, bias=False)
        with torch.no_grad():
            model.weight.fill_(1.0)
        cfg = RunConfig(site_sync="diloco", inner_steps=1, sync_bits=32, outer_lr=0.7,
                        outer_momentum=0.9)
        sync = DiLoCoSync(model, topo, cfg)
        with torch.no_grad():  # each site drifted differently
            model.weight.fill_(0.5 if rank == 0 else 0.9)
        sync.after_step(1)
        out[rank] = (model.weight.detach().clone(), topo.counters.inter_site)
    finally:
        dist.destroy_process_group()


def test_diloco_outer_step_matches_hand_reference() -> None:
    port = 29600 + os.getpid() % 300
    with mp.Manager() as m:
        out = m.dict()
        mp.spawn(_outer_step_worker, args=(port, out), nprocs=2, join=True)
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


def test_resume_reproduces_the_next_step(tmp_path: Path) -> None:
    full = run(_cfg(tmp_path / "a"))
    ref = {r["step"]: r["loss"] for r in read_metrics(Path(full["run_dir"]))}
    part = _cfg(tmp_path / "b", steps=5)
    run(part)
    resumed = run(_cfg(tmp_path / "b", resume=True))
    rows = {r["step"]: r["loss"] for r in read_metrics(Path(resumed["run_dir"]))}
    assert resumed["steps_this_run"] == 5
    assert rows[6] == pytest.approx(ref[6], rel=1e-6)
    assert resumed["bytes"]["inter_site"] > 0


def test_sigkill_of_a_worker_restarts_from_checkpoint(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, steps=40, checkpoint_every=5, site_sync="diloco", inner_steps=10)
    proc, run_dir = start(cfg)
    killed = False
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        rows = read_metrics(run_dir)
        if rows and rows[-1]["step"] >= 12 and not killed:
            kids = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True,
                                  text=True).stdout.split()
            assert kids, "no worker processes found"
            os.kill(int(kids[-1]), signal.SIGKILL)
            killed = True
        time.sleep(0.2)
    summary = wait(proc, run_dir)
    assert killed
    assert summary["restarts"] >= 1 and summary["steps"] == 40
    steps = [r["step"] for r in read_metrics(run_dir)]
    assert steps[-1] == 40 and min(s for s in steps[steps.index(max(steps[:20])):]) >= 10


def test_corrupt_or_mismatched_checkpoint_is_refused(tmp_path: Path) -> None:
    run(_cfg(tmp_path, steps=5))
    folder = tmp_path / "ckpt" / "step-000005"
    with pytest.raises(ConfigError, match="does not match this run.*sites"):
        run(_cfg(tmp_path, steps=6, sites=1, resume=True, max_restarts=0))
    f = folder / "rank-00001.pt"
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0xFF
    f.write_bytes(bytes(data))
    with pytest.raises(ConfigError, match="corrupt"):
        run(_cfg(tmp_path, steps=6, resume=True, max_restarts=0))
    log = (tmp_path / "run" / "train.log").read_text()
    assert "SHA-256" in log and json.loads((folder / "manifest.json").read_text())["step"] == 5


def test_compiled_blocks_train_like_eager(tmp_path: Path) -> None:
    """`--compile` (torch.compile per block, for GPUs) changes speed, not the numbers."""
    kw: dict[str, Any] = dict(sites=1, steps=3, micro_batch=2, seq_len=32, eval_batches=1)
    eager = run(RunConfig(run_dir=str(tmp_path / "eager"), **kw))
    compiled = run(RunConfig(run_dir=str(tmp_path / "compiled"), compile=True, **kw))
    assert compiled["final_train_loss"] == pytest.approx(eager["final_train_loss"], rel=1e-4)
    assert compiled["eval_loss"] == pytest.approx(eager["eval_loss"], rel=1e-4)
