"""Two machines for real: one job as two torchrun nodes in two Linux network namespaces joined
by a veth pair capped with `tc tbf`, each namespace a site with its own address."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("torch")


def _sh(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True, timeout=30)


@pytest.fixture
def two_hosts() -> Iterator[tuple[str, str]]:
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    tag = f"uc{os.getpid() % 100000}"  # interface and namespace names (<= 15 chars), no port
    a, b = f"{tag}a", f"{tag}b"
    try:
        _sh("ip", "netns", "add", a)
        _sh("ip", "netns", "add", b)
    except (subprocess.CalledProcessError, FileNotFoundError, OSError) as e:
        subprocess.run(["ip", "netns", "del", a], capture_output=True)
        pytest.skip(f"cannot create network namespaces here ({e})")
    try:
        _sh("ip", "link", "add", f"{tag}x", "type", "veth", "peer", "name", f"{tag}y")
        _sh("ip", "link", "set", f"{tag}x", "netns", a)
        _sh("ip", "link", "set", f"{tag}y", "netns", b)
        for ns, dev, addr in ((a, f"{tag}x", "10.77.0.1/24"), (b, f"{tag}y", "10.77.0.2/24")):
            _sh("ip", "netns", "exec", ns, "ip", "addr", "add", addr, "dev", dev)
            _sh("ip", "netns", "exec", ns, "ip", "link", "set", dev, "up")
            _sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
            _sh("ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", dev, "root", "tbf",
                "rate", "1gbit", "burst", "256kb", "latency", "50ms")
        yield a, b
    finally:
        for ns in (a, b):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def test_one_job_on_two_namespaced_hosts(two_hosts: tuple[str, str], tmp_path: Path) -> None:
    a, b = two_hosts
    procs = []
    for rank, (ns, dev) in enumerate(((a, f"{a[:-1]}x"), (b, f"{a[:-1]}y"))):
        cmd = ["ip", "netns", "exec", ns, sys.executable, "-m", "torch.distributed.run",
               "--nnodes", "2", "--node-rank", str(rank), "--nproc-per-node", "1",
               # a fixed port is safe here: the namespace is new, its ports all free
               "--master-addr", "10.77.0.1", "--master-port", "29561",
               "-m", "ultracluster.run.train", "--sites", "2", "--workers-per-site", "1",
               "--steps", "10", "--site-sync", "diloco", "--inner-steps", "5",
               "--run-dir", str(tmp_path / f"node{rank}")]
        env = dict(os.environ, GLOO_SOCKET_IFNAME=dev, OMP_NUM_THREADS="1")
        procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT))
    outs = [p.communicate(timeout=240)[0].decode(errors="replace") for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs[0][-2000:] + outs[1][-2000:]
    summary = json.loads((tmp_path / "node0" / "summary.json").read_text())
    assert summary["steps"] == 10 and summary["bytes"]["inter_site"] > 0
