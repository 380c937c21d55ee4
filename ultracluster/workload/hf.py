"""Hugging Face ``config.json`` import for the decoder families ultracluster models.

Supported ``model_type`` values: llama, mistral, mixtral, qwen2, qwen3, qwen3_moe, deepseek_v3,
gpt2, gpt_neox. Field names follow each family's ``configuration_*.py`` in transformers.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ultracluster.errors import ConfigError
from ultracluster.fields import get_bool, get_int, table
from ultracluster.workload.spec import MLASpec, MoESpec, TransformerSpec

Reader = Callable[[Mapping[str, Any], str], TransformerSpec]


def load_hf_config(path: str | Path) -> TransformerSpec:
    """Read a ``config.json`` file into a `TransformerSpec`."""
    p = Path(path)
    try:
        raw = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{p}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{p}: cannot read ({e})") from None
    except json.JSONDecodeError as e:
        raise ConfigError(f"{p}: not valid JSON ({e.msg} at line {e.lineno})") from None
    return spec_from_hf(raw, name=p.parent.name if p.name == "config.json" else p.stem)


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


def _llama_like(c: Mapping[str, Any], name: str, **extra: Any) -> TransformerSpec:
    heads = get_int(c, "num_attention_heads", name)
    hidden = get_int(c, "hidden_size", name)
    return TransformerSpec(
        name=name,
        num_layers=get_int(c, "num_hidden_layers", name),
        hidden=hidden,
        num_heads=heads,
        num_kv_heads=get_int(c, "num_key_value_heads", name, heads),
        head_dim=get_int(c, "head_dim", name, hidden // heads),
        ffn_hidden=get_int(c, "intermediate_size", name),
        vocab=get_int(c, "vocab_size", name),
        tied_embeddings=get_bool(c, "tie_word_embeddings", name, False),
        max_seq_len=get_int(c, "max_position_embeddings", name, 8192),
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
    moe = MoESpec(num_experts=get_int(c, "num_local_experts", name),
                  top_k=get_int(c, "num_experts_per_tok", name),
                  expert_ffn_hidden=get_int(c, "intermediate_size", name))
    return _llama_like(c, name, moe=moe)


def _qwen3_moe(c: Mapping[str, Any], name: str) -> TransformerSpec:
    step = get_int(c, "decoder_sparse_step", name, 1)
    if step != 1 or c.get("mlp_only_layers"):
        raise ConfigError(f"{name}: decoder_sparse_step != 1 or mlp_only_layers is not "
                          "supported (only a leading block of dense layers is)")
    moe = MoESpec(num_experts=get_int(c, "num_experts", name),
                  top_k=get_int(c, "num_experts_per_tok", name),
                  expert_ffn_hidden=get_int(c, "moe_intermediate_size", name))
    return _llama_like(c, name, moe=moe, qk_norm=True,
                       qkv_bias=get_bool(c, "attention_bias", name, False))


def _deepseek_v3(c: Mapping[str, Any], name: str) -> TransformerSpec:
    moe = MoESpec(num_experts=get_int(c, "n_routed_experts", name),
                  top_k=get_int(c, "num_experts_per_tok", name),
                  expert_ffn_hidden=get_int(c, "moe_intermediate_size", name),
                  num_shared_experts=get_int(c, "n_shared_experts", name, 0, minimum=0),
                  num_dense_layers=get_int(c, "first_k_dense_replace", name, 0, minimum=0))
    mla = MLASpec(q_lora_rank=get_int(c, "q_lora_rank", name, 0, minimum=0),
                  kv_lora_rank=get_int(c, "kv_lora_rank", name),
                  qk_nope_head_dim=get_int(c, "qk_nope_head_dim", name),
                  qk_rope_head_dim=get_int(c, "qk_rope_head_dim", name),
                  v_head_dim=get_int(c, "v_head_dim", name))
    return _llama_like(c, name, moe=moe, mla=mla)


def _gpt2(c: Mapping[str, Any], name: str) -> TransformerSpec:
    hidden = get_int(c, "n_embd", name)
    n_inner = c.get("n_inner")
    return TransformerSpec(
        name=name, num_layers=get_int(c, "n_layer", name), hidden=hidden,
        num_heads=get_int(c, "n_head", name), num_kv_heads=get_int(c, "n_head", name),
        ffn_hidden=get_int(c, "n_inner", name) if n_inner is not None else 4 * hidden,
        gated_ffn=False, vocab=get_int(c, "vocab_size", name),
        tied_embeddings=get_bool(c, "tie_word_embeddings", name, True), bias=True,
        learned_positions=get_int(c, "n_positions", name),
        max_seq_len=get_int(c, "n_positions", name),
    )


def _gpt_neox(c: Mapping[str, Any], name: str) -> TransformerSpec:
    heads = get_int(c, "num_attention_heads", name)
    return TransformerSpec(
        name=name, num_layers=get_int(c, "num_hidden_layers", name),
        hidden=get_int(c, "hidden_size", name), num_heads=heads, num_kv_heads=heads,
        ffn_hidden=get_int(c, "intermediate_size", name), gated_ffn=False,
        vocab=get_int(c, "vocab_size", name),
        tied_embeddings=get_bool(c, "tie_word_embeddings", name, False), bias=True,
        max_seq_len=get_int(c, "max_position_embeddings", name, 2048),
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
