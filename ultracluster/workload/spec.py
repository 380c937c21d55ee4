"""`TransformerSpec`: a decoder-only transformer (dense, GQA/MQA, MoE, MLA) and its counts.

Parameter counts follow the layer shapes directly (weights of every matmul, norms, biases,
embeddings). Training FLOPs follow Kaplan et al. 2020 / Narayanan et al. 2021: a matmul with
an m x n weight costs 2mn FLOPs per token forward and 4mn backward, so 6 x (matmul weights
active per token) per token, plus attention's score and value products, 2 x 2 x s x d_head x
heads per layer forward (Korthikanti et al. 2022 eq. for the attention term), halved for causal
masking as flash-attention kernels skip the masked half.
"""

from __future__ import annotations

from dataclasses import dataclass

from ultracluster.errors import ConfigError

SPEC_RANGES: dict[str, tuple[int, int]] = {
    # Wide physical ranges (today's largest: 126 layers, d = 53,248, 262k vocabulary,
    # 10M context); finite so no count overflows a float.
    "num_layers": (1, 10_000), "hidden": (1, 1_000_000), "num_heads": (1, 100_000),
    "num_kv_heads": (1, 100_000), "head_dim": (0, 100_000), "ffn_hidden": (1, 10_000_000),
    "vocab": (1, 100_000_000), "learned_positions": (0, 1_000_000_000),
    "max_seq_len": (1, 1_000_000_000),
    "num_experts": (1, 100_000), "top_k": (1, 100_000), "expert_ffn_hidden": (1, 10_000_000),
    "num_shared_experts": (0, 1_000), "num_dense_layers": (0, 10_000),
    "q_lora_rank": (0, 1_000_000), "kv_lora_rank": (1, 1_000_000),
    "qk_nope_head_dim": (1, 100_000), "qk_rope_head_dim": (0, 100_000),
    "v_head_dim": (1, 100_000),
}
"""(low, high) of every integer field of `TransformerSpec`, `MoESpec` and `MLASpec`."""


def _check_ranges(obj: object, names: tuple[str, ...], where: str) -> None:
    for f in names:
        v = getattr(obj, f)
        lo, hi = SPEC_RANGES[f]
        if isinstance(v, bool) or not isinstance(v, int):
            raise ConfigError(f"{where}: {f} = {v!r} must be a whole number in "
                              f"[{lo:,}, {hi:,}]")
        if not lo <= v <= hi:
            shown = f"{v:,}" if abs(v) < 10**15 else f"{float(v):.3g}" if v.bit_length() < 1000 \
                else "a huge number"
            raise ConfigError(f"{where}: {f} = {shown} is out of range; must be in "
                              f"[{lo:,}, {hi:,}]")


@dataclass(frozen=True, kw_only=True, slots=True)
class MoESpec:
    """Mixture-of-experts feed-forward layers."""

    num_experts: int
    """Routed experts per MoE layer."""
    top_k: int
    """Routed experts each token visits."""
    expert_ffn_hidden: int
    """FFN width of one expert."""
    num_shared_experts: int = 0
    """Always-active experts of the same width (DeepSeek)."""
    num_dense_layers: int = 0
    """The first layers use a dense FFN (DeepSeek-V3: 3)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class MLASpec:
    """Multi-head latent attention (DeepSeek-V2/V3)."""

    q_lora_rank: int
    """Rank of the query down-projection (0: no query compression)."""
    kv_lora_rank: int
    """Rank of the joint key/value compression."""
    qk_nope_head_dim: int
    """Per-head query/key width without rotary."""
    qk_rope_head_dim: int
    """Per-head (shared for keys) rotary width."""
    v_head_dim: int
    """Per-head value width."""


@dataclass(frozen=True, kw_only=True, slots=True)
class TransformerSpec:
    """A decoder-only transformer's shape."""

    name: str
    """Preset key or file name."""
    num_layers: int
    """Transformer blocks."""
    hidden: int
    """Model width d."""
    num_heads: int
    """Query heads."""
    num_kv_heads: int
    """Key/value heads (= num_heads for MHA, 1 for MQA)."""
    head_dim: int = 0
    """Per-head width; 0 means hidden / num_heads."""
    ffn_hidden: int
    """Dense FFN inner width."""
    gated_ffn: bool = True
    """SwiGLU-style gate (3 matrices) or plain GeLU MLP (2)."""
    vocab: int
    """Vocabulary size (padded, as trained)."""
    tied_embeddings: bool = False
    """Input embedding shared with the output projection."""
    bias: bool = False
    """Linear layers and norms carry biases (GPT-2, GPT-NeoX)."""
    qkv_bias: bool = False
    """Only q/k/v projections carry biases (Qwen2)."""
    qk_norm: bool = False
    """Per-head RMSNorm on queries and keys (Qwen3)."""
    dropout: bool = False
    """Dropout on the attention probabilities and after the attention and the MLP (GPT-3,
    Megatron-LM 2022); modern pretraining runs use none. Costs activation memory and time."""
    learned_positions: int = 0
    """Rows of a learned position embedding (GPT-2); 0 for rotary."""
    max_seq_len: int = 8192
    """Context length the model was built for (informational)."""
    moe: MoESpec | None = None
    """Mixture of experts, or None for dense."""
    mla: MLASpec | None = None
    """Multi-head latent attention, or None for (grouped-query) attention."""

    def __post_init__(self) -> None:
        where = f"model {self.name}"
        _check_ranges(self, ("num_layers", "hidden", "num_heads", "num_kv_heads", "head_dim",
                             "ffn_hidden", "vocab", "learned_positions", "max_seq_len"), where)
        if self.moe is not None:
            _check_ranges(self.moe, ("num_experts", "top_k", "expert_ffn_hidden",
                                     "num_shared_experts", "num_dense_layers"), where)
        if self.mla is not None:
            _check_ranges(self.mla, ("q_lora_rank", "kv_lora_rank", "qk_nope_head_dim",
                                     "qk_rope_head_dim", "v_head_dim"), where)
        if self.num_heads % self.num_kv_heads:
            raise ConfigError(
                f"model {self.name}: num_heads {self.num_heads} is not a multiple of "
                f"num_kv_heads {self.num_kv_heads}"
            )
        if self.d_head < 1:
            raise ConfigError(f"model {self.name}: hidden {self.hidden} / num_heads "
                              f"{self.num_heads} leaves heads of width 0; give head_dim")
        if self.moe is not None:
            m = self.moe
            if not 0 < m.top_k <= m.num_experts or m.expert_ffn_hidden <= 0:
                raise ConfigError(
                    f"model {self.name}: MoE top_k {m.top_k} must be in [1, num_experts "
                    f"{m.num_experts}] and expert_ffn_hidden > 0"
                )
            if not 0 <= m.num_dense_layers <= self.num_layers or m.num_shared_experts < 0:
                raise ConfigError(f"model {self.name}: MoE dense/shared layer counts invalid")

    # ---- shapes -------------------------------------------------------------------------
    @property
    def d_head(self) -> int:
        """Per-head dimension (``head_dim``, else hidden / heads)."""
        return self.head_dim or self.hidden // self.num_heads

    @property
    def num_moe_layers(self) -> int:
        """Layers with experts (all but the leading dense ones)."""
        return 0 if self.moe is None else self.num_layers - self.moe.num_dense_layers

    @property
    def num_dense_layers(self) -> int:
        """Layers with a dense FFN (all but the MoE layers)."""
        return self.num_layers - self.num_moe_layers

    # ---- parameters ---------------------------------------------------------------------
    def attention_params(self) -> int:
        """Attention weights (and biases) of one layer."""
        h, a = self.hidden, self.num_heads
        if self.mla is not None:
            m = self.mla
            qk = m.qk_nope_head_dim + m.qk_rope_head_dim
            q = (h * m.q_lora_rank + m.q_lora_rank + m.q_lora_rank * a * qk
                 if m.q_lora_rank else h * a * qk)
            kv = (h * (m.kv_lora_rank + m.qk_rope_head_dim) + m.kv_lora_rank
                  + m.kv_lora_rank * a * (m.qk_nope_head_dim + m.v_head_dim))
            return q + kv + a * m.v_head_dim * h
        dq, dkv = a * self.d_head, self.num_kv_heads * self.d_head
        n = h * (dq + 2 * dkv) + dq * h
        if self.bias:
            n += dq + 2 * dkv + h
        elif self.qkv_bias:
            n += dq + 2 * dkv
        if self.qk_norm:
            n += 2 * self.d_head
        return n

    def ffn_params(self, width: int) -> int:
        """One FFN (or one expert) of inner width `width`."""
        n = (3 if self.gated_ffn else 2) * self.hidden * width
        if self.bias:
            n += width + self.hidden
        return n

    def norm_params(self) -> int:
        """The two norms of one layer."""
        return 2 * self.hidden * (2 if self.bias else 1)

    def moe_layer_params(self, *, active: bool) -> int:
        """Expert and router weights of one MoE layer: all experts, or only the `top_k`
        routed (plus shared) ones a token uses when `active`.
        """
        assert self.moe is not None
        m = self.moe
        experts = m.top_k if active else m.num_experts
        return (self.hidden * m.num_experts
                + (experts + m.num_shared_experts) * self.ffn_params(m.expert_ffn_hidden))

    def embedding_params(self) -> int:
        """Input embedding, learned positions, output projection (unless tied), final norm."""
        n = self.vocab * self.hidden * (1 if self.tied_embeddings else 2)
        n += self.learned_positions * self.hidden
        return n + self.hidden * (2 if self.bias else 1)

    def layer_params(self, *, active: bool = False) -> int:
        """Parameters of all transformer blocks (no embeddings)."""
        dense = self.attention_params() + self.norm_params() + self.ffn_params(self.ffn_hidden)
        n = self.num_dense_layers * dense
        if self.moe is not None:
            per = self.attention_params() + self.norm_params() + self.moe_layer_params(
                active=active)
            n += self.num_moe_layers * per
        return n

    @property
    def params(self) -> int:
        """Total parameters."""
        return self.layer_params() + self.embedding_params()

    @property
    def active_params(self) -> int:
        """Parameters touched by one token (routed experts counted top_k times)."""
        return self.layer_params(active=True) + self.embedding_params()

    # ---- FLOPs ----------------------------------------------------------------------------
    def matmul_flops_per_token_fwd(self) -> float:
        """Forward FLOPs of every weight matmul for one token: 2 x active matmul weights.

        Norms, biases, the input embedding (a lookup) and the router's softmax are not
        matmuls; the output projection (vocab x hidden) is.
        """
        weights = self.layer_params(active=True) - self.num_layers * self.norm_params()
        return 2.0 * (weights + self.vocab * self.hidden)

    def attention_flops_per_token_fwd(self, seq_len: int, *, causal: bool = True) -> float:
        """Forward FLOPs of QK^T and AV for one token at context `seq_len`.

        2 products x 2 FLOPs x s x (heads x d_head) per layer (Korthikanti et al. 2022, s.4),
        halved when causal (only the lower triangle is computed by flash attention).
        """
        if self.mla is not None:
            qk = self.mla.qk_nope_head_dim + self.mla.qk_rope_head_dim
            width = self.num_heads * (qk + self.mla.v_head_dim) / 2
        else:
            width = self.num_heads * self.d_head
        f = 4.0 * seq_len * width * self.num_layers
        return f / 2 if causal else f

    def flops_per_token(self, seq_len: int, *, causal: bool = True) -> float:
        """Training (forward + backward) FLOPs per token, without recomputation: 3 x forward."""
        return 3.0 * (self.matmul_flops_per_token_fwd()
                      + self.attention_flops_per_token_fwd(seq_len, causal=causal))

    def recompute_flops_per_token(self, seq_len: int, mode: str, *, causal: bool = True) -> float:
        """Extra forward FLOPs per token that recomputation adds (counted apart from the model
        FLOPs: HFU includes them, MFU does not).

        ``full``: one more forward of every layer (not the output layer).
        ``selective``: only the attention core, QK^T / softmax / AV (Korthikanti et al. 2022).
        """
        if mode == "full":
            return (self.matmul_flops_per_token_fwd() - 2.0 * self.vocab * self.hidden
                    + self.attention_flops_per_token_fwd(seq_len, causal=causal))
        if mode == "selective":
            return self.attention_flops_per_token_fwd(seq_len, causal=causal)
        return 0.0
