"""`search()`: evaluate every candidate plan in bulk and keep the best and the Pareto front."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from ultracluster.cluster.model import Cluster
from ultracluster.errors import InfeasiblePlanError
from ultracluster.plan.dims import DEGREES, ParallelDims
from ultracluster.plan.plan import Plan, SiteSync
from ultracluster.plan.vocab import schedule_for
from ultracluster.search.candidates import (ORDERS, Columns, Counts, SearchSpace, plan_chunks,
                                            to_plan_arrays)
from ultracluster.search.rank import OBJECTIVES, pareto_mask, rank_indices, top_indices
from ultracluster.simulate.comm import Arr
from ultracluster.simulate.context import hw_context, model_context
from ultracluster.simulate.core import evaluate
from ultracluster.simulate.estimate import Estimate, estimate
from ultracluster.simulate.planarrays import precision_of, recompute_of, sync_mode_of
from ultracluster.units import human_bytes
from ultracluster.workload.job import TrainingJob
from ultracluster.workload.spec import TransformerSpec

Objective = Literal["time", "energy", "cost"]
POOL = 2000
"""Best plans kept per objective per chunk; the Pareto front is computed among them."""


@dataclass(frozen=True, kw_only=True, slots=True)
class SearchStats:
    candidates: int
    evaluated: int
    infeasible: dict[str, int]
    kept: int
    seconds: float

    @property
    def plans_per_s(self) -> float:
        """Candidates evaluated per second of search."""
        return self.evaluated / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        """The counts as JSON."""
        return {"candidates": self.candidates, "evaluated": self.evaluated,
                "infeasible": self.infeasible, "kept": self.kept, "seconds": self.seconds,
                "plans_per_s": self.plans_per_s}


@dataclass(frozen=True, kw_only=True, slots=True)
class SearchResult:
    objective: Objective
    plans: list[Estimate]
    """Best first by the objective."""
    pareto: list[Estimate]
    """Non-dominated over time, energy and cost to train (sorted by time)."""
    stats: SearchStats
    notes: list[str] = field(default_factory=list)
    site_sync_variants: list[list[dict[str, Any]]] = field(default_factory=list)
    """For each of `plans` (one per distinct layout), every site-sync variant of that layout
    the search kept, best first: site sync and the step, time, energy and cost to train."""


def row_to_plan(c: Columns, i: int, *, gb: int, seq_len: int) -> Plan:
    """Rebuild the `Plan` of candidate row `i`."""
    def g(k: str) -> int:
        return int(c[k][i])

    return Plan(
        dims=ParallelDims(**{n: g(n) for n in DEGREES}, sequence_parallel=g("tp") > 1),
        micro_batch=g("mb"), global_batch=gb, seq_len=seq_len, zero=g("zero"),
        recompute=recompute_of(g("recompute")), precision=precision_of(fp8=g("fp8"), fp32=0),
        schedule=schedule_for(g("vpp")), tp_comm_overlap=bool(g("tp_overlap")),
        order=ORDERS[g("order")],
        site_sync=SiteSync(mode=sync_mode_of(g("sync")),
                           inner_steps=max(g("inner_steps"), 1), bits=g("bits"),
                           fragments=g("fragments")),
    )


def search(
    *,
    cluster: Cluster,
    model: TransformerSpec,
    job: TrainingJob,
    objective: Objective = "time",
    top: int = 10,
    max_chips: int | None = None,
    price_per_chip_hour: float | None = None,
    space: SearchSpace | None = None,
    max_days: float | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> SearchResult:
    """Every valid plan of `model` on `cluster`, ranked by `objective`.

    Args:
        max_days: only plans that train within this many days (a deadline for the energy
            and cost objectives, which otherwise favour few chips for a long time).

    Raises `InfeasiblePlanError` ("no plan fits ...") when nothing fits.
    """
    t0 = time.perf_counter()
    hw = hw_context(cluster, price_per_chip_hour=price_per_chip_hour)
    mc = model_context(model, seq_len=job.seq_len)
    space = space or SearchSpace(max_chips=min(max_chips or cluster.num_chips,
                                               cluster.num_chips))
    counts = Counts()
    key = OBJECTIVES[objective]
    pool: dict[str, list[Arr]] = {}
    for cols in plan_chunks(cluster=cluster, model=model, job=job, hw=hw, mc=mc, space=space,
                            counts=counts):
        t = evaluate(to_plan_arrays(cols, gb=float(job.global_batch_seqs)), hw, mc,
                     tokens=job.tokens)
        n = cols["tp"].shape[0]
        counts.evaluated += n
        valid = t.schedule_valid > 0
        counts.infeasible["schedule"] += int(n - valid.sum())
        fits = (t.fits > 0) & valid
        counts.infeasible["memory"] += int(valid.sum() - fits.sum())
        if max_days is not None:
            late = fits & (t.time_to_train_s > max_days * 86400.0)  # 86400 s per day
            counts.infeasible["deadline"] += int(late.sum())
            fits &= ~late
        counts.kept += int(fits.sum())
        if progress:
            progress(counts.considered, counts.evaluated)
        if not fits.any():
            continue
        idx = np.flatnonzero(fits)
        best = np.unique(np.concatenate([idx[top_indices(t.get(v)[idx], POOL)]
                                         for v in OBJECTIVES.values()]))
        for k, col in cols.items():
            pool.setdefault(k, []).append(col[best])
        for name in (*OBJECTIVES.values(), "cross_site_bytes_per_step", "step_time_s"):
            pool.setdefault("_" + name, []).append(t.get(name)[best])
    if not pool and counts.infeasible["deadline"]:
        raise InfeasiblePlanError(f"no plan fits: none trains within {max_days:g} days",
                                  reason="deadline")
    if not pool:
        raise InfeasiblePlanError(_no_fit_message(model=model, job=job, hw_bytes=hw.hbm_bytes,
                                                  chip=hw.chip_display, chips=space.max_chips),
                                  reason="memory")
    cols = {k: np.concatenate(v) for k, v in pool.items()}
    best = np.unique(np.concatenate([top_indices(cols["_" + v], POOL)
                                     for v in OBJECTIVES.values()]))
    cols = {k: v[best] for k, v in cols.items()}
    order, variants = distinct_layouts(cols, key, top)
    seq, gb = job.seq_len, job.global_batch_seqs

    def est(i: int) -> Estimate:
        return estimate(cluster=cluster, model=model, job=job, plan=row_to_plan(
            cols, int(i), gb=gb, seq_len=seq), hw=hw, mc=mc)

    plans = [est(int(i)) for i in order]
    pts = np.stack([cols["_" + v] for v in OBJECTIVES.values()], axis=1)
    front = np.flatnonzero(pareto_mask(pts))
    # plans with the same outcome (e.g. DiLoCo H100 vs H500 fully hidden) appear once: the
    # one sending the fewest bytes between sites
    front = front[np.lexsort((cols["_cross_site_bytes_per_step"][front],
                              cols["_time_to_train_s"][front]))]
    # same outcome: equal to 1e-6 relative in every objective
    _, first = np.unique(np.round(np.log(pts[front]) * 1e6), axis=0, return_index=True)
    front = front[np.sort(first)]
    pareto = [est(int(i)) for i in front[:50]]  # at most 50 estimated in full for the output
    stats = SearchStats(candidates=counts.considered + sum(
        v for k, v in counts.infeasible.items() if k != "memory"),
        evaluated=counts.evaluated, infeasible=dict(counts.infeasible), kept=counts.kept,
        seconds=time.perf_counter() - t0)
    return SearchResult(objective=objective, plans=plans, pareto=pareto, stats=stats,
                        site_sync_variants=[[_variant(cols, int(j)) for j in v]
                                            for v in variants])


SYNC_COLUMNS = ("sync", "inner_steps", "bits", "fragments")
"""Candidate columns that say how sites agree; the others make the layout."""


def distinct_layouts(cols: dict[str, Arr], key: str, top: int
                     ) -> tuple[list[int], list[list[int]]]:
    """The `top` best rows with distinct layouts (everything but the site sync), and for each
    the rows of its site-sync variants, best first."""
    ranked = rank_indices(cols["_" + key], cols["_cross_site_bytes_per_step"],
                          cols["_" + key].shape[0])
    names = [k for k in cols if not k.startswith("_") and k not in SYNC_COLUMNS]
    _, layout = np.unique(np.stack([cols[k] for k in names], axis=1), axis=0,
                          return_inverse=True)
    layout = layout.ravel()
    groups: dict[int, list[int]] = {}
    for i in ranked:
        lid = int(layout[i])
        if lid in groups:
            groups[lid].append(int(i))
        elif len(groups) < top:
            groups[lid] = [int(i)]
    best = [g[0] for g in groups.values()]
    return best, list(groups.values())


def _variant(cols: dict[str, Arr], i: int) -> dict[str, Any]:
    mode = sync_mode_of(cols["sync"][i])
    return {"site_sync": {"mode": mode, "inner_steps": int(max(cols["inner_steps"][i], 1)),
                          "bits": int(cols["bits"][i]), "fragments": int(cols["fragments"][i])},
            "step_time_s": float(cols["_step_time_s"][i]),
            "time_to_train_s": float(cols["_time_to_train_s"][i]),
            "energy_to_train_j": float(cols["_energy_to_train_j"][i]),
            "cost_usd": float(cols["_cost_usd"][i]),
            "cross_site_bytes_per_step": float(cols["_cross_site_bytes_per_step"][i])}


def min_chips_estimate(model: TransformerSpec) -> float:
    """Lower bound on chips' memory for the model state alone (bytes): 16 B per parameter,
    mixed-precision Adam as ZeRO counts it (2 + 2 + 12; Rajbhandari et al. 2020 s.3.1). The
    simulator's own 18 B (fp32 gradients, `simulate.memory`) is more, so it stays a bound."""
    return model.params * 16.0


def _no_fit_message(*, model: TransformerSpec, job: TrainingJob, hw_bytes: float, chip: str,
                    chips: int) -> str:
    need = int(np.ceil(min_chips_estimate(model) / hw_bytes))
    return (f"no plan fits: the model needs at least {need:,} {chip} chips for its weights, "
            f"gradients and optimizer state alone ({human_bytes(min_chips_estimate(model))}); "
            f"the search had {chips:,} (with batch {job.global_batch_seqs} x {job.seq_len})")
