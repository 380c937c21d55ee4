"""Text data: byte-level tokens from files, disjoint shards per site, a held-out eval split.

The default corpus needs no download: the Python standard library's own source files, which
every Python installation carries.
"""

from __future__ import annotations

import sysconfig
from dataclasses import dataclass
from pathlib import Path

import torch

from ultracluster.errors import ConfigError

EVAL_FRACTION = 0.02
TEXT_SUFFIXES = {".txt", ".md", ".py", ".rst", ".json", ".csv", ".toml", ".c", ".h", ".html"}


def default_corpus() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def read_corpus(path: str | Path | None, *, max_bytes: int = 8_000_000) -> bytes:
    """All text files under `path` (a file or a folder), in sorted order, up to `max_bytes`."""
    root = Path(path) if path else default_corpus()
    if not root.exists():
        raise ConfigError(f"--data: {root} does not exist")
    skip = {"site-packages", "dist-packages", "test", "tests", "idlelib", "__pycache__"}
    files = [root] if root.is_file() else sorted(
        p for p in root.rglob("*") if p.is_file() and p.suffix in TEXT_SUFFIXES
        and not skip.intersection(p.relative_to(root).parts))
    chunks, total = [], 0
    for f in files:
        try:
            b = f.read_bytes()
        except OSError:
            continue
        chunks.append(b)
        total += len(b)
        if total >= max_bytes:
            break
    data = b"".join(chunks)[:max_bytes]
    if len(data) < 10_000:
        raise ConfigError(f"--data: {root} holds only {len(data)} bytes of text (need 10 kB)")
    return data


@dataclass
class Shard:
    """One site's training tokens and a cursor; every worker of the site reads its own rows."""

    tokens: torch.Tensor
    position: int = 0

    def batch(self, *, rows: int, seq_len: int, worker: int, workers: int
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """The next `rows` sequences for `worker` (deterministic in position: resumable)."""
        n = self.tokens.numel() - seq_len - 1
        starts = [(self.position + (i * workers + worker) * seq_len) % n for i in range(rows)]
        x = torch.stack([self.tokens[s:s + seq_len] for s in starts])
        y = torch.stack([self.tokens[s + 1:s + seq_len + 1] for s in starts])
        return x.long(), y.long()

    def advance(self, *, rows: int, seq_len: int, workers: int) -> None:
        self.position = (self.position + rows * workers * seq_len) % (
            self.tokens.numel() - seq_len - 1)


def split(data: bytes, *, sites: int) -> tuple[list[Shard], torch.Tensor]:
    """Disjoint training shards, one per site, and held-out eval tokens.

    The corpus is cut into 4 KiB blocks; every 50th block is held out for the eval loss, and
    the rest are dealt to the sites in turn, so the shards are disjoint but drawn from the
    same distribution (contiguous halves of a sorted corpus would give each site different
    files, a non-IID split that is a different experiment).
    """
    t = torch.frombuffer(bytearray(data), dtype=torch.uint8)
    blocks = t[: t.numel() // 4096 * 4096].view(-1, 4096)
    every = max(int(1 / EVAL_FRACTION), 2)
    is_eval = torch.arange(blocks.shape[0]) % every == every - 1
    held = blocks[is_eval].flatten()
    train = blocks[~is_eval]
    return [Shard(tokens=train[s::sites].flatten().clone()) for s in range(sites)], held
