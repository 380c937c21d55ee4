"""Checkpoints on torch.distributed.checkpoint: exact resume for every site sync (the
streaming exchange in flight included), a real SIGKILL, resharding 2x2 -> 2x1, falling back
from a corrupt checkpoint, retention, and one-line refusals."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")

from ultracluster.errors import ConfigError  # noqa: E402
from ultracluster.run.config import RunConfig  # noqa: E402
from ultracluster.run.launch import read_metrics, run, start, wait  # noqa: E402

# streaming with H = 4, F = 2 exchanges a fragment every 2 steps: the one started at step 4
# is still in flight when the step-4 checkpoint is taken
MODES: dict[str, dict[str, Any]] = {
    "ddp": {},
    "hierarchical": {},
    "diloco": dict(inner_steps=2),
    "streaming": dict(inner_steps=4, fragments=2),
}


SMALL = {"model_type": "llama", "hidden_size": 64, "intermediate_size": 128,
         "num_attention_heads": 4, "num_key_value_heads": 2, "num_hidden_layers": 2,
         "vocab_size": 256, "max_position_embeddings": 64, "tie_word_embeddings": False}


def _cfg(tmp: Path, name: str, **kw: Any) -> RunConfig:
    model = tmp / "small.json"  # 0.1M parameters: fast checkpoints
    if not model.exists():
        tmp.mkdir(parents=True, exist_ok=True)
        model.write_text(json.dumps(SMALL))
    base: dict[str, Any] = dict(model=str(model), sites=2, workers_per_site=1, steps=8, micro_batch=2,
                                seq_len=32, eval_batches=1, run_dir=str(tmp / name),
                                checkpoint_dir=str(tmp / "ckpt"), checkpoint_every=4,
                                max_restarts=0)
    return RunConfig(**(base | kw))


def _losses(summary: dict[str, Any]) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in read_metrics(Path(summary["run_dir"]))}


@pytest.mark.parametrize("mode", list(MODES))
def test_resume_repeats_every_later_step_exactly(tmp_path: Path, mode: str) -> None:
    full = run(_cfg(tmp_path, "full", site_sync=mode, **MODES[mode]))
    shutil.rmtree(tmp_path / "ckpt" / "step-000008")  # resume from step 4
    resumed = run(_cfg(tmp_path, "resumed", site_sync=mode, resume=True, **MODES[mode]))
    ref, got = _losses(full), _losses(resumed)
    assert resumed["steps_this_run"] == 4 and sorted(got) == [5, 6, 7, 8]
    assert all(got[s] == ref[s] for s in got), (got, ref)
    assert resumed["eval_loss"] == full["eval_loss"]


def test_sigkill_restart_repeats_the_uninterrupted_losses(tmp_path: Path) -> None:
    """A worker killed for real; torchrun restarts the ranks from the last checkpoint, which
    holds a streaming exchange in flight; every step after the restart has the loss of the
    uninterrupted run, bit for bit."""
    kw: dict[str, Any] = dict(site_sync="streaming", inner_steps=10, fragments=2, steps=20,
                              checkpoint_every=5, max_restarts=2)
    ref = _losses(run(_cfg(tmp_path / "ref", "run", **kw)))
    proc, run_dir = start(_cfg(tmp_path / "killed", "run", **kw))
    killed = False
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        rows = read_metrics(run_dir)
        saved = (tmp_path / "killed" / "ckpt" / "step-000005" / "manifest.json").exists()
        if saved and rows and rows[-1]["step"] >= 7 and not killed:
            kids = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True,
                                  text=True).stdout.split()
            assert kids, "no worker processes found"
            os.kill(int(kids[-1]), signal.SIGKILL)
            killed = True
        time.sleep(0.1)
    summary = wait(proc, run_dir)
    assert killed and summary["restarts"] >= 1
    rows = read_metrics(run_dir)
    after = [r for r in rows if r["restarts"] >= 1]
    assert after and (after[0]["step"] - 1) in (5, 10, 15) and after[-1]["step"] == 20
    assert all(r["loss"] == ref[r["step"]] for r in after), (after, ref)


def test_checkpoint_reshards_from_two_workers_per_site_to_one(tmp_path: Path) -> None:
    """One copy per site, read back by however many workers the site now has."""
    two = run(_cfg(tmp_path, "2x2", site_sync="diloco", inner_steps=2, workers_per_site=2,
                   steps=4))
    files = sorted(p.name for p in (tmp_path / "ckpt" / "step-000004").iterdir())
    one = run(_cfg(tmp_path, "2x1", site_sync="diloco", inner_steps=2, workers_per_site=1,
                   steps=4, resume=True))
    assert one["steps_this_run"] == 0
    assert one["eval_loss"] == pytest.approx(two["eval_loss"], rel=1e-6)
    more = run(_cfg(tmp_path, "2x1-more", site_sync="diloco", inner_steps=2,
                    workers_per_site=1, steps=6, resume=True))
    assert more["steps_this_run"] == 2 and sorted(_losses(more)) == [5, 6]
    # one file per rank that wrote, and no more bytes than two sites' copies
    assert files.count(".metadata") == 1 and "manifest.json" in files


def test_corrupt_newest_falls_back_to_newest_intact(tmp_path: Path) -> None:
    run(_cfg(tmp_path, "a", site_sync="diloco", inner_steps=2, keep_checkpoints=2))
    root = tmp_path / "ckpt"
    assert sorted(p.name for p in root.iterdir()) == ["step-000004", "step-000008"]
    blob = next((root / "step-000008").glob("*.distcp"))
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    blob.write_bytes(bytes(data))
    (root / "step-000099.tmp").mkdir()  # left by a killed save
    s = run(_cfg(tmp_path, "b", site_sync="diloco", inner_steps=2, resume=True))
    assert s["steps_this_run"] == 4
    log = (tmp_path / "b" / "train.log").read_text()
    refused = [ln for ln in log.splitlines() if "refused" in ln]
    assert refused and "step-000008 refused" in refused[0] and "SHA-256" in refused[0]
    assert not (root / "step-000099.tmp").exists()
    assert len([p for p in root.iterdir()]) <= 3  # --keep-checkpoints 3


def test_another_runs_checkpoint_is_refused(tmp_path: Path) -> None:
    run(_cfg(tmp_path, "a", steps=4))
    with pytest.raises(ConfigError, match="does not match this run.*sites: checkpoint 2 vs run 1"):
        run(_cfg(tmp_path, "b", steps=6, sites=1, resume=True))
    manifest = json.loads((tmp_path / "ckpt" / "step-000004" / "manifest.json").read_text())
    assert manifest["step"] == 4 and manifest["format"] == "ultracluster-dcp-1"
