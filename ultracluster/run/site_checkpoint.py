"""Checkpoints with `--failure-domain site`: the state the sites share, saved by one site.

Between outer steps the sites hold different local weights, inner AdamW states and data
positions; after a committed outer step they share the global model, the outer optimiser's
state (Nesterov momentum, per fragment for streaming) and the step. A checkpoint is that
shared state, captured at the first committed outer step at or after each multiple of
`--checkpoint-every`, plus the inner AdamW state of the site that writes it. It is written by
the lowest-numbered site of that quorum alone, through torch.distributed.checkpoint over the
site's own process group (its torchrun's ranks): no collective spans sites, so a site that is
down or recovering never holds a save up. Layout, atomic rename, manifest, identity check,
fallback and retention are `run/checkpoint.py`'s; the state sits under one key, ``shared``,
and does not depend on the number of workers per site.

Read only when no site holds the job's state: at `--resume`, or when every site restarted at
once (`DiLoCoSync.join`). A site restarted on its own recovers from a healthy peer as before.
Every site starts from the checkpoint: local weights = global weights, the step and the data
position that follows it (`step * micro_batch * workers`, as a site recovering from a peer),
and the saving site's inner AdamW state (each site's own is not saved; see docs/runtime.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ultracluster.run import checkpoint
from ultracluster.run.diloco import DiLoCoSync

KEY = "shared"


def checkpointer(cfg: Any, *, site: int, local: int, identity: dict[str, Any]
                 ) -> checkpoint.Checkpointer:
    """Collective over the site's ranks: the site's Checkpointer (its rank 0 finalises), with
    its own folders in progress, removing what a killed attempt of this site left."""
    ckpt = checkpoint.Checkpointer(cfg.checkpoint_dir, rank=local, identity=identity,
                                   keep=cfg.keep_checkpoints, async_save=cfg.async_checkpoint,
                                   tmp=f".site{site}.tmp")
    ckpt.remove_stale()
    return ckpt


def arm(sync: DiLoCoSync, every: int, last_saved: int) -> None:
    """Capture the shared state at the first committed outer step whose exchange started at
    or after the next multiple of `every` after `last_saved` (a streaming fragment's exchange
    is applied one step after it starts: the step is the one it started at)."""
    sync.capture_at = (last_saved // every + 1) * every if every > 0 else None


def save_captured(ckpt: checkpoint.Checkpointer, sync: DiLoCoSync,
                  inner: torch.optim.Optimizer) -> int | None:
    """After a step: if an outer step was captured and this site writes it, save it (over the
    site's own group; in the background unless --sync-checkpoint); the step captured, or None."""
    state, sync.captured = sync.captured, None
    if state is None:
        return None
    step = int(state["step"])
    if sync.saver():
        named = list(sync.model.named_parameters())
        ckpt.save(step, {KEY: state | {"inner": checkpoint.optimizer_state(inner, named)}})
    return step


def read(folder: Path, sync: DiLoCoSync, inner: torch.optim.Optimizer, *, fused: bool
         ) -> int:
    """Start this site from `folder`'s shared state; return the step it holds."""
    named = list(sync.model.named_parameters())
    template = sync.template(-1) | {"inner": checkpoint.adamw_template(named, fused=fused)}
    state = checkpoint.read(folder, {KEY: template})[KEY]
    step = sync.load_shared(state)
    inner.state.clear()
    checkpoint.load_optimizer(inner, named, state["inner"])
    return step


def restorer(cfg: Any, sync: DiLoCoSync, inner: torch.optim.Optimizer, *, local: int,
             identity: dict[str, Any], fused: bool) -> Any:
    """A callable for `sync.restore`: collective over the site's ranks, it reads the newest
    intact checkpoint (one warning line per newer one refused) and returns its step, or None
    when there is none."""

    def restore() -> int | None:
        folder = checkpoint.choose(cfg.checkpoint_dir, identity, rank=local)
        return None if folder is None else read(folder, sync, inner, fused=fused)

    return restore
