"""Text data: byte-level tokens from files, disjoint shards per site, a held-out eval split.

The default corpus needs no download: the Python standard library's own source files, which
every Python installation carries.
"""

from __future__ import annotations

import sysconfig
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ultracluster.errors import ConfigError
from ultracluster.files import atomic_write_bytes

EVAL_FRACTION = 0.02
ORDER = "shuffled-windows"
"""How a shard is read (part of a checkpoint's identity: a saved data position means nothing
under another order)."""
TEXT_SUFFIXES = {".txt", ".md", ".py", ".rst", ".json", ".csv", ".toml", ".c", ".h", ".html"}


def default_corpus() -> Path:
    """The training text when `--data` is not given: Python's standard-library sources."""
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
    """One site's training tokens, read as fixed windows in a shuffled order.

    The tokens are cut into windows of `seq_len + 1`; each epoch visits them in its own
    seeded permutation, the same on every worker of the site, so a batch's rows come from all
    over the shard (as a shuffled data loader gives: consecutive rows of one file would make
    every step's gradient about one file). The order is a pure function of `position`, the
    number of windows the site has consumed, so a checkpoint resumes it exactly.
    """

    tokens: torch.Tensor
    seed: int = 0
    position: int = 0
    _perm: tuple[int, int, torch.Tensor] | None = field(default=None, repr=False)

    def _start(self, k: int, seq_len: int) -> int:
        n = (self.tokens.numel() - 1) // seq_len
        if n < 1:
            raise ConfigError(f"--seq-len: {seq_len} is longer than a shard of "
                              f"{self.tokens.numel()} tokens")
        epoch, i = divmod(k, n)
        if self._perm is None or self._perm[:2] != (epoch, n):
            # one stream per (shard seed, epoch); the prime keeps epochs of nearby seeds apart
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._perm = (epoch, n, torch.randperm(n, generator=gen))
        return int(self._perm[2][i]) * seq_len

    def batch(self, *, rows: int, seq_len: int, worker: int, workers: int
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """The next `rows` windows for `worker`; the site's W workers read disjoint rows."""
        starts = [self._start(self.position + i * workers + worker, seq_len)
                  for i in range(rows)]
        w = torch.stack([self.tokens[s:s + seq_len + 1] for s in starts]).long()
        return w[:, :-1], w[:, 1:]

    def advance(self, *, rows: int, workers: int) -> None:
        """Move past the rows the site's `workers` just read (`rows` each)."""
        self.position += rows * workers


def read_corpus_once(path: str | Path | None, cache: Path, *, restarted: bool) -> bytes:
    """`read_corpus`, kept in `cache` by a process's first attempt so that a restarted one
    reads one file instead of walking the tree again (about 2 s of a restarted site's way
    back on the default corpus, the Python standard library, on a loaded 2-core machine)."""
    if restarted:
        try:
            return cache.read_bytes()
        except OSError:
            pass
    corpus = read_corpus(path)
    atomic_write_bytes(cache, corpus)
    return corpus


def split(data: bytes, *, sites: int, seed: int = 0) -> tuple[list[Shard], torch.Tensor]:
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
    # each site its own order, from the run's seed and the site's index
    return [Shard(tokens=train[s::sites].flatten().clone(), seed=seed * 1009 + s)
            for s in range(sites)], held
