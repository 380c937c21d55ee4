"""Hugging Face ``config.json`` import for the decoder families ultracluster models.

Supported ``model_type`` values: llama, mistral, mixtral, qwen2, qwen3, qwen3_moe, deepseek_v3,
gpt2, gpt_neox. Field names follow each family's ``configuration_*.py`` in transformers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ultracluster.errors import ConfigError
from ultracluster.fields import get_bool, get_int, read_json, table
from ultracluster.workload.spec import SPEC_RANGES, MLASpec, MoESpec, TransformerSpec

_MISSING: Any = object()
Reader = Callable[[Mapping[str, Any], str], TransformerSpec]


def load_hf_config(path: str | Path) -> TransformerSpec:
    """Read a ``config.json`` file into a `TransformerSpec`."""
    p = Path(path)
    return spec_from_hf(read_json(p), name=p.parent.name if p.name == "config.json" else p.stem)


def spec_from_hf(cfg: Any, *, name: str = "hf-model") -> TransformerSpec:
    """A `TransformerSpec` from a parsed ``config.json`` mapping."""
    cfg = table(cfg, name)
    model_type = cfg.get("model_type")
    if not isinstance(model_type, str) or model_type not in _READERS:
        raise ConfigError(
            f"{name}: model_type {model_type!r} is not supported "
            f"(supported: {', '.join(sorted(_READERS))})"
        )
    return _READERS[model_type](cfg, name)


def _int(c: Mapping[str, Any], key: str, where: str, default: Any = _MISSING, *,
         field: str) -> int:
    """An HF integer field, in the range of the `TransformerSpec` field it becomes."""
    lo, hi = SPEC_RANGES[field]
    if default is _MISSING:
        return get_int(c, key, where, minimum=lo, maximum=hi)
    return get_int(c, key, where, default, minimum=lo, maximum=hi)


def _llama_like(c: Mapping[str, Any], name: str, **extra: Any) -> TransformerSpec:
    heads = _int(c, "num_attention_heads", name, field="num_heads")
    hidden = _int(c, "hidden_size", name, field="hidden")
    return TransformerSpec(
        name=name,
        num_layers=_int(c, "num_hidden_layers", name, field="num_layers"),
        hidden=hidden,
        num_heads=heads,
        num_kv_heads=_int(c, "num_key_value_heads", name, heads, field="num_kv_heads"),
        head_dim=_int(c, "head_dim", name, hidden // heads, field="head_dim"),
        ffn_hidden=_int(c, "intermediate_size", name, field="ffn_hidden"),
        vocab=_int(c, "vocab_size", name, field="vocab"),
        tied_embeddings=get_bool(c, "tie_word_embeddings", name, False),
        max_seq_len=_int(c, "max_position_embeddings", name, 8192, field="max_seq_len"),
        **extra,
    )


def _llama(c: Mapping[str, Any], name: str) -> TransformerSpec:
    return _llama_like(c, name, qkv_bias=get_bool(c, "attention_bias", name, False))


def _qwen2(c: Mapping[str, Any], name: str) -> TransformerSpec:
    return _llama_like(c, name, qkv_bias=True)  # Qwen2 always has q/k/v biases


def _qwen3(c: Mapping[str, Any], name: str) -> TransformerSpec:
    return _llama_like(c, name, qk_norm=True,
                       qkv_bias=get_bool(c, "attention_bias", name, False))


def _mixtral(c: Mapping[str, Any], name: str) -> TransformerSpec:
    moe = MoESpec(num_experts=_int(c, "num_local_experts", name, field="num_experts"),
                  top_k=_int(c, "num_experts_per_tok", name, field="top_k"),
                  expert_ffn_hidden=_int(c, "intermediate_size", name, field="ffn_hidden"))
    return _llama_like(c, name, moe=moe)


def _qwen3_moe(c: Mapping[str, Any], name: str) -> TransformerSpec:
    step = get_int(c, "decoder_sparse_step", name, 1)
    if step != 1 or c.get("mlp_only_layers"):
        raise ConfigError(f"{name}: decoder_sparse_step != 1 or mlp_only_layers is not "
                          "supported (only a leading block of dense layers is)")
    moe = MoESpec(num_experts=_int(c, "num_experts", name, field="num_experts"),
                  top_k=_int(c, "num_experts_per_tok", name, field="top_k"),
                  expert_ffn_hidden=_int(c, "moe_intermediate_size", name,
                                         field="expert_ffn_hidden"))
    return _llama_like(c, name, moe=moe, qk_norm=True,
                       qkv_bias=get_bool(c, "attention_bias", name, False))


def _deepseek_v3(c: Mapping[str, Any], name: str) -> TransformerSpec:
    moe = MoESpec(num_experts=_int(c, "n_routed_experts", name, field="num_experts"),
                  top_k=_int(c, "num_experts_per_tok", name, field="top_k"),
                  expert_ffn_hidden=_int(c, "moe_intermediate_size", name,
                                         field="expert_ffn_hidden"),
                  num_shared_experts=_int(c, "n_shared_experts", name, 0,
                                          field="num_shared_experts"),
                  num_dense_layers=_int(c, "first_k_dense_replace", name, 0,
                                        field="num_dense_layers"))
    mla = MLASpec(q_lora_rank=_int(c, "q_lora_rank", name, 0, field="q_lora_rank"),
                  kv_lora_rank=_int(c, "kv_lora_rank", name, field="kv_lora_rank"),
                  qk_nope_head_dim=_int(c, "qk_nope_head_dim", name,
                                        field="qk_nope_head_dim"),
                  qk_rope_head_dim=_int(c, "qk_rope_head_dim", name,
                                        field="qk_rope_head_dim"),
                  v_head_dim=_int(c, "v_head_dim", name, field="v_head_dim"))
    return _llama_like(c, name, moe=moe, mla=mla)


def _gpt2(c: Mapping[str, Any], name: str) -> TransformerSpec:
    hidden = _int(c, "n_embd", name, field="hidden")
    n_inner = c.get("n_inner")
    return TransformerSpec(
        name=name, num_layers=_int(c, "n_layer", name, field="num_layers"), hidden=hidden,
        num_heads=_int(c, "n_head", name, field="num_heads"),
        num_kv_heads=_int(c, "n_head", name, field="num_heads"),
        ffn_hidden=(_int(c, "n_inner", name, field="ffn_hidden") if n_inner is not None
                    else 4 * hidden),
        gated_ffn=False, vocab=_int(c, "vocab_size", name, field="vocab"),
        tied_embeddings=get_bool(c, "tie_word_embeddings", name, True), bias=True,
        learned_positions=_int(c, "n_positions", name, field="max_seq_len"),
        max_seq_len=_int(c, "n_positions", name, field="max_seq_len"),
    )


def _gpt_neox(c: Mapping[str, Any], name: str) -> TransformerSpec:
    heads = _int(c, "num_attention_heads", name, field="num_heads")
    return TransformerSpec(
        name=name, num_layers=_int(c, "num_hidden_layers", name, field="num_layers"),
        hidden=_int(c, "hidden_size", name, field="hidden"), num_heads=heads,
        num_kv_heads=heads,
        ffn_hidden=_int(c, "intermediate_size", name, field="ffn_hidden"), gated_ffn=False,
        vocab=_int(c, "vocab_size", name, field="vocab"),
        tied_embeddings=get_bool(c, "tie_word_embeddings", name, False), bias=True,
        max_seq_len=_int(c, "max_position_embeddings", name, 2048, field="max_seq_len"),
    )


_READERS: dict[str, Reader] = {
    "llama": _llama,
    "mistral": _llama,
    "mixtral": _mixtral,
    "qwen2": _qwen2,
    "qwen3": _qwen3,
    "qwen3_moe": _qwen3_moe,
    "deepseek_v3": _deepseek_v3,
    "gpt2": _gpt2,
    "gpt_neox": _gpt_neox,
}
