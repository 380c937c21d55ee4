"""The runtime's site-sync vocabulary: one `RunSync` member per strategy, one class for each."""

from __future__ import annotations

import json

import pytest

from ultracluster.errors import ConfigError
from ultracluster.plan.vocab import RunSync, SyncMode
from ultracluster.run.config import RunConfig


def test_every_strategy_has_one_class() -> None:
    pytest.importorskip("torch")
    from ultracluster.run.diloco import DiLoCoSync
    from ultracluster.run.sync import STRATEGIES

    assert set(STRATEGIES) == set(RunSync)
    assert STRATEGIES[RunSync.DILOCO] is STRATEGIES[RunSync.STREAMING] is DiLoCoSync


def test_a_member_runs_one_plan_mode_and_a_plan_mode_has_a_strategy() -> None:
    """Pins the existing members only: adding one touches no test but its own."""
    assert all(isinstance(m.mode, SyncMode) and isinstance(m.dp_comm_overlap, bool)
               for m in RunSync)
    assert {m: (m.mode, m.dp_comm_overlap) for m in (RunSync.DDP, RunSync.HIERARCHICAL,
                                                     RunSync.DILOCO, RunSync.STREAMING)} == {
        RunSync.DDP: (SyncMode.SYNC, True), RunSync.HIERARCHICAL: (SyncMode.SYNC, False),
        RunSync.DILOCO: (SyncMode.DILOCO, True), RunSync.STREAMING: (SyncMode.STREAMING, True)}
    # a plan file's mode runs as the first member of that mode: `sync` as DDP
    assert [RunSync.of_plan(m) for m in SyncMode] == [RunSync.DDP, RunSync.DILOCO,
                                                      RunSync.STREAMING]


def test_config_takes_and_writes_the_words() -> None:
    cfg = RunConfig(site_sync="hierarchical")  # type: ignore[arg-type]  # a flag's or a file's string
    assert cfg.site_sync is RunSync.HIERARCHICAL
    assert json.loads(json.dumps(cfg.to_json()))["site_sync"] == "hierarchical"
    with pytest.raises(ConfigError, match="--site-sync: 'sync' must be one of"):
        RunConfig(site_sync="sync")  # type: ignore[arg-type]
