"""A peer's validation cases: Korthikanti et al. 2022 Table 5 and Figure 1, as Calculon runs them.

`data/korthikanti-table5.csv` (from ``reference/korthikanti-table5.csv``): four GPT models on
Selene (DGX A100 80 GB) with Megatron-LM, TP 8, DP 1, fp16, no TP overlap, eager attention;
full recomputation without sequence parallelism, selective with it; the measured iteration
time, Calculon's prediction, and the paper's per-GPU memory (Figure 1 as Calculon transcribes
it). `predict_case` runs a case through `estimate` with exactly those settings.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path

from ultracluster.cluster.model import Cluster
from ultracluster.cluster.presets import single_system_cluster
from ultracluster.errors import ConfigError
from ultracluster.plan.dims import ParallelDims
from ultracluster.plan.plan import Plan
from ultracluster.plan.vocab import schedule_for
from ultracluster.simulate.calibration import ATTENTION, FITTED_FIELD
from ultracluster.simulate.context import HwContext, hw_context
from ultracluster.simulate.estimate import Estimate, estimate
from ultracluster.simulate.validate import RowResult
from ultracluster.workload.job import TrainingJob
from ultracluster.workload.spec import TransformerSpec

PAPER = "Korthikanti et al. 2022"
"""How the paper's rows of the measurements name their source (their `source` begins so)."""

SYSTEM = "dgx-a100"
"""Selene's nodes: DGX A100 80 GB, NVSwitch, 8 x 200 Gb/s HDR InfiniBand."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Case:
    """One row of the table."""

    name: str
    model: TransformerSpec
    plan: Plan
    measured_step_s: float | None
    calculon_step_s: float | None
    paper_state_gib: float | None
    """Figure 1: weights + gradients + optimizer state, GiB per GPU."""
    paper_activations_gib: float | None
    """Figure 1: activations, GiB per GPU."""


def _f(x: str) -> float | None:
    return float(x) if x.strip() else None


def default_path() -> Path:
    """Path of the shipped Korthikanti et al. 2022 Table 5 cases,
    ``ultracluster/data/korthikanti-table5.csv``."""
    return Path(str(resources.files("ultracluster") / "data" / "korthikanti-table5.csv"))


def cases(path: str | Path | None = None) -> list[Case]:
    """Every case of the table."""
    out = []
    with open(path or default_path(), newline="") as fh:
        for r in csv.DictReader(fh):
            h = int(r["hidden"])
            model = TransformerSpec(
                name=r["model"], num_layers=int(r["layers"]), hidden=h,
                num_heads=int(r["heads"]), num_kv_heads=int(r["heads"]),
                ffn_hidden=int(r["ffn_hidden"]), gated_ffn=False, vocab=int(r["vocab"]),
                tied_embeddings=True, bias=True, dropout=True,
                learned_positions=int(r["seq_len"]), max_seq_len=int(r["seq_len"]))
            vpp = int(r["vpp"])
            plan = Plan(
                dims=ParallelDims(tp=int(r["tp"]), pp=int(r["pp"]), vpp=vpp, dp=int(r["dp"]),
                                  sequence_parallel=r["sequence_parallel"] == "true"),
                micro_batch=int(r["micro_batch"]), global_batch=int(r["global_batch"]),
                seq_len=int(r["seq_len"]), zero=0, recompute=r["recompute"],  # type: ignore[arg-type]
                precision=r["precision"],  # type: ignore[arg-type]
                schedule=schedule_for(vpp),
                attention=r["attention"],  # type: ignore[arg-type]
                tp_comm_overlap=r["tp_overlap"] == "true", dp_comm_overlap=False,
                # Megatron-LM v3.0 (2022) waited on every pipeline send, and issued the
                # backward's column-parallel collectives asynchronously (`frameworks`)
                pp_comm_overlap=False, tp_async_backward=True)
            out.append(Case(name=r["case"], model=model, plan=plan,
                            measured_step_s=_f(r["measured_step_s"]),
                            calculon_step_s=_f(r["calculon_step_s"]),
                            paper_state_gib=_f(r["paper_fig1_params_opt_gib"]),
                            paper_activations_gib=_f(r["paper_fig1_activations_gib"])))
    return out


def uncalibrated(cluster: Cluster) -> HwContext:
    """The cluster's figures with nothing fitted: the catalogue's benchmarked GEMM and attention
    rates as they are (every `Efficiency` multiplier 1), beside which the peer benchmark shows
    what the fitted values change."""
    hw = hw_context(cluster)
    return replace(hw, eff=replace(hw.eff, matmul_eff_max=1.0, fp8_eff_ratio=1.0,
                                   attention_eff_ratio=1.0))


def predict_case(case: Case, *, calibrated: bool = False,
                 values: Mapping[str, float] | None = None) -> Estimate:
    """The case through `estimate` on DGX A100 nodes, memory not enforced (the ``none`` rows
    are the paper's own examples of plans that do not fit): with the catalogue's rates as they
    are; with the shipped calibration if `calibrated` (as `simulate` runs); or with `values`
    (`Efficiency` fields, such as the values fitted without the paper's rows) overlaid on it."""
    cluster = single_system_cluster(SYSTEM, case.plan.dims.world)
    job = TrainingJob(tokens=1e12, seq_len=case.plan.seq_len)  # any: step time ignores it
    hw = uncalibrated(cluster)
    if calibrated or values is not None:
        hw = hw_context(cluster)
        hw = replace(hw, eff=replace(hw.eff, **dict(values or {})))
    return estimate(cluster=cluster, model=case.model, job=job, plan=case.plan, hw=hw,
                    check_memory=False)


def values_without_paper(results: Iterable[RowResult]) -> dict[str, float]:
    """The efficiency values fitted without the paper's rows: the leave-one-source-out values
    of its rows in `validate`'s results (the cases are also rows of the measurements, so the
    shipped calibration would score them in-sample)."""
    for r in results:
        if r.group.startswith(PAPER) and r.loo_value is not None:
            return {FITTED_FIELD: r.loo_value, ATTENTION: r.loo_attention}
    raise ConfigError(f"measurements: no row whose source begins {PAPER!r}")
