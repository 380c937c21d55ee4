"""`ParallelDims`: the parallel degrees, validated once and shared by simulator and runtime.

Expert parallelism is carved out of dp x cp x tp for the MoE layers, as Megatron-Core does
(expert-parallel x expert-data-parallel = tp x cp x dp, expert tensor parallelism 1).
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from dataclasses import dataclass, fields
from functools import reduce
from typing import TypeVar

from ultracluster.errors import ConfigError
from ultracluster.workload.spec import TransformerSpec

DIM_NAMES = ("tp", "cp", "ep", "pp", "dp")
"""The dimensions a placement order lists, innermost first by default."""
WORLD_DIMS = ("dp", "tp", "pp", "cp")
"""The degrees whose product is the number of chips: ep reuses the chips of dp x cp x tp and
vpp splits each pipeline rank's layers."""

T = TypeVar("T")


def world_of(degrees: Mapping[str, T]) -> T:
    """Chips a layout uses: the product of its `WORLD_DIMS` degrees (ints, or numpy columns
    of many plans)."""
    return reduce(operator.mul, (degrees[n] for n in WORLD_DIMS))


@dataclass(frozen=True, kw_only=True, slots=True)
class ParallelDims:
    """Degrees of parallelism. world = dp x tp x pp x cp (ep reuses those chips)."""

    dp: int = 1
    """Data-parallel replicas (ZeRO/FSDP shards across them)."""
    tp: int = 1
    """Tensor parallelism (Megatron column/row split)."""
    pp: int = 1
    """Pipeline stages."""
    vpp: int = 1
    """Virtual stages per pipeline rank (interleaved schedule); 1 = plain 1F1B."""
    cp: int = 1
    """Context parallelism (sequence split across chips, ring attention)."""
    ep: int = 1
    """Expert parallelism for MoE layers, carved out of dp x cp x tp."""
    sequence_parallel: bool = True
    """Shard norms/dropout activations across the TP group (Korthikanti et al. 2022)."""

    def __post_init__(self) -> None:
        for name in DEGREES:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"{name}: {v!r} must be a positive integer")
        if (self.dp * self.cp * self.tp) % self.ep:
            raise ConfigError(
                f"ep: {self.ep} must divide dp x cp x tp = {self.dp * self.cp * self.tp}"
            )
        if self.vpp > 1 and self.pp == 1:
            raise ConfigError(f"vpp: {self.vpp} needs pp > 1 (interleaving splits stages)")

    @property
    def world(self) -> int:
        """Chips the layout uses: dp x tp x pp x cp."""
        return world_of(self.degrees())

    def degrees(self) -> dict[str, int]:
        """Every degree by name (`DEGREES`)."""
        return {n: getattr(self, n) for n in DEGREES}

    def check(self, *, model: TransformerSpec, num_chips: int | None = None) -> None:
        """Raise `ConfigError`, quoting the numbers, if the degrees do not fit the model."""
        if num_chips is not None and self.world != num_chips:
            raise ConfigError(
                f"dp x tp x pp x cp = {self.dp} x {self.tp} x {self.pp} x {self.cp} = "
                f"{self.world}, but the plan is for {num_chips} chips"
            )
        if model.num_heads % self.tp:
            raise ConfigError(f"tp: {model.num_heads} attention heads are not divisible by "
                              f"tp = {self.tp}")
        if model.mla is None and model.num_kv_heads % self.tp and self.tp % model.num_kv_heads:
            raise ConfigError(f"tp: {model.num_kv_heads} KV heads and tp = {self.tp} do not "
                              "divide one another")
        if not stages_fit(self.pp, self.vpp, model.num_layers):
            raise ConfigError(f"pp x vpp: {self.pp} x {self.vpp} = {self.pp * self.vpp} stages "
                              f"for {model.num_layers} layers (at least one layer each, or "
                              f"{model.num_layers + 2} with the embedding and the output layer "
                              "as a stage each)")
        if self.ep > 1:
            if model.moe is None:
                raise ConfigError(f"ep: {self.ep} > 1 but model {model.name} has no experts")
            if model.moe.num_experts % self.ep:
                raise ConfigError(f"ep: {model.moe.num_experts} experts are not divisible by "
                                  f"ep = {self.ep}")

    def layers_per_stage(self, num_layers: int) -> int:
        """Layers on the fullest pipeline rank: an even split, or (Llama 3 405B: 126 layers on
        16 stages) one layer fewer on the first and last rank when that makes it even;
        otherwise each virtual stage rounds up (Megatron-Core's pipeline layouts)."""
        chunks = self.pp * self.vpp
        if num_layers % chunks == 0:
            return num_layers // self.pp
        if self.pp >= 2 and (num_layers + 2) % chunks == 0:
            return (num_layers + 2) // self.pp
        return -(-num_layers // chunks) * self.vpp

    def describe(self) -> str:
        """``tp8 pp16 vpp2 dp64``: the degrees above 1 (dp always)."""
        parts = [f"{n}{getattr(self, n)}" for n in ("tp", "pp", "dp", "cp", "ep")
                 if getattr(self, n) > 1 or n == "dp"]
        if self.vpp > 1:
            parts.insert(2, f"vpp{self.vpp}")
        return " ".join(parts)


def stages_fit(pp: int, vpp: int, layers: int) -> bool:
    """Whether `layers` go on pp x vpp (virtual) stages: at least one layer each, or, with a
    pipeline, exactly ``layers + 2`` stages whose first holds only the embedding and whose last
    only the output layer and the loss (Llama 3 paper s.3.3.2: "the first model chunk on the
    first stage has only the embedding, and the last model chunk on the last stage has only
    output projection and loss calculation"; Megatron-Core's
    ``--account-for-embedding-in-pipeline-split`` and ``--account-for-loss-in-pipeline-split``)."""
    return pp * vpp <= layers or (pp >= 2 and pp * vpp == layers + 2)


DEGREES: tuple[str, ...] = tuple(f.name for f in fields(ParallelDims) if f.type in ("int", int))
"""`ParallelDims`' integer fields in declaration order: a new parallel dimension is a new
field here, and the planner's columns and its plan rebuild follow from this list."""
