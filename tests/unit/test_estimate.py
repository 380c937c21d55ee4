"""The estimate as a whole: breakdown identities, infeasibility, properties, plan files."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ultracluster.cluster import get_preset
from ultracluster.cluster.presets import single_system_cluster
from ultracluster.errors import ConfigError, InfeasiblePlanError
from ultracluster.plan import ParallelDims, Plan, SiteSync, load_plan, save_plan
from ultracluster.simulate import estimate
from ultracluster.simulate.context import hw_context
from ultracluster.workload import TrainingJob, get_model_preset

JOB = TrainingJob(tokens=1e12)
H100 = single_system_cluster("dgx-h100", 1024)
L70 = get_model_preset("llama3-70b")


def plan(**kw: object) -> Plan:
    dims = {k: kw.pop(k) for k in ("tp", "pp", "dp", "cp", "ep", "vpp") if k in kw}
    base: dict[str, object] = dict(global_batch=512, seq_len=8192, zero=1,
                                   recompute="selective")
    base |= kw
    vpp = int(dims.get("vpp", 1))  # type: ignore[call-overload]
    base.setdefault("schedule", "interleaved" if vpp > 1 else "1f1b")
    return Plan(dims=ParallelDims(**dims), **base)  # type: ignore[arg-type]


def test_breakdown_sums_to_step_and_bubble_formula() -> None:
    p = plan(tp=8, pp=4, dp=32, micro_batch=1)
    e = estimate(cluster=H100, model=L70, job=JOB, plan=p)
    assert sum(e.breakdown.values()) == pytest.approx(e.step_time_s, rel=1e-9)
    n_mb = p.num_microbatches
    per_mb = (e.step_time_s - e.breakdown["bubble"] - e.breakdown["dp_exposed"]
              - e.breakdown["optimizer"] - e.breakdown["site_sync_exposed"]) / n_mb
    # the slowest rank is the last (it also runs the output layer): the bubble is the other
    # three ranks' time for one micro-batch, a little less than three of the slowest's
    assert 0.9 * 3 * per_mb < e.breakdown["bubble"] < 3 * per_mb
    e2 = estimate(cluster=H100, model=L70, job=JOB, plan=plan(tp=8, pp=4, dp=32, vpp=2))
    assert e2.breakdown["bubble"] < e.breakdown["bubble"]


def test_tokens_mfu_and_time_to_train_are_consistent() -> None:
    e = estimate(cluster=H100, model=L70, job=JOB, plan=plan(tp=8, pp=4, dp=32))
    assert e.tokens_per_s == pytest.approx(512 * 8192 / e.step_time_s)
    assert e.tokens_per_s_per_chip == pytest.approx(e.tokens_per_s / 1024)
    flops = L70.flops_per_token(8192)
    assert e.mfu == pytest.approx(flops * e.tokens_per_s / (1024 * 989.4e12))
    assert 0 < e.goodput < 1
    assert e.time_to_train_s == pytest.approx(1e12 / e.tokens_per_s / e.goodput)
    assert e.energy_to_train_j == pytest.approx(e.power_w * e.time_to_train_s)


def test_memory_overflow_names_the_numbers() -> None:
    c = get_preset("rainier")
    m = get_model_preset("llama3-405b")
    with pytest.raises(InfeasiblePlanError, match=r"needs [\d.]+ (GiB|TiB) per chip, a "
                                                  r"Trainium2 has 96.0 GiB") as info:
        estimate(cluster=c, model=m, job=JOB,
                 plan=plan(tp=1, pp=1, dp=2048, global_batch=2048, zero=0))
    assert info.value.reason == "memory"


def test_validation_of_dims_quotes_numbers() -> None:
    with pytest.raises(ConfigError, match="64 attention heads are not divisible by tp = 3"):
        estimate(cluster=H100, model=L70, job=JOB, plan=plan(tp=3, dp=2, global_batch=512))
    with pytest.raises(ConfigError, match="not divisible by dp x micro_batch"):
        plan(tp=8, dp=3, global_batch=512)
    with pytest.raises(ConfigError, match="ep: 8 > 1 but model"):
        estimate(cluster=H100, model=L70, job=JOB, plan=plan(tp=8, dp=64, ep=8))
    with pytest.raises(ConfigError, match="fp8 is not supported"):
        estimate(cluster=single_system_cluster("dgx-a100", 64), model=L70, job=JOB,
                 plan=plan(tp=8, dp=8, precision="fp8"))
    with pytest.raises(InfeasiblePlanError, match="needs 2,048 chips"):
        estimate(cluster=H100, model=L70, job=JOB, plan=plan(tp=8, dp=256))


def test_plan_toml_round_trip(tmp_path: Path) -> None:
    p = plan(tp=8, pp=4, vpp=2, dp=32, site_sync=SiteSync(mode="streaming", inner_steps=100,
                                                          bits=4, fragments=4))
    save_plan(p, tmp_path / "p.toml")
    assert load_plan(tmp_path / "p.toml") == p
    (tmp_path / "bad.toml").write_text("tp = 8\nglobal_batch = 64\nseq_len = 8\nbogus = 1\n")
    with pytest.raises(ConfigError, match="unknown field"):
        load_plan(tmp_path / "bad.toml")


def test_site_sync_modes_on_multistate() -> None:
    c = get_preset("rainier-multistate")
    m = get_model_preset("llama3-70b")
    base = dict(tp=4, pp=4, dp=c.num_chips // 16, global_batch=c.num_chips // 16, seq_len=4096,
                recompute="full")
    sync = estimate(cluster=c, model=m, job=JOB, plan=plan(**base))
    dil = estimate(cluster=c, model=m, job=JOB, plan=plan(
        **base, site_sync=SiteSync(mode="diloco", inner_steps=100, bits=4)))
    stream = estimate(cluster=c, model=m, job=JOB, plan=plan(
        **base, site_sync=SiteSync(mode="streaming", inner_steps=100, bits=4, fragments=4)))
    assert sync.cross_site_bytes_per_step > 100 * dil.cross_site_bytes_per_step > 0
    assert dil.cross_site_bytes_per_outer_step > 0
    assert stream.breakdown["site_sync_exposed"] <= dil.breakdown["site_sync_exposed"]
    assert dil.site_sync_bandwidth_5pct_bytes_per_s < sync.site_sync_bandwidth_5pct_bytes_per_s
    assert dil.goodput > sync.goodput  # a failure stops one site, not the job


# ---- properties ------------------------------------------------------------------------
_plans = st.builds(
    lambda tp, pp, mb, rc, zero: plan(tp=tp, pp=pp, dp=1024 // (tp * pp), micro_batch=mb,
                                      global_batch=1024 * 4 // (tp * pp) * mb * (tp * pp) // 4,
                                      recompute=rc, zero=zero),
    tp=st.sampled_from([1, 2, 4, 8]), pp=st.sampled_from([1, 2, 4, 8]),
    mb=st.sampled_from([1, 2]), rc=st.sampled_from(["none", "selective", "full"]),
    zero=st.sampled_from([0, 1, 2, 3]),
)


@settings(max_examples=60, deadline=None)
@given(p=_plans, factor=st.sampled_from([1.5, 2.0, 8.0]))
def test_more_bandwidth_never_slows_a_step(p: Plan, factor: float) -> None:
    hw = hw_context(H100)
    faster = dataclasses.replace(hw, fabric_bw=hw.fabric_bw * factor, up_bw=hw.up_bw * factor)
    slow = estimate(cluster=H100, model=L70, job=JOB, plan=p, hw=hw, check_memory=False)
    fast = estimate(cluster=H100, model=L70, job=JOB, plan=p, hw=faster, check_memory=False)
    assert fast.step_time_s <= slow.step_time_s * (1 + 1e-12)


@settings(max_examples=60, deadline=None)
@given(p=_plans)
def test_more_recompute_never_raises_activation_memory(p: Plan) -> None:
    acts = []
    for rc in ("none", "selective", "full"):
        e = estimate(cluster=H100, model=L70, job=JOB, plan=dataclasses.replace(p, recompute=rc),
                     check_memory=False)
        acts.append(e.memory_breakdown["activations"])
    assert acts[0] >= acts[1] >= acts[2]


@settings(max_examples=60, deadline=None)
@given(tp=st.sampled_from([1, 2, 4, 8]), pp=st.sampled_from([1, 2, 4]),
       zero=st.sampled_from([0, 1, 2, 3]), dp=st.sampled_from([2, 4, 8, 16]))
def test_doubling_dp_at_fixed_batch_never_raises_memory(tp: int, pp: int, zero: int,
                                                         dp: int) -> None:
    gb = 256
    small = plan(tp=tp, pp=pp, dp=dp, global_batch=gb, zero=zero)
    big = plan(tp=tp, pp=pp, dp=2 * dp, global_batch=gb, zero=zero)
    a = estimate(cluster=H100, model=L70, job=JOB, plan=small, check_memory=False)
    b = estimate(cluster=H100, model=L70, job=JOB, plan=big, check_memory=False)
    assert b.memory_per_chip_bytes <= a.memory_per_chip_bytes * (1 + 1e-12)


def test_recompute_every_nth_block_lies_between_none_and_full(tmp_path: Path) -> None:
    """torchtitan's layer-wise checkpointing (every second block): half the extra forward
    work of full recomputation, activations halfway between keeping all and keeping inputs."""
    def run(**kw: object) -> object:
        return estimate(cluster=H100, model=L70, job=JOB,
                        plan=plan(tp=8, pp=4, dp=32, micro_batch=1, **kw), check_memory=False)

    none, full = run(recompute="none"), run(recompute="full")
    half = run(recompute="full", recompute_every=2)
    assert half.breakdown["recompute"] == pytest.approx(full.breakdown["recompute"] / 2,  # type: ignore[attr-defined]
                                                        rel=1e-9)
    assert none.step_time_s < half.step_time_s < full.step_time_s  # type: ignore[attr-defined]
    act = [e.memory_breakdown["activations"] for e in (none, half, full)]  # type: ignore[attr-defined]
    assert act[1] == pytest.approx((act[0] + act[2]) / 2, rel=1e-9)
    p = plan(tp=8, pp=4, dp=32, recompute="full", recompute_every=2)
    save_plan(p, tmp_path / "p.toml")
    assert load_plan(tmp_path / "p.toml") == p
    with pytest.raises(ConfigError, match="recompute_every"):
        plan(tp=8, dp=128, recompute_every=0)
