"""`benchmarks/gpu_runtime.py`, the GPU check, kept working on a CPU-only machine: its dry run
goes through the same launch, summary and MFU code, and an unknown card is refused."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_runtime.py"


def _run(*args: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), "--dry-run", "--run-dir",
                           str(tmp / "gpu"), *args], capture_output=True, text=True,
                          timeout=600, cwd=tmp)


def test_dry_run_names_the_card_and_its_peak(tmp_path: Path) -> None:
    r = _run("--json", "--card", "NVIDIA H100 80GB HBM3", tmp=tmp_path)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["card_matched"] == "H100 SXM 80GB" and d["peak_flops_bf16"] == 989.4e12
    assert "h100-sxm" in d["peak_source"]  # the peak it used, with its source
    assert d["steps"] == 3 and d["median_step_s"] > 0 and d["mfu_bf16"] >= 0


def test_unknown_card_is_refused_in_one_line(tmp_path: Path) -> None:
    r = _run("--card", "Imaginary GPU 9000", tmp=tmp_path)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Imaginary GPU 9000" in lines[0] and "--peak-tflops" in lines[0]


def test_time_limit_stops_the_job_in_one_line(tmp_path: Path) -> None:
    """A run past --time-limit is stopped (the torchrun agent and its ranks) and reported in
    one line naming the limit and the step it reached."""
    r = _run("--card", "NVIDIA H100 80GB HBM3", "--steps", "100000", "--time-limit", "1",
             tmp=tmp_path)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "--time-limit 1 s" in lines[0], r.stderr
