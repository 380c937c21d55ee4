"""Model presets. Each is a function returning a `TransformerSpec`; shapes from the published
configs (Hugging Face config.json or the paper), with the published parameter count to check."""

from __future__ import annotations

from collections.abc import Callable

from ultracluster.errors import ConfigError
from ultracluster.workload.spec import MLASpec, MoESpec, TransformerSpec


def llama3_8b() -> TransformerSpec:
    """Meta-Llama-3-8B config.json (8.03B)."""
    return TransformerSpec(name="llama3-8b", num_layers=32, hidden=4096, num_heads=32,
                           num_kv_heads=8, ffn_hidden=14336, vocab=128256, max_seq_len=8192)


def llama3_70b() -> TransformerSpec:
    """Meta-Llama-3-70B config.json (70.6B)."""
    return TransformerSpec(name="llama3-70b", num_layers=80, hidden=8192, num_heads=64,
                           num_kv_heads=8, ffn_hidden=28672, vocab=128256, max_seq_len=8192)


def llama3_405b() -> TransformerSpec:
    """Llama 3.1 405B (Llama 3 paper Table 3; 405.9B in the model card)."""
    return TransformerSpec(name="llama3-405b", num_layers=126, hidden=16384, num_heads=128,
                           num_kv_heads=8, ffn_hidden=53248, vocab=128256, max_seq_len=8192)


def gpt3_175b() -> TransformerSpec:
    """GPT-3 175B (Brown et al. 2020 Table 2.1: 96 layers, d 12288, 96 heads, 2048 context)."""
    return TransformerSpec(name="gpt3-175b", num_layers=96, hidden=12288, num_heads=96,
                           num_kv_heads=96, ffn_hidden=4 * 12288, gated_ffn=False, vocab=50257,
                           tied_embeddings=True, bias=True, learned_positions=2048,
                           max_seq_len=2048)


def mixtral_8x7b() -> TransformerSpec:
    """Mixtral-8x7B config.json (46.7B total, 12.9B active)."""
    return TransformerSpec(name="mixtral-8x7b", num_layers=32, hidden=4096, num_heads=32,
                           num_kv_heads=8, ffn_hidden=14336, vocab=32000, max_seq_len=32768,
                           moe=MoESpec(num_experts=8, top_k=2, expert_ffn_hidden=14336))


def deepseek_v3() -> TransformerSpec:
    """DeepSeek-V3 config.json (671B total, 37B active; the MTP module is not counted)."""
    return TransformerSpec(
        name="deepseek-v3", num_layers=61, hidden=7168, num_heads=128, num_kv_heads=128,
        ffn_hidden=18432, vocab=129280, max_seq_len=4096,
        moe=MoESpec(num_experts=256, top_k=8, expert_ffn_hidden=2048, num_shared_experts=1,
                    num_dense_layers=3),
        mla=MLASpec(q_lora_rank=1536, kv_lora_rank=512, qk_nope_head_dim=128,
                    qk_rope_head_dim=64, v_head_dim=128),
    )


def tiny() -> TransformerSpec:
    """A small byte-level model for the runtime on CPU (about 3.1M parameters)."""
    return TransformerSpec(name="tiny", num_layers=4, hidden=256, num_heads=8, num_kv_heads=4,
                           ffn_hidden=704, vocab=256, max_seq_len=256)


MODEL_PRESETS: dict[str, Callable[[], TransformerSpec]] = {
    "llama3-8b": llama3_8b,
    "llama3-70b": llama3_70b,
    "llama3-405b": llama3_405b,
    "gpt3-175b": gpt3_175b,
    "mixtral-8x7b": mixtral_8x7b,
    "deepseek-v3": deepseek_v3,
    "tiny": tiny,
}

PUBLISHED_PARAMS: dict[str, tuple[float, float | None]] = {
    "llama3-8b": (8.03e9, None),
    "llama3-70b": (70.6e9, None),
    "llama3-405b": (405.9e9, None),
    "gpt3-175b": (175.0e9, None),
    "mixtral-8x7b": (46.7e9, 12.9e9),
    "deepseek-v3": (671e9, 37e9),
}
"""Published totals (and active counts for MoE), checked by the tests to 0.5%."""


def get_model_preset(name: str) -> TransformerSpec:
    """The preset model `name`; `ConfigError` listing the known ones otherwise."""
    try:
        return MODEL_PRESETS[name]()
    except KeyError:
        raise ConfigError(
            f"model: unknown preset {name!r} (known: {', '.join(MODEL_PRESETS)}; "
            "or a Hugging Face config.json)"
        ) from None
