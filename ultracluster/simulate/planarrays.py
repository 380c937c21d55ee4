"""`PlanArrays`: plans as columns of numbers, the common input of both evaluators.

`estimate()` builds one row from a `Plan`; the planner builds millions of rows with numpy.
The same formulas (`simulate.core.evaluate`) then run on either, so the single-plan and the
bulk path cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np
import numpy.typing as npt

from ultracluster.errors import ConfigError
from ultracluster.plan.dims import WORLD_DIMS, world_of
from ultracluster.plan.plan import Plan
from ultracluster.plan.vocab import Attention, Precision, Recompute, SyncMode
from ultracluster.simulate.comm import Arr

# The integer codes of the plan's words in the bulk columns: defined here and nowhere else.
# The formulas compare against them (recompute >= 1: some recomputation; sync > 0: periodic).
RECOMPUTE_CODE: dict[Recompute, int] = {Recompute.NONE: 0, Recompute.SELECTIVE: 1,
                                        Recompute.FULL: 2}
SYNC_CODE: dict[SyncMode, int] = {SyncMode.SYNC: 0, SyncMode.DILOCO: 1, SyncMode.STREAMING: 2}
SELECTIVE = RECOMPUTE_CODE[Recompute.SELECTIVE]
FULL = RECOMPUTE_CODE[Recompute.FULL]
SYNC = SYNC_CODE[SyncMode.SYNC]
STREAMING = SYNC_CODE[SyncMode.STREAMING]



def recompute_of(code: float) -> Recompute:
    """The `Recompute` a column's code stands for."""
    return next(r for r, c in RECOMPUTE_CODE.items() if c == int(code))


def sync_mode_of(code: float) -> SyncMode:
    """The `SyncMode` a column's code stands for."""
    return next(m for m, c in SYNC_CODE.items() if c == int(code))


def precision_of(*, fp8: float, fp32: float) -> Precision:
    """The precision a row's ``fp8``/``fp32`` flags stand for (neither: bf16)."""
    return Precision.FP8 if fp8 else Precision.FP32 if fp32 else Precision.BF16


@dataclass(frozen=True, slots=True)
class PlanArrays:
    """One entry per plan in every field (or 0-d arrays for one plan)."""

    tp: Arr
    pp: Arr
    vpp: Arr
    dp: Arr
    cp: Arr
    ep: Arr
    mb: Arr
    gb: Arr
    zero: Arr
    recompute: Arr
    """0 none, 1 selective, 2 full."""
    fp8: Arr
    fp32: Arr
    """1 for fp32 training (weights, gradients, activations in 4 bytes)."""
    sp: Arr
    eager: Arr
    """1 for eager attention (scores stored), 0 for flash."""
    cudnn: Arr
    """1 for cuDNN's fused attention kernel (timed on `HwContext.attention_curve_cudnn`)."""
    tp_overlap: Arr
    ep_overlap: Arr
    dp_overlap: Arr
    stride_tp: Arr
    stride_cp: Arr
    stride_pp: Arr
    stride_dp: Arr
    sync: Arr
    """0 sync, 1 diloco, 2 streaming."""
    inner_steps: Arr
    bits: Arr
    fragments: Arr
    pp_overlap: Arr = field(default_factory=lambda: np.asarray(1.0))
    """1 where an interleaved schedule overlaps its sends with compute (`Plan.pp_comm_overlap`)."""
    tp_async: Arr = field(default_factory=lambda: np.asarray(1.0))
    """1 where the backward's column-parallel TP collectives run behind its GEMMs
    (`Plan.tp_async_backward`)."""
    grad32: Arr = field(default_factory=lambda: np.asarray(1.0))
    """1 where gradients are kept and reduced in fp32 (`Plan.grad_reduce_in_fp32`)."""
    rc_share: Arr = field(default_factory=lambda: np.asarray(1.0))
    """Share of the blocks `recompute` applies to (1 / `Plan.recompute_every`)."""
    rc_early: Arr = field(default_factory=lambda: np.asarray(0.0))
    """1 where full recomputation stops before the layer's last GEMM
    (`Plan.recompute_early_stop`)."""

    @property
    def world(self) -> Arr:
        """Chips each plan uses (`plan.dims.world_of`)."""
        return world_of({n: getattr(self, n) for n in WORLD_DIMS})

    @property
    def size(self) -> int:
        """Number of plans (rows after broadcasting)."""
        return int(np.broadcast(*(getattr(self, f.name) for f in fields(self))).size)

    def take(self, idx: npt.NDArray[np.intp] | npt.NDArray[np.bool_]) -> PlanArrays:
        """The rows selected by `idx` (an index or boolean mask)."""
        n = self.size
        return PlanArrays(*(np.broadcast_to(getattr(self, f.name), (n,))[idx]
                            for f in fields(self)))


def strides(order: tuple[str, ...], degrees: dict[str, Arr]) -> dict[str, Arr]:
    """Rank stride of each dimension: the product of the degrees placed inside it."""
    out: dict[str, Arr] = {}
    acc: Arr = np.ones_like(degrees["tp"])
    for name in order:
        if name == "ep":  # ep is carved out of tp x cp x dp: it has no stride of its own
            continue
        out[name] = acc
        acc = acc * degrees[name]
    return out


def from_plan(plan: Plan) -> PlanArrays:
    """A 0-d `PlanArrays` for one plan."""
    d = plan.dims

    def a(x: float) -> Arr:
        return np.asarray(float(x), dtype=np.float64)

    deg = {n: a(getattr(d, n)) for n in WORLD_DIMS}
    st = strides(plan.order, deg)
    s = plan.site_sync
    if s.mode not in SYNC_CODE:
        raise ConfigError(f"site_sync.mode: the simulator has no model of {s.mode.value!r} "
                          f"(it models {', '.join(SYNC_CODE)})")
    return PlanArrays(
        tp=deg["tp"], pp=deg["pp"], vpp=a(d.vpp), dp=deg["dp"], cp=deg["cp"], ep=a(d.ep),
        mb=a(plan.micro_batch), gb=a(plan.global_batch), zero=a(plan.zero),
        recompute=a(RECOMPUTE_CODE[plan.recompute]), fp8=a(plan.precision == Precision.FP8),
        fp32=a(plan.precision == Precision.FP32),
        sp=a(d.sequence_parallel), eager=a(plan.attention == Attention.EAGER),
        cudnn=a(plan.attention == Attention.CUDNN),
        tp_overlap=a(plan.tp_comm_overlap),
        ep_overlap=a(plan.ep_comm_overlap), dp_overlap=a(plan.dp_comm_overlap),
        stride_tp=st["tp"], stride_cp=st["cp"], stride_pp=st["pp"], stride_dp=st["dp"],
        sync=a(SYNC_CODE[s.mode]), inner_steps=a(s.inner_steps), bits=a(s.bits),
        fragments=a(s.fragments), pp_overlap=a(plan.pp_comm_overlap),
        tp_async=a(plan.tp_async_backward), grad32=a(plan.grad_reduce_in_fp32),
        rc_share=a(1.0 / plan.recompute_every), rc_early=a(plan.recompute_early_stop),
    )
