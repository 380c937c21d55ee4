"""Korthikanti et al. 2022 (Table 5 step times, Figure 1 memory), Calculon's validation cases,
the simulator with the paper's own settings and the catalogue's benchmarked rates, nothing
fitted (these runs are also calibration rows, so the calibrated model would be scored
in-sample). Llama 3 405B with Meta's layout is in `test_validation.py`, scored with the value
fitted without Meta's rows."""

from __future__ import annotations

import pytest

from ultracluster.cluster.presets import get_preset
from ultracluster.plan.plan import Plan
from ultracluster.simulate.estimate import estimate
from ultracluster.simulate.peer import cases, predict_case
from ultracluster.units import GIB
from ultracluster.workload.job import TrainingJob

CASES = cases()
TIMED = [c for c in CASES if c.measured_step_s is not None]
WITH_MEMORY = [c for c in CASES if c.paper_activations_gib is not None]


def test_table5_mean_error_beats_calculon() -> None:
    ours = [abs(predict_case(c).step_time_s / c.measured_step_s - 1) for c in TIMED]  # type: ignore[operator]
    calculon = [abs(c.calculon_step_s / c.measured_step_s - 1) for c in TIMED]  # type: ignore[operator]
    assert len(ours) == 8
    assert sum(ours) / len(ours) <= 0.035
    assert sum(ours) / len(ours) <= sum(calculon) / len(calculon)


@pytest.mark.parametrize("case", TIMED, ids=[c.name for c in TIMED])
def test_table5_each_case(case) -> None:  # type: ignore[no-untyped-def]
    got = predict_case(case).step_time_s
    # 5% for every case but 530B with selective recomputation and sequence parallelism, which
    # the model puts 5.7% fast, as Calculon does by 8.9% (docs/validation.md)
    tol = 0.06 if case.name == "530b-selective" else 0.05
    assert got == pytest.approx(case.measured_step_s, rel=tol)


@pytest.mark.parametrize("case", WITH_MEMORY, ids=[c.name for c in WITH_MEMORY])
def test_figure1_memory(case) -> None:  # type: ignore[no-untyped-def]
    e = predict_case(case)
    mb = e.memory_breakdown
    act = mb["activations"] / GIB
    total = (mb["weights"] + mb["gradients"] + mb["optimizer"] + mb["activations"]) / GIB
    assert act == pytest.approx(case.paper_activations_gib, rel=0.05)
    paper_total = case.paper_activations_gib + case.paper_state_gib  # type: ignore[operator]
    assert total == pytest.approx(paper_total, rel=0.05)


def test_eager_attention_stores_the_scores() -> None:
    none = next(c for c in CASES if c.name == "175b-none")
    eager = predict_case(none).memory_breakdown["activations"]
    flash = estimate(cluster=get_preset("meta-24k-h100"), model=none.model,
                     job=TrainingJob(tokens=1e12, seq_len=2048),
                     plan=Plan(**{**{f: getattr(none.plan, f) for f in (
                         "dims", "micro_batch", "global_batch", "seq_len", "zero", "recompute",
                         "precision", "schedule")}, "attention": "flash"}),
                     check_memory=False).memory_breakdown["activations"]
    assert eager > 1.5 * flash  # the paper's 112 GiB (no recompute) is mostly the scores
