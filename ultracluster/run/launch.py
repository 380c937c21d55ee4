"""`ultracluster train` on one machine: start the ranks with torchrun, show progress, collect
the summary. Imports no torch itself: the ranks do."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ultracluster.errors import ConfigError
from ultracluster.run.config import RunConfig, save_config

Progress = Callable[[dict[str, Any]], None]


def torchrun_command(cfg: RunConfig, config_path: Path) -> list[str]:
    """torch's own launcher, elastic rendezvous on loopback, restarts for failed workers."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc-per-node={cfg.world}", f"--max-restarts={cfg.max_restarts}",
            "--monitor-interval=0.5",
            "-m", "ultracluster.run.train", "--config", str(config_path)]


def start(cfg: RunConfig) -> tuple[subprocess.Popen[bytes], Path]:
    run_dir = Path(cfg.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if not cfg.resume:
        for name in ("metrics.jsonl", "summary.json"):
            (run_dir / name).unlink(missing_ok=True)
    else:
        (run_dir / "summary.json").unlink(missing_ok=True)
    config_path = run_dir / "config.json"
    save_config(cfg, config_path)
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")
    log = (run_dir / "train.log").open("wb")
    proc = subprocess.Popen(torchrun_command(cfg, config_path), stdout=log,
                            stderr=subprocess.STDOUT, env=env, start_new_session=True)
    return proc, run_dir


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line being written
    return rows


def wait(proc: subprocess.Popen[bytes], run_dir: Path, *, progress: Progress | None = None,
         poll_s: float = 0.5) -> dict[str, Any]:
    seen = 0
    while proc.poll() is None:
        time.sleep(poll_s)
        rows = read_metrics(run_dir)
        if progress and len(rows) > seen:
            seen = len(rows)
            progress(rows[-1])
    if proc.returncode != 0:
        log = (run_dir / "train.log").read_text(errors="replace").splitlines()
        ours = [ln.split("ultracluster train: error: ", 1)[1] for ln in log
                if "ultracluster train: error: " in ln]
        if ours:  # a rank refused its input (a checkpoint, a model): say what, in one line
            raise ConfigError(ours[-1])
        raise ConfigError(f"training failed (exit {proc.returncode}); see {run_dir}/train.log")
    summary: dict[str, Any] = json.loads((run_dir / "summary.json").read_text())
    summary["run_dir"] = str(run_dir)
    return summary


def run(cfg: RunConfig, *, progress: Progress | None = None) -> dict[str, Any]:
    proc, run_dir = start(cfg)
    try:
        return wait(proc, run_dir, progress=progress)
    except KeyboardInterrupt:
        proc.terminate()
        raise
