"""`Plan` and `SiteSync`: how a workload is laid onto a cluster; saved and loaded as TOML.

A plan file (the same file `simulate --plan`, `plan --save` and `train --plan` use)::

    tp = 4
    pp = 8
    vpp = 2
    dp = 16
    cp = 1
    ep = 1
    sequence_parallel = true
    micro_batch = 1              # sequences per micro-batch
    global_batch = 2048          # sequences per step
    seq_len = 8192
    zero = 1                     # 0 none, 1, 2, 3 (FSDP)
    recompute = "selective"      # none | selective | full
    precision = "bf16"           # bf16 | fp16 | fp8
    schedule = "1f1b"            # 1f1b | interleaved
    attention = "flash"          # flash (FlashAttention-2) | cudnn | eager (scores stored)
    tp_comm_overlap = false
    ep_comm_overlap = false
    dp_comm_overlap = true
    pp_comm_overlap = true       # interleaved: sends behind the next chunk (Megatron-Core)
    tp_async_backward = true     # backward TP collectives behind the weight-gradient GEMMs
    grad_reduce_in_fp32 = true   # false: gradients kept and reduced in bf16 (NeMo perf recipes)
    recompute_early_stop = false # full recompute stops before the layer's last GEMM (torchtitan, JAX)
    order = ["tp", "cp", "ep", "pp", "dp"]   # innermost first: which tier each dimension spans

    [site_sync]
    mode = "diloco"              # sync | diloco | streaming
    inner_steps = 100            # H
    bits = 8                     # 32 | 16 | 8 | 4
    fragments = 1                # F, for streaming
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from ultracluster.errors import ConfigError
from ultracluster.files import atomic_write_text
from ultracluster.fields import check_keys, get_bool, get_int, get_str, read_toml, table
from ultracluster.plan.dims import DIM_NAMES, ParallelDims
from ultracluster.plan.vocab import (Attention, Precision, Recompute, Schedule, SyncMode,
                                     parse, schedule_for, words)
from ultracluster.units import one_of

SYNC_MODES = words(SyncMode)
RECOMPUTE = words(Recompute)
SYNC_BITS = (32, 16, 8, 4)
"""Widths the pseudo-gradients may be sent in (fp32, bf16, and the 8- and 4-bit
quantisation the DiLoCo papers evaluate)."""

DILOCO_INNER_STEPS = 500
"""DiLoCo paper (Douillard et al. 2023): H = 500 inner steps."""
DILOCO_OUTER_LR = 0.7
"""DiLoCo paper: outer Nesterov learning rate 0.7."""
DILOCO_OUTER_MOMENTUM = 0.9
"""DiLoCo paper: outer Nesterov momentum 0.9."""


@dataclass(frozen=True, kw_only=True, slots=True)
class SiteSync:
    """How replicas in different sites agree."""

    mode: SyncMode = SyncMode.SYNC
    """``sync`` every step; ``diloco`` every H steps; ``streaming`` DiLoCo in F fragments."""
    inner_steps: int = DILOCO_INNER_STEPS
    """H: inner steps between outer synchronisations (diloco, streaming)."""
    bits: int = 16
    """Width of the pseudo-gradients sent across sites (32, 16, 8 or 4)."""
    fragments: int = 1
    """F: fragments synced in turn (streaming)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "mode", parse(
            SyncMode, self.mode, f"site_sync.mode: {self.mode!r} must be one of {SYNC_MODES}"))
        if self.inner_steps < 1:
            raise ConfigError(f"site_sync.inner_steps: {self.inner_steps} must be >= 1")
        if self.bits not in SYNC_BITS:
            raise ConfigError(f"site_sync.bits: {self.bits} must be one of {SYNC_BITS}")
        if self.fragments < 1:
            raise ConfigError(f"site_sync.fragments: {self.fragments} must be >= 1")
        if self.mode == SyncMode.STREAMING and self.inner_steps % self.fragments:
            raise ConfigError(f"site_sync: inner_steps {self.inner_steps} must be a multiple of "
                              f"fragments {self.fragments}")

    def describe(self) -> str:
        """``sync``, or ``diloco H500 16b``, ``streaming H100 4b F4``."""
        if self.mode == SyncMode.SYNC:
            return "sync"
        extra = f" F{self.fragments}" if self.mode == SyncMode.STREAMING else ""
        return f"{self.mode} H{self.inner_steps} {self.bits}b{extra}"


@dataclass(frozen=True, kw_only=True, slots=True)
class Plan:
    """Parallel degrees + micro-batching + schedule + recomputation + sharding + site sync."""

    dims: ParallelDims
    """Parallel degrees."""
    micro_batch: int = 1
    """Sequences per micro-batch."""
    global_batch: int
    """Sequences per optimiser step."""
    seq_len: int
    """Tokens per sequence."""
    zero: int = 1
    """Optimiser-state sharding over dp: 0 none, 1 states, 2 + gradients, 3 + weights (FSDP)."""
    recompute: Recompute = Recompute.SELECTIVE
    """Activation recomputation."""
    recompute_every: int = 1
    """`recompute` applies to one transformer block in every N, the others keep everything
    (torchtitan's ``selective_ac_option = "2"``, its default: full checkpointing of every
    second block); 1: every block."""
    precision: Precision = Precision.BF16
    """Matmul precision (fp8: FP8 matmuls, BF16 elsewhere)."""
    schedule: Schedule = Schedule.ONE_F_ONE_B
    """Pipeline schedule; ``interleaved`` needs vpp > 1."""
    attention: Attention = Attention.FLASH
    """``flash``: fused attention, the s x s scores never stored (Dao et al. 2022), timed as
    FlashAttention-2; ``cudnn``: the same with cuDNN's kernel (Transformer Engine on Hopper);
    ``eager``: scores, softmax and dropout mask kept for the backward (Megatron-LM before
    flash)."""
    tp_comm_overlap: bool = False
    """Overlap TP collectives with the matmuls around them (TE userbuffers)."""
    dp_comm_overlap: bool = True
    """Overlap data-parallel/ZeRO traffic with backward (and the weight all-gather with the
    first forward), as DDP buckets and FSDP prefetch do."""
    pp_comm_overlap: bool = True
    """Interleaved schedule: each pipeline send/receive runs while the neighbouring virtual
    stage computes, except in warm-up and flush (Megatron-Core's ``overlap_p2p_comm``, on
    unless ``--no-overlap-p2p-communication``); no effect on 1F1B, whose sends block."""
    tp_async_backward: bool = True
    """Without ``tp_comm_overlap``: the column-parallel layers' backward collectives (the
    input gradient's all-reduce, or with sequence parallelism its reduce-scatter and the
    all-gather of the sharded input kept for the weight gradient) are issued asynchronously
    and run behind that layer's backward GEMMs (Megatron-LM since v3.0: its
    ``async_tensor_model_parallel_allreduce`` without sequence parallelism, on unless
    ``--no-async-tensor-model-parallel-allreduce``, and always with it; Transformer Engine's
    ``Linear``). False: every tensor-parallel collective blocks (Megatron-LM v2.x, PyTorch
    DTensor; the memory model still counts only the sharded input kept, as Megatron does,
    though DTensor keeps the gathered one)."""
    grad_reduce_in_fp32: bool = True
    """Gradients accumulated, kept and reduced in fp32 (Megatron-LM's ``main_grad`` buffers,
    forced for bf16; Llama 3 s.3.3.4). False: in the weights' 16-bit type, half the gradient
    memory and gradient bytes reduced (Megatron-Core ``DistributedDataParallelConfig
    .grad_reduce_in_fp32 = False``, as NeMo's and Megatron-Bridge's performance recipes set
    it). Pure fp32 training keeps fp32 gradients either way."""
    recompute_early_stop: bool = False
    """Full recomputation reruns a layer's forward only as far as the backward needs: the
    layer's last GEMM (the MLP's down projection; in a MoE layer, the shared expert's) and the
    tensor-parallel collective after it are not rerun, since nothing saves their output for the
    backward (PyTorch's non-reentrant ``torch.utils.checkpoint``, which "stops recomputation as
    soon as it has computed all needed Tensors" by default, ``set_checkpoint_early_stop``;
    torchtitan's ``checkpoint_wrapper`` is non-reentrant; JAX's ``jax.checkpoint``, as under
    MaxText's ``remat_policy = "full"``, recomputes only the residuals the backward consumes).
    A model with dropout after the MLP reruns it all (its mask is saved). False: the whole
    forward is rerun (Megatron's ``CheckpointFunction``, reentrant ``torch.utils.checkpoint``,
    DeepSpeed's activation checkpointing)."""
    ep_comm_overlap: bool = False
    """Overlap MoE all-to-all with another micro-batch's compute (DeepSeek DualPipe,
    Megatron-Core's combined 1F1B); needs pp > 1."""
    order: tuple[str, ...] = DIM_NAMES
    """Dimensions from innermost (fastest tier) to outermost."""
    site_sync: SiteSync = field(default_factory=SiteSync)
    """Cross-site synchronisation."""

    def __post_init__(self) -> None:
        d = self.dims
        if self.micro_batch < 1 or self.global_batch < 1 or self.seq_len < 1:
            raise ConfigError("micro_batch, global_batch and seq_len must be positive")
        if self.global_batch % (d.dp * self.micro_batch):
            raise ConfigError(
                f"global_batch: {self.global_batch} sequences are not divisible by dp x "
                f"micro_batch = {d.dp} x {self.micro_batch} = {d.dp * self.micro_batch}"
            )
        if self.seq_len % d.cp:
            raise ConfigError(f"seq_len: {self.seq_len} is not divisible by cp = {d.cp}")
        if self.zero not in (0, 1, 2, 3):
            raise ConfigError(f"zero: {self.zero} must be 0, 1, 2 or 3")
        if not 1 <= self.recompute_every <= MAX_DEGREE:
            raise ConfigError(f"recompute_every: {self.recompute_every} must be between 1 and "
                              f"{MAX_DEGREE} (1: every block)")
        object.__setattr__(self, "recompute", parse(
            Recompute, self.recompute,
            f"recompute: {self.recompute!r} must be one of {RECOMPUTE}"))
        object.__setattr__(self, "precision", parse(
            Precision, self.precision,
            f"precision: {self.precision!r} must be {one_of(words(Precision))}"))
        object.__setattr__(self, "schedule", parse(
            Schedule, self.schedule,
            f"schedule: {self.schedule!r} must be {one_of(words(Schedule))}"))
        object.__setattr__(self, "attention", parse(
            Attention, self.attention,
            f"attention: {self.attention!r} must be {one_of(words(Attention))}"))
        if self.schedule != schedule_for(d.vpp):
            raise ConfigError(f"schedule: {self.schedule.value!r} with vpp = {d.vpp} (interleaved "
                              "needs vpp > 1, 1f1b needs vpp = 1)")
        if d.vpp > 1 and self.num_microbatches % d.pp:
            raise ConfigError(
                f"schedule: interleaved needs the micro-batches per pipeline to be a multiple of "
                f"pp = {d.pp} (Megatron-LM refuses it otherwise); global_batch / (dp x "
                f"micro_batch) = {self.num_microbatches}")
        if self.ep_comm_overlap and d.pp == 1:
            raise ConfigError("ep_comm_overlap: needs pp > 1 (it overlaps one micro-batch's "
                              "all-to-all with another's compute)")
        if sorted(self.order) != sorted(DIM_NAMES):
            raise ConfigError(f"order: {list(self.order)} must be a permutation of "
                              f"{list(DIM_NAMES)}")

    @property
    def num_microbatches(self) -> int:
        """Micro-batches per step on each data-parallel replica."""
        return self.global_batch // (self.dims.dp * self.micro_batch)

    @property
    def tokens_per_step(self) -> int:
        """Tokens in one optimizer step: global batch (sequences) x sequence length."""
        return self.global_batch * self.seq_len

    def describe(self) -> str:
        """One line: degrees, micro-batch, ZeRO stage, recomputation, precision, attention
        (when not flash), site sync."""
        attn = f" {self.attention}" if self.attention != Attention.FLASH else ""
        every = f" every {self.recompute_every}" if self.recompute_every > 1 else ""
        return (f"{self.dims.describe()} mb{self.micro_batch} zero{self.zero} "
                f"{self.recompute}{every} {self.precision}{attn} {self.site_sync.describe()}")


MAX_DEGREE = 10_000_000
"""No parallel degree above ten million (Rainier is ~500k chips)."""
MAX_BATCH = 10**18
MAX_SEQ_LEN = 1_000_000_000
MAX_INNER_STEPS = 1_000_000
MAX_FRAGMENTS = 10_000

_PLAN_KEYS = {"tp", "pp", "vpp", "dp", "cp", "ep", "sequence_parallel", "micro_batch",
              "global_batch", "seq_len", "zero", "recompute", "recompute_every", "precision", "schedule",
              "attention", "tp_comm_overlap", "ep_comm_overlap", "dp_comm_overlap", "pp_comm_overlap", "order",
              "tp_async_backward", "grad_reduce_in_fp32", "recompute_early_stop", "site_sync"}
_SYNC_KEYS = {"mode", "inner_steps", "bits", "fragments"}


def plan_from_dict(d: Any, *, where: str = "plan") -> Plan:
    """A `Plan` from a parsed plan file (see the module docstring); `where` names the
    source in errors. Unknown keys and bad values raise `ConfigError`.
    """
    d = table(d, where)
    check_keys(d, _PLAN_KEYS, where)
    deg = {k: get_int(d, k, where, 1, maximum=MAX_DEGREE) for k in DIM_NAMES + ("vpp",)}
    dims = ParallelDims(
        tp=deg["tp"], pp=deg["pp"], vpp=deg["vpp"], dp=deg["dp"], cp=deg["cp"], ep=deg["ep"],
        sequence_parallel=get_bool(d, "sequence_parallel", where, True),
    )
    s = table(d.get("site_sync", {}), f"{where}.site_sync")
    check_keys(s, _SYNC_KEYS, f"{where}.site_sync")
    sync = SiteSync(
        mode=get_str(s, "mode", f"{where}.site_sync", SyncMode.SYNC),  # type: ignore[arg-type]  # checked in SiteSync
        inner_steps=get_int(s, "inner_steps", f"{where}.site_sync", DILOCO_INNER_STEPS,
                            maximum=MAX_INNER_STEPS),
        bits=get_int(s, "bits", f"{where}.site_sync", 16, maximum=32),
        fragments=get_int(s, "fragments", f"{where}.site_sync", 1, maximum=MAX_FRAGMENTS),
    )
    order = d.get("order", list(DIM_NAMES))
    if not isinstance(order, list) or not all(isinstance(o, str) for o in order):
        raise ConfigError(f"{where}.order: expected a list of dimension names")
    return Plan(
        dims=dims, micro_batch=get_int(d, "micro_batch", where, 1, maximum=MAX_BATCH),
        global_batch=get_int(d, "global_batch", where, maximum=MAX_BATCH),
        seq_len=get_int(d, "seq_len", where, maximum=MAX_SEQ_LEN),
        zero=get_int(d, "zero", where, 1, minimum=0, maximum=3),
        recompute=get_str(d, "recompute", where, Recompute.SELECTIVE),  # type: ignore[arg-type]  # checked in Plan
        recompute_every=get_int(d, "recompute_every", where, 1, maximum=MAX_DEGREE),
        precision=get_str(d, "precision", where, Precision.BF16),  # type: ignore[arg-type]  # checked in Plan
        schedule=get_str(d, "schedule", where, schedule_for(dims.vpp)),  # type: ignore[arg-type]  # checked in Plan
        attention=get_str(d, "attention", where, Attention.FLASH),  # type: ignore[arg-type]  # checked in Plan
        tp_comm_overlap=get_bool(d, "tp_comm_overlap", where, False),
        ep_comm_overlap=get_bool(d, "ep_comm_overlap", where, False),
        dp_comm_overlap=get_bool(d, "dp_comm_overlap", where, True),
        pp_comm_overlap=get_bool(d, "pp_comm_overlap", where, True),
        tp_async_backward=get_bool(d, "tp_async_backward", where, True),
        grad_reduce_in_fp32=get_bool(d, "grad_reduce_in_fp32", where, True),
        recompute_early_stop=get_bool(d, "recompute_early_stop", where, False),
        order=tuple(order), site_sync=sync,
    )


def plan_to_dict(p: Plan) -> dict[str, Any]:
    """The plan as the plan file's table (the inverse of `plan_from_dict`)."""
    d = p.dims
    every = {"recompute_every": p.recompute_every} if p.recompute_every > 1 else {}
    return every | {
        "tp": d.tp, "pp": d.pp, "vpp": d.vpp, "dp": d.dp, "cp": d.cp, "ep": d.ep,
        "sequence_parallel": d.sequence_parallel, "micro_batch": p.micro_batch,
        "global_batch": p.global_batch, "seq_len": p.seq_len, "zero": p.zero,
        "recompute": p.recompute, "precision": p.precision, "schedule": p.schedule,
        "attention": p.attention,
        "tp_comm_overlap": p.tp_comm_overlap, "ep_comm_overlap": p.ep_comm_overlap,
        "dp_comm_overlap": p.dp_comm_overlap, "pp_comm_overlap": p.pp_comm_overlap,
        "tp_async_backward": p.tp_async_backward,
        "grad_reduce_in_fp32": p.grad_reduce_in_fp32,
        "recompute_early_stop": p.recompute_early_stop, "order": list(p.order),
        "site_sync": {"mode": p.site_sync.mode, "inner_steps": p.site_sync.inner_steps,
                      "bits": p.site_sync.bits, "fragments": p.site_sync.fragments},
    }


def load_plan(path: str | Path) -> Plan:
    """Read a plan file (TOML)."""
    return plan_from_dict(read_toml(path), where=str(path))


def save_plan(plan: Plan, path: str | Path) -> None:
    """Write `plan` as a plan file (TOML), atomically."""
    atomic_write_text(path, tomli_w.dumps(plan_to_dict(plan)))
