"""Planner speed: plans evaluated per second on one core, and the whole default search.

    python benchmarks/bench_planner.py

Prints, for rainier x the default model and for a 1,024-chip H100 cluster x llama3-70b, the
bulk evaluator's plans/s and the wall time of the whole search, next to the single-plan
`estimate()` path measured in the same run (the baseline: how fast a loop over plans would be).
"""

from __future__ import annotations

import time

import numpy as np

from ultracluster.cluster import get_preset
from ultracluster.cluster.presets import single_system_cluster
from ultracluster.search import SearchSpace, search
from ultracluster.search.candidates import Counts, plan_chunks, to_plan_arrays
from ultracluster.search.search import row_to_plan
from ultracluster.simulate import estimate
from ultracluster.simulate.context import hw_context, model_context
from ultracluster.simulate.core import evaluate
from ultracluster.workload import DEFAULT_MODEL, TrainingJob, get_model_preset


def bench(name: str, cluster_name: str, model_name: str) -> None:
    cluster = (get_preset(cluster_name) if cluster_name != "h100x1024"
               else single_system_cluster("dgx-h100", 1024))
    model = get_model_preset(model_name)
    job = TrainingJob(tokens=15e12)
    hw, mc = hw_context(cluster), model_context(model, seq_len=job.seq_len)
    chunks = list(plan_chunks(cluster=cluster, model=model, job=job, hw=hw, mc=mc,
                              space=SearchSpace(max_chips=cluster.num_chips), counts=Counts()))
    n = sum(c["tp"].shape[0] for c in chunks)
    t0 = time.perf_counter()
    for c in chunks:
        evaluate(to_plan_arrays(c, gb=float(job.global_batch_seqs)), hw, mc, tokens=job.tokens)
    bulk = n / (time.perf_counter() - t0)
    sample = chunks[0]
    k = min(300, sample["tp"].shape[0])
    t0 = time.perf_counter()
    for i in range(k):
        estimate(cluster=cluster, model=model, job=job, hw=hw, mc=mc, check_memory=False,
                 plan=row_to_plan(sample, i, gb=job.global_batch_seqs, seq_len=job.seq_len))
    single = k / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    res = search(cluster=cluster, model=model, job=job)
    wall = time.perf_counter() - t0
    print(f"{name}: {n:,} plans; bulk {bulk:,.0f} plans/s vs single-plan estimate() "
          f"{single:,.0f} plans/s ({bulk / single:,.0f}x); whole search {wall:.2f} s "
          f"({res.stats.evaluated:,} evaluated, best {res.plans[0].plan.describe()})")


if __name__ == "__main__":
    np.seterr(all="ignore")
    bench("rainier x " + DEFAULT_MODEL, "rainier", DEFAULT_MODEL)
    bench("1,024 H100 x llama3-70b", "h100x1024", "llama3-70b")
