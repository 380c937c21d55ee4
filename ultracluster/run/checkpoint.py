"""Checkpoints: every rank's state, consistent across sites, atomic, checksummed, safe to load.

Layout: ``DIR/step-000040/rank-00003.pt`` for every rank plus ``manifest.json`` (the step, the
run's identity and each file's SHA-256). Ranks write into ``step-000040.tmp/``; after a barrier
rank 0 writes the manifest and renames the folder, so a checkpoint is either complete or
absent. Loading refuses, with one line, a checkpoint whose identity differs from the run's
(model, sites, workers, site sync) or whose file does not match its checksum, and uses
``torch.load(weights_only=True)``: no arbitrary object is unpickled.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from ultracluster.errors import ConfigError
from ultracluster.files import atomic_write_text


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _fsync_save(obj: dict[str, Any], path: Path) -> None:
    with path.open("wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())


def save(root: str | Path, *, step: int, rank: int, world: int, identity: dict[str, Any],
         state: dict[str, Any]) -> None:
    """Collective: every rank calls it at the same step."""
    root = Path(root)
    tmp = root / f"step-{step:06d}.tmp"
    final = root / f"step-{step:06d}"
    if rank == 0:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    dist.barrier()
    path = tmp / f"rank-{rank:05d}.pt"
    _fsync_save(state, path)
    sums: list[Any] = [None] * world
    dist.all_gather_object(sums, (rank, _sha256(path)))
    if rank == 0:
        manifest = {"step": step, "identity": identity,
                    "files": {f"rank-{r:05d}.pt": s for r, s in sums}}
        atomic_write_text(tmp / "manifest.json", json.dumps(manifest, indent=1))
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
    dist.barrier()


def latest(root: str | Path) -> Path | None:
    """The newest complete checkpoint folder under `root` (None if there is none)."""
    root = Path(root)
    if not root.is_dir():
        return None
    done = sorted(p for p in root.glob("step-*") if p.is_dir() and not p.name.endswith(".tmp")
                  and (p / "manifest.json").is_file())
    return done[-1] if done else None


def load(folder: Path, *, rank: int, identity: dict[str, Any]) -> dict[str, Any]:
    """This rank's state from `folder`, after checking identity and checksum."""
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ConfigError(f"checkpoint {folder}: unreadable manifest ({e})") from None
    saved = manifest.get("identity", {})
    diff = [f"{k}: checkpoint {saved.get(k)!r} vs run {v!r}" for k, v in identity.items()
            if saved.get(k) != v]
    if diff:
        raise ConfigError(f"checkpoint {folder} does not match this run ({'; '.join(diff)})")
    name = f"rank-{rank:05d}.pt"
    path = folder / name
    if not path.is_file() or _sha256(path) != manifest["files"].get(name):
        raise ConfigError(f"checkpoint {folder}: {name} is missing or corrupt "
                          "(SHA-256 does not match the manifest)")
    state: dict[str, Any] = torch.load(path, weights_only=True, map_location="cpu")
    return state
