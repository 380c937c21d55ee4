"""The run's summary: a restarted site-0 process that leaves never overwrites a finished one."""

from __future__ import annotations

import json
from pathlib import Path

from ultracluster.run.train import write_summary


def test_a_leaving_restart_keeps_the_finished_summary(tmp_path: Path) -> None:
    path = tmp_path / "summary.json"
    write_summary(path, {"steps": 40, "final_loss": 3.1})
    write_summary(path, {"left": True, "site": 0})
    assert json.loads(path.read_text()) == {"steps": 40, "final_loss": 3.1}


def test_a_leaving_process_with_no_summary_yet_writes_its_own(tmp_path: Path) -> None:
    path = tmp_path / "summary.json"
    write_summary(path, {"left": True, "site": 0})
    assert json.loads(path.read_text()) == {"left": True, "site": 0}
    write_summary(path, {"steps": 40})  # a finished run always writes
    assert json.loads(path.read_text()) == {"steps": 40}
