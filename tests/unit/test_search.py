"""The planner: bulk and single-plan evaluators agree; ranking; saved plans; no-fit errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ultracluster.cli import main
from ultracluster.cluster import get_preset
from ultracluster.errors import InfeasiblePlanError
from ultracluster.plan import Recompute, load_plan
from ultracluster.search import SearchSpace, search
from ultracluster.search.candidates import Counts, plan_chunks, to_plan_arrays
from ultracluster.search.search import row_to_plan
from ultracluster.simulate import estimate
from ultracluster.simulate.context import hw_context, model_context
from ultracluster.simulate.core import evaluate
from ultracluster.workload import TrainingJob, get_model_preset

KEYS = ("step_time_s", "memory_per_chip_bytes", "tokens_per_s", "mfu", "power_w",
        "energy_per_token_j", "time_to_train_s", "energy_to_train_j", "cost_usd", "goodput",
        "cross_site_bytes_per_step", "site_sync_bandwidth_5pct_bytes_per_s")


@pytest.mark.parametrize("cluster, model, seed", [
    ("meta-24k-h100", "llama3-70b", 0),
    ("rainier-multistate", "llama3-8b", 1),
    ("rainier", "mixtral-8x7b", 2),
])
def test_bulk_and_single_plan_evaluators_agree(cluster: str, model: str, seed: int) -> None:
    c, m = get_preset(cluster), get_model_preset(model)
    job = TrainingJob(tokens=1e12, seq_len=4096, global_batch_seqs=4096)
    hw, mc = hw_context(c), model_context(m, seq_len=job.seq_len)
    space = SearchSpace(max_chips=c.num_chips, zero=(0, 1, 2, 3), recompute=tuple(Recompute))
    chunks = list(plan_chunks(cluster=c, model=m, job=job, hw=hw, mc=mc, space=space,
                              counts=Counts()))
    cols = {k: np.concatenate([ch[k] for ch in chunks]) for k in chunks[0]}
    rng = np.random.default_rng(seed)
    idx = rng.choice(cols["tp"].shape[0], size=min(1000, cols["tp"].shape[0]), replace=False)
    cols = {k: v[idx] for k, v in cols.items()}
    bulk = evaluate(to_plan_arrays(cols, gb=float(job.global_batch_seqs)), hw, mc,
                    tokens=job.tokens)
    valid = np.flatnonzero(bulk.schedule_valid > 0)
    assert valid.size > 0
    for i in valid:
        e = estimate(cluster=c, model=m, job=job, hw=hw, mc=mc, check_memory=False,
                     plan=row_to_plan(cols, i, gb=job.global_batch_seqs, seq_len=job.seq_len))
        for k in KEYS:
            want = float(bulk.get(k)[i])
            got = getattr(e, k)
            if np.isinf(want):
                assert np.isinf(got)
            else:
                assert got == pytest.approx(want, rel=1e-9, abs=1e-300), (k, i)


def test_best_plan_fits_and_objectives_differ() -> None:
    c, m = get_preset("meta-24k-h100"), get_model_preset("llama3-70b")
    job = TrainingJob(tokens=2e12, seq_len=8192, global_batch_seqs=1024)
    fast = search(cluster=c, model=m, job=job, objective="time", top=3)
    lean = search(cluster=c, model=m, job=job, objective="energy", top=3)
    for r in (fast, lean):
        for e in r.plans:
            assert e.memory_per_chip_bytes <= c.sites[0].system.chip.hbm_bytes
    f, e = fast.plans[0], lean.plans[0]
    assert f.time_to_train_s < e.time_to_train_s
    assert e.energy_to_train_j < f.energy_to_train_j
    assert fast.stats.evaluated > 0 and fast.stats.kept <= fast.stats.evaluated
    hbm = c.sites[0].system.chip.hbm_bytes
    assert fast.pareto and all(p.memory_per_chip_bytes <= hbm for p in fast.pareto)
    times = [p.time_to_train_s for p in fast.pareto]
    assert times == sorted(times)


def test_too_small_cluster_gives_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(InfeasiblePlanError, match="no plan fits: the model needs at least"):
        search(cluster=get_preset("local"), model=get_model_preset("llama3-8b"),
               job=TrainingJob(tokens=1e9))
    assert main(["plan", "--cluster", "local", "--model", "llama3-70b", "--json"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ultracluster plan: error: no plan fits") and err.count("\n") == 1


def test_plan_json_save_and_simulate_round_trip(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    best = tmp_path / "best.toml"
    assert main(["plan", "--cluster", "meta-24k-h100", "--model", "llama3-8b", "--tokens", "1T",
                 "--top", "3", "--json", "--save", str(best)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc["stats"]) >= {"candidates", "evaluated", "infeasible", "seconds",
                                 "plans_per_s"}
    top = doc["plans"][0]
    assert {"plan", "step_time_s", "mfu", "time_to_train_s", "energy_to_train_j",
            "cost_usd"} <= set(top)
    assert load_plan(best).dims.world == top["num_chips"]
    assert main(["simulate", "--cluster", "meta-24k-h100", "--model", "llama3-8b",
                 "--tokens", "1T", "--plan", str(best), "--json"]) == 0
    sim = json.loads(capsys.readouterr().out)
    assert sim["step_time_s"] == pytest.approx(top["step_time_s"], rel=1e-12)


def test_compare_and_sweep(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    assert main(["compare", "--cluster", "rainier", "--cluster", "rainier-trn3", "--model",
                 "llama3-70b", "--tokens", "1T", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert len(doc["clusters"]) == 2 and doc["clusters"][0]["speedup_vs_first"] == 1.0
    fig = tmp_path / "sweep.png"
    assert main(["sweep", "--cluster", "rainier-multistate", "--model", "llama3-8b",
                 "--tokens", "1T", "--vary", "inter-site-gbps=100,10000,1000000",
                 "--figure", str(fig), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert len(doc["points"]) == 3 and fig.stat().st_size > 10_000
    assert main(["sweep", "--vary", "colour=1,2"]) == 2
