"""`estimate()`: one plan on one cluster for one workload, as an `Estimate` record."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ultracluster.cluster.model import Cluster
from ultracluster.errors import ConfigError, InfeasiblePlanError
from ultracluster.plan.plan import Plan, plan_to_dict
from ultracluster.simulate.context import HwContext, ModelContext, hw_context, model_context
from ultracluster.simulate.core import evaluate
from ultracluster.simulate.planarrays import from_plan
from ultracluster.units import Precision, human_bytes
from ultracluster.workload.job import TrainingJob
from ultracluster.workload.spec import TransformerSpec

BREAKDOWN_PARTS = ("compute", "recompute", "tp_exposed", "cp_exposed", "ep_exposed", "pp",
                   "bubble", "dp_exposed", "optimizer", "site_sync_exposed")
"""The parts of a step (`Estimate.breakdown`'s keys, `Terms` fields with ``_s``), in a pipeline
stage's time order: its micro-batches' work, the bubble, then the data-parallel exchange,
optimizer and site sync. They sum to ``step_time_s``."""
BREAKDOWN_KEYS = tuple(f"{part}_s" for part in BREAKDOWN_PARTS)
MEMORY_KEYS = ("mem_weights", "mem_gradients", "mem_optimizer", "mem_activations",
               "mem_buffers")


@dataclass(frozen=True, kw_only=True, slots=True)
class Estimate:
    """What one training step and the whole run cost."""

    plan: Plan
    """The plan estimated."""
    chip: str
    """Chip the estimate was made for."""
    num_chips: int
    """Chips used."""
    step_time_s: float
    """One optimiser step."""
    breakdown: dict[str, float]
    """Step time by kind (seconds; they sum to `step_time_s`)."""
    overlapped: dict[str, float]
    """Communication hidden behind compute (total minus exposed), seconds per step."""
    tokens_per_s: float
    tokens_per_s_per_chip: float
    mfu: float
    """Model FLOPs utilisation against the dense BF16 peak."""
    hfu: float
    """Hardware FLOPs utilisation (counts recomputation)."""
    memory_per_chip_bytes: float
    memory_breakdown: dict[str, float]
    power_w: float
    """Facility power while training (chips, systems, PUE)."""
    energy_per_token_j: float
    time_to_train_s: float
    """Wall time for the job's tokens, goodput included."""
    energy_to_train_j: float
    cost_usd: float
    cost_basis: str
    """``chip-hours`` (price known) or ``electricity`` (energy only)."""
    goodput: float
    mtbf_s: float
    checkpoint_interval_s: float
    checkpoint_write_s: float
    cross_site_bytes_per_step: float
    cross_site_bytes_per_outer_step: float
    site_sync_bandwidth_5pct_bytes_per_s: float
    """Inter-site link bandwidth at which the exchange costs 5% of a step (0: one site)."""
    extra: dict[str, float] = field(default_factory=dict)
    """Every other term of the model."""

    def to_json(self) -> dict[str, Any]:
        """The estimate as a JSON-ready dict (non-finite numbers become None)."""
        def clean(x: float) -> float | None:
            return x if math.isfinite(x) else None

        out: dict[str, Any] = {
            k: clean(getattr(self, k)) if isinstance(getattr(self, k), float) else getattr(self, k)
            for k in ("chip", "num_chips", "step_time_s", "tokens_per_s", "tokens_per_s_per_chip",
                      "mfu", "hfu", "memory_per_chip_bytes", "power_w", "energy_per_token_j",
                      "time_to_train_s", "energy_to_train_j", "cost_usd", "cost_basis",
                      "goodput", "mtbf_s", "checkpoint_interval_s", "checkpoint_write_s",
                      "cross_site_bytes_per_step", "cross_site_bytes_per_outer_step",
                      "site_sync_bandwidth_5pct_bytes_per_s")
        }
        out["critical_path_s"] = clean(self.extra.get("critical_path_s", math.nan))
        out["breakdown"] = self.breakdown
        out["overlapped"] = self.overlapped
        out["memory_breakdown"] = self.memory_breakdown
        out["plan"] = plan_to_dict(self.plan)
        return out


def check_plan(plan: Plan, *, cluster: Cluster, model: TransformerSpec) -> None:
    """Raise if `plan` cannot run on `cluster` at all (before estimating)."""
    plan.dims.check(model=model)
    if plan.dims.world > cluster.num_chips:
        raise InfeasiblePlanError(
            f"the plan needs {plan.dims.world:,} chips, cluster {cluster.name} has "
            f"{cluster.num_chips:,}", reason="chips")
    if plan.precision == Precision.FP8 and not all(s.system.chip.supports(Precision.FP8)
                                                   for s in cluster.sites):
        raise ConfigError(f"precision: fp8 is not supported by the chips of {cluster.name}")


def estimate(
    *,
    cluster: Cluster,
    model: TransformerSpec,
    job: TrainingJob,
    plan: Plan,
    price_per_chip_hour: float | None = None,
    hw: HwContext | None = None,
    mc: ModelContext | None = None,
    check_memory: bool = True,
) -> Estimate:
    """Predict one step and the whole run. Raises `InfeasiblePlanError` when memory overflows.

    Args:
        cluster, model, job, plan: the three inputs and the plan (the plan's seq_len and
            global batch are used; the job gives the total tokens).
        price_per_chip_hour: overrides the catalogue price (USD).
        hw, mc: precomputed contexts (the planner passes them to skip rebuilding).
        check_memory: False estimates the speed of a plan even when it overflows memory
            (validation of published runs whose memory savings the model does not know).
    """
    check_plan(plan, cluster=cluster, model=model)
    hw = hw or hw_context(cluster, price_per_chip_hour=price_per_chip_hour)
    mc = mc or model_context(model, seq_len=plan.seq_len)
    t = evaluate(from_plan(plan), hw, mc, tokens=job.tokens)
    f = {k: float(np.asarray(v)) for k, v in t.as_dict().items()}
    if check_memory and not f["fits"]:
        raise InfeasiblePlanError(
            f"needs {human_bytes(f['memory_per_chip_bytes'])} per chip, a {hw.chip_display} has "
            f"{human_bytes(hw.hbm_bytes)} (weights {human_bytes(f['mem_weights'])}, optimizer "
            f"{human_bytes(f['mem_optimizer'])}, activations {human_bytes(f['mem_activations'])})",
            reason="memory")
    return estimate_from_terms(f, plan=plan, hw=hw)


def estimate_from_terms(f: dict[str, float], *, plan: Plan, hw: HwContext) -> Estimate:
    """Wrap the model's terms for one plan into an `Estimate`."""
    breakdown = {k.removesuffix("_s"): f[k] for k in BREAKDOWN_KEYS}
    used = set(BREAKDOWN_KEYS) | set(MEMORY_KEYS)
    return Estimate(
        plan=plan, chip=hw.chip_name, num_chips=int(f["num_chips"]),
        step_time_s=f["step_time_s"], breakdown=breakdown,
        overlapped={"tp": f["tp_total_s"] - f["tp_exposed_s"],
                    "ep": f["ep_total_s"] - f["ep_exposed_s"],
                    "dp": f["dp_total_s"] - f["dp_exposed_s"]},
        tokens_per_s=f["tokens_per_s"], tokens_per_s_per_chip=f["tokens_per_s_per_chip"],
        mfu=f["mfu"], hfu=f["hfu"], memory_per_chip_bytes=f["memory_per_chip_bytes"],
        memory_breakdown={k.removeprefix("mem_"): f[k] for k in MEMORY_KEYS},
        power_w=f["power_w"], energy_per_token_j=f["energy_per_token_j"],
        time_to_train_s=f["time_to_train_s"], energy_to_train_j=f["energy_to_train_j"],
        cost_usd=f["cost_usd"],
        cost_basis="chip-hours" if hw.usd_per_chip_hour is not None else "electricity",
        goodput=f["goodput"], mtbf_s=f["mtbf_s"],
        checkpoint_interval_s=f["checkpoint_interval_s"],
        checkpoint_write_s=f["checkpoint_write_s"],
        cross_site_bytes_per_step=f["cross_site_bytes_per_step"],
        cross_site_bytes_per_outer_step=f["cross_site_bytes_per_outer_step"],
        site_sync_bandwidth_5pct_bytes_per_s=f["site_sync_bandwidth_5pct_bytes_per_s"],
        extra={k: v for k, v in f.items() if k not in used},
    )
