"""`validate()`: predict every published run in a measurements CSV and report the error.

The CSV schema is ``reference/measurements.csv``'s (described in its ``.md``). A row gives the
model's shape, chip, system, parallel layout, sharding, recomputation, batch and precision.
Where the source is silent the same rules apply to every row, never a per-row constant:

- micro-batch and TP communication overlap (never in the schema), and sharding, recomputation
  and virtual pipeline stages when empty: the fastest setting that fits in memory (what the
  practitioners tuned);
- precision empty: bf16 (A100 FP16 and BF16 peaks are equal);
- vocabulary empty: 51,200 (GPT-2 BPE padded as Megatron pads it);
- ``ffn_hidden == 4 x hidden``: a plain two-matrix MLP (GPT, MPT, Nemotron); else gated (SwiGLU);
- ``kv_heads`` empty: multi-head latent attention with DeepSeek-V3's ranks;
- MoE rows: every layer is MoE (the schema has no dense-layer count);
- ``tp``/``dp`` empty: tp = chips per node, dp = chips / (tp x pp x cp);
- ``global_batch_seqs`` empty: 4 x pp micro-batches of one sequence per replica.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from itertools import product
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np

from ultracluster.cluster.presets import single_system_cluster
from ultracluster.errors import ConfigError
from ultracluster.hardware.systems import get_system
from ultracluster.plan.dims import ParallelDims
from ultracluster.plan.plan import Plan
from ultracluster.simulate.context import hw_context, model_context
from ultracluster.simulate.estimate import Estimate, estimate
from ultracluster.simulate.calibration import Efficiency, efficiency_for
from ultracluster.units import human_bytes
from ultracluster.workload.job import TrainingJob
from ultracluster.workload.spec import MLASpec, MoESpec, TransformerSpec

REQUIRED_COLUMNS = ("id", "n_layers", "hidden", "heads", "kv_heads", "ffn_hidden", "vocab",
                    "seq_len", "moe_experts", "moe_topk", "moe_shared_experts", "chip", "system",
                    "n_chips", "tp", "pp", "dp", "cp", "ep", "vpp", "sharding", "recompute",
                    "global_batch_seqs", "precision", "tokens_per_s_per_chip")
DEFAULT_VOCAB = 51_200
MICRO_BATCHES = (1, 2, 4, 8, 16)
DEEPSEEK_MLA = MLASpec(q_lora_rank=1536, kv_lora_rank=512, qk_nope_head_dim=128,
                       qk_rope_head_dim=64, v_head_dim=128)


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

    @property
    def error_pct(self) -> float | None:
        if self.measured is None or self.predicted is None:
            return None
        return 100.0 * (self.predicted - self.measured) / self.measured

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "measured_tokens_per_s_per_chip": self.measured,
                               "predicted_tokens_per_s_per_chip": self.predicted,
                               "error_pct": self.error_pct}
        if self.skipped:
            out["skipped"] = self.skipped
        if self.measured is None and self.skipped is None:
            out["unmeasured"] = True
        if self.chosen:
            out["chosen"] = self.chosen
        return out


def default_measurements() -> Path:
    return Path(str(resources.files("ultracluster") / "data" / "measurements.csv"))


def read_rows(path: str | Path) -> list[dict[str, str]]:
    p = Path(path)
    try:
        with p.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise ConfigError(f"{p}: missing column(s) {missing}")
            return list(reader)
    except FileNotFoundError:
        raise ConfigError(f"{p}: no such file") from None
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise ConfigError(f"{p}: cannot read as CSV ({e})") from None


def _int(row: Mapping[str, str], key: str, default: int | None = None) -> int:
    v = (row.get(key) or "").strip()
    if not v:
        if default is None:
            raise ConfigError(f"row {row.get('id')}: {key} is empty")
        return default
    try:
        x = float(v)
    except ValueError:
        raise ConfigError(f"row {row.get('id')}: {key} = {v!r} is not a number") from None
    if not x.is_integer() or x < 0:
        raise ConfigError(f"row {row.get('id')}: {key} = {v!r} is not a whole number")
    return int(x)


def row_model(row: Mapping[str, str]) -> TransformerSpec:
    h, heads = _int(row, "hidden"), _int(row, "heads")
    ffn = _int(row, "ffn_hidden")
    kv = (row.get("kv_heads") or "").strip()
    experts = _int(row, "moe_experts", 0)
    moe = (MoESpec(num_experts=experts, top_k=_int(row, "moe_topk"), expert_ffn_hidden=ffn,
                   num_shared_experts=_int(row, "moe_shared_experts", 0))
           if experts else None)
    return TransformerSpec(
        name=row.get("model") or row["id"], num_layers=_int(row, "n_layers"), hidden=h,
        num_heads=heads, num_kv_heads=int(kv) if kv else heads, ffn_hidden=ffn,
        gated_ffn=ffn != 4 * h, vocab=_int(row, "vocab", DEFAULT_VOCAB),
        max_seq_len=_int(row, "seq_len"), moe=moe, mla=None if kv else DEEPSEEK_MLA,
    )


def _choices(
    row: Mapping[str, str], key: str, valid: tuple[str, ...], silent: tuple[str, ...]
) -> tuple[str, ...]:
    """The row's value, or the `silent` alternatives when the field is empty."""
    v = (row.get(key) or "").strip()
    if not v:
        return silent
    if v not in valid:
        raise ConfigError(f"row {row.get('id')}: {key} = {v!r} (expected one of {valid})")
    return (v,)


def candidate_plans(row: Mapping[str, str], model: TransformerSpec) -> list[Plan]:
    """Every plan consistent with the row (silent fields spanned, see module docstring)."""
    n = _int(row, "n_chips")
    pp, cp = _int(row, "pp", 1), _int(row, "cp", 1)
    tp = _int(row, "tp", get_system(row["system"]).chips_per_node)
    dp = _int(row, "dp", max(1, n // (tp * pp * cp)))
    gb = _int(row, "global_batch_seqs", dp * 4 * pp)
    zeros = {"none": 0, "zero1": 1, "zero2": 2, "zero3": 3}
    shard = _choices(row, "sharding", tuple(zeros), ("none", "zero1"))
    modes = ("none", "selective", "full")
    recompute = _choices(row, "recompute", modes, modes)
    precision = (row.get("precision") or "").strip() or "bf16"
    vpp_raw = (row.get("vpp") or "").strip()
    vpps = [int(vpp_raw)] if vpp_raw else [v for v in (1, 2, 4, 8)
                                           if pp > 1 or v == 1
                                           if model.num_layers >= pp * v]
    ep = _int(row, "ep", 1)
    tp_ov = (False, True) if tp > 1 else (False,)
    ep_ov = (False,)  # MoE all-to-all overlap is a scheduler feature few runs state
    plans = []
    for mb, z, rc, vpp, tov, eov in product(MICRO_BATCHES, shard, recompute, vpps, tp_ov, ep_ov):
        if gb % (dp * mb):
            continue
        try:
            plans.append(Plan(
                dims=ParallelDims(tp=tp, pp=pp, dp=dp, cp=cp, ep=ep, vpp=vpp),
                micro_batch=mb, global_batch=gb, seq_len=_int(row, "seq_len"),
                zero=zeros[z], recompute=cast(Literal["none", "selective", "full"], rc),
                precision=cast(Literal["bf16", "fp16", "fp8"], precision),
                schedule="interleaved" if vpp > 1 else "1f1b",
                tp_comm_overlap=tov, ep_comm_overlap=eov))
        except ConfigError:
            continue
    return plans


def predict_row(
    row: Mapping[str, str], *, efficiencies: Mapping[str, Efficiency] | None = None
) -> RowResult:
    rid = row.get("id", "?")
    target = (row.get("tokens_per_s_per_chip") or "").strip()
    measured = float(target) if target else None
    try:
        model = row_model(row)
        n = _int(row, "n_chips")
        cluster = single_system_cluster(row["system"], n, chip=row["chip"])
        plans = candidate_plans(row, model)
        if not plans:
            raise ConfigError("no plan matches the row's layout and batch")
        chip = cluster.sites[0].system.chip
        eff = efficiency_for(chip, efficiencies)
        hw = hw_context(cluster, efficiency=eff)
        mc = model_context(model, seq_len=plans[0].seq_len)
        job = TrainingJob(tokens=1e12, seq_len=plans[0].seq_len)
        runs = [estimate(cluster=cluster, model=model, job=job, plan=plan, hw=hw, mc=mc,
                         check_memory=False) for plan in plans]
        fits = [e for e in runs if e.memory_per_chip_bytes <= hw.hbm_bytes]
        chosen: dict[str, Any] = {}
        if fits:
            best = min(fits, key=lambda e: e.step_time_s)
        else:  # the run happened, so it fitted: our memory model misses its savings
            best = min(runs, key=lambda e: e.memory_per_chip_bytes)
            chosen["memory_warning"] = (
                f"model says {human_bytes(best.memory_per_chip_bytes)} per chip > "
                f"{human_bytes(hw.hbm_bytes)}; predicted with the least-memory setting")
        p = best.plan
        chosen |= {"micro_batch": p.micro_batch, "zero": p.zero, "recompute": p.recompute,
                   "vpp": p.dims.vpp, "tp_comm_overlap": p.tp_comm_overlap,
                   "ep_comm_overlap": p.ep_comm_overlap, "mfu": round(best.mfu, 4)}
        return RowResult(id=rid, measured=measured, predicted=best.tokens_per_s_per_chip,
                         chip=row["chip"], estimate=best, chosen=chosen)
    except ConfigError as err:
        return RowResult(id=rid, measured=measured, predicted=None, skipped=str(err),
                         chip=row.get("chip", ""))


@dataclass(frozen=True, kw_only=True, slots=True)
class Summary:
    n: int
    median_abs_error_pct: float
    mean_abs_error_pct: float
    p90_abs_error_pct: float
    max_abs_error_pct: float

    def to_json(self) -> dict[str, float | int]:
        return {"n": self.n, "median_abs_error_pct": self.median_abs_error_pct,
                "mean_abs_error_pct": self.mean_abs_error_pct,
                "p90_abs_error_pct": self.p90_abs_error_pct,
                "max_abs_error_pct": self.max_abs_error_pct}


def summarize(results: Iterable[RowResult]) -> Summary:
    errs = np.array([abs(e) for r in results if (e := r.error_pct) is not None])
    if errs.size == 0:
        nan = math.nan
        return Summary(n=0, median_abs_error_pct=nan, mean_abs_error_pct=nan,
                       p90_abs_error_pct=nan, max_abs_error_pct=nan)
    return Summary(n=int(errs.size), median_abs_error_pct=float(np.median(errs)),
                   mean_abs_error_pct=float(errs.mean()),
                   p90_abs_error_pct=float(np.percentile(errs, 90)),
                   max_abs_error_pct=float(errs.max()))


def validate(
    path: str | Path | None = None, *, efficiencies: Mapping[str, Efficiency] | None = None
) -> tuple[list[RowResult], Summary]:
    """Predict every row of the CSV at `path` (default: the shipped reference runs).

    Args:
        efficiencies: per-family calibration to use instead of `calibration.EFFICIENCY`
            (the fitting script passes candidates here).
    """
    rows = read_rows(path or default_measurements())
    results = [predict_row(r, efficiencies=efficiencies) for r in rows]
    return results, summarize(results)
