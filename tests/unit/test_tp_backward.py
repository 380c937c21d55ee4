"""Tensor-parallel collectives in the backward (`Plan.tp_async_backward`) and gradient
precision (`Plan.grad_reduce_in_fp32`): what each changes, by hand."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ultracluster.cluster.presets import single_system_cluster
from ultracluster.plan.dims import ParallelDims
from ultracluster.plan.plan import Plan, plan_from_dict, plan_to_dict
from ultracluster.plan.vocab import Recompute
from ultracluster.simulate.estimate import estimate
from ultracluster.simulate.frameworks import FRAMEWORKS
from ultracluster.simulate.peer import cases
from ultracluster.workload.job import TrainingJob
from ultracluster.workload.spec import TransformerSpec

MODEL = TransformerSpec(name="gpt", num_layers=8, hidden=8192, num_heads=64, num_kv_heads=64,
                        ffn_hidden=4 * 8192, gated_ffn=False, vocab=51200, bias=True)
CLUSTER = single_system_cluster("dgx-h100", 64)


def _run(**changes: object):  # type: ignore[no-untyped-def]
    plan = Plan(dims=ParallelDims(tp=8, pp=1, dp=8, sequence_parallel=False), micro_batch=1,
                global_batch=64, seq_len=4096, zero=1, recompute=Recompute.NONE,
                tp_comm_overlap=False)
    plan = replace(plan, **changes)  # type: ignore[arg-type]
    return estimate(cluster=CLUSTER, model=MODEL, job=TrainingJob(tokens=1e12, seq_len=4096),
                    plan=plan, check_memory=False)


def test_async_backward_hides_half_the_tp_volume_without_sequence_parallelism() -> None:
    sync, hidden = _run(tp_async_backward=False), _run(tp_async_backward=True)
    # same volume (4 all-reduces a layer); the two backward ones run behind the weight-gradient
    # GEMMs, so at most half stays exposed, plus the interference of the hidden part
    assert hidden.extra["tp_total_s"] == pytest.approx(sync.extra["tp_total_s"])
    assert sync.breakdown["tp_exposed"] == pytest.approx(sync.extra["tp_total_s"])
    assert hidden.breakdown["tp_exposed"] < 0.75 * sync.breakdown["tp_exposed"]
    assert hidden.breakdown["tp_exposed"] >= 0.5 * sync.breakdown["tp_exposed"]
    assert hidden.step_time_s < sync.step_time_s


def test_sequence_parallelism_regathers_its_input_in_the_backward() -> None:
    sp = ParallelDims(tp=8, pp=1, dp=8, sequence_parallel=True)
    sync, hidden = _run(dims=sp, tp_async_backward=False), _run(dims=sp, tp_async_backward=True)
    # 5 all-reduce equivalents instead of 4: the sharded input gathered again for the
    # weight gradient; 3 of them block (forward 2, the row-parallel backward all-gathers 1)
    assert hidden.extra["tp_total_s"] == pytest.approx(1.25 * sync.extra["tp_total_s"])
    assert hidden.breakdown["tp_exposed"] >= 0.75 * sync.breakdown["tp_exposed"]
    assert hidden.breakdown["tp_exposed"] < sync.breakdown["tp_exposed"]


def test_bf16_gradients_halve_gradient_memory_and_data_parallel_bytes() -> None:
    fp32, bf16 = _run(), _run(grad_reduce_in_fp32=False)
    assert bf16.memory_breakdown["gradients"] == pytest.approx(
        fp32.memory_breakdown["gradients"] / 2)
    # ZeRO-1: fp32 reduce-scatter (4 B) + bf16 all-gather (2 B) -> 2 B + 2 B
    assert bf16.extra["dp_total_s"] == pytest.approx(fp32.extra["dp_total_s"] * 4 / 6, rel=0.05)
    # pure fp32 training keeps fp32 gradients either way
    assert _run(precision="fp32", grad_reduce_in_fp32=False).memory_breakdown["gradients"] == \
        pytest.approx(fp32.memory_breakdown["gradients"])


def test_new_fields_round_trip_through_the_plan_file() -> None:
    plan = Plan(dims=ParallelDims(tp=8, dp=8), global_batch=64, seq_len=4096,
                tp_async_backward=False, grad_reduce_in_fp32=False)
    back = plan_from_dict(plan_to_dict(plan))
    assert (back.tp_async_backward, back.grad_reduce_in_fp32) == (False, False)
    assert plan_from_dict({k: v for k, v in plan_to_dict(plan).items()
                           if k not in ("tp_async_backward", "grad_reduce_in_fp32")}
                          ).tp_async_backward is True


def test_frameworks_that_issue_the_backward_collectives_asynchronously() -> None:
    assert {k for k, d in FRAMEWORKS.items() if d.tp_async_backward} == {
        "megatron-2022", "megatron-core", "nemo"}
    assert {k for k, d in FRAMEWORKS.items() if not d.grad_reduce_in_fp32} == {"nemo"}
    assert all(c.plan.tp_async_backward for c in cases())  # Megatron-LM v3.0
