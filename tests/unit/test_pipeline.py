"""Pipeline schedules: closed forms, the critical-path bound, and what frameworks refuse."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ultracluster.cluster.presets import get_preset
from ultracluster.errors import ConfigError
from ultracluster.plan.dims import ParallelDims
from ultracluster.plan.plan import Plan
from ultracluster.search.search import search
from ultracluster.simulate.estimate import estimate
from ultracluster.simulate.pipeline import pipeline_step, why_invalid
from ultracluster.workload.job import TrainingJob
from ultracluster.workload.presets import get_model_preset


def _step(m: int, p: int, v: int, t: float = 1.0) -> float:
    chain = p * t  # uniform stages: one micro-batch through all ranks
    return float(pipeline_step(chain=np.asarray(chain), t_max=np.asarray(t),
                               m=np.asarray(float(m)), p=np.asarray(float(p)),
                               v=np.asarray(float(v))))


def test_closed_forms() -> None:
    # 1F1B: (m + p - 1) T for any m, including m < p
    assert _step(8, 4, 1) == pytest.approx(11.0)
    assert _step(2, 6, 1) == pytest.approx(7.0)
    # interleaved, m a multiple of p: m T + (p - 1) T / v (Narayanan et al. 2021)
    assert _step(16, 4, 2) == pytest.approx(16 + 3 / 2)
    assert _step(8, 8, 4) == pytest.approx(8 + 7 / 4)
    # interleaving cannot beat one micro-batch's trip through every stage
    assert _step(2, 6, 8) >= 6.0


@settings(max_examples=200, deadline=None)
@given(m=st.integers(1, 64), p=st.integers(1, 32), v=st.integers(1, 8),
       t=st.floats(0.01, 10.0))
def test_never_faster_than_critical_path(m: int, p: int, v: int, t: float) -> None:
    # one micro-batch through all stages, the rest through the slowest (per virtual stage),
    # and never less than the slowest rank's own work
    bound = max(p * t + (m - 1) * t / v, m * t)
    assert _step(m, p, v, t) >= bound * (1 - 1e-12)


H100 = get_preset("meta-24k-h100")
L70 = get_model_preset("llama3-70b")
JOB = TrainingJob(tokens=1e12, seq_len=8192, global_batch_seqs=512)


@settings(max_examples=40, deadline=None)
@given(tp=st.sampled_from([1, 2, 4, 8]), pp=st.sampled_from([1, 2, 4, 5, 8, 10, 16]),
       vpp=st.sampled_from([1, 2, 4]), dp=st.sampled_from([1, 2, 4, 8, 16]),
       mb=st.sampled_from([1, 2, 4]), recompute=st.sampled_from(["none", "selective", "full"]),
       overlap=st.booleans())
def test_estimates_respect_the_critical_path(tp: int, pp: int, vpp: int, dp: int, mb: int,
                                             recompute: str, overlap: bool) -> None:
    if vpp > 1 and pp == 1:
        return
    try:
        plan = Plan(dims=ParallelDims(tp=tp, pp=pp, vpp=vpp, dp=dp), micro_batch=mb,
                    global_batch=JOB.global_batch_seqs, seq_len=JOB.seq_len,
                    recompute=recompute,  # type: ignore[arg-type]
                    schedule="interleaved" if vpp > 1 else "1f1b", pp_comm_overlap=overlap)
        e = estimate(cluster=H100, model=L70, job=JOB, plan=plan, check_memory=False)
    except ConfigError:
        return  # a schedule Megatron refuses
    assert e.step_time_s >= e.extra["critical_path_s"] * (1 - 1e-12)
    assert e.breakdown["bubble"] >= -1e-12


def test_megatron_rules() -> None:
    assert why_invalid(pp=4, vpp=2, layers=80, microbatches=8) is None
    assert why_invalid(pp=16, vpp=2, layers=126, microbatches=16) is None  # Llama 3 405B
    assert "multiple of pp" in str(why_invalid(pp=6, vpp=7, layers=126, microbatches=2))
    assert "virtual stages" in str(why_invalid(pp=6, vpp=8, layers=126, microbatches=6))
    assert "virtual stages" in str(why_invalid(pp=4, vpp=3, layers=80, microbatches=8))
    # Llama 3: one layer a virtual stage, the embedding and the output layer a stage each
    assert why_invalid(pp=16, vpp=8, layers=126, microbatches=16) is None
    with pytest.raises(ConfigError, match="multiple of pp"):
        Plan(dims=ParallelDims(tp=32, pp=6, vpp=8, dp=1024, cp=2), global_batch=2048,
             seq_len=8192, schedule="interleaved")
    # uneven virtual stages: Megatron-Core takes them with an explicit layout, the planner
    # does not propose them; the fullest rank holds ceil(80 / 12) x 3 = 21 layers
    plan = Plan(dims=ParallelDims(tp=8, pp=4, vpp=3, dp=16), global_batch=512,
                seq_len=8192, schedule="interleaved")
    assert plan.dims.layers_per_stage(80) == 21
    e = estimate(cluster=H100, model=L70, job=JOB, plan=plan, check_memory=False)
    assert e.extra["schedule_valid"] == 0.0


def test_embedding_and_output_layer_can_be_stages_of_their_own() -> None:
    """126 layers on 16 x 8 = 128 chunks: the first chunk holds only the embedding, the last
    only the output layer (Llama 3 paper s.3.3.2), so the first and last ranks hold 7 layers,
    the others 8; 16 x 9 stages or 127 would leave a stage with nothing."""
    from ultracluster.simulate.pipeline import stage_layout
    from ultracluster.simulate.planarrays import from_plan

    dims = ParallelDims(tp=8, pp=16, vpp=8, dp=128)
    dims.check(model=get_model_preset("llama3-405b"))
    assert dims.layers_per_stage(126) == 8
    lay = stage_layout(from_plan(Plan(dims=dims, global_batch=2048, seq_len=8192,
                                      schedule="interleaved")), 126.0)
    assert (float(lay.first), float(lay.body), float(lay.last)) == (7.0, 8.0, 7.0)
    with pytest.raises(ConfigError, match="stages"):
        ParallelDims(tp=8, pp=16, vpp=9, dp=128).check(model=get_model_preset("llama3-405b"))


def test_planner_emits_only_accepted_schedules() -> None:
    res = search(cluster=H100, model=L70, job=JOB, top=20, max_chips=1024)
    for e in res.plans + res.pareto:
        p = e.plan
        assert why_invalid(pp=p.dims.pp, vpp=p.dims.vpp, layers=L70.num_layers,
                           microbatches=p.num_microbatches) is None
        assert e.step_time_s >= e.extra["critical_path_s"] * (1 - 1e-12)


def _pp(vpp: int, overlap: bool, mb: int = 1) -> tuple[float, float, float]:
    """(step, exposed pipeline sends, bubble) of Llama 3 70B, TP8 PP4 (each stage in its own
    node: every send crosses the fabric)."""
    plan = Plan(dims=ParallelDims(tp=8, pp=4, vpp=vpp, dp=16), micro_batch=mb,
                global_batch=512, seq_len=8192, recompute="none",
                schedule="interleaved" if vpp > 1 else "1f1b", pp_comm_overlap=overlap)
    e = estimate(cluster=H100, model=L70, job=JOB, plan=plan, check_memory=False)
    return e.step_time_s, e.breakdown["pp"], e.breakdown["bubble"]


def test_interleaved_sends_overlap_compute_but_1f1b_blocks() -> None:
    # 1F1B waits on every send/receive: the overlap flag changes nothing
    assert _pp(1, True) == _pp(1, False)
    step_on, pp_on, _ = _pp(4, True)
    step_off, pp_off, _ = _pp(4, False)
    # interleaved, blocking: all 2 v exchanges per micro-batch; overlapped: what the
    # neighbouring chunk's compute cannot hide, plus warm-up / flush paid in full
    assert pp_on < 0.5 * pp_off
    assert step_on < step_off
    # the sends of the warm-up and the one-micro-batch chain stay exposed: never free
    assert pp_on > 0.0
    assert step_on >= step_off - pp_off - 1e-12


def test_frameworks_that_block_still_pay_the_sends() -> None:
    from ultracluster.simulate.frameworks import FRAMEWORKS
    from ultracluster.simulate.peer import cases

    overlapping = {k for k, d in FRAMEWORKS.items() if d.pp_comm_overlap}
    assert overlapping == {"megatron-core", "nemo", "torchtitan", "torchtitan-2024",
                           "meta-llama3"}
    # Korthikanti et al. 2022 ran Megatron-LM v3.0, whose interleaved sends block
    assert all(not c.plan.pp_comm_overlap for c in cases())


def test_smallest_interleaving_megatron_accepts() -> None:
    from ultracluster.simulate.pipeline import smallest_interleaving

    assert smallest_interleaving(pp=8, layers=96, microbatches=32) == 2
    assert smallest_interleaving(pp=6, layers=96, microbatches=24) == 2
    # 126 layers on 16 ranks: 2 and 4 leave uneven chunks unless the ends are stages (128)
    assert smallest_interleaving(pp=16, layers=126, microbatches=16) == 2
    assert smallest_interleaving(pp=4, layers=30, microbatches=8) == 2  # 32 = 4 x 2 x 4
    assert smallest_interleaving(pp=4, layers=29, microbatches=8) == 1  # no even split
    assert smallest_interleaving(pp=4, layers=80, microbatches=6) == 1  # 6 % 4: refused
