"""The runtime's data and schedule: shuffled, disjoint, resumable shards; warm-up + cosine."""

from __future__ import annotations

import random

import pytest

torch = pytest.importorskip("torch")

from ultracluster.errors import ConfigError  # noqa: E402
from ultracluster.run import data  # noqa: E402
from ultracluster.run.config import RunConfig  # noqa: E402
from ultracluster.run.train import lr_at  # noqa: E402

CORPUS = random.Random(0).randbytes(120 * 4096)  # 120 distinct blocks of 4 KiB


def windows(shard: data.Shard, steps: int, workers: int, worker: int) -> list[tuple[int, ...]]:
    out = []
    for _ in range(steps):
        x, y = shard.batch(rows=4, seq_len=16, worker=worker, workers=workers)
        assert torch.equal(x[:, 1:], y[:, :-1])  # targets are the inputs shifted by one
        out += [tuple(r.tolist()) for r in x]
        shard.advance(rows=4, workers=workers)
    return out


def test_sites_get_disjoint_blocks_and_eval_is_held_out() -> None:
    shards, held = data.split(CORPUS, sites=2)

    def blocks(t: torch.Tensor) -> set[bytes]:
        return {bytes(b.tolist()) for b in t.view(-1, 4096)}

    b0, b1, h = blocks(shards[0].tokens), blocks(shards[1].tokens), blocks(held)
    assert (len(b0), len(b1), len(h)) == (59, 59, 2)  # every 50th block held out
    assert not (b0 & b1) and not (b0 & h) and not (b1 & h)


def test_one_epoch_visits_every_window_once_in_a_shuffled_order() -> None:
    tokens = torch.arange(16 * 64 + 1) % 251
    shard = data.Shard(tokens=tokens, seed=3)
    starts = [shard._start(k, 16) for k in range(64)]
    assert sorted(starts) == list(range(0, 16 * 64, 16))
    assert starts != sorted(starts)
    assert [shard._start(k, 16) for k in range(64, 128)] != starts  # a new order per epoch


def test_workers_of_a_site_read_disjoint_rows_and_order_is_resumable() -> None:
    tokens = torch.arange(16 * 400 + 1)
    a = windows(data.Shard(tokens=tokens, seed=1), 5, workers=2, worker=0)
    b = windows(data.Shard(tokens=tokens, seed=1), 5, workers=2, worker=1)
    assert not set(a) & set(b)
    resumed = data.Shard(tokens=tokens, seed=1)
    resumed.position = 3 * 4 * 2  # as a checkpoint after 3 steps restores it
    assert windows(resumed, 2, workers=2, worker=0) == a[12:]


def test_too_short_a_shard_is_a_one_line_error() -> None:
    with pytest.raises(ConfigError, match="--seq-len: 64"):
        data.Shard(tokens=torch.zeros(10)).batch(rows=1, seq_len=64, worker=0, workers=1)


def test_lr_warms_up_then_decays_by_cosine_to_the_floor() -> None:
    cfg = RunConfig(steps=111, lr=1e-3, warmup_steps=10, min_lr_ratio=0.1)
    lrs = [lr_at(s, cfg) for s in range(cfg.steps)]
    assert lrs[0] == pytest.approx(1e-4) and lrs[9] == pytest.approx(1e-3)
    assert lrs[10] == pytest.approx(1e-3) and lrs[-1] == pytest.approx(1e-4)
    assert lrs[60] == pytest.approx(5.5e-4, rel=1e-2)  # half-way: the mean of peak and floor
    assert all(x >= y for x, y in zip(lrs[10:], lrs[11:]))
    flat = RunConfig(steps=110, lr=1e-3, lr_schedule="constant")
    assert lr_at(100, flat) == 1e-3
