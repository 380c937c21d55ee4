"""The closed loop: the simulator's prediction for a run of the runtime on this machine.

The runtime's S sites x W workers become a cluster of S sites, each one pod of W chips of the
calibrated local system; the sites are joined by the emulated WAN (or by loopback when there
is none). The run becomes a plan: dp = S x W, one micro-batch per step, fp32, no ZeRO, and
the run's site sync. `ultracluster train --predict` puts the estimate beside the measurement;
the `run` package never sees it.
"""

from __future__ import annotations

from dataclasses import replace
from itertools import combinations
from typing import Any

from ultracluster.cluster.load import load_cluster
from ultracluster.cluster.model import Cluster, InterSiteLink
from ultracluster.plan.dims import ParallelDims
from ultracluster.plan.plan import Plan, SiteSync
from ultracluster.plan.vocab import Precision, Recompute, RunSync, SyncMode
from ultracluster.run.config import RunConfig
from ultracluster.simulate.estimate import estimate
from ultracluster.units import GBPS
from ultracluster.workload import TrainingJob, load_model


def cluster_of_run(cfg: RunConfig, calibrated: Cluster) -> Cluster:
    """The run's sites as a cluster: each one pod of `cfg.workers_per_site` chips of the
    calibrated system, joined by the emulated WAN (or loopback)."""
    site0 = calibrated.sites[0]
    system = replace(site0.system, num_chips=cfg.workers_per_site, num_nodes=1,
                     topology="switch", torus_dims=())
    sites = tuple(replace(site0, name=f"site-{i}", system=system, num_pods=1)
                  for i in range(cfg.sites))
    bw = cfg.wan_gbps * GBPS if cfg.wan_gbps else site0.fabric_bytes_per_s_per_pod
    lat = cfg.wan_latency_ms / 1e3 if cfg.wan_gbps or cfg.wan_latency_ms else 0.0
    links = tuple(InterSiteLink(site_a=a.name, site_b=b.name, distance_km=0.0,
                                bandwidth_bytes_per_s=bw, latency_s=lat,
                                assumption="the runtime's emulated WAN (or loopback)")
                  for a, b in combinations(sites, 2))
    return Cluster(name=f"{calibrated.name}-run", description="this machine as the run's sites",
                   sites=sites, links=links)


def plan_of_run(cfg: RunConfig) -> Plan:
    """The run as a plan: pure data parallelism, fp32, no ZeRO, the run's site sync."""
    mode = cfg.site_sync.mode  # DDP and the hierarchical exchange are both `sync`
    world = cfg.world
    return Plan(
        dims=ParallelDims(dp=world, sequence_parallel=False), micro_batch=cfg.micro_batch,
        global_batch=world * cfg.micro_batch, seq_len=cfg.seq_len, zero=0,
        recompute=Recompute.NONE, precision=Precision.FP32,
        # the runtime's hierarchical exchange runs after backward; DDP's all-reduce (and its
        # emulated WAN time) overlaps backward, as in DDP
        dp_comm_overlap=cfg.site_sync.dp_comm_overlap,
        site_sync=SiteSync(mode=mode, inner_steps=cfg.inner_steps, bits=cfg.sync_bits,
                           fragments=cfg.fragments if mode == SyncMode.STREAMING else 1),
    )


def _exchanges(cfg: RunConfig) -> int:
    """Fragment exchanges the runtime makes, the final catch-up included."""
    if cfg.site_sync.mode == SyncMode.SYNC:
        return 0
    frags = cfg.fragments if cfg.site_sync.mode == SyncMode.STREAMING else 1
    every = cfg.inner_steps // frags
    outer_steps = max(cfg.steps - cfg.sync_warmup_steps, 0)  # none during the DDP warm-up
    k = outer_steps // every
    # at the end every fragment is exchanged once more, but the one exchanged at the last step
    extra = frags - (1 if k and k * every == outer_steps else 0)
    return k + extra


def predict(cfg: RunConfig, *, cluster_file: str) -> dict[str, Any]:
    """The simulator's step time, tokens/s and inter-site bytes for the run `cfg`."""
    cluster = cluster_of_run(cfg, load_cluster(cluster_file))
    plan = plan_of_run(cfg)
    model = load_model(cfg.model)
    job = TrainingJob(tokens=float(cfg.steps * plan.tokens_per_step), seq_len=cfg.seq_len,
                      global_batch_seqs=plan.global_batch, precision=Precision.FP32)
    e = estimate(cluster=cluster, model=model, job=job, plan=plan, check_memory=False)
    if cfg.site_sync.mode != SyncMode.SYNC:
        frags = plan.site_sync.fragments
        inter = e.cross_site_bytes_per_outer_step / frags * _exchanges(cfg)
    else:
        inter = e.cross_site_bytes_per_step * cfg.steps
    if cfg.site_sync == RunSync.DDP and cfg.sites > 1:
        # DDP's start-up broadcast of the fp32 weights, which the runtime counts: in a ring
        # over the ranks in site order, S of the hops cross sites, each (n-1)/n of the bytes
        n = cfg.world
        inter += cfg.sites * (n - 1) / n * 4 * model.params
    if cfg.site_sync.mode != SyncMode.SYNC and cfg.sites > 1:
        # the DDP warm-up: each step every worker all-reduces its 1/W of the fp32 gradients
        # across the S sites, 2(S-1)/S of it on the wire (S x W ranks)
        inter += cfg.sync_warmup_steps * 2 * (cfg.sites - 1) * 4 * model.params
    return {"step_time_s": e.step_time_s, "tokens_per_s": e.tokens_per_s,
            "inter_site_bytes": inter, "breakdown": e.breakdown, "overlapped": e.overlapped,
            "cluster": cluster_file, "plan": e.to_json()["plan"]}
