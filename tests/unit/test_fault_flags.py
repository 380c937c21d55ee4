"""Failure-domain and fault-injection flags: one-line refusals, and the injector's order
(site 1, 2, 1, ..., never site 0) on real processes. No torch needed."""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from ultracluster.errors import ConfigError
from ultracluster.run.config import RunConfig, add_flags, config_from_args
from ultracluster.run.launch import Injector


def parse(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    add_flags(p)
    return p.parse_args(list(argv))


@pytest.mark.parametrize("argv, needle", [
    (["--failure-domain", "site", "--site-sync", "ddp"], "--failure-domain site needs"),
    (["--failure-domain", "site", "--sites", "1"], "--failure-domain site needs"),
    (["--failure-domain", "site", "--sync-warmup-steps", "2"], "applies to --failure-domain job"),
    (["--sync-timeout", "0"], "--sync-timeout: 0.0 must be in (0, 86400]"),
    (["--sync-timeout", "nan"], "--sync-timeout: nan must be in"),
    (["--straggler-site", "2"], "--straggler-site: 2 must be in [0, 1]"),
    (["--straggler-site", "1", "--straggler-slowdown", "0.5"], "must be in [1, 1000]"),
    (["--straggler-slowdown", "3"], "--straggler-slowdown needs --straggler-site"),
    (["--kill-site-every", "5", "--kill-site-mtbf", "5"], "exclude each other"),
    (["--kill-site-every", "-1"], "--kill-site-every: -1.0 must be in (0, 86400]"),
    (["--kill-site-mtbf", "inf"], "--kill-site-mtbf: inf must be in"),
    (["--kill-site-every", "5", "--sites", "1"], "needs --sites >= 2"),
    (["--max-restarts", "-1"], "--max-restarts: -1 must be >= 0"),
    (["--inner-steps-by-time"], "--inner-steps-by-time needs --failure-domain site"),
    (["--inner-steps-by-time", "--failure-domain", "site", "--site-sync", "streaming"],
     "--inner-steps-by-time needs --failure-domain site and --site-sync diloco"),
])
def test_bad_failure_flags_are_refused_in_one_line(argv: list[str], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle.replace("(", r"\(").replace("[", r"\[")) as e:
        config_from_args(parse(*argv))
    assert "\n" not in str(e.value)


class _Job:
    """The slice of launch.Job the injector uses, over real sleeping processes."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.site_failures = 0
        self.procs = {s: subprocess.Popen(["sleep", "60"]) for s in (0, 1, 2)}

    def worker_pids(self, site: int) -> list[int]:
        p = self.procs[site]
        return [p.pid] if p.poll() is None else []

    def respawn(self) -> None:
        for s, p in self.procs.items():
            if p.poll() is not None:
                self.procs[s] = subprocess.Popen(["sleep", "60"])


def test_injector_kills_sites_other_than_zero_in_turn(tmp_path: Path) -> None:
    job: Any = _Job(tmp_path)
    inj = Injector(RunConfig(sites=3, kill_site_every=0.05))
    try:
        inj.tick(job, started=True)  # schedules the first kill
        for _ in range(4):
            time.sleep(0.06)
            inj.tick(job, started=True)
            time.sleep(0.05)  # the killed process is reaped by poll()
            job.respawn()
        rows = [json.loads(x) for x in (tmp_path / "faults.jsonl").read_text().splitlines()]
        assert [r["site"] for r in rows] == [1, 2, 1, 2] and job.site_failures == 4
        assert job.procs[0].poll() is None  # site 0 is never killed
    finally:
        for p in job.procs.values():
            p.kill()
            p.wait()


def test_mtbf_gaps_are_exponential_and_seeded() -> None:
    a = Injector(RunConfig(sites=2, kill_site_mtbf=30.0, seed=3))
    b = Injector(RunConfig(sites=2, kill_site_mtbf=30.0, seed=3))
    gaps = [a._gap() for _ in range(4000)]
    assert gaps[:5] == [b._gap() for _ in range(5)]
    assert 27 < sum(gaps) / len(gaps) < 33 and min(gaps) >= 0


def test_paced_steps_fit_the_typical_sites_outer_step() -> None:
    pytest.importorskip("torch")
    from ultracluster.run.quorum import paced_steps

    # 3 sites, one 3x slower: the fast ones run H, the slow one a third of H
    assert paced_steps(20, [1.0, 1.0, 3.0], 1.0) == 20
    assert paced_steps(20, [1.0, 1.0, 3.0], 3.0) == 6
    # the pace is the lower median, so one fast site does not slow the others down
    assert paced_steps(20, [0.5, 1.0, 1.0], 1.0) == 20
    # 2 sites: the faster one sets the pace
    assert paced_steps(10, [1.0, 4.0], 4.0) == 2
    # at least one step, at most H; a site that sent no time (just rejoined) is not counted
    assert paced_steps(20, [1.0, 100.0], 100.0) == 1
    assert paced_steps(20, [0.0, 2.0], 1.0) == 20
    assert paced_steps(20, [], 1.0) == 20 and paced_steps(20, [1.0], 0.0) == 20
    # the site's own time as it went through the exchange (float32) keeps H at equal pace
    import torch

    t = float(torch.tensor(0.123456789))
    assert paced_steps(20, [t, t], t) == 20
