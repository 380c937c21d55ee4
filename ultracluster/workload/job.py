"""`TrainingJob`: how much to train and in what shape (tokens, batch, sequence, precision)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ultracluster.errors import ConfigError

JobPrecision = Literal["bf16", "fp16", "fp8", "fp32"]

DEFAULT_TOKENS = 15e12
"""Llama 3 405B was pre-trained on ~15.6T tokens (Llama 3 paper, s.1)."""
DEFAULT_GLOBAL_BATCH_TOKENS = 16 * 1024**2
"""Llama 3 405B's final batch: 16M tokens (2,048 sequences of 8,192; paper s.3.4.1)."""
DEFAULT_SEQ_LEN = 8192


@dataclass(frozen=True, kw_only=True, slots=True)
class TrainingJob:
    """What to train for: total tokens and the global batch."""

    tokens: float
    """Total training tokens."""
    seq_len: int = DEFAULT_SEQ_LEN
    """Sequence length in tokens."""
    global_batch_seqs: int = DEFAULT_GLOBAL_BATCH_TOKENS // DEFAULT_SEQ_LEN
    """Sequences per optimiser step."""
    precision: JobPrecision = "bf16"
    """Matmul precision (fp8: FP8 matmuls, BF16 elsewhere)."""

    def __post_init__(self) -> None:
        if not self.tokens > 0:
            raise ConfigError(f"tokens: {self.tokens} must be positive")
        if self.seq_len <= 0:
            raise ConfigError(f"seq_len: {self.seq_len} must be positive")
        if self.global_batch_seqs <= 0:
            raise ConfigError(f"global_batch: {self.global_batch_seqs} must be positive")
        if self.precision not in ("bf16", "fp16", "fp8", "fp32"):
            raise ConfigError(f"precision: {self.precision!r} must be bf16, fp16, fp8 or fp32")

    @property
    def global_batch_tokens(self) -> int:
        return self.global_batch_seqs * self.seq_len

    @property
    def num_steps(self) -> float:
        return self.tokens / self.global_batch_tokens

    @staticmethod
    def from_batch(
        *, tokens: float, seq_len: int, global_batch: float, precision: JobPrecision = "bf16"
    ) -> TrainingJob:
        """`global_batch` below 65,536 is read as sequences, otherwise as tokens ("4M")."""
        seqs = int(global_batch) if global_batch < 65536 else round(global_batch / seq_len)
        if seqs <= 0:
            raise ConfigError(f"global_batch: {global_batch:g} tokens is less than one sequence")
        return TrainingJob(tokens=tokens, seq_len=seq_len, global_batch_seqs=seqs,
                           precision=precision)
