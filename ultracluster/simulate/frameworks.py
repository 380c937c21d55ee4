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
| megatron-2022 | 1 | 0 | none | off | off | off | as above at v3.0 (Korthikanti et al. 2022 add ``--sequence-parallel`` and ``--recompute-activations``, both store_true) |
| megatron-core | 1 | 0 | none | off | off | off | NVIDIA/Megatron-LM `megatron/training/arguments.py` (``--use-distributed-optimizer``, ``--sequence-parallel``, ``--tp-comm-overlap``, ``--overlap-grad-reduce`` are store_true; ``--recompute-granularity`` default None); micro-batch from `examples/gpt3/train_gpt3_175b_distributed.sh` |
| nemo | 1 | 1 | none | on | on | on | NVIDIA/NeMo `nemo/collections/llm/recipes/llama3_70b.py` performance recipe (``MegatronCommOverlapCallback(tp_comm_overlap=True, overlap_grad_reduce=True, overlap_param_gather=True)``, distributed fused Adam = distributed optimizer, ``sequence_parallel=True``); same in Megatron-Bridge `scripts/performance` |
| torchtitan | replica | 3 | selective | off | on | off | pytorch/torchtitan `torchtitan/config/job_config.py` (``ActivationCheckpoint.mode = "selective"``, ``data_parallel_shard_degree = -1`` = FSDP2, ``enable_async_tensor_parallel = False``, ``pipeline_parallel_microbatch_size = 1``) |
| maxtext | replica | 3 | full | off | on | off | AI-Hypercomputer/maxtext `MaxText/configs/base.yml` (``remat_policy: 'full'``, ``ici_fsdp_parallelism: -1``); no gradient accumulation by default |
| neuron | 1 | 1 | selective | off | on | on | aws-neuron NxD Training Llama/GPT tutorials and `neuronx-distributed-training` configs (ZeRO-1, sequence parallel, selective activation checkpointing, micro-batch 1) |
| deepspeed | 1 | 0 | none | off | on | off | microsoft/DeepSpeed docs `zero_optimization.stage` default 0; Megatron-DeepSpeed `--checkpoint-activations` store_true |
| llm-foundry | replica | 3 | full | off | on | off | mosaicml/llm-foundry `scripts/train/yamls/pretrain/*.yaml` (``fsdp_config.sharding_strategy: FULL_SHARD``, ``activation_checkpointing: true``) |

``replica`` means no gradient accumulation: the micro-batch is the replica's whole share of the
global batch (split over pipeline micro-batches of 1 when pp > 1, as torchtitan's
``pipeline_parallel_microbatch_size`` does). Interleaving (vpp) is never a default: 1 unless
the row states it. Megatron-LM 2021/2022 and Megatron-DeepSpeed predate fused attention in those
frameworks (``attention = "eager"``) and keep Megatron's default dropout of 0.1.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from ultracluster.errors import ConfigError
from ultracluster.plan.vocab import Attention

MicroBatch = int | Literal["replica"]


@dataclass(frozen=True, kw_only=True, slots=True)
class FrameworkDefaults:
    """The settings one framework version uses when the user does not set them."""

    micro_batch: MicroBatch
    """Sequences per micro-batch, or ``replica`` (no gradient accumulation)."""
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
    in 2023): the s x s scores are stored and the softmax runs through memory."""
    dropout: bool = False
    """Megatron-LM's ``--hidden-dropout`` and ``--attention-dropout`` default to 0.1; the GPT
    runs of 2021-22 kept them, Llama-style runs set them to 0."""


FRAMEWORKS: dict[str, FrameworkDefaults] = {
    "megatron-2021": FrameworkDefaults(
        micro_batch=1, zero=0, recompute="none", tp_comm_overlap=False, dp_comm_overlap=False,
        sequence_parallel=False, attention=Attention.EAGER, dropout=True,
        source="Megatron-LM v2.x arguments.py; examples/pretrain_gpt3_175B.sh"),
    "megatron-2022": FrameworkDefaults(
        micro_batch=1, zero=0, recompute="none", tp_comm_overlap=False, dp_comm_overlap=False,
        sequence_parallel=False, attention=Attention.EAGER, dropout=True,
        source="Megatron-LM v3.0 arguments.py; Korthikanti et al. 2022"),
    "megatron-core": FrameworkDefaults(
        micro_batch=1, zero=0, recompute="none", tp_comm_overlap=False, dp_comm_overlap=False,
        sequence_parallel=False,
        source="Megatron-LM megatron/training/arguments.py; examples/gpt3/train_gpt3_175b_distributed.sh"),
    "nemo": FrameworkDefaults(
        micro_batch=1, zero=1, recompute="none", tp_comm_overlap=True, dp_comm_overlap=True,
        sequence_parallel=True, source="NeMo llm/recipes performance recipes; Megatron-Bridge scripts/performance"),
    "torchtitan": FrameworkDefaults(
        micro_batch="replica", zero=3, recompute="selective", tp_comm_overlap=False,
        dp_comm_overlap=True, sequence_parallel=False, source="torchtitan config/job_config.py"),
    "maxtext": FrameworkDefaults(
        micro_batch="replica", zero=3, recompute="full", tp_comm_overlap=False,
        dp_comm_overlap=True, sequence_parallel=False, source="MaxText configs/base.yml"),
    "neuron": FrameworkDefaults(
        micro_batch=1, zero=1, recompute="selective", tp_comm_overlap=False, dp_comm_overlap=True,
        sequence_parallel=True, source="Neuron NxD Training tutorials and configs"),
    "deepspeed": FrameworkDefaults(
        micro_batch=1, zero=0, recompute="none", tp_comm_overlap=False, dp_comm_overlap=True,
        sequence_parallel=False, attention=Attention.EAGER, dropout=True,
        source="DeepSpeed zero_optimization.stage default; Megatron-DeepSpeed arguments"),
    "llm-foundry": FrameworkDefaults(
        micro_batch="replica", zero=3, recompute="full", tp_comm_overlap=False,
        dp_comm_overlap=True, sequence_parallel=False, source="llm-foundry pretrain yamls"),
}

_BY_FAMILY = {"tpu": "maxtext", "trainium": "neuron"}
"""A row that names no framework: the chip vendor's own stack, else Megatron-Core."""
_KEYWORDS = (("torchtitan", "torchtitan"), ("maxtext", "maxtext"), ("neuron", "neuron"),
             ("nemo", "nemo"), ("megatron-bridge", "nemo"), ("llm-foundry", "llm-foundry"),
             ("deepspeed", "deepspeed"), ("megatron-core", "megatron-core"),
             ("korthikanti", "megatron-2022"), ("narayanan", "megatron-2021"))

MEMORY_LADDER: tuple[tuple[str, object], ...] = (
    ("recompute", "selective"), ("recompute", "full"), ("zero", 1), ("micro_batch", 1),
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
            return key
    return _BY_FAMILY.get(family, "megatron-core")
