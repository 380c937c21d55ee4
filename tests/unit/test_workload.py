"""Workloads: preset parameter counts against published figures, HF import, FLOPs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ultracluster.errors import ConfigError
from ultracluster.workload import (
    MODEL_PRESETS,
    PUBLISHED_PARAMS,
    TrainingJob,
    get_model_preset,
    load_hf_config,
    load_model,
    spec_from_hf,
)

HF = Path(__file__).parent / "hf_configs"

# Exact totals from each model's published safetensors index / model card.
HF_EXPECTED = {
    "llama3-8b.json": (8_030_261_248, None),
    "mistral-7b.json": (7_241_732_096, None),
    "mixtral-8x7b.json": (46_702_792_704, 12.9e9),
    "qwen2-7b.json": (7_615_616_512, None),
    "qwen3-8b.json": (8_190_735_360, None),
    "qwen3-30b-a3b.json": (30_532_122_624, 3.3e9),
    "deepseek-v3.json": (671_026_404_352, 37e9),  # 684.5B in the index includes the MTP layer
    "gpt2.json": (124_439_808, None),
    "gpt-neox-20b.json": (20_554_567_680, None),
}


@pytest.mark.parametrize("name", sorted(PUBLISHED_PARAMS))
def test_preset_params_match_published(name: str) -> None:
    total, active = PUBLISHED_PARAMS[name]
    m = get_model_preset(name)
    assert m.params == pytest.approx(total, rel=0.005)
    if active is not None:
        # "37B" is rounded to 2 significant figures: allow half a unit of the last digit.
        tol = 0.005 + (0.5e9 / active if active >= 1e10 else 0.0)
        assert m.active_params == pytest.approx(active, rel=tol)


@pytest.mark.parametrize("fname", sorted(HF_EXPECTED))
def test_hf_import_matches_published_counts(fname: str) -> None:
    m = load_hf_config(HF / fname)
    total, active = HF_EXPECTED[fname]
    assert m.params == total
    if active is not None:
        assert m.active_params == pytest.approx(active, rel=0.02)


def test_hf_families_are_all_covered() -> None:
    types = {json.loads((HF / f).read_text())["model_type"] for f in HF_EXPECTED}
    assert types == {"llama", "mistral", "mixtral", "qwen2", "qwen3", "qwen3_moe",
                     "deepseek_v3", "gpt2", "gpt_neox"}


def test_llama3_8b_flops_hand_checked() -> None:
    m = get_model_preset("llama3-8b")
    # 6 x (non-embedding matmul weights + output projection) + causal attention 6*L*s*h
    weights = m.params - m.vocab * m.hidden - (2 * m.num_layers + 1) * m.hidden
    expected = 6 * weights + 6 * 32 * 8192 * 4096
    assert m.flops_per_token(8192) == pytest.approx(expected, rel=1e-12)
    assert m.flops_per_token(8192, causal=False) == pytest.approx(
        expected + 6 * 32 * 8192 * 4096, rel=1e-12)
    # Full recomputation adds one forward of the layers; selective only attention's core.
    assert m.recompute_flops_per_token(8192, "full") > m.recompute_flops_per_token(
        8192, "selective") > 0 == m.recompute_flops_per_token(8192, "none")


def test_moe_active_counts_only_routed_experts() -> None:
    m = get_model_preset("mixtral-8x7b")
    assert m.active_params < m.params / 3
    assert m.flops_per_token(4096) < 6.5 * m.params


@pytest.mark.parametrize("cfg, field", [
    ({"model_type": "bert"}, "model_type"),
    ({}, "model_type"),
    ({"model_type": "llama", "hidden_size": 4096}, "num_attention_heads"),
    ({"model_type": "llama", "hidden_size": "big", "num_attention_heads": 4}, "hidden_size"),
    ({"model_type": "gpt2", "n_embd": 768, "n_head": 12, "n_layer": 12}, "vocab_size"),
    ({"model_type": "llama", "hidden_size": 64, "num_attention_heads": 6,
      "num_key_value_heads": 4, "num_hidden_layers": 2, "intermediate_size": 128,
      "vocab_size": 10}, "num_kv_heads"),
])
def test_hf_errors_name_the_field(cfg: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        spec_from_hf(cfg, name="cfg")


def test_hf_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_hf_config(tmp_path / "missing.json")
    bad = tmp_path / "config.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_hf_config(bad)
    with pytest.raises(ConfigError, match="neither a preset"):
        load_model("no-such-model")
    (tmp_path / "config.json").write_text((HF / "gpt2.json").read_text())
    assert load_model(str(tmp_path)).params == 124_439_808


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**12) | st.floats() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(base=st.sampled_from(sorted(HF_EXPECTED)), drop=st.lists(st.text(max_size=30), max_size=4),
       override=st.dictionaries(st.sampled_from(
           ["hidden_size", "num_attention_heads", "num_key_value_heads", "num_hidden_layers",
            "intermediate_size", "vocab_size", "n_embd", "n_head", "n_layer", "head_dim",
            "num_experts", "num_local_experts", "num_experts_per_tok", "kv_lora_rank",
            "tie_word_embeddings", "model_type", "first_k_dense_replace", "mlp_only_layers"]),
           _json_values, max_size=4))
def test_hf_fuzz_only_config_errors(base: str, drop: list[str], override: dict[str, object]) -> None:
    cfg = json.loads((HF / base).read_text())
    for k in drop:
        cfg.pop(k, None)
    cfg.update(override)
    try:
        m = spec_from_hf(cfg, name="fuzz")
    except ConfigError:
        return
    assert m.params > 0


def test_training_job_batch_in_tokens_or_sequences() -> None:
    j = TrainingJob.from_batch(tokens=15e12, seq_len=8192, global_batch=4 * 1024**2)
    assert j.global_batch_seqs == 512
    assert TrainingJob.from_batch(tokens=1e9, seq_len=2048, global_batch=1536).global_batch_seqs \
        == 1536
    with pytest.raises(ConfigError, match="precision"):
        TrainingJob(tokens=1e9, precision="int4")  # type: ignore[arg-type]


def test_every_preset_builds() -> None:
    for f in MODEL_PRESETS.values():
        assert f().params > 0
