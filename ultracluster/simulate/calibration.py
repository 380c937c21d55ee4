"""Efficiency parameters: the only fitted numbers in the simulator, and how far to trust them.

Each is a physical fraction of a catalogue peak, not a per-run fudge:

- ``matmul_eff_max``: the fraction of dense peak a large GEMM reaches (cuBLAS/NKI/XLA).
- ``matmul_half_dim``: the inner dimension k at which a GEMM would reach half of that if
  its K loop had a fixed cost besides (``k / (k + half_dim)``); 0 for every accelerator:
  a GEMM with a short K loop is slow because it moves many bytes for its FLOPs, which the
  roofline already charges (`compute.gemm_time`). `ultracluster calibrate` measures it on
  the runtime's own CPU.
- ``fp8_eff_ratio``: FP8 GEMM efficiency relative to BF16 (scaling, casts, amax reductions).
- ``attention_eff_ratio``: fused (flash) attention's efficiency relative to a GEMM's.
- ``memory_eff``: fraction of HBM bandwidth that elementwise kernels reach.
- ``scale_up_eff`` / ``scale_out_eff``: fraction of link bandwidth that collectives reach
  (NCCL bus bandwidth over line rate).
- ``layer_overhead_s``: fixed time per layer per micro-batch (forward + backward) that does
  not scale with the layer's size.

Only ``matmul_eff_max`` and ``attention_eff_ratio`` are fitted, and only where the data
supports it: ``python benchmarks/fit_calibration.py`` fits one pooled value of
``matmul_eff_max`` on every clean measured row, and one value per chip family that has at
least `MIN_ROWS` rows (other families take the pooled value); a third structure also fits one
``attention_eff_ratio`` for every family. Whichever structure predicts the rows of unseen
sources best (leave-one-source-out) is kept. It writes ``ultracluster/data/calibration.json``
(values, rows each was fitted on, leave-one-source-out errors and the residual quantiles that
give every prediction its interval); this module overlays those values on the priors below.
The other fields are priors (the link efficiencies from public NCCL and Neuron nccom-test
measurements where they exist; FP8 1.0,
the neutral value; memory 0.7 from an earlier in-sample fit, see docs/validation.md), never
refitted here.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from importlib import resources
from collections.abc import Mapping
from typing import Any

from ultracluster.errors import ConfigError
from ultracluster.hardware.chip import Chip
from ultracluster.workload.spec import TransformerSpec


@dataclass(frozen=True, kw_only=True, slots=True)
class Efficiency:
    """Achievable fractions of catalogue peaks for one chip family."""

    matmul_eff_max: float
    """Large-GEMM fraction of dense peak."""
    matmul_half_dim: float
    """GEMM dimension at which efficiency halves."""
    fp8_eff_ratio: float
    """FP8 GEMM efficiency relative to BF16."""
    attention_eff_ratio: float
    """Flash-attention efficiency relative to GEMM."""
    memory_eff: float
    """Fraction of HBM bandwidth reached by elementwise kernels."""
    scale_up_eff: float
    """Fraction of scale-up link bandwidth reached by collectives."""
    scale_out_eff: float
    """Fraction of NIC bandwidth reached by collectives."""
    layer_overhead_s: float = 0.0
    """Fixed seconds per layer per micro-batch (forward + backward)."""


# Priors, never refitted here (only `FITTED_FIELD` and `ATTENTION` are; module docstring,
# docs/validation.md):
# half_dim 0: no K-loop charge beyond the roofline's bytes (an earlier in-sample fit had
# 384, which charged a short K loop twice, once here and once as the bytes it moves, and
# read the small models of Narayanan et al. 2021 15% slow; leave-one-source-out prefers 0
# over 32-384, docs/validation.md). FP8 1.0: the same fraction of the chip's FP8 benchmark
# as of its BF16 one (the LOO loss is lowest there among 0.8-1.05). Memory 0.7 of HBM
# bandwidth is from an earlier in-sample fit, not from a source (the LOO loss is flat from
# 0.7 to 0.85); collectives at 0.75 of the
# scale-up link and 0.85 of the NIC follow public NCCL bus-bandwidth figures, but no run is
# cited: treat them as assumptions, except NVIDIA's NVLink (`NCCL_NVLINK`) and Trainium's
# NeuronLink (`NEURON_LINK`). The CPU's matmul 0.5 of peak is a placeholder:
# `ultracluster calibrate` measures the runtime's own machine instead.
_BASE = dict(matmul_half_dim=0.0, fp8_eff_ratio=1.0, attention_eff_ratio=1.0, memory_eff=0.7,
             scale_up_eff=0.75, scale_out_eff=0.85)

NCCL_NVLINK = 0.80
"""NCCL's ring bus bandwidth over NVLink: "450GB/s is the line rate. With the protocol overhead
(~20%) NCCL can get an effective NVLink bandwidth of 370GB/s" on 8 H100 (NCCL maintainer,
NVIDIA/nccl-tests issue #212, 2024): 1 - 20%, the overhead of NCCL's protocol, so the same on
Ampere's and Blackwell's NVLink (estimate: measured on Hopper only; 370/450 = 0.82 there)."""

NEURON_LINK = 0.38
"""Neuron collectives' ring bus bandwidth over NeuronLink, as a fraction of a chip's link
bandwidth in one direction. The Neuron docs' nccom-test guide (aws-neuron/aws-neuron-sdk
tools/neuron-sys-tools/nccom-test.rst, "Multiple Instances Example"; the guide says its figures
are not kept up to date) runs an fp32 all-reduce on 64 ranks (NeuronCores) of two
trn1.32xlarge: from 128 MiB to 1 GiB the time grows 37.6 ps per byte (6.28 ms at 128 MiB,
41.8 ms at 1 GiB; busbw 47 GiB/s). In this model that all-reduce is a ring over the 16 chips
of each instance, then over the two instances on 1/16 of the bytes at each chip's share of
the 800 Gb/s EFA at 0.85: 2 x (15/16 / (192 GB/s x f) + 1/2 / (16 x 6.25 GB/s x 0.85)) =
37.6 ps per byte gives f = 0.38. The guide's 2-rank all-reduce on one chip (52.8 GiB/s bus
bandwidth at 1 GiB, no NeuronLink involved) agrees: on Trainium1 Neuron's collectives move
about 55-70 GB/s per chip. Measured on Trainium1 only; Trainium2 and Trainium3 (the same Neuron
collectives on faster links) take the fraction as an estimate. No source says whether a later
generation's rate grows with its links, as taken here, or stays nearer Trainium1's."""

PRIORS: dict[str, Efficiency] = {
    # starting values, before the fitted ones are overlaid
    "nvidia-ampere": Efficiency(matmul_eff_max=1.0, **{**_BASE, "scale_up_eff": NCCL_NVLINK}),
    "nvidia-hopper": Efficiency(matmul_eff_max=1.0, **{**_BASE, "scale_up_eff": NCCL_NVLINK}),
    "nvidia-blackwell": Efficiency(matmul_eff_max=1.0, **{**_BASE, "scale_up_eff": NCCL_NVLINK}),
    "tpu": Efficiency(matmul_eff_max=1.0, **_BASE),
    "trainium": Efficiency(matmul_eff_max=1.0, **{**_BASE, "scale_up_eff": NEURON_LINK}),
    "amd-cdna": Efficiency(matmul_eff_max=1.0, **_BASE),
    "cpu": Efficiency(matmul_eff_max=0.50, **_BASE),
}


FITTED_FIELD = "matmul_eff_max"
"""The efficiency that `benchmarks/fit_calibration.py` fits per family."""
ATTENTION = "attention_eff_ratio"
"""The efficiency it fits once for every family, in the ``family+attention`` structure (a
key of the fitted values beside the families)."""
MIN_ROWS = 3
"""No value is fitted on fewer rows than this."""
POOLED = "pooled"
"""The key of the value fitted on every row (families with too few rows take it)."""
UNPOOLED = ("cpu",)
"""Families that keep their prior (the CPU runtime is calibrated by `ultracluster calibrate`)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Interval:
    """Spread of measured / predicted throughput over the leave-one-source-out residuals."""

    level: float
    """Central coverage the bounds aim at (0.8; `loo.quantiles`' conformal order statistics)."""
    log_lo: float
    """Lower quantile of ln(measured / predicted)."""
    log_hi: float
    """Upper quantile of ln(measured / predicted)."""
    rows: int
    """Residuals the quantiles come from."""

    def throughput(self, x: float) -> tuple[float, float]:
        """Bounds on a predicted throughput (tokens/s, MFU)."""
        return x * math.exp(self.log_lo), x * math.exp(self.log_hi)

    def duration(self, t: float) -> tuple[float, float]:
        """Bounds on a predicted time (a step, the run): the inverse of throughput's."""
        return t * math.exp(-self.log_hi), t * math.exp(-self.log_lo)


def calibration_path() -> str:
    """Path of the shipped fitted values, ``ultracluster/data/calibration.json``."""
    return str(resources.files("ultracluster") / "data" / "calibration.json")


def _load() -> dict[str, Any]:
    try:
        with open(calibration_path(), encoding="utf-8") as f:
            doc = json.load(f)
    except FileNotFoundError:
        return {}
    if not isinstance(doc, dict):
        raise ValueError(f"{calibration_path()}: not a JSON object")
    return doc


CALIBRATION: dict[str, Any] = _load()
"""What `benchmarks/fit_calibration.py` wrote (empty before the first fit)."""


def fitted_efficiencies(values: dict[str, float]) -> dict[str, Efficiency]:
    """Priors with `FITTED_FIELD` set per family (a family without a value takes the pooled
    one; with no pooled value either, its prior)."""
    out = {}
    for fam, prior in PRIORS.items():
        v = values.get(fam, None if fam in UNPOOLED else values.get(POOLED))
        out[fam] = prior if v is None else replace(prior, **{FITTED_FIELD: float(v)})
        if ATTENTION in values and fam not in UNPOOLED:
            out[fam] = replace(out[fam], **{ATTENTION: float(values[ATTENTION])})
    return out


EFFICIENCY: dict[str, Efficiency] = fitted_efficiencies({k: float(v) for k, v in CALIBRATION.get("values", {}).items()})
DENSE, MOE = "dense", "moe"
"""Model classes whose residuals give separate intervals (`loo.class_intervals`)."""


def model_class(model: TransformerSpec) -> str:
    """The interval class of a model: `MOE` with routed experts, else `DENSE`."""
    return MOE if model.moe is not None else DENSE


def _interval(d: Mapping[str, Any], level: float) -> Interval:
    return Interval(level=level, log_lo=float(d["log_lo"]), log_hi=float(d["log_hi"]),
                    rows=int(d["rows"]))


_iv: dict[str, Any] = CALIBRATION.get("interval") or {}
INTERVAL: Interval | None = _interval(_iv, float(_iv["level"])) if _iv else None
"""The interval of every run pooled (None before the first fit)."""
INTERVALS: dict[str, Interval] = {
    cls: _interval(d, float(_iv["level"])) for cls, d in _iv.get("by_class", {}).items()}
"""The interval of each model class that has enough rows of its own (`loo.class_intervals`)."""


def interval_for(cls: str) -> Interval | None:
    """The interval a prediction for a model of class `cls` carries: its class's, else the
    pooled one (None before the first fit)."""
    return INTERVALS.get(cls, INTERVAL)


def interval_json(*, step_time_s: float, tokens_per_s: float, mfu: float,
                  time_to_train_s: float | None, cls: str = DENSE) -> dict[str, Any] | None:
    """The `interval_for` bounds on an estimate's headline figures (None before the first
    fit).

    The spread is the leave-one-source-out residual spread of the published runs of the
    model's class: how far a prediction of a run whose source was not fitted has been from its
    measurement."""
    iv = interval_for(cls)
    if iv is None:
        return None
    ttt = (list(iv.duration(time_to_train_s))
           if time_to_train_s is not None and math.isfinite(time_to_train_s) else None)
    of = f" of {'MoE' if cls == MOE else cls} models" if cls in INTERVALS else ""
    return {"level": iv.level, "step_time_s": list(iv.duration(step_time_s)),
            "tokens_per_s": list(iv.throughput(tokens_per_s)), "mfu": list(iv.throughput(mfu)),
            "time_to_train_s": ttt,
            "basis": f"leave-one-source-out residuals of {iv.rows} published runs{of}"}


def calibration_for(family: str) -> dict[str, Any]:
    """What the shipped calibration applies to chips of `family`: each fitted value, whether
    it was fitted on the family's own rows or pooled over every row, and on how many."""
    vals = CALIBRATION.get("values", {})
    rows = CALIBRATION.get("rows_per_value", {})
    eff = EFFICIENCY.get(family)
    if eff is None:
        return {}
    own = family in vals
    out: dict[str, Any] = {
        "family": family, "structure": CALIBRATION.get("mode"),
        FITTED_FIELD: eff.matmul_eff_max,
        "fitted_on": ("prior (not calibrated)" if family in UNPOOLED or not vals else
                      f"{rows.get(family if own else POOLED, '?')} "
                      f"{'rows of this family' if own else 'rows of every family (pooled)'}"),
        ATTENTION: eff.attention_eff_ratio,
        "attention_fitted_on": (f"{rows.get(ATTENTION, '?')} rows with fused attention, "
                                "every family"
                                if ATTENTION in vals and family not in UNPOOLED
                                else "prior (not calibrated)"),
        "file": "ultracluster/data/calibration.json (python benchmarks/fit_calibration.py)"}
    return out


def efficiency_for(chip: Chip, table: Mapping[str, Efficiency] | None = None
                   ) -> Efficiency:
    """The parameters of `chip`'s family (`Chip.family`), from `table` (default `EFFICIENCY`).

    Raises:
        ConfigError: the table has no parameters for the family (never a silent default).
    """
    effs = EFFICIENCY if table is None else table
    if chip.family not in effs:
        raise ConfigError(f"chip {chip.name}: family {chip.family!r} has no efficiency "
                          f"parameters (known: {', '.join(effs)})")
    return effs[chip.family]
