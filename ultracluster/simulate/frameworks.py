"""What a training framework does when a published run does not say: its documented defaults.

`validate` fills every setting a source leaves silent with the default of the framework (and
version) that produced the run, never with the fastest plan that fits (which leans every
silent field optimistic). Where a framework has no default (Megatron's ``--micro-batch-size``
must be given), the value of the framework's own example scripts is used and the citation says
so. Where the default does not fit in memory by our memory model, `MEMORY_LADDER` says which
setting a practitioner turns next (the run happened, so something made it fit); `validate`
reports that it did.

Sources (read 2026-11; paths are in the named repositories):

| key | micro-batch | ZeRO | recompute | TP overlap | DP overlap | SP | source |
| --- | --- | --- | --- | --- | --- | --- | --- |
| megatron-2021 | 1 | 0 | none | off | off | off | NVIDIA/Megatron-LM v2.x `megatron/arguments.py` (``--checkpoint-activations`` store_true; no distributed optimizer, no SP, local DDP without overlap); micro-batch from `examples/pretrain_gpt3_175B.sh` (``--micro-batch-size 1``) |
| megatron-2022 | 1 | 0 | none | off | off | off (on with selective) | as above at v3.0 (Korthikanti et al. 2022 add ``--sequence-parallel`` and ``--recompute-activations``, both store_true; the paper's end-to-end runs pair selective recomputation with sequence parallelism) |
| megatron-core | 1 | 0 | none | off | off | off | NVIDIA/Megatron-LM `megatron/training/arguments.py` (``--use-distributed-optimizer``, ``--sequence-parallel``, ``--tp-comm-overlap``, ``--overlap-grad-reduce`` are store_true; ``--recompute-granularity`` default None); micro-batch from `examples/gpt3/train_gpt3_175b_distributed.sh` |
| nemo | 1 | 1 | none | on | on | on | NVIDIA/NeMo `nemo/collections/llm/recipes/llama3_70b.py` performance recipe (``MegatronCommOverlapCallback(tp_comm_overlap=True, overlap_grad_reduce=True, overlap_param_gather=True)``, distributed fused Adam = distributed optimizer, ``sequence_parallel=True``); same in Megatron-Bridge `scripts/performance` |
| torchtitan | replica | 3 | selective | off | on | on | pytorch/torchtitan `torchtitan/config/job_config.py` (``ActivationCheckpoint.mode = "selective"``, ``data_parallel_shard_degree = -1`` = FSDP2, ``enable_async_tensor_parallel = False``, ``pipeline_parallel_microbatch_size = 1``; its "selective" is ``selective_ac_option = "2"``: every second block checkpointed whole); its tensor-parallel plan (`models/llama3/infra/parallelize.py`, "Apply tensor + sequence parallelism to every transformer block") puts ``SequenceParallel()`` on every norm; with pipeline parallelism its FSDP keeps weights gathered and gradients unreduced until the last micro-batch (`zero3_with_pipeline`: ZeRO-1 traffic and memory) |
| torchtitan-2024 | replica (pp x vpp micro-batches) | 3 | selective | off | on | on | pytorch/torchtitan at 9dec370 (2024-12-26), the commit of its published H100 benchmarks (`benchmarks/llama3_h100_202412_torchtitan.md`): as above, except that a pipelined run splits the local batch into as many micro-batches as there are stages (`torchtitan/parallelisms/pipelining_utils.py` `build_pipeline_schedule`: ``n_microbatches = job_config.experimental.pipeline_parallel_microbatches``, "if n_microbatches is None: n_microbatches = num_total_stages"); the micro-batch size option replaced it in 2025; a torchtitan source dated 2024 or earlier is read as this version |
| meta-llama3 | 1 | 2 | none | off | on | off | Llama Team (Meta) 2024, *The Llama 3 Herd of Models*, s.3.3.2: "we could pre-train Llama 3 on sequences of 8K tokens without activation checkpointing"; FSDP that does not reshard weights after the forward (ZeRO-2-like); an interleaved schedule (Narayanan et al. 2021) with V stages per rank whose first model chunk "has only the embedding" and last "only output projection and loss calculation", after one layer was taken from each: one layer per chunk, V = (126 + 2) / 16 = 8; "asynchronous point-to-point communication in PP"; micro-batch not stated (1, as in Megatron's examples) |
| maxtext | replica | 3 | full | on | on | off | AI-Hypercomputer/maxtext `MaxText/configs/base.yml` (``remat_policy: 'full'``, ``ici_fsdp_parallelism: -1``); no gradient accumulation by default; TP overlap: the launch scripts its published results come from (`MaxText/configs/v5p/*.sh`, `v5e/*.sh`) set ``LIBTPU_INIT_ARGS`` with XLA's async collective fusion (``--xla_tpu_enable_async_collective_fusion=true``, ``..._fuse_all_gather=true``, ``--xla_tpu_overlap_compute_collective_tc=true``), which runs the tensor-parallel collectives beside the matmuls |
| neuron | 1 | 1 | selective | off | on | on | aws-neuron NxD Training Llama/GPT tutorials and `neuronx-distributed-training` configs (ZeRO-1, sequence parallel, selective activation checkpointing, micro-batch 1) |
| deepspeed | 1 | 0 | none | off | off | off | microsoft/DeepSpeed docs `zero_optimization.stage` default 0 (``overlap_comm`` default false below stage 3); its pipeline engine reduces gradients after the last micro-batch (`deepspeed/runtime/pipe/schedule.py` `TrainSchedule`: ``ReduceGrads()`` at ``step_id == total_steps - 1``); Megatron-DeepSpeed `--checkpoint-activations` store_true |
| llm-foundry | replica | 3 | full | off | on | off | mosaicml/llm-foundry `scripts/train/yamls/pretrain/*.yaml` (``fsdp_config.sharding_strategy: FULL_SHARD``, ``activation_checkpointing: true``) |

Sequence parallelism (Korthikanti et al. 2022 s.4.2.2) is the first setting a practitioner
short of memory turns on: it replaces each tensor-parallel all-reduce by a reduce-scatter and
an all-gather of the same volume, so it costs no extra communication, and divides the norm and
dropout activations by t. `MEMORY_LADDER` turns it before any recomputation.

Backward tensor-parallel collectives (``tp_async_backward``): Megatron-LM v3.0 (2022) and
later issue the column-parallel layers' input-gradient all-reduce (with sequence parallelism,
its reduce-scatter, and the all-gather of the sharded input the weight gradient needs)
asynchronously, before the GEMM it can run beside (`megatron/arguments.py`
``--no-async-tensor-model-parallel-allreduce``, store_false: on by default;
``LinearWithGradAccumulationAndAsyncCommunication.backward`` in `mpu/layers.py`, later
`megatron/core/tensor_parallel/layers.py`); Transformer Engine's ``Linear``, under
Megatron-Core, NeMo and Megatron-Bridge, does the same. Megatron-LM v2.x (2021) reduced the
input gradient in ``copy_to_tensor_model_parallel_region``'s backward, a blocking all-reduce,
as PyTorch DTensor's tensor parallelism (torchtitan) does; Megatron-DeepSpeed, NxD and Meta's
stack do not say (off, the slower reading).

Gradient precision (``grad_reduce_in_fp32``): Megatron-LM accumulates and reduces gradients
in fp32 under bf16 (``validate_args``: "bfloat16 requires gradient accumulation and all-reduce
to be done in fp32"), as Meta's stack does (Llama 3 s.3.3.4); NeMo's performance scripts set
``recipe.trainer.plugins.grad_reduce_in_fp32 = False`` for their FP8 runs
(`scripts/performance/llm/pretrain_*.py`) and Megatron-Bridge's performance configs set
``cfg.ddp.grad_reduce_in_fp32 = False`` (`scripts/performance/configs`), so the NeMo and
Megatron-Bridge rows keep and reduce bf16 gradients: half the gradient memory and the
gradient bytes reduced.

Pipeline sends (``pp_comm_overlap``; it acts on interleaved schedules only, 1F1B's sends
block in every framework here): Megatron-Core overlaps the interleaved schedule's sends with
the neighbouring chunk's compute by default (`megatron/training/arguments.py`
``--no-overlap-p2p-communication``, store_false into ``overlap_p2p_comm``; ``validate_args``
turns it off without virtual stages; ``--overlap-p2p-communication-warmup-flush`` is off, so
warm-up and flush still block); NeMo and Megatron-Bridge turn it on whenever vpp > 1
(`MegatronCommOverlapCallback`: ``overlap_p2p_comm = True``, ``batch_p2p_comm = False``;
NeMo's communication-overlap guide: "The PP communications in pipeline fill and flush are
still exposed"); torchtitan's interleaved schedules run on torch.distributed.pipelining's
``_PipelineScheduleRuntime``, which issues each send asynchronously and waits on a receive only
before the chunk that needs it. Megatron-LM v2.x/v3.0 (2021-22) waited on every
``batch_isend_irecv`` at once (no overlap option until 2023); DeepSpeed's pipeline engine does
not interleave; Meta's Llama 3 stack adopts "asynchronous point-to-point communication in PP"
(Llama 3 paper s.3.3.2).

``replica`` means no gradient accumulation: the micro-batch is the replica's whole share of the
global batch (split over pipeline micro-batches of 1 when pp > 1, as torchtitan's
``pipeline_parallel_microbatch_size`` does). Interleaving (vpp) is 1 unless the row states
it, except where the framework's source says it interleaves (Meta's Llama 3 stack: one layer
per virtual stage, `default_vpp`). Megatron-LM 2021/2022 and Megatron-DeepSpeed predate fused attention in those
frameworks (``attention = "eager"``) and keep Megatron's default dropout of 0.1. Megatron-Core
and NeMo run Transformer Engine, whose attention on Hopper is cuDNN's fused kernel
(``attention = "cudnn"``, timed on the chip's published cuDNN curve; FlashAttention-2's
on chips with none, as TE picks it on Ampere); the others run FlashAttention-2 (``flash``):
torchtitan through PyTorch SDPA, whose cuDNN backend PyTorch 2.5 made opt-in
(pytorch/pytorch#138522; torchtitan turned it on for B200 only, pytorch/torchtitan#1196), Meta's
Llama 3 stack because it does not say (the conservative reading).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Literal

from ultracluster.errors import ConfigError
from ultracluster.plan.vocab import Attention

MicroBatch = int | Literal["replica", "stages"]


@dataclass(frozen=True, kw_only=True, slots=True)
class FrameworkDefaults:
    """The settings one framework version uses when the user does not set them."""

    micro_batch: MicroBatch
    """Sequences per micro-batch; ``replica``: no gradient accumulation (with pipelining,
    micro-batches of 1); ``stages``: no gradient accumulation, and with pipelining as many
    micro-batches as pipeline stages (pp x vpp)."""
    zero: int
    """0 = plain data parallelism; 1 = distributed optimizer; 3 = fully sharded."""
    recompute: Literal["none", "selective", "full"]
    tp_comm_overlap: bool
    dp_comm_overlap: bool
    sequence_parallel: bool
    source: str
    """Where the defaults are documented (see the module docstring's table)."""
    attention: Attention = Attention.FLASH
    """``eager`` before frameworks had fused attention (Megatron-LM gained ``--use-flash-attn``
    in 2023): the s x s scores are stored and the softmax runs through memory. ``cudnn``:
    frameworks on Transformer Engine (Megatron-Core's ``--transformer-impl`` default, NeMo,
    Megatron-Bridge), which runs cuDNN's fused attention where both it and FlashAttention
    apply on Hopper and later, FlashAttention on Ampere (NVIDIA/NeMo docs,
    memory_optimizations.rst: "Transformer Engine prefers cuDNN flash attention on Hopper+
    architectures, and Tri Dao flash attention on pre-Hopper architectures"); ``flash``:
    PyTorch SDPA or the flash-attn package (FlashAttention-2)."""
    stated: tuple[str, ...] = ()
    """Settings the framework's own source states for its runs: not silent, never turned by
    `MEMORY_LADDER` (Meta: no activation checkpointing)."""
    selective_block_every: int = 0
    """What the framework's "selective" means: 0, Megatron's (the attention core is recomputed);
    N > 0, full checkpointing of one block in every N (torchtitan: ``selective_ac_option``
    defaults to "2", `models/llama3/infra/parallelize.py` wraps every second block)."""
    zero3_with_pipeline: int = 3
    """The ZeRO stage a fully sharded run behaves as when it also pipelines. torchtitan: 1,
    its FSDP2 does not reshard weights after forward under pipeline parallelism
    (`models/llama3/infra/parallelize.py`: "For PP, do not reshard after forward to avoid
    per-microbatch all-gathers", ``reshard_after_forward = not pp_enabled``), and the pipeline
    stage skips gradient reduction until the last micro-batch's backward (PyTorch
    `torch.distributed.pipelining` ``backward_maybe_with_nosync``: ``set_requires_gradient_sync
    (False)`` before it): one weight all-gather and one gradient reduce-scatter per step, the
    whole stage's weights and gradients held, optimizer state sharded: ZeRO-1's traffic and
    memory."""
    has_sequence_parallel: bool = True
    """Whether the framework version can shard the norms along the sequence at all
    (Megatron-LM gained ``--sequence-parallel`` with Korthikanti et al. 2022)."""
    vpp: int | Literal["layer"] = 1
    """Virtual pipeline stages per rank when the row does not say (1: no interleaving);
    ``layer``: one transformer layer per virtual stage, the embedding and the output layer a
    stage each, ``(layers + 2) / pp`` (Meta's Llama 3 stack, `default_vpp`)."""
    order: tuple[str, ...] = ("tp", "cp", "ep", "dp", "pp")
    """Rank order, innermost first (which tier each group spans). Megatron-LM and
    Megatron-Core: ``initialize_model_parallel(order="tp-cp-ep-dp-pp")`` (``--use-tp-pp-dp-
    mapping`` opts out; 2021's `mpu/initialize.py` also makes each pipeline stage a contiguous
    block of ranks), so NeMo and Megatron-Bridge too; Megatron-DeepSpeed's
    ``PipeModelDataParallelTopology`` (axes pipe, data, model: pipe outermost); torchtitan's
    device mesh ``[pp, dp_replicate, dp_shard, cp, tp]``; NxD follows Megatron. Meta's Llama 3
    stack orders [TP, CP, PP, DP] (Llama 3 paper s.3.3.2): pipeline inside data parallelism."""
    pp_comm_overlap: bool = False
    """Interleaved schedules overlap their pipeline sends with compute (module docstring)."""
    grad_reduce_in_fp32: bool = True
    """Gradients kept and reduced in fp32 (`Plan.grad_reduce_in_fp32`; module docstring)."""
    tp_async_backward: bool = False
    """The column-parallel layers' backward TP collectives run behind their backward GEMMs
    (`Plan.tp_async_backward`; module docstring)."""
    recompute_early_stop: bool = False
    """Full recomputation stops before the layer's last GEMM (`Plan.recompute_early_stop`):
    torchtitan wraps each block in ``checkpoint_wrapper``, non-reentrant by default
    (`torchtitan/models/llama3/infra/parallelize.py` ``ptd_checkpoint_wrapper(module,
    preserve_rng_state=False)``; `torch/distributed/algorithms/_checkpoint/checkpoint_wrapper.py`
    ``checkpoint_impl=CheckpointImpl.NO_REENTRANT``), and MaxText's remat is ``jax.checkpoint``.
    Megatron's and DeepSpeed's ``CheckpointFunction`` rerun the whole forward; llm-foundry's
    Composer wrapper is reentrant unless a config says otherwise, and NxD does not say."""
    sp_with_selective: bool = False
    """Sequence parallelism on wherever the row recomputes selectively, when the row does not
    say: Korthikanti et al. 2022 introduce the two together, and their end-to-end runs
    (Table 5, "present work") pair them (Table 4 also times selective recomputation alone, one
    layer, as an ablation)."""
    dropout: bool = False
    """Megatron-LM's ``--hidden-dropout`` and ``--attention-dropout`` default to 0.1; the GPT
    runs of 2021-22 kept them, Llama-style runs set them to 0."""


FRAMEWORKS: dict[str, FrameworkDefaults] = {
    "megatron-2021": FrameworkDefaults(
        micro_batch=1, zero=0, recompute="none", tp_comm_overlap=False, dp_comm_overlap=False,
        sequence_parallel=False, attention=Attention.EAGER, dropout=True,
        has_sequence_parallel=False,
        source="Megatron-LM v2.x arguments.py; examples/pretrain_gpt3_175B.sh"),
    "megatron-2022": FrameworkDefaults(
        micro_batch=1, zero=0, recompute="none", tp_comm_overlap=False, dp_comm_overlap=False,
        sequence_parallel=False, attention=Attention.EAGER, dropout=True,
        tp_async_backward=True, sp_with_selective=True,
        source="Megatron-LM v3.0 arguments.py; Korthikanti et al. 2022 (selective with SP)"),
    "megatron-core": FrameworkDefaults(
        micro_batch=1, zero=0, recompute="none", tp_comm_overlap=False, dp_comm_overlap=False,
        sequence_parallel=False, pp_comm_overlap=True, attention=Attention.CUDNN,
        tp_async_backward=True,
        source="Megatron-LM megatron/training/arguments.py; examples/gpt3/train_gpt3_175b_distributed.sh"),
    "nemo": FrameworkDefaults(
        micro_batch=1, zero=1, recompute="none", tp_comm_overlap=True, dp_comm_overlap=True,
        sequence_parallel=True, pp_comm_overlap=True, attention=Attention.CUDNN,
        tp_async_backward=True,
        grad_reduce_in_fp32=False,
        source="NeMo llm/recipes performance recipes; Megatron-Bridge scripts/performance"),
    "torchtitan": FrameworkDefaults(
        micro_batch="replica", zero=3, recompute="selective", tp_comm_overlap=False,
        dp_comm_overlap=True, sequence_parallel=True, selective_block_every=2,
        zero3_with_pipeline=1, pp_comm_overlap=True, recompute_early_stop=True,
        source="torchtitan config/job_config.py; models/llama3/infra/parallelize.py (SequenceParallel; "
               "no resharding under PP)"),
    "meta-llama3": FrameworkDefaults(
        micro_batch=1, zero=2, recompute="none", tp_comm_overlap=False, dp_comm_overlap=True,
        sequence_parallel=False, vpp="layer", stated=("recompute", "vpp"),
        order=("tp", "cp", "ep", "pp", "dp"), pp_comm_overlap=True,
        source="Llama 3 paper s.3.3.2 (no activation checkpointing at 8K; interleaved schedule "
               "whose first chunk holds only the embedding; asynchronous PP sends)"),
    "maxtext": FrameworkDefaults(
        micro_batch="replica", zero=3, recompute="full", tp_comm_overlap=True,
        dp_comm_overlap=True, sequence_parallel=False, recompute_early_stop=True,
        source="MaxText configs/base.yml; configs/v5p|v5e/*.sh LIBTPU_INIT_ARGS (async collective fusion)"),
    "neuron": FrameworkDefaults(
        micro_batch=1, zero=1, recompute="selective", tp_comm_overlap=False, dp_comm_overlap=True,
        sequence_parallel=True, source="Neuron NxD Training tutorials and configs"),
    "deepspeed": FrameworkDefaults(
        micro_batch=1, zero=0, recompute="none", tp_comm_overlap=False, dp_comm_overlap=False,
        sequence_parallel=False, attention=Attention.EAGER, dropout=True,
        has_sequence_parallel=False,
        source="DeepSpeed zero_optimization.stage default; runtime/pipe/schedule.py TrainSchedule "
               "(ReduceGrads after the last micro-batch); Megatron-DeepSpeed arguments"),
    "llm-foundry": FrameworkDefaults(
        micro_batch="replica", zero=3, recompute="full", tp_comm_overlap=False,
        dp_comm_overlap=True, sequence_parallel=False, source="llm-foundry pretrain yamls"),
}

FRAMEWORKS["torchtitan-2024"] = replace(
    FRAMEWORKS["torchtitan"], micro_batch="stages",
    source="torchtitan 9dec370 (2024-12-26) torchtitan/parallelisms/pipelining_utils.py "
           "build_pipeline_schedule (n_microbatches = total stages when unset); otherwise as "
           "torchtitan")


def default_vpp(d: FrameworkDefaults, *, pp: int, layers: int) -> int:
    """The framework's virtual stages per rank for `layers` on `pp` ranks: its fixed number,
    or with ``layer`` one layer per virtual stage, ``(layers + 2) / pp`` when that is whole
    (Llama 3 405B: 128 / 16 = 8), else ``layers / pp``, else no interleaving."""
    if pp == 1:
        return 1
    if d.vpp != "layer":
        return d.vpp
    for chunks in (layers + 2, layers):
        if chunks % pp == 0:
            return chunks // pp
    return 1


_BY_FAMILY = {"tpu": "maxtext", "trainium": "neuron"}
"""A row that names no framework: the chip vendor's own stack, else Megatron-Core (or, for a
source dated 2022 or earlier, the Megatron-LM of its year: Megatron-Core was first released in
2023, and fused attention reached the large-model frameworks in 2023)."""
_KEYWORDS = (("torchtitan", "torchtitan"), ("maxtext", "maxtext"), ("neuron", "neuron"),
             ("llama team (meta)", "meta-llama3"), ("nemo", "nemo"), ("megatron-bridge", "nemo"), ("llm-foundry", "llm-foundry"),
             ("deepspeed", "deepspeed"), ("gpt-neox", "deepspeed"), ("bloom", "deepspeed"),
             ("megatron-core", "megatron-core"),
             ("korthikanti", "megatron-2022"), ("narayanan", "megatron-2021"))

MEMORY_LADDER: tuple[tuple[str, object], ...] = (
    ("sequence_parallel", True), ("recompute", "selective"), ("recompute", "full"), ("zero", 1), ("micro_batch", 1),
)
"""What a practitioner turns, in order, when the defaults run out of memory."""


def framework_of(row: Mapping[str, str], *, family: str) -> str:
    """The row's ``framework`` cell, else a keyword of its source, else the chip family's."""
    named = (row.get("framework") or "").strip()
    if named:
        if named not in FRAMEWORKS:
            raise ConfigError(f"measurements row {row.get('id')!r}: framework = {named!r} "
                              f"(expected one of {', '.join(FRAMEWORKS)})")
        return named
    text = f"{row.get('source', '')} {row.get('table_or_url', '')}".lower()
    for word, key in _KEYWORDS:
        if word in text:
            return _version(key, row.get("source") or "")
    if family in _BY_FAMILY:
        return _BY_FAMILY[family]
    year = _source_year(row.get("source") or "")
    if year is not None and year <= 2021:
        return "megatron-2021"
    if year == 2022:
        return "megatron-2022"
    return "megatron-core"


def _source_year(source: str) -> int | None:
    """The latest year a source names (its publication), or None."""
    years = [int(y) for y in re.findall(r"\b(20[0-9]{2})\b", source)]
    return max(years) if years else None


def _version(key: str, source: str) -> str:
    """torchtitan as of the source's year: a source dated 2024 or earlier ran the December
    2024 code (`torchtitan-2024`, whose pipelined micro-batches came from the stage count)."""
    year = _source_year(source)
    if key == "torchtitan" and year is not None and year <= 2024:
        return "torchtitan-2024"
    return key
