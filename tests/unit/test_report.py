"""Figures are written (non-empty PNGs of the right size) and the HTML report renders."""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from ultracluster.cli import main

pytest.importorskip("matplotlib")


def png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    w, h = struct.unpack(">II", head[16:24])
    return int(w), int(h)


def test_simulate_and_validate_figures(tmp_path: Path) -> None:
    step, val = tmp_path / "step.png", tmp_path / "validation.png"
    assert main(["simulate", "--cluster", "meta-24k-h100", "--model", "llama3-70b", "--tp", "8",
                 "--pp", "4", "--dp", "64", "--global-batch", "512", "--figure", str(step),
                 "--json"]) == 0
    assert main(["validate", "--figure", str(val), "--json"]) == 0
    for f in (step, val):
        w, h = png_size(f)
        assert w > 500 and h > 300 and f.stat().st_size > 10_000


def test_plan_pareto_figure(tmp_path: Path) -> None:
    fig = tmp_path / "pareto.png"
    assert main(["plan", "--cluster", "meta-24k-h100", "--model", "llama3-8b", "--tokens", "1T",
                 "--figure", str(fig), "--json"]) == 0
    w, h = png_size(fig)
    assert w > 500 and h > 300


def test_report_page_renders_with_its_images(tmp_path: Path) -> None:
    out = tmp_path / "report"
    assert main(["report", "--cluster", "rainier-multistate", "--model", "llama3-8b",
                 "--tokens", "2T", "--out", str(out), "--json"]) == 0
    page = out / "index.html"
    text = page.read_text()
    assert text.count("data:image/png;base64,") == 3 and "Site sync" in text
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("headless Chromium is not installed (Debian package 'chromium')")
    dom = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
         "--virtual-time-budget=5000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120).stdout
    assert 'data-images="loaded:3"' in dom
