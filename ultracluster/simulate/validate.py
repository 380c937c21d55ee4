"""`validate()`: predict every published run in a measurements CSV and report the error.

The CSV schema is ``reference/measurements.csv``'s (`measurements` reads and checks it).
Settings a row does not state take the documented default of the framework that produced it
(`frameworks`), not the fastest plan that fits; the range of predictions over every
alternative of those silent settings is reported beside. Precision empty: bf16 (A100 FP16
and BF16 peaks are equal).

Three figures per row: ``predicted`` with the shipped calibration (what `simulate` uses,
fitted on every clean row: in-sample), ``loo`` with the calibration refitted without the
row's source (the honest figure, `loo`), and an interval from the other sources' LOO
residuals. ``prediction_interval`` is `simulate`'s interval around ``predicted`` (the shipped
LOO residual quantiles): on a CSV of runs the calibration never saw, its coverage is the test.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from itertools import product
from pathlib import Path
from typing import Any, cast

import numpy as np

from ultracluster.cluster.model import Cluster
from ultracluster.cluster.presets import single_system_cluster
from ultracluster.errors import ConfigError
from ultracluster.hardware.systems import get_system
from ultracluster.plan.dims import ParallelDims, stages_fit
from ultracluster.plan.plan import Plan
from ultracluster.plan.vocab import Attention, Precision, Recompute, schedule_for
from ultracluster.simulate import loo
from ultracluster.simulate.calibration import (
    ATTENTION, CALIBRATION, DENSE, EFFICIENCY, FITTED_FIELD, Efficiency, efficiency_for,
    fitted_efficiencies, interval_for, model_class)
from ultracluster.simulate.context import HwContext, ModelContext, hw_context, model_context
from ultracluster.simulate.core import evaluate
from ultracluster.simulate.estimate import Estimate, estimate
from ultracluster.simulate.frameworks import (
    FRAMEWORKS, MEMORY_LADDER, default_vpp, framework_of)
from ultracluster.simulate.measurements import (
    RECOMPUTE, SHARDING, STATED_BY, default_measurements, get_choice, get_int, is_flagged,
    measured, read_rows, row_layout, row_model)
from ultracluster.simulate.pipeline import smallest_interleaving
from ultracluster.simulate.planarrays import from_plan
from ultracluster.units import human_bytes
from ultracluster.workload.job import TrainingJob
from ultracluster.workload.spec import TransformerSpec

__all__ = ["RowResult", "Summary", "Validation", "default_measurements", "read_rows",
           "summarize", "validate", "validate_full"]
MICRO_BATCHES = (1, 2, 4, 8, 16)
"""Micro-batch sizes spanned when a source does not state one."""


@dataclass(frozen=True, kw_only=True, slots=True)
class RowSetup:
    """One row, resolved: its hardware, model and the plan its framework's defaults give."""

    id: str
    group: str
    family: str
    framework: str
    measured: float | None
    flagged: bool
    cluster: Cluster
    model: TransformerSpec
    job: TrainingJob
    hw: HwContext
    mc: ModelContext
    plan: Plan
    chosen: dict[str, Any]
    alternatives: tuple[Plan, ...]
    """Every plan consistent with what the row states (silent settings spanned)."""

    def run(self, plan: Plan, eff: Efficiency) -> Estimate:
        """The row's estimate for `plan` with the efficiency parameters `eff`, memory not
        enforced."""
        return estimate(cluster=self.cluster, model=self.model, job=self.job, plan=plan,
                        hw=replace(self.hw, eff=eff), mc=self.mc, check_memory=False)


@dataclass(frozen=True, kw_only=True, slots=True)
class RowResult:
    """One validation row."""

    id: str
    measured: float | None
    predicted: float | None
    skipped: str | None = None
    chip: str = ""
    chosen: dict[str, Any] = field(default_factory=dict)
    estimate: Estimate | None = None
    framework: str = ""
    group: str = ""
    flagged: bool = False
    loo_predicted: float | None = None
    loo_value: float | None = None
    loo_attention: float = loo.ATTN_PRIOR
    """The attention ratio of the leave-one-source-out fit (`calibration.ATTENTION`)."""
    interval: tuple[float, float] | None = None
    """LOO prediction's 80% range (tokens/s per chip)."""
    silent_range: tuple[float, float] | None = None
    """Least and most tokens/s per chip over the silent settings (plans that fit)."""
    model_class: str = DENSE
    """Whose residuals give its intervals (`calibration.model_class`)."""

    @property
    def error_pct(self) -> float | None:
        """(predicted - measured) / measured in percent; None without both."""
        return _err(self.predicted, self.measured)

    @property
    def loo_error_pct(self) -> float | None:
        """As `error_pct`, for the leave-one-source-out prediction."""
        return _err(self.loo_predicted, self.measured)

    def to_json(self) -> dict[str, Any]:
        """The row as `ultracluster validate --json` writes it."""
        out: dict[str, Any] = {"id": self.id, "measured_tokens_per_s_per_chip": self.measured,
                               "predicted_tokens_per_s_per_chip": self.predicted,
                               "error_pct": self.error_pct}
        if self.skipped:
            out["skipped"] = self.skipped
        if self.measured is None and self.skipped is None:
            out["unmeasured"] = True
        if self.chosen:
            out["chosen"] = self.chosen
        if self.skipped is None:
            out["framework"] = self.framework
            out["source"] = self.group
            out["flagged"] = self.flagged
            out["loo"] = {"predicted_tokens_per_s_per_chip": self.loo_predicted,
                          "error_pct": self.loo_error_pct, FITTED_FIELD: self.loo_value,
                          ATTENTION: self.loo_attention}
            if self.interval:
                lo, hi = self.interval
                out["interval"] = {"level": loo.LEVEL, "lo": lo, "hi": hi, "inside": (
                    None if self.measured is None else lo <= self.measured <= hi)}
            if self.predicted is not None and (iv := interval_for(self.model_class)):
                lo, hi = iv.throughput(self.predicted)
                out["prediction_interval"] = {
                    "level": iv.level, "lo": lo, "hi": hi,
                    "inside": None if self.measured is None else lo <= self.measured <= hi}
            if self.silent_range:
                out["silent_range"] = {"lo": self.silent_range[0], "hi": self.silent_range[1]}
        return out


def _err(pred: float | None, meas: float | None) -> float | None:
    if pred is None or meas is None or not math.isfinite(pred):
        return None
    return 100.0 * (pred - meas) / meas


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


@dataclass(frozen=True, kw_only=True, slots=True)
class Summary:
    n: int
    median_abs_error_pct: float
    mean_abs_error_pct: float
    p90_abs_error_pct: float
    max_abs_error_pct: float

    def to_json(self) -> dict[str, float | int | None]:
        """NaN (no rows) is written as null: JSON has no NaN."""
        return {"n": self.n, "median_abs_error_pct": _finite(self.median_abs_error_pct),
                "mean_abs_error_pct": _finite(self.mean_abs_error_pct),
                "p90_abs_error_pct": _finite(self.p90_abs_error_pct),
                "max_abs_error_pct": _finite(self.max_abs_error_pct)}


def summarize(results: Iterable[RowResult], *, use_loo: bool = False) -> Summary:
    """Absolute-error statistics over the rows with a prediction and a measurement
    (leave-one-source-out errors with `use_loo`)."""
    errs = np.array([abs(e) for r in results
                     if (e := (r.loo_error_pct if use_loo else r.error_pct)) is not None])
    if errs.size == 0:
        nan = math.nan
        return Summary(n=0, median_abs_error_pct=nan, mean_abs_error_pct=nan,
                       p90_abs_error_pct=nan, max_abs_error_pct=nan)
    return Summary(n=int(errs.size), median_abs_error_pct=float(np.median(errs)),
                   mean_abs_error_pct=float(errs.mean()),
                   p90_abs_error_pct=float(np.percentile(errs, 90)),
                   max_abs_error_pct=float(errs.max()))


# ---- resolving a row ---------------------------------------------------------------------

def _recompute(fw: str, word: str) -> dict[str, Any]:
    """The plan fields a framework's recomputation word stands for (torchtitan's "selective"
    is full checkpointing of every second block)."""
    every = FRAMEWORKS[fw].selective_block_every
    if word == "selective" and every:
        return {"recompute": Recompute.FULL, "recompute_every": every}
    return {"recompute": cast(Recompute, word), "recompute_every": 1}  # Plan checks the word


def _plan(layout: Any, *, model: TransformerSpec, seq_len: int, mb: int, zero: int,
          recompute: str, vpp: int, precision: str, tov: bool, dov: bool, sp: bool,
          fw: str, attention: str = "flash", pov: bool | None = None) -> Plan:
    plan = Plan(
        dims=ParallelDims(tp=layout.tp, pp=layout.pp, dp=layout.dp, cp=layout.cp, ep=layout.ep,
                          vpp=vpp, sequence_parallel=sp and layout.tp > 1),
        micro_batch=mb, global_batch=layout.global_batch, seq_len=seq_len, zero=zero,
        **_recompute(fw, recompute),
        precision=cast(Precision, precision), schedule=schedule_for(vpp), tp_comm_overlap=tov,
        dp_comm_overlap=dov,
        pp_comm_overlap=FRAMEWORKS[fw].pp_comm_overlap if pov is None else pov,
        tp_async_backward=FRAMEWORKS[fw].tp_async_backward,
        grad_reduce_in_fp32=FRAMEWORKS[fw].grad_reduce_in_fp32,
        recompute_early_stop=FRAMEWORKS[fw].recompute_early_stop,
        attention=cast(Attention, attention), order=FRAMEWORKS[fw].order)
    plan.dims.check(model=model)  # Megatron's layers-per-virtual-stage rule
    return plan


def _settings(row: Mapping[str, str], fw: str, layout: Any, layers: int
              ) -> tuple[dict[str, Any], set[str]]:
    """The row's stated settings, the framework's defaults for the rest, and which are silent."""
    d = FRAMEWORKS[fw]
    silent: set[str] = set()

    def pick(key: str, stated: Any, default: Any) -> Any:
        if stated is None:
            if key not in d.stated:
                silent.add(key)
            return default
        return stated

    per_replica = layout.global_batch // layout.dp if layout.global_batch % layout.dp == 0 else 1
    vpp_cell = get_int(row, "vpp") if (row.get("vpp") or "").strip() else None
    mb_cell = (row.get("micro_batch") or "").strip()
    pov = get_choice(row, "pp_comm_overlap", ("0", "1"))
    vpp_default = default_vpp(d, pp=layout.pp, layers=layers)
    if pov == "1" and vpp_default == 1 and layout.pp > 1:
        # Megatron-LM overlaps pipeline sends only under the interleaved schedule
        # (`validate_args` turns ``overlap_p2p_comm`` off without virtual stages), so a run
        # that states overlapped sends interleaved: the smallest interleaving it accepts
        mb_stated = (get_int(row, "micro_batch") if mb_cell
                     else d.micro_batch if isinstance(d.micro_batch, int) else 1)
        vpp_default = smallest_interleaving(pp=layout.pp, layers=layers,
                                            microbatches=max(1, per_replica // mb_stated))
    stages = layout.pp * (vpp_cell or vpp_default)
    if isinstance(d.micro_batch, int):
        mb_default = d.micro_batch
    elif layout.pp == 1:  # no gradient accumulation: the replica's share in one micro-batch
        mb_default = per_replica
    else:  # pipelined: micro-batches of 1, or as many micro-batches as stages
        mb_default = max(1, per_replica // stages) if d.micro_batch == "stages" else 1
    shard = get_choice(row, "sharding", tuple(SHARDING))
    tov = get_choice(row, "tp_comm_overlap", ("0", "1"))
    sp = get_choice(row, "sequence_parallel", ("0", "1"))
    dov = get_choice(row, "dp_comm_overlap", ("0", "1"))
    s = {
        "micro_batch": pick("micro_batch", get_int(row, "micro_batch") if mb_cell else None,
                            mb_default),
        "zero": pick("zero", None if shard is None else SHARDING[shard],
                     d.zero if layout.dp > 1 else 0),
        "recompute": pick("recompute", get_choice(row, "recompute", RECOMPUTE), d.recompute),
        "vpp": pick("vpp", vpp_cell, vpp_default),
        "tov": pick("tp_comm_overlap", None if tov is None else tov == "1",
                    d.tp_comm_overlap and layout.tp > 1),
        "sp": pick("sequence_parallel", None if sp is None else sp == "1", d.sequence_parallel),
        "dov": pick("dp_comm_overlap", None if dov is None else dov == "1", d.dp_comm_overlap),
        "pov": None if pov is None else pov == "1",
        "precision": (row.get("precision") or "").strip() or "bf16",
        "attention": d.attention,
    }
    if d.sp_with_selective and "sequence_parallel" in silent and s["recompute"] == "selective":
        s["sp"] = True  # the paper's pairing (`FrameworkDefaults.sp_with_selective`)
    if layout.global_batch % (layout.dp * s["micro_batch"]):
        s["micro_batch"] = 1
    if layout.pp > 1 and s["zero"] == 3:
        s["zero"] = d.zero3_with_pipeline  # what the framework's FSDP does when pipelining
    if s["tov"] and layout.tp > 1 and "sequence_parallel" in silent:
        # Megatron-LM refuses --tp-comm-overlap without --sequence-parallel (arguments.py:
        # "Tensor parallel communication/GEMM overlap can happen only when sequence
        # parallelism is enabled"), so a run that overlapped TP ran sequence-parallel
        s["sp"] = True
        silent.discard("sequence_parallel")
    return s, silent


def _alternatives(layout: Any, s: dict[str, Any], silent: set[str], *,
                  model: TransformerSpec, seq_len: int, fw: str) -> tuple[Plan, ...]:
    d = FRAMEWORKS[fw]
    span = {
        "micro_batch": sorted({*MICRO_BATCHES, s["micro_batch"]}),
        "zero": sorted({0, 1, s["zero"]}) if layout.dp > 1 else [0],
        "recompute": list(RECOMPUTE),
        "vpp": [v for v in sorted({1, 2, 4, 8, s["vpp"]})  # the planner's VPP_DEGREES
                if (layout.pp > 1 or v == 1)
                and stages_fit(layout.pp, v, model.num_layers)],
        "tov": [False, True] if layout.tp > 1 else [False],
        "sp": [False, True] if layout.tp > 1 and d.has_sequence_parallel else [s["sp"]],
    }
    names = {"tov": "tp_comm_overlap", "sp": "sequence_parallel"}
    keys = list(span)
    lists = [span[k] if names.get(k, k) in silent else [s[k]] for k in keys]
    plans = []
    for combo in product(*lists):
        c = dict(zip(keys, combo, strict=True))
        if layout.global_batch % (layout.dp * c["micro_batch"]):
            continue
        if c["tov"] and not c["sp"] and layout.tp > 1:
            continue  # Megatron refuses TP overlap without sequence parallelism
        try:
            plans.append(_plan(layout, model=model, seq_len=seq_len, mb=c["micro_batch"],
                               zero=c["zero"], recompute=c["recompute"], vpp=c["vpp"],
                               precision=s["precision"], tov=c["tov"], dov=s["dov"], pov=s["pov"],
                               sp=c["sp"], attention=s["attention"], fw=fw))
        except ConfigError:
            continue
    return tuple(plans)


def setup_row(row: Mapping[str, str]) -> RowSetup:
    """Resolve a row (raises `ConfigError` for hardware the catalogue lacks). A vpp read from
    the source's other rows (`measurements.with_siblings`) that this row's batch cannot
    interleave with is dropped: the row then takes its framework's default."""
    try:
        return _setup_row(row)
    except ConfigError:
        if not row.get(STATED_BY):
            raise
        return _setup_row({k: v for k, v in row.items() if k != STATED_BY} | {"vpp": ""})


def _setup_row(row: Mapping[str, str]) -> RowSetup:
    model = row_model(row)
    seq_len = get_int(row, "seq_len")
    layout = row_layout(row, chips_per_node=get_system(row["system"]).chips_per_node)
    cluster = single_system_cluster(row["system"], layout.n_chips, chip=row["chip"])
    chip = cluster.sites[0].system.chip
    efficiency_for(chip)  # a family without parameters is a ConfigError (the row is skipped)
    fam: str = chip.family
    fw = framework_of(row, family=fam)
    model = replace(model, dropout=FRAMEWORKS[fw].dropout)
    s, silent = _settings(row, fw, layout, model.num_layers)
    plan = _plan(layout, model=model, seq_len=seq_len, mb=s["micro_batch"], zero=s["zero"],
                 recompute=s["recompute"], vpp=s["vpp"], precision=s["precision"],
                 tov=s["tov"], dov=s["dov"], sp=s["sp"], attention=s["attention"], fw=fw,
                 pov=s["pov"])
    hw = hw_context(cluster, efficiency=EFFICIENCY[fam])
    mc = model_context(model, seq_len=seq_len)
    job = TrainingJob(tokens=1e12, seq_len=seq_len)  # any: throughput does not depend on it
    setup = RowSetup(
        id=row["id"], group=(row.get("source") or "").strip() or row["id"], family=fam,
        framework=fw, measured=measured(row), flagged=is_flagged(row), cluster=cluster,
        model=model, job=job, hw=hw, mc=mc, plan=plan, chosen={},
        alternatives=_alternatives(layout, s, silent, model=model, seq_len=seq_len, fw=fw))
    plan, chosen = _fit_memory(setup, silent)
    chosen |= {"micro_batch": plan.micro_batch, "zero": plan.zero, "recompute": plan.recompute,
               "vpp": plan.dims.vpp, "tp_comm_overlap": plan.tp_comm_overlap,
               "ep_comm_overlap": plan.ep_comm_overlap, "silent": sorted(silent)}
    if plan.recompute_every > 1:
        chosen["recompute_every"] = plan.recompute_every
    if row.get(STATED_BY):
        chosen[STATED_BY] = row[STATED_BY]  # vpp read from the source's other rows
    return replace(setup, plan=plan, chosen=chosen)


def _saves(plan: Plan, key: str, value: object, fw: str) -> bool:
    """Whether setting `key` to `value` saves memory over the plan's current setting."""
    if key == "sequence_parallel":
        return bool(FRAMEWORKS[fw].has_sequence_parallel and plan.dims.tp > 1
                    and not plan.dims.sequence_parallel and value)
    cur = getattr(plan, key)
    if key == "recompute":
        new = _recompute(fw, str(value))
        return bool((RECOMPUTE.index(cur), -plan.recompute_every)
                    < (RECOMPUTE.index(new["recompute"]), -new["recompute_every"]))
    if key == "zero":
        return bool(plan.dims.dp > 1 and cur < cast(int, value))
    return bool(cur > cast(int, value))


def _fit_memory(setup: RowSetup, silent: set[str]) -> tuple[Plan, dict[str, Any]]:
    """The defaults, or the first steps of `MEMORY_LADDER` (silent settings only) that make
    the plan fit our memory model."""
    plan, eff = setup.plan, setup.hw.eff
    est = setup.run(plan, eff)
    turned: list[str] = []
    for key, value in MEMORY_LADDER:
        if est.memory_per_chip_bytes <= setup.hw.hbm_bytes:
            break
        if key not in silent or not _saves(plan, key, value, setup.framework):
            continue
        changes: dict[str, Any] = {key: value}
        if key == "sequence_parallel":
            changes = {"dims": replace(plan.dims, sequence_parallel=bool(value))}
        elif key == "recompute":
            changes = _recompute(setup.framework, str(value))
        plan = replace(plan, **changes)
        turned.append(f"{key} {value}")
        est = setup.run(plan, eff)
    chosen: dict[str, Any] = {}
    if turned:
        chosen["default_did_not_fit"] = f"{setup.framework} defaults over memory; set " + \
            ", ".join(turned)
    if est.memory_per_chip_bytes > setup.hw.hbm_bytes:
        chosen["memory_warning"] = (
            f"model says {human_bytes(est.memory_per_chip_bytes)} per chip > "
            f"{human_bytes(setup.hw.hbm_bytes)}")
    return plan, chosen


# ---- the whole table ---------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True, slots=True)
class Validation:
    results: list[RowResult]
    summary: Summary
    """In-sample: the shipped calibration, every row with a target."""
    loo_summary: Summary
    """Leave-one-source-out, every row with a target."""
    clean: Summary
    clean_loo: Summary
    """The same on rows not flagged UNRELIABLE / LOWER BOUND (the fitted rows)."""
    coverage: tuple[int, int]
    """(clean rows inside their 80% interval, clean rows with one)."""
    fit_all: dict[str, float]
    """The calibration refitted on every clean row (should equal the shipped one)."""
    mode: loo.Mode

    def to_json(self) -> dict[str, Any]:
        """Rows, summaries and interval coverage as `ultracluster validate --json` writes them."""
        inside, n = self.coverage
        rows = [r.to_json() for r in self.results]
        shipped = [r["prediction_interval"]["inside"] for r in rows
                   if r.get("prediction_interval") and not r.get("flagged")
                   and r["prediction_interval"]["inside"] is not None]
        return {"rows": rows,
                "summary": self.summary.to_json(),
                "loo": {"summary": self.loo_summary.to_json(),
                        "clean_summary": self.clean_loo.to_json(),
                        "in_sample_clean_summary": self.clean.to_json(),
                        "interval_level": loo.LEVEL, "inside": inside, "with_interval": n,
                        "coverage": inside / n if n else None, "mode": self.mode,
                        "prediction_interval_coverage": (
                            sum(shipped) / len(shipped) if shipped else None),
                        "coverage_by_class": self.coverage_by_class(),
                        "fitted_parameter": FITTED_FIELD, "fit_on_all_rows": self.fit_all}}

    def coverage_by_class(self) -> dict[str, dict[str, int]]:
        """Per model class: clean rows inside their 80% interval, and rows with one
        (`loo.coverage` on each class's rows)."""
        out: dict[str, dict[str, int]] = {}
        for cls in sorted({r.model_class for r in self.results if not r.flagged}):
            rows = [r for r in self.results if not r.flagged and r.model_class == cls]
            inside, n = loo.coverage(
                np.array([np.nan if r.measured is None else r.measured for r in rows]),
                np.array([r.interval[0] if r.interval else np.nan for r in rows]),
                np.array([r.interval[1] if r.interval else np.nan for r in rows]))
            if n:
                out[cls] = {"inside": inside, "with_interval": n}
        return out


def fit_data(setups: list[RowSetup]) -> loo.FitData:
    """The simulator at every (`loo.ATTN_GRID`, `loo.GRID`) point for every row (the fit's
    only cost): one evaluation a row, the two fitted fields given as arrays that broadcast
    through the model's numpy formulas (the bulk path the planner runs; `estimate` gives the
    same numbers point by point, `tests/validation/test_validation.py`)."""
    from ultracluster.simulate.calibration import PRIORS

    shape = (loo.ATTN_GRID.size, loo.GRID.size)
    grid: dict[str, Any] = {FITTED_FIELD: loo.GRID[None, :], ATTENTION: loo.ATTN_GRID[:, None]}
    table = np.array([np.broadcast_to(evaluate(
        from_plan(s.plan), replace(s.hw, eff=replace(PRIORS[s.family], **grid)),
        s.mc, tokens=s.job.tokens).tokens_per_s_per_chip, shape) for s in setups])
    meas = np.array([np.nan if s.measured is None else s.measured for s in setups])
    return loo.FitData(ids=tuple(s.id for s in setups), groups=tuple(s.group for s in setups),
                       families=tuple(s.family for s in setups), measured=meas,
                       usable=np.array([s.measured is not None and not s.flagged
                                        for s in setups], dtype=bool),
                       table=table.reshape(len(setups), loo.ATTN_GRID.size, loo.GRID.size))


def validate_full(
    path: str | Path | None = None, *, efficiencies: Mapping[str, Efficiency] | None = None,
    mode: loo.Mode | None = None,
) -> Validation:
    """Predict every row of the CSV at `path` (default: the shipped reference runs) in-sample
    and leave-one-source-out, with intervals and the range over silent settings."""
    rows = read_rows(path or default_measurements())
    effs = dict(efficiencies or EFFICIENCY)
    mode = mode or cast(loo.Mode, CALIBRATION.get("mode", "family"))
    setups: list[RowSetup | RowResult] = []
    for r in rows:
        try:
            setups.append(setup_row(r))
        except ConfigError as err:
            setups.append(RowResult(id=r["id"], measured=measured(r), predicted=None,
                                    skipped=str(err), chip=r.get("chip", "")))
    ok = [s for s in setups if isinstance(s, RowSetup)]
    data = fit_data(ok)
    lres = loo.leave_one_source_out(data, mode=mode)
    loo_pred = np.array([np.nan if v is None else s.run(s.plan, fitted_efficiencies(
        {s.family: v, ATTENTION: a})[s.family]).tokens_per_s_per_chip
        for s, v, a in zip(ok, lres.values, lres.attention, strict=True)])
    resid = loo.residuals(data.measured, loo_pred)
    ivs = loo.row_intervals(data.groups, resid, data.usable,
                            classes=[model_class(s.model) for s in ok])
    by_id: dict[str, RowResult] = {}
    for i, s in enumerate(ok):
        by_id[s.id] = _result(s, effs[s.family], loo_pred[i], lres.values[i], ivs[i],
                              lres.attention[i])
    results = [by_id[s.id] if isinstance(s, RowSetup) else s for s in setups]
    clean = [r for r in results if not r.flagged]
    lo = np.array([r.interval[0] if r.interval else np.nan for r in clean])
    hi = np.array([r.interval[1] if r.interval else np.nan for r in clean])
    meas = np.array([np.nan if r.measured is None else r.measured for r in clean])
    return Validation(results=results, summary=summarize(results),
                      loo_summary=summarize(results, use_loo=True), clean=summarize(clean),
                      clean_loo=summarize(clean, use_loo=True),
                      coverage=loo.coverage(meas, lo, hi),
                      fit_all=loo.fit(data, np.ones(len(ok), dtype=bool), mode=mode), mode=mode)


def _result(s: RowSetup, eff: Efficiency, loo_pred: float, loo_value: float | None,
            iv: tuple[float, float] | None, loo_attention: float) -> RowResult:
    best = s.run(s.plan, eff)
    fits = [e.tokens_per_s_per_chip for p in s.alternatives
            if (e := s.run(p, eff)).memory_per_chip_bytes <= s.hw.hbm_bytes]
    lp = _finite(float(loo_pred))
    return RowResult(
        id=s.id, measured=s.measured, predicted=best.tokens_per_s_per_chip,
        chip=s.hw.chip_name, chosen=s.chosen | {"mfu": round(best.mfu, 4)}, estimate=best,
        framework=s.framework, group=s.group, flagged=s.flagged, loo_predicted=lp,
        loo_value=loo_value, loo_attention=loo_attention,
        interval=None if iv is None or lp is None else (lp * math.exp(iv[0]),
                                                        lp * math.exp(iv[1])),
        silent_range=(min(fits), max(fits)) if fits else None, model_class=model_class(s.model))


def validate(
    path: str | Path | None = None, *, efficiencies: Mapping[str, Efficiency] | None = None
) -> tuple[list[RowResult], Summary]:
    """The rows and the in-sample summary (see `validate_full` for LOO and intervals)."""
    v = validate_full(path, efficiencies=efficiencies)
    return v.results, v.summary
