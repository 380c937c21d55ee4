"""`TrainingJob`: how much to train and in what shape (tokens, batch, sequence, precision)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ultracluster.errors import ConfigError
from ultracluster.units import Precision, one_of

DEFAULT_TOKENS = 15e12
"""Llama 3 405B was pre-trained on ~15.6T tokens (Llama 3 paper, s.1)."""
DEFAULT_GLOBAL_BATCH_TOKENS = 16 * 1024**2
"""Llama 3 405B's final batch: 16M tokens (2,048 sequences of 8,192; paper s.3.4.1)."""
DEFAULT_SEQ_LEN = 8192
MAX_TOKENS = 1e18
"""A million times Llama 3's 15T tokens: the most a job may ask for."""
MAX_SEQ_LEN = 1_000_000_000


@dataclass(frozen=True, kw_only=True, slots=True)
class TrainingJob:
    """What to train for: total tokens and the global batch."""

    tokens: float
    """Total training tokens."""
    seq_len: int = DEFAULT_SEQ_LEN
    """Sequence length in tokens."""
    global_batch_seqs: int = DEFAULT_GLOBAL_BATCH_TOKENS // DEFAULT_SEQ_LEN
    """Sequences per optimiser step."""
    precision: Precision = Precision.BF16
    """Matmul precision (fp8: FP8 matmuls, BF16 elsewhere)."""

    def __post_init__(self) -> None:
        for name, hi in (("seq_len", MAX_SEQ_LEN), ("global_batch_seqs", MAX_TOKENS)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= hi:
                raise ConfigError(f"{name}: {v!r} must be a whole number in [1, {hi:,.0f}]")
        lo = float(self.global_batch_tokens)
        if not (isinstance(self.tokens, (int, float)) and lo <= self.tokens <= MAX_TOKENS):
            raise ConfigError(f"tokens: {self.tokens!r} must be in [{lo:,.0f}, {MAX_TOKENS:g}] "
                              f"(at least one step of {lo:,.0f} tokens)")
        try:
            object.__setattr__(self, "precision", Precision(self.precision))
        except ValueError:
            raise ConfigError(f"precision: {self.precision!r} must be "
                              f"{one_of(tuple(Precision))}") from None

    @property
    def global_batch_tokens(self) -> int:
        """Tokens in one global batch: sequences x sequence length."""
        return self.global_batch_seqs * self.seq_len

    @staticmethod
    def batch_seqs(*, global_batch: float, seq_len: int) -> int:
        """Sequences in a global batch written as sequences (below 65,536) or tokens ("4M")."""
        if not math.isfinite(global_batch) or global_batch <= 0:
            raise ConfigError(f"global_batch: {global_batch!r} must be a positive number")
        if global_batch < 65536:
            if not float(global_batch).is_integer():
                raise ConfigError(f"global_batch: {global_batch:g} sequences is not a whole "
                                  "number (below 65,536 it counts sequences)")
            return int(global_batch)
        seqs = round(global_batch / seq_len)
        if seqs <= 0:
            raise ConfigError(f"global_batch: {global_batch:g} tokens is less than one sequence "
                              f"of {seq_len:,}")
        return seqs

    @staticmethod
    def from_batch(
        *, tokens: float, seq_len: int, global_batch: float, precision: Precision = Precision.BF16
    ) -> TrainingJob:
        """`global_batch` below 65,536 is read as sequences, otherwise as tokens ("4M")."""
        seqs = TrainingJob.batch_seqs(global_batch=global_batch, seq_len=seq_len)
        return TrainingJob(tokens=tokens, seq_len=seq_len, global_batch_seqs=seqs,
                           precision=precision)
