"""The plan's words, each defined once: site-sync modes, recomputation, precision, schedules.

Everything else (the search's columns, the CLI's choices, tables, the runtime's config) uses
these enums; `simulate.planarrays` alone maps them to the integer codes of the bulk columns.
They are `StrEnum`s, so a member equals, prints and serialises (JSON, TOML) as its word.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TypeVar

from ultracluster.errors import ConfigError
from ultracluster.units import Precision

__all__ = ["Attention", "Precision", "Recompute", "RunSync", "Schedule", "SyncMode", "parse",
           "schedule_for", "words"]


class SyncMode(StrEnum):
    """How replicas in different sites agree."""

    SYNC = "sync"
    """Every step: the data-parallel gradient reduction spans the sites."""
    DILOCO = "diloco"
    """Every H inner steps, an outer step on the averaged pseudo-gradient (Douillard et al.
    2023, DiLoCo)."""
    STREAMING = "streaming"
    """DiLoCo in F fragments synced in turn (Douillard et al. 2025, Streaming DiLoCo)."""


class RunSync(StrEnum):
    """The runtime's site-sync strategies (`ultracluster train --site-sync`): each is one of
    the plan's modes run one way. `mode` is the `SyncMode` the simulator predicts it as;
    `dp_comm_overlap` says whether its per-step gradient reduction overlaps backward (the
    plan's field of that name). `run.sync.STRATEGIES` maps each member to its class."""

    mode: SyncMode
    dp_comm_overlap: bool

    def __new__(cls, word: str, mode: SyncMode, dp_comm_overlap: bool) -> RunSync:
        member = str.__new__(cls, word)
        member._value_ = word
        member.mode = mode
        member.dp_comm_overlap = dp_comm_overlap
        return member

    DDP = "ddp", SyncMode.SYNC, True
    """torch DDP over every rank: one all-reduce a step, bucketed under backward."""
    HIERARCHICAL = "hierarchical", SyncMode.SYNC, False
    """Every step, after backward: reduce inside each site, exchange one shard per worker
    across sites, all-gather the shards inside the site."""
    DILOCO = "diloco", SyncMode.DILOCO, True
    """DDP inside each site; an outer step across sites every H steps."""
    STREAMING = "streaming", SyncMode.STREAMING, True
    """DDP inside each site; one of F fragments exchanged every H/F steps, overlapped."""

    @classmethod
    def of_plan(cls, mode: SyncMode) -> RunSync:
        """The strategy that runs a plan's `mode`: the first member (in definition order)
        whose `mode` it is."""
        return next(m for m in cls if m.mode == mode)


class Recompute(StrEnum):
    """Activation recomputation (Korthikanti et al. 2022)."""

    NONE = "none"
    SELECTIVE = "selective"
    """Recompute the attention core only."""
    FULL = "full"
    """Store each layer's input only; rerun its forward in backward."""


class Schedule(StrEnum):
    """Pipeline schedule."""

    ONE_F_ONE_B = "1f1b"
    """One forward, one backward (PipeDream-Flush / Megatron 1F1B)."""
    INTERLEAVED = "interleaved"
    """Megatron's interleaved 1F1B over vpp virtual stages per rank."""


class Attention(StrEnum):
    """How the attention core is computed."""

    FLASH = "flash"
    """Fused attention, the s x s scores never stored (Dao et al. 2022): FlashAttention-2,
    the kernel of PyTorch's SDPA and of the flash-attn package."""
    CUDNN = "cudnn"
    """Fused attention by cuDNN (Transformer Engine's choice on Hopper and later); memory as
    flash; on a chip with no published cuDNN curve, timed as flash."""
    EAGER = "eager"
    """Scores, softmax and dropout mask kept for the backward (Megatron-LM before flash)."""


def schedule_for(vpp: int) -> Schedule:
    """The schedule a plan with `vpp` virtual stages per rank runs."""
    return Schedule.INTERLEAVED if vpp > 1 else Schedule.ONE_F_ONE_B


E = TypeVar("E", bound=StrEnum)


def words(enum: type[E]) -> tuple[str, ...]:
    """The enum's words in definition order, as plain strings (for messages and choices)."""
    return tuple(m.value for m in enum)


def parse(enum: type[E], value: object, message: str) -> E:
    """`value` as a member of `enum`; `ConfigError(message)` when it is none of its words."""
    if isinstance(value, str):
        try:
            return enum(value)
        except ValueError:
            pass
    raise ConfigError(message)
