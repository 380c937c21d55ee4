"""A decoder-only transformer built from a `TransformerSpec`: RMSNorm, rotary positions,
SwiGLU and grouped-query attention (the Llama family's blocks, as in nanoGPT/torchtitan)."""

from __future__ import annotations


import torch
import torch.nn.functional as F
from torch import nn

from ultracluster.errors import ConfigError
from ultracluster.workload.spec import TransformerSpec


def check_trainable(spec: TransformerSpec) -> None:
    """The runtime model covers dense GQA SwiGLU/GeLU decoders; say so for anything else."""
    if spec.moe is not None or spec.mla is not None:
        raise ConfigError(f"model {spec.name}: the runtime trains dense models (no MoE/MLA yet)")


def rotary(seq_len: int, dim: int, base: float = 10000.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotary embedding tables (cos, sin) for `seq_len` positions and head dimension `dim` (Su
    et al. 2021)."""
    inv = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))
    freqs = torch.outer(torch.arange(seq_len, dtype=torch.float32), inv)
    return freqs.cos(), freqs.sin()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate the even/odd feature pairs of `x` by the position angles in `cos`, `sin`."""
    x1, x2 = x[..., 0::2], x[..., 1::2]
    out: torch.Tensor = torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)
    return out.flatten(-2)


class Attention(nn.Module):
    def __init__(self, spec: TransformerSpec) -> None:
        super().__init__()
        self.heads, self.kv_heads, self.head_dim = spec.num_heads, spec.num_kv_heads, spec.d_head
        h = spec.hidden
        self.wq = nn.Linear(h, self.heads * self.head_dim, bias=spec.qkv_bias or spec.bias)
        self.wk = nn.Linear(h, self.kv_heads * self.head_dim, bias=spec.qkv_bias or spec.bias)
        self.wv = nn.Linear(h, self.kv_heads * self.head_dim, bias=spec.qkv_bias or spec.bias)
        self.wo = nn.Linear(self.heads * self.head_dim, h, bias=spec.bias)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        """Causal self-attention with rotary positions (grouped-query when fewer KV heads)."""
        b, s, _ = x.shape
        q = self.wq(x).view(b, s, self.heads, self.head_dim).transpose(1, 2)
        k = self.wk(x).view(b, s, self.kv_heads, self.head_dim).transpose(1, 2)
        v = self.wv(x).view(b, s, self.kv_heads, self.head_dim).transpose(1, 2)
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        if self.kv_heads != self.heads:
            rep = self.heads // self.kv_heads
            k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        out: torch.Tensor = self.wo(y.transpose(1, 2).reshape(b, s, self.heads * self.head_dim))
        return out


class FeedForward(nn.Module):
    def __init__(self, spec: TransformerSpec) -> None:
        super().__init__()
        h, f = spec.hidden, spec.ffn_hidden
        self.gated = spec.gated_ffn
        self.w1 = nn.Linear(h, f, bias=spec.bias)
        self.w3 = nn.Linear(h, f, bias=spec.bias) if self.gated else None
        self.w2 = nn.Linear(f, h, bias=spec.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """SwiGLU when the model is gated, else GeLU."""
        h = F.silu(self.w1(x)) * self.w3(x) if self.w3 is not None else F.gelu(self.w1(x))
        out: torch.Tensor = self.w2(h)
        return out


class Block(nn.Module):
    def __init__(self, spec: TransformerSpec) -> None:
        super().__init__()
        self.attn_norm = nn.RMSNorm(spec.hidden)
        self.attn = Attention(spec)
        self.ffn_norm = nn.RMSNorm(spec.hidden)
        self.ffn = FeedForward(spec)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        """Pre-norm residual block: attention, then feed-forward."""
        x = x + self.attn(self.attn_norm(x), cos, sin)
        out: torch.Tensor = x + self.ffn(self.ffn_norm(x))
        return out


class Transformer(nn.Module):
    """Token ids (batch x seq) to next-token logits."""

    def __init__(self, spec: TransformerSpec, *, max_seq_len: int) -> None:
        super().__init__()
        check_trainable(spec)
        self.spec = spec
        self.embed = nn.Embedding(spec.vocab, spec.hidden)
        self.layers = nn.ModuleList(Block(spec) for _ in range(spec.num_layers))
        self.norm = nn.RMSNorm(spec.hidden)
        self.output = nn.Linear(spec.hidden, spec.vocab, bias=False)
        if spec.tied_embeddings:
            self.output.weight = self.embed.weight
        cos, sin = rotary(max_seq_len, spec.d_head)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)
        self.apply(self._init)

    def _init(self, m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, std=0.02)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Logits (batch x seq x vocab) for token ids (batch x seq)."""
        s = ids.shape[1]
        x = self.embed(ids)
        cos: torch.Tensor = self.get_buffer("cos")[:s]
        sin: torch.Tensor = self.get_buffer("sin")[:s]
        for layer in self.layers:
            x = layer(x, cos, sin)
        out: torch.Tensor = self.output(self.norm(x))
        return out

    def loss(self, ids: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean next-token cross-entropy, computed in fp32."""
        logits = self(ids)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1))


def apply_compile(model: Transformer) -> None:
    """Compile each block in place with torch.compile, as torchtitan does: the blocks are
    identical, so one compilation serves all of them, and parameter names (and checkpoints)
    are unchanged."""
    for layer in model.layers:
        layer.compile(fullgraph=True)
