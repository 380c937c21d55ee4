"""Checkpoints with `--failure-domain site` (torchft on CPU over gloo): one site of the
committed quorum writes the state the sites share; `--resume` starts every site from it,
falls back from a corrupt newest checkpoint, and refuses another run's in one line."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("torchft")

from ultracluster.errors import ConfigError  # noqa: E402
from ultracluster.run.config import RunConfig  # noqa: E402
from ultracluster.run.launch import read_metrics, run  # noqa: E402


H = 2
SMALL = {"model_type": "llama", "hidden_size": 64, "intermediate_size": 128,
         "num_attention_heads": 4, "num_key_value_heads": 2, "num_hidden_layers": 2,
         "vocab_size": 256, "max_position_embeddings": 64, "tie_word_embeddings": False}
"""0.1M parameters (as test_resume.py's): fast checkpoints."""


def _cfg(tmp: Path, name: str, **kw: Any) -> RunConfig:
    model = tmp / "small.json"  # 0.1M parameters: fast checkpoints
    corpus = tmp / "corpus.txt"  # 400 kB of words: no walk of the standard library
    if not model.exists():
        tmp.mkdir(parents=True, exist_ok=True)
        model.write_text(json.dumps(SMALL))
        rng = random.Random(0)
        words = ["site", "quorum", "outer", "step", "weights", "momentum", "shard", "the"]
        corpus.write_text(" ".join(rng.choice(words) for _ in range(70_000)))
    # a long --sync-timeout: no site is ever dropped on a slow machine, so every outer step
    # has both sites and two runs are the same run
    base: dict[str, Any] = dict(model=str(model), sites=2, workers_per_site=1, steps=8,
                                micro_batch=2, seq_len=32, eval_batches=1, data=str(corpus),
                                site_sync="diloco", inner_steps=H, failure_domain="site",
                                sync_timeout=120.0, max_restarts=0, run_dir=str(tmp / name),
                                checkpoint_dir=str(tmp / "ckpt"), checkpoint_every=4)
    return RunConfig(**(base | kw))


def _losses(run_dir: Path, site: int) -> dict[int, float]:
    name = "metrics.jsonl" if site == 0 else f"metrics-site-{site}.jsonl"
    return {r["step"]: r["loss"] for r in read_metrics(run_dir, name)}


def test_resume_starts_every_site_from_the_shared_state(tmp_path: Path) -> None:
    full = run(_cfg(tmp_path, "full"))
    root = tmp_path / "ckpt"
    assert sorted(p.name for p in root.iterdir()) == ["step-000004", "step-000008"]
    files = sorted(p.name for p in (root / "step-000004").iterdir())
    # one copy, written by one site (site 0, the lowest-numbered of the quorum)
    assert files == [".metadata", "__0_0.distcp", "manifest.json"], files
    manifest = json.loads((root / "step-000004" / "manifest.json").read_text())
    assert manifest["step"] == 4 and manifest["identity"]["failure_domain"] == "site"
    shutil.rmtree(root / "step-000008")  # resume from step 4
    resumed = run(_cfg(tmp_path, "resumed", resume=True))
    assert resumed["steps_this_run"] == 4
    ref = [_losses(Path(full["run_dir"]), s) for s in (0, 1)]
    got = [_losses(Path(resumed["run_dir"]), s) for s in (0, 1)]
    assert sorted(got[0]) == sorted(got[1]) == [5, 6, 7, 8]
    # every site starts from the global weights and the data position of step 4: the first
    # step's loss is the uninterrupted run's on every site; the saving site also has its own
    # inner AdamW state, so its losses match until the next outer step
    assert got[1][5] == ref[1][5], (got, ref)
    assert all(got[0][s] == ref[0][s] for s in range(5, 5 + H)), (got, ref)


def test_corrupt_newest_falls_back_and_reshards_two_workers_per_site_to_one(
        tmp_path: Path) -> None:
    """Streaming (a fragment's exchange is applied one step after it starts, the last one
    after the last step): saved by a site of 2 workers, read by sites of 1 (the state does not
    depend on W); the newest checkpoint corrupt: every site warns in one line and resumes from
    step 4."""
    streaming: dict[str, Any] = dict(site_sync="streaming", inner_steps=4, fragments=2)
    run(_cfg(tmp_path, "a", workers_per_site=2, keep_checkpoints=2, **streaming))
    root = tmp_path / "ckpt"
    assert sorted(p.name for p in root.iterdir()) == ["step-000004", "step-000008"]
    blob = max((root / "step-000008").glob("*.distcp"), key=lambda p: p.stat().st_size)
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    blob.write_bytes(bytes(data))
    (root / "step-000099.site0.tmp").mkdir()  # left by a save of site 0 that was killed
    s = run(_cfg(tmp_path, "b", workers_per_site=1, resume=True, **streaming))
    assert s["steps_this_run"] == 4
    assert sorted(_losses(tmp_path / "b", 0)) == [5, 6, 7, 8]
    for log in ("train.log", "train-site-1.log"):
        refused = [ln for ln in (tmp_path / "b" / log).read_text().splitlines()
                   if "refused" in ln]
        assert len(refused) == 1 and "step-000008 refused" in refused[0], refused
        assert "SHA-256" in refused[0] and "trying an older one" in refused[0]
    assert not (root / "step-000099.site0.tmp").exists()


def test_another_runs_checkpoint_is_refused_in_one_line(tmp_path: Path) -> None:
    """A `job` checkpoint (every site's own state) is not a `site` one: the resume stops
    at once, one line naming the field, exit status 2."""
    run(_cfg(tmp_path, "job", failure_domain="job", sync_timeout=120.0, steps=4))
    cfg = _cfg(tmp_path, "site")
    cmd = [sys.executable, "-m", "ultracluster.cli", "train", "--model", cfg.model,
           "--data", str(cfg.data), "--sites", "2", "--workers-per-site", "1",
           "--site-sync", "diloco", "--inner-steps", str(H), "--failure-domain", "site",
           "--steps", "8", "--micro-batch", "2", "--seq-len", "32", "--max-restarts", "0",
           "--checkpoint-dir", str(cfg.checkpoint_dir), "--run-dir", cfg.run_dir,
           "--resume"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "does not match this run" in lines[0], p.stderr
    assert "failure_domain: checkpoint 'job' vs run 'site'" in lines[0]
    with pytest.raises(ConfigError, match="failure_domain: checkpoint 'job' vs run 'site'"):
        run(_cfg(tmp_path, "site-api", resume=True))
