"""`Terms`: every figure of the model for a set of plans, one frozen record of arrays.

The field names are the model's vocabulary (``step_time_s``, ``tp_exposed_s`` ...), defined
here once; `simulate.estimate.BREAKDOWN_PARTS` lists the parts of a step, which sum to
``step_time_s``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from ultracluster.simulate.comm import Arr

@dataclass(frozen=True, slots=True)
class Exchange:
    """One kind of communication: its whole time and the part compute does not hide."""

    total: Arr
    exposed: Arr


@dataclass(frozen=True, kw_only=True, slots=True)
class Terms:
    """The model's figures for each plan (arrays over plans, or 0-d for one plan)."""

    step_time_s: Arr
    compute_s: Arr
    recompute_s: Arr
    tp_exposed_s: Arr
    tp_total_s: Arr
    cp_exposed_s: Arr
    cp_total_s: Arr
    ep_exposed_s: Arr
    ep_total_s: Arr
    pp_s: Arr
    bubble_s: Arr
    dp_exposed_s: Arr
    dp_total_s: Arr
    optimizer_s: Arr
    site_sync_exposed_s: Arr
    critical_path_s: Arr
    """One micro-batch through every stage plus the rest through the slowest stage (a lower
    bound of any schedule's step)."""
    num_microbatches: Arr
    schedule_valid: Arr
    """1 where Megatron-LM accepts the pipeline schedule, 0 where it refuses it."""
    cross_site_bytes_per_step: Arr
    cross_site_bytes_per_outer_step: Arr
    cross_site_sites: Arr
    site_sync_bandwidth_5pct_bytes_per_s: Arr
    tokens_per_step: Arr
    tokens_per_s: Arr
    tokens_per_s_per_chip: Arr
    num_chips: Arr
    mfu: Arr
    hfu: Arr
    mem_weights: Arr
    mem_gradients: Arr
    mem_optimizer: Arr
    mem_activations: Arr
    mem_buffers: Arr
    memory_per_chip_bytes: Arr
    fits: Arr
    utilization: Arr
    chip_power_w: Arr
    it_power_w: Arr
    power_w: Arr
    energy_per_step_j: Arr
    energy_per_token_j: Arr
    mtbf_s: Arr
    checkpoint_write_s: Arr
    checkpoint_interval_s: Arr
    goodput: Arr
    time_to_train_s: Arr
    energy_to_train_j: Arr
    cost_energy_usd: Arr
    cost_usd: Arr

    def get(self, name: str) -> Arr:
        """The term `name` (a field name), for callers that choose it at run time."""
        out: Arr = getattr(self, name)
        return out

    def as_dict(self) -> dict[str, Arr]:
        """Every term by its field name (what `estimate_from_terms` reads)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}
