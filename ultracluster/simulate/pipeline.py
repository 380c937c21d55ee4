"""Pipeline schedules: how layers sit on stages, what a real framework accepts, and the step.

Layer placement (Megatron-Core ``--decoder-first/last-pipeline-num-layers``; Llama 3 paper
s.3.3.2: "we balance the pipeline by reducing one Transformer layer each from the first and the
last stages", 126 layers on 16 stages): when ``layers + 2`` divides evenly into ``pp x vpp``
chunks, the first and last ranks hold one layer fewer (they carry the embedding and the output
layer); when ``layers`` divides evenly, every rank holds the same; otherwise every virtual
stage rounds up, ``ceil(layers / (pp vpp))`` (Megatron-Core's pipeline layouts).

Validity: Megatron-LM's interleaved schedule needs the number of micro-batches to be a multiple
of ``pp`` (`Plan` refuses it otherwise), and Megatron-LM's ``validate_args`` needs the layers of
a rank to split into ``vpp`` equal chunks; newer Megatron-Core accepts uneven chunks through an
explicit pipeline layout, so `simulate` accepts them, but the planner (`schedule_valid`) only
proposes interleaving with one of the two even layouts, which every version accepts.

Step of one pipeline for m micro-batches, each taking ``T_i`` (forward + backward) on rank i,
v chunks per rank (Narayanan et al. 2021 s.2.2; the general form holds for any m and p):

    step = chain + (m - 1) x T_max / v + max(0, m - p) x (v - 1) x T_max / v

``chain`` = sum of T_i is one micro-batch's forward and backward through every stage; with
uniform stages and m >= p this is ``m T + (p - 1) T / v``, Megatron's bubble of (p-1)/v
micro-batches; with m < p there is no steady state and the chain dominates. For v = 1 it is
``chain + (m - 1) T_max``: one micro-batch through all stages plus the rest through the slowest.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ultracluster.simulate.comm import Arr
from ultracluster.simulate.planarrays import PlanArrays


@dataclass(frozen=True, slots=True)
class StageLayout:
    """Layers per pipeline rank (arrays over plans)."""

    body: Arr
    """Layers on the fullest rank that is neither first nor last."""
    first: Arr
    """Layers on the first rank (which also holds the embedding)."""
    last: Arr
    """Layers on the last rank (which also holds the output layer and the loss)."""
    even: Arr
    """1 where the layout splits into equal virtual chunks (interleaving possible)."""

    @property
    def fullest(self) -> Arr:
        """Layers on the rank that holds the most (first, middle or last)."""
        out: Arr = np.maximum(self.body, np.maximum(self.first, self.last))
        return out


def stage_layout(p: PlanArrays, layers: float) -> StageLayout:
    """Where the layers go for each plan (see module docstring)."""
    chunks = p.pp * p.vpp
    even = np.isclose(np.mod(layers, chunks), 0.0)
    balanced = ~even & (p.pp >= 2) & np.isclose(np.mod(layers + 2.0, chunks), 0.0)
    per_rank = np.where(balanced, (layers + 2.0) / p.pp, layers / p.pp)
    # uneven: each virtual stage rounds up (1F1B: ceil(L / p); interleaved: Megatron-Core's
    # `--pipeline-model-parallel-layout`, ceil(L / (p v)) per chunk)
    ceil = np.ceil(layers / chunks - 1e-9) * p.vpp
    edge = np.where(balanced, per_rank - 1.0, np.where(even, per_rank, ceil))
    body = np.where(even | (balanced & (p.pp > 2)), per_rank, edge)
    single = p.pp == 1
    first = np.where(single, layers, edge)
    # an uneven 1F1B split puts the remainder on the last rank (Megatron-Core's default)
    last = np.where(single, layers, np.where(even | balanced, edge,
                                             layers - ceil * np.maximum(p.pp - 1, 1.0)))
    last = np.where(single | even | balanced, last, np.maximum(last, 1.0))
    return StageLayout(body=body, first=first, last=last,
                       even=(even | balanced | single).astype(np.float64))


def schedule_valid(p: PlanArrays, layout: StageLayout) -> Arr:
    """1 where Megatron-LM would accept the schedule, 0 where it refuses it."""
    n_mb = p.gb / (p.dp * p.mb)
    interleaved = p.vpp > 1
    ok = ~interleaved | ((layout.even > 0) & np.isclose(np.mod(n_mb, p.pp), 0.0))
    return ok.astype(np.float64)


def why_invalid(*, pp: int, vpp: int, layers: int, microbatches: int) -> str | None:
    """A one-line reason a framework refuses the schedule, or None when it accepts it."""
    if vpp == 1:
        return None
    chunks = pp * vpp
    if layers % chunks and (layers + 2) % chunks:
        return (f"vpp: {layers} layers do not split into {pp} x {vpp} = {chunks} equal "
                f"virtual stages (nor {layers + 2} with one layer fewer on the first and last "
                "stage); Megatron-LM refuses it without an explicit pipeline layout")
    if microbatches % pp:
        return (f"micro-batches: {microbatches} per pipeline is not a multiple of pp = {pp}; "
                "Megatron-LM's interleaved schedule needs one")
    return None


def smallest_interleaving(*, pp: int, layers: int, microbatches: int) -> int:
    """The fewest virtual stages (>= 2) per rank Megatron-LM accepts for `layers` on `pp`
    ranks with `microbatches` per pipeline (`why_invalid`), or 1 when none up to one layer a
    stage does."""
    for v in range(2, (layers + 2) // max(pp, 1) + 1):
        if why_invalid(pp=pp, vpp=v, layers=layers, microbatches=microbatches) is None:
            return v
    return 1


def pipeline_step(*, chain: Arr, t_max: Arr, m: Arr, p: Arr, v: Arr) -> Arr:
    """Step time of a 1F1B (v = 1) or interleaved (v > 1) pipeline (module docstring)."""
    out: Arr = (chain + (m - 1.0) * t_max / v
                + np.maximum(0.0, m - p) * (v - 1.0) * t_max / v)
    return out


def in_flight_chunks(*, m: Arr, p: Arr, v: Arr) -> Arr:
    """Micro-batch chunks whose activations the first rank holds at its peak, in units of
    one rank's layers (1F1B: min(m, p); interleaved: Megatron's warm-up of
    ``(p - 1) x 2 + (v - 1) x p`` chunks plus the one in flight, each 1/v of the rank)."""
    one_f_one_b = np.minimum(m, p)
    warm = (2.0 * (p - 1.0) + (v - 1.0) * p + 1.0) / v
    out: Arr = np.where(v > 1, np.minimum(warm, m), one_f_one_b)
    return out
